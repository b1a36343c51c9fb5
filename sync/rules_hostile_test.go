package sync

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/rules"
)

// tarEntry is one entry of a hand-made archive: what a hostile or broken
// pusher could store, which PackRules never makes.
type tarEntry struct {
	name string
	typ  byte
	data []byte
	link string
}

// tarOf is the uncompressed tar of ents.
func tarOf(ents []tarEntry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		tw.WriteHeader(&tar.Header{Typeflag: e.typ, Name: e.name, Size: int64(len(e.data)), Mode: 0o644, Linkname: e.link, Format: tar.FormatPAX})
		tw.Write(e.data)
	}
	tw.Close()
	return buf.Bytes()
}

// versionOf is version 1 of the gzipped tar, its checksum right.
func versionOf(tarball []byte, dir string) RuleVersion {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarball)
	zw.Close()
	sum := sha256.Sum256(gz.Bytes())
	return RuleVersion{Number: 1, Archive: gz.Bytes(), Dir: dir, Checksum: hex.EncodeToString(sum[:])}
}

const hostileRule = "pages:\n  - match: [\"/\"]\n    rules:\n      - {id: a, select: \"#h\", replace: {file: ../f/x.html}}\n"

func reg(name, data string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeReg, data: []byte(data)}
}

// No hand-made archive gets an edge to read outside it, or to serve
// something other than what the archive says: each is refused when it
// unpacks or when its rules load.
func TestHostileRuleArchivesAreRefused(t *testing.T) {
	frag := reg("f/x.html", "<b>x</b>")
	for _, tc := range []struct {
		name string
		ents []tarEntry
		dir  string
	}{
		{"parent path", []tarEntry{reg("../evil.yaml", hostileRule)}, "."},
		{"absolute path", []tarEntry{reg("/etc/evil.yaml", hostileRule)}, "."},
		{"symlink", []tarEntry{{name: "r/a.yaml", typ: tar.TypeSymlink, link: "/etc/passwd"}}, "r"},
		{"dot", []tarEntry{reg(".", hostileRule)}, "."},
		{"a file where a directory is", []tarEntry{reg("r", hostileRule), reg("r/a.yaml", hostileRule), frag}, "r"},
		{"absolute dir", []tarEntry{reg("r/a.yaml", hostileRule), frag}, "/r"},
		{"dir outside", []tarEntry{reg("r/a.yaml", hostileRule), frag}, "../r"},
		{"fragment missing", []tarEntry{reg("r/a.yaml", hostileRule)}, "r"},
		{"duplicate names", []tarEntry{reg("r/a.yaml", hostileRule), reg("r/a.yaml", "x: ["), frag}, "r"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := versionOf(tarOf(tc.ents), tc.dir)
			files, err := v.Files()
			if err == nil {
				_, err = rules.LoadFS(files, tc.dir)
			}
			if err == nil {
				t.Errorf("archive %q with dir %q: unpacked and loaded, want an error", tc.name, tc.dir)
			}
		})
	}
}

// Files over the unpacked limit exactly at a file's end: the tar reader
// would see a clean end, and the rule file after it would be dropped
// without a word, serving a rule set the pusher never pushed.
func TestRuleArchiveOverTheLimitIsRefusedNotTruncated(t *testing.T) {
	head := []tarEntry{reg("r/a.yaml", hostileRule), reg("f/x.html", "<b>x</b>")}
	pre := len(tarOf(head)) - 1024 // without the two end blocks
	pad := strings.Repeat("#", MaxRuleVersionBytes-pre-512)
	for _, tc := range []struct {
		name string
		ents []tarEntry
	}{
		{"at a file boundary", append(slices.Clone(head), reg("pad", pad), reg("r/z.yaml", "pages: [oops"))},
		{"inside a file", append(slices.Clone(head), reg("pad", pad+"##"), reg("r/z.yaml", "pages: [oops"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := versionOf(tarOf(tc.ents), "r")
			if _, err := v.Files(); !errors.Is(err, ErrArchiveTooLarge) {
				t.Errorf("Files() of an archive over %d bytes = %v, want ErrArchiveTooLarge", MaxRuleVersionBytes, err)
			}
		})
	}
	// Just at the limit, with the end blocks inside it, is fine.
	v := versionOf(tarOf(append(slices.Clone(head), reg("pad", pad[:len(pad)-2048]))), "r")
	if _, err := v.Files(); err != nil {
		t.Errorf("Files() of an archive within the limit = %v", err)
	}
}

func TestRuleArchiveWithTooManyFilesIsRefused(t *testing.T) {
	var ents []tarEntry
	for i := range MaxRuleVersionFiles + 1 {
		ents = append(ents, reg(fmt.Sprintf("f/%d.html", i), "x"))
	}
	v := versionOf(tarOf(ents), "r")
	if _, err := v.Files(); !errors.Is(err, ErrArchiveTooLarge) {
		t.Errorf("Files() of %d files = %v, want ErrArchiveTooLarge", len(ents), err)
	}
	v = versionOf(tarOf(ents[:MaxRuleVersionFiles]), "r")
	if _, err := v.Files(); err != nil {
		t.Errorf("Files() of %d files = %v", MaxRuleVersionFiles, err)
	}
}

// A key the bucket holds that is no rule version (a hand-made copy, a
// damaged value) is skipped by the catch-up and listed, as unreadable,
// by the history: it does not stop either.
func TestUnreadableRuleVersionIsSkipped(t *testing.T) {
	srv := startJetStream(t, 1)[0]
	s := openStore(t, srv.ClientURL())
	b := openRuleBucket(t, s)
	pushRules(t, b, "a", "first")
	ctx := context.Background()
	e, err := b.kv.Get(ctx, "v.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.kv.Create(ctx, "v.2", e.Value()); err != nil { // says it is number 1
		t.Fatal(err)
	}
	if _, err := b.kv.Create(ctx, "v.3", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	applied := make(chan uint64, 10)
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.FollowRules(fctx, "tailor_rules", 0, "", func(v RuleVersion) error { applied <- v.Number; return nil }, nil)
	}()
	defer func() { cancel(); <-done }()
	select {
	case n := <-applied:
		if n != 1 {
			t.Errorf("FollowRules applied version %d first, want 1", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("FollowRules applied nothing in 5 s: the unreadable newest versions block it")
	}
	vs, err := b.Versions(ctx)
	if err != nil {
		t.Fatalf("Versions() = %v", err)
	}
	if len(vs) != 3 || vs[0].Unreadable != "" || vs[1].Unreadable == "" || vs[2].Unreadable == "" || vs[2].Number != 3 {
		t.Errorf("Versions() = %+v, want 1 readable, 2 and 3 unreadable", vs)
	}
}

// A stray key with the largest number would make the next number wrap
// to 0.
func TestPushRefusesToNumberPastTheLargestVersion(t *testing.T) {
	srv := startJetStream(t, 1)[0]
	b := openRuleBucket(t, openStore(t, srv.ClientURL()))
	v := pushRules(t, b, "a", "first")
	if _, err := b.kv.Create(context.Background(), "v.18446744073709551615", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	v.Number = 0
	got, err := b.Push(context.Background(), v)
	if err == nil || !strings.Contains(err.Error(), "largest version number") {
		t.Errorf("Push() after v.18446744073709551615 = version %d, %v; want an error", got.Number, err)
	}
}

// The newest version takes longer to be refused than a NATS call may
// take: the catch-up must still read the one before and apply it, rather
// than fail on an expired deadline and start again from the newest, for
// ever.
func TestSlowRefusedNewestVersionFallsBackToTheOneBefore(t *testing.T) {
	srv := startJetStream(t, 1)[0]
	s := openStore(t, srv.ClientURL())
	b := openRuleBucket(t, s)
	pushRules(t, b, "good", "1")
	pushRules(t, b, "slow", "2")
	var tries2 atomic.Int32
	applied := make(chan uint64, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.FollowRules(ctx, "tailor_rules", 0, "", func(v RuleVersion) error {
			if v.Number == 2 {
				tries2.Add(1)
				time.Sleep(2*statTimeout + 500*time.Millisecond) // past every deadline of a catch-up
				return errors.New("does not load")
			}
			applied <- v.Number
			return nil
		}, nil)
	}()
	defer func() { cancel(); <-done }()
	select {
	case n := <-applied:
		if n != 1 {
			t.Errorf("applied version %d, want 1", n)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("version 1 not applied in 15 s; version 2 tried %d times", tries2.Load())
	}
	if n := tries2.Load(); n != 1 {
		t.Errorf("version 2 tried %d times, want once", n)
	}
}

// A version that crashed the edge while it loaded (the marker Trying
// left is still there at the next start) is refused from then on, in
// later runs too, in its own bucket only.
func TestRuleVersionThatCrashedTheEdgeIsNotTriedAgain(t *testing.T) {
	kept := RuleCachePath(t.TempDir(), "tailor_rules")
	g := NewRuleGuard(kept)
	if crashed, refused, err := g.Start(); crashed.Number != 0 || len(refused) != 0 || err != nil {
		t.Fatalf("Start() on a fresh edge = %v, %v, %v", crashed, refused, err)
	}
	if err := g.Trying("old", 4); err != nil { // loads, and is done
		t.Fatal(err)
	}
	if err := g.Done(); err != nil {
		t.Fatal(err)
	}
	if err := g.Trying("old", 5); err != nil { // then the process dies
		t.Fatal(err)
	}
	five := Refused{"old", 5}
	g = NewRuleGuard(kept) // the restart
	if crashed, refused, err := g.Start(); crashed != five || !slices.Equal(refused, []Refused{five}) || err != nil {
		t.Fatalf("Start() after a crash loading 5 = %v, %v, %v; want %v, [%v]", crashed, refused, err, five, five)
	}
	g = NewRuleGuard(kept) // and another, for any reason
	crashed, refused, err := g.Start()
	if crashed.Number != 0 || !slices.Equal(refused, []Refused{five}) || err != nil {
		t.Fatalf("Start() on the next run = %v, %v, %v; want none, [%v]", crashed, refused, err, five)
	}
	if !five.Of("old", 5) || five.Of("new", 5) || five.Of("old", 4) {
		t.Errorf("%v refuses the wrong versions", five)
	}

	// The bucket is created again; its version 2 crashes the edge before
	// any of its versions has loaded; then its version 1 loads. Version 2
	// of the new bucket stays refused; the old bucket's 5 is forgotten.
	if err := g.Trying("new", 2); err != nil {
		t.Fatal(err)
	}
	g = NewRuleGuard(kept)
	if _, refused, err = g.Start(); err != nil || len(refused) != 2 {
		t.Fatalf("Start() after a crash loading the new bucket's 2 = %v, %v", refused, err)
	}
	if refused, err = g.Keep("new", refused); err != nil || !slices.Equal(refused, []Refused{{"new", 2}}) {
		t.Fatalf("Keep(new) = %v, %v; want [new 2]", refused, err)
	}
	g = NewRuleGuard(kept)
	if _, refused, err = g.Start(); err != nil || !slices.Equal(refused, []Refused{{"new", 2}}) {
		t.Fatalf("Start() after Keep(new) = %v, %v; want [new 2]", refused, err)
	}
	if refused, err = g.Keep("third", refused); err != nil || len(refused) != 0 {
		t.Fatalf("Keep(third) = %v, %v; want none", refused, err)
	}
	if _, err := os.Stat(kept + ".refused"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no version refused, but the notes are still there (%v)", err)
	}

	// Notes written before they named their bucket refuse in any bucket.
	if err := os.WriteFile(kept+".refused", []byte("7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, refused, err = NewRuleGuard(kept).Start(); err != nil || len(refused) != 1 || !refused[0].Of("any", 7) {
		t.Fatalf("an old-style note reads as %v, %v; want 7 refused in any bucket", refused, err)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(kept), ".*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}
