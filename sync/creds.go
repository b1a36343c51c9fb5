package sync

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/nats-io/nkeys"

	"github.com/tailor-edge/tailor/internal/regular"
)

// maxCredsBytes bounds a credentials file: a user JWT and a seed, a few
// kilobytes.
const maxCredsBytes = 64 << 10

// CheckCreds reads the NATS credentials file at path as a connection does
// (a user JWT and an nkey seed), so that tailor check finds a file that
// every connection attempt of serve would fail on, in the background.
func CheckCreds(path string) error {
	b, err := regular.ReadFile(path, maxCredsBytes)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("read nats credentials %s: %w", path, err)
	}
	defer clear(b)
	jwt, _ := nkeys.ParseDecoratedJWT(b)
	if strings.Count(strings.TrimSpace(jwt), ".") != 2 {
		return fmt.Errorf("read nats credentials %s: no user JWT (want a .creds file as nsc writes it)", path)
	}
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		return fmt.Errorf("read nats credentials %s: %w", path, err)
	}
	kp.Wipe()
	return nil
}
