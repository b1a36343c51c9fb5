package sync

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
)

// RuleGuard keeps an edge from crash-looping on a rule version. Rule
// YAML takes some 100 times its size in memory while it parses: a
// version can get an edge killed (out of memory) while it loads, and the
// edge, restarted, would try the same newest version again, for ever.
// So before loading a version for the first time the edge notes it
// beside its kept copy ("trying N"), and clears the note once N has
// loaded or been refused. A note found at start means N ended the last
// run: N is refused from then on, by this edge, in this run and the
// next ones.
type RuleGuard struct {
	trying, refused string
}

// NewRuleGuard guards the edge whose kept copy is at kept
// (RuleCachePath); its notes sit beside it.
func NewRuleGuard(kept string) *RuleGuard {
	return &RuleGuard{trying: kept + ".trying", refused: kept + ".refused"}
}

// maxRefused bounds the refused versions remembered: the newest ones
// matter, older ones are never tried again anyway.
const maxRefused = 100

// Start reads the notes a previous run left: crashed is the version
// that was loading when it ended (0: none), now refused too; refused
// lists every version refused that way, crashed included.
func (g *RuleGuard) Start() (crashed uint64, refused []uint64, err error) {
	data, err := os.ReadFile(g.refused)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, nil, fmt.Errorf("read refused rule versions: %w", err)
	}
	for _, f := range strings.Fields(string(data)) {
		if n, err := strconv.ParseUint(f, 10, 64); err == nil {
			refused = append(refused, n)
		}
	}
	data, err = os.ReadFile(g.trying)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, refused, nil
	}
	if err != nil {
		return 0, refused, fmt.Errorf("read rule version marker: %w", err)
	}
	crashed, err = strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(string(data), "trying")), 10, 64)
	if err != nil || crashed == 0 {
		// Torn by the crash itself: nothing to refuse, but no reason to stop.
		return 0, refused, os.Remove(g.trying)
	}
	if !slices.Contains(refused, crashed) {
		refused = append(refused, crashed)
	}
	if len(refused) > maxRefused {
		refused = refused[len(refused)-maxRefused:]
	}
	var b strings.Builder
	for _, n := range refused {
		b.WriteString(strconv.FormatUint(n, 10) + "\n")
	}
	if err := writeSynced(g.refused, []byte(b.String())); err != nil {
		return crashed, refused, fmt.Errorf("note refused rule version %d: %w", crashed, err)
	}
	return crashed, refused, os.Remove(g.trying)
}

// Trying notes that version n is about to load for the first time.
func (g *RuleGuard) Trying(n uint64) error {
	if err := writeSynced(g.trying, []byte("trying "+strconv.FormatUint(n, 10)+"\n")); err != nil {
		return fmt.Errorf("note rule version %d loading: %w", n, err)
	}
	return nil
}

// Done clears Trying's note: the version loaded or was refused.
func (g *RuleGuard) Done() error {
	if err := os.Remove(g.trying); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("clear rule version marker: %w", err)
	}
	return nil
}

// Forget clears the versions refused for good: their numbers were
// another bucket's (it was deleted and created again, or the edge now
// follows another cluster's), and say nothing of this one's.
func (g *RuleGuard) Forget() error {
	if err := os.Remove(g.refused); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("clear refused rule versions: %w", err)
	}
	return nil
}
