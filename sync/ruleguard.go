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

// Refused is a rule version an edge will not load again: version Number
// of the bucket whose identity (RuleVersion.BucketID) is Bucket. A note
// written before notes named their bucket has Bucket "" and refuses
// Number in any bucket.
type Refused struct {
	Bucket string
	Number uint64
}

// Of reports whether r refuses version n of bucket.
func (r Refused) Of(bucket string, n uint64) bool {
	return r.Number == n && (r.Bucket == "" || r.Bucket == bucket)
}

// NewRuleGuard guards the edge whose kept copy is at kept
// (RuleCachePath); its notes sit beside it.
func NewRuleGuard(kept string) *RuleGuard {
	return &RuleGuard{trying: kept + ".trying", refused: kept + ".refused"}
}

// maxRefused bounds the refused versions remembered: the newest ones
// matter, older ones are never tried again anyway.
const maxRefused = 100

// parseRefused reads one note: "N" or "N BUCKET".
func parseRefused(line string) (Refused, bool) {
	f := strings.Fields(line)
	if len(f) == 0 || len(f) > 2 {
		return Refused{}, false
	}
	n, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil || n == 0 {
		return Refused{}, false
	}
	r := Refused{Number: n}
	if len(f) == 2 {
		r.Bucket = f[1]
	}
	return r, true
}

func formatRefused(r Refused) string {
	s := strconv.FormatUint(r.Number, 10)
	if r.Bucket != "" {
		s += " " + r.Bucket
	}
	return s
}

// Start reads the notes a previous run left: crashed is the version
// that was loading when it ended (Number 0: none), now refused too;
// refused lists every version refused that way, crashed included.
func (g *RuleGuard) Start() (crashed Refused, refused []Refused, err error) {
	data, err := os.ReadFile(g.refused)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Refused{}, nil, fmt.Errorf("read refused rule versions: %w", err)
	}
	for line := range strings.Lines(string(data)) {
		if r, ok := parseRefused(line); ok {
			refused = append(refused, r)
		}
	}
	data, err = os.ReadFile(g.trying)
	if errors.Is(err, fs.ErrNotExist) {
		return Refused{}, refused, nil
	}
	if err != nil {
		return Refused{}, refused, fmt.Errorf("read rule version marker: %w", err)
	}
	crashed, ok := parseRefused(strings.TrimPrefix(strings.TrimSpace(string(data)), "trying"))
	if !ok {
		// Torn by the crash itself: nothing to refuse, but no reason to stop.
		return Refused{}, refused, os.Remove(g.trying)
	}
	if !slices.Contains(refused, crashed) {
		refused = append(refused, crashed)
	}
	if len(refused) > maxRefused {
		refused = refused[len(refused)-maxRefused:]
	}
	if err := g.write(refused); err != nil {
		return crashed, refused, fmt.Errorf("note refused rule version %d: %w", crashed.Number, err)
	}
	return crashed, refused, os.Remove(g.trying)
}

// write replaces the refused notes with refused (none: no file).
func (g *RuleGuard) write(refused []Refused) error {
	if len(refused) == 0 {
		if err := os.Remove(g.refused); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	var b strings.Builder
	for _, r := range refused {
		b.WriteString(formatRefused(r) + "\n")
	}
	return writeSynced(g.refused, []byte(b.String()))
}

// Trying notes that version n of bucket (its BucketID) is about to load
// for the first time.
func (g *RuleGuard) Trying(bucket string, n uint64) error {
	if err := writeSynced(g.trying, []byte("trying "+formatRefused(Refused{bucket, n})+"\n")); err != nil {
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

// Keep forgets the versions refused in other buckets than bucket: their
// numbers were another bucket's (it was deleted and created again, or the
// edge now follows another cluster's), and say nothing of this one's. It
// returns what stays refused.
func (g *RuleGuard) Keep(bucket string, refused []Refused) ([]Refused, error) {
	kept := slices.DeleteFunc(slices.Clone(refused), func(r Refused) bool { return r.Bucket != bucket })
	if len(kept) == len(refused) {
		return kept, nil
	}
	if err := g.write(kept); err != nil {
		return kept, fmt.Errorf("clear refused rule versions: %w", err)
	}
	return kept, nil
}
