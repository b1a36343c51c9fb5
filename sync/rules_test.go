package sync

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	stdsync "sync"
	"testing"
	"time"
)

func ruleFiles(text string) map[string][]byte {
	return map[string][]byte{"rules/home.yaml": []byte(text), "fragments/hero.html": []byte("<b>hero</b>")}
}

func pushRules(t *testing.T, b *RuleBucket, text, msg string) RuleVersion {
	t.Helper()
	v, err := NewRuleVersion(ruleFiles(text), "rules", "tester", msg)
	if err != nil {
		t.Fatal(err)
	}
	v, err = b.Push(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func openRuleBucket(t *testing.T, s *Store) *RuleBucket {
	t.Helper()
	var b *RuleBucket
	waitFor(t, func() bool {
		var err error
		b, err = s.CreateRuleBucket(context.Background(), "tailor_rules")
		return err == nil
	})
	return b
}

func TestRuleVersionsAreNumberedAndKeepTheirFiles(t *testing.T) {
	srv := startJetStream(t, 1)[0]
	b := openRuleBucket(t, openStore(t, srv.ClientURL()))
	ctx := context.Background()
	if n, err := b.Newest(ctx); err != nil || n != 0 {
		t.Fatalf("Newest() of an empty bucket = %d, %v; want 0", n, err)
	}
	v1 := pushRules(t, b, "a", "first")
	v2 := pushRules(t, b, "b", "second")
	if v1.Number != 1 || v2.Number != 2 {
		t.Fatalf("pushed numbers %d, %d; want 1, 2", v1.Number, v2.Number)
	}
	vs, err := b.Versions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].Message != "first" || vs[1].Message != "second" || vs[1].Author != "tester" || vs[1].Checksum != v2.Checksum {
		t.Fatalf("Versions() = %+v", vs)
	}
	got, err := b.Version(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	files, err := got.Files()
	if err != nil {
		t.Fatal(err)
	}
	if data, err := fs.ReadFile(files, "rules/home.yaml"); err != nil || string(data) != "a" {
		t.Errorf("version 1's rules/home.yaml = %q, %v; want %q", data, err, "a")
	}
	if data, err := fs.ReadFile(files, "fragments/hero.html"); err != nil || string(data) != "<b>hero</b>" {
		t.Errorf("version 1's fragment = %q, %v", data, err)
	}
	if _, err := b.Version(ctx, 9); !errors.Is(err, ErrNoVersion) {
		t.Errorf("Version(9) = %v, want ErrNoVersion", err)
	}
	// The same files make the same archive.
	again, _ := NewRuleVersion(ruleFiles("a"), "rules", "x", "y")
	if again.Checksum != v1.Checksum {
		t.Errorf("the same files packed twice have checksums %s and %s", again.Checksum, v1.Checksum)
	}
	got.Archive[len(got.Archive)-1] ^= 1
	if _, err := got.Files(); err == nil {
		t.Error("a damaged archive unpacked without error")
	}
}

func TestConcurrentPushesGetNumbersOfTheirOwn(t *testing.T) {
	srv := startJetStream(t, 1)[0]
	const pushers, each = 4, 5
	var mu stdsync.Mutex
	var numbers []uint64
	var wg stdsync.WaitGroup
	for range pushers {
		b := openRuleBucket(t, openStore(t, srv.ClientURL())) // a connection each, as separate machines
		wg.Go(func() {
			for range each {
				v := pushRules(t, b, "x", "race")
				mu.Lock()
				numbers = append(numbers, v.Number)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(numbers)
	for i, n := range numbers {
		if n != uint64(i+1) {
			t.Fatalf("numbers of %d concurrent pushes = %v, want 1 to %d, each once", pushers*each, numbers, pushers*each)
		}
	}
}

func TestFollowRulesHandsOnNewerVersionsAndSkipsRefusedOnes(t *testing.T) {
	srv := startJetStream(t, 1)[0]
	s := openStore(t, srv.ClientURL())
	b := openRuleBucket(t, s)
	pushRules(t, b, "good", "1")
	pushRules(t, b, "bad", "2") // newest at the start, refused: 1 is served
	var mu stdsync.Mutex
	var served []uint64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.FollowRules(ctx, "tailor_rules", 0, "", func(v RuleVersion) error {
			files, err := v.Files()
			if err != nil {
				return err
			}
			if data, _ := fs.ReadFile(files, "rules/home.yaml"); string(data) == "bad" {
				return errors.New("bad rules")
			}
			mu.Lock()
			served = append(served, v.Number)
			mu.Unlock()
			return nil
		}, nil)
	}()
	defer func() { cancel(); <-done }()
	last := func() uint64 {
		mu.Lock()
		defer mu.Unlock()
		if len(served) == 0 {
			return 0
		}
		return served[len(served)-1]
	}
	waitFor(t, func() bool { return last() == 1 })
	pushRules(t, b, "bad", "3")
	pushRules(t, b, "good", "4")
	waitFor(t, func() bool { return last() == 4 })
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(served, []uint64{1, 4}) {
		t.Errorf("served %v, want [1 4]", served)
	}
}

func TestKeptRuleVersionReadsBack(t *testing.T) {
	path := RuleCachePath(t.TempDir(), "tailor_rules")
	v, _ := NewRuleVersion(ruleFiles("kept"), "rules", "me", "why")
	v.Number, v.Time = 7, time.Now().UTC().Truncate(time.Millisecond)
	if err := SaveRuleVersion(path, v); err != nil {
		t.Fatal(err)
	}
	if err := SaveRuleVersion(path, v); err != nil { // over the old one
		t.Fatal(err)
	}
	got, err := ReadRuleVersion(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Number != 7 || got.Checksum != v.Checksum || !got.Time.Equal(v.Time) {
		t.Errorf("ReadRuleVersion = %+v, want %+v", got, v)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

// History reads each version's meta key, not its archive: listing many
// versions of large archives fetches about as many bytes as one archive
// (the one version without a meta key, as an older tailor pushed it).
func TestVersionsReadNoArchiveButAnOldStyleVersion(t *testing.T) {
	srv := startJetStream(t, 1)[0]
	s := openStore(t, srv.ClientURL())
	b := openRuleBucket(t, s)
	ctx := context.Background()
	big := make([]byte, 256<<10) // incompressible: the archive is as large
	const n = 8
	for i := range n {
		rand.Read(big)
		files := ruleFiles("x")
		files["fragments/noise.bin"] = big
		v, err := NewRuleVersion(files, "rules", "tester", fmt.Sprintf("push %d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		if i == n-1 { // as an older tailor pushed it: no meta key
			v.Number, v.Time = n, time.Now().UTC()
			data, _ := json.Marshal(v)
			if _, err := b.kv.Create(ctx, ruleKey(n), data); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := b.Push(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	before := s.nc.Stats().InBytes
	vs, err := b.Versions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	read := s.nc.Stats().InBytes - before
	if len(vs) != n {
		t.Fatalf("Versions() listed %d versions, want %d", len(vs), n)
	}
	for i, v := range vs {
		if want := fmt.Sprintf("push %d", i+1); v.Number != uint64(i+1) || v.Message != want || v.Size < len(big) || v.Archive != nil || v.Unreadable != "" {
			t.Errorf("Versions()[%d] = number %d, message %q, size %d, archive %d bytes; want %d, %q, size >= %d, no archive",
				i, v.Number, v.Message, v.Size, len(v.Archive), i+1, want, len(big))
		}
	}
	// One archive in base64 (the old-style version), and little else.
	if limit := uint64(len(big))*4/3 + 64<<10; read > limit {
		t.Errorf("Versions() of %d versions read %d bytes; want at most %d: it reads archives", n, read, limit)
	}
}

// A meta key older than its version's key (the version was deleted and
// its number pushed again by an older tailor) is not trusted.
func TestVersionsDistrustAMetaKeyOlderThanItsVersion(t *testing.T) {
	srv := startJetStream(t, 1)[0]
	b := openRuleBucket(t, openStore(t, srv.ClientURL()))
	ctx := context.Background()
	pushRules(t, b, "a", "deleted one")
	if err := b.kv.Delete(ctx, ruleKey(1)); err != nil {
		t.Fatal(err)
	}
	v, _ := NewRuleVersion(ruleFiles("b"), "rules", "old tailor", "pushed again")
	v.Number = 1
	data, _ := json.Marshal(v)
	if _, err := b.kv.Create(ctx, ruleKey(1), data); err != nil {
		t.Fatal(err)
	}
	vs, err := b.Versions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Message != "pushed again" {
		t.Fatalf("Versions() = %+v, want version 1 %q", vs, "pushed again")
	}
}

// An edge whose kept copy came from a bucket since deleted and created
// again follows the new bucket's versions, lower numbers and all.
func TestFollowRulesForgetsTheNumbersOfAnotherBucket(t *testing.T) {
	srv := startJetStream(t, 1)[0]
	s := openStore(t, srv.ClientURL())
	b := openRuleBucket(t, s)
	for _, m := range []string{"one", "two", "three"} {
		pushRules(t, b, "x", m)
	}
	follow := func(have uint64, haveBucket string) (<-chan RuleVersion, context.CancelFunc) {
		applied := make(chan RuleVersion, 10)
		ctx, cancel := context.WithCancel(context.Background())
		go s.FollowRules(ctx, "tailor_rules", have, haveBucket, func(v RuleVersion) error { applied <- v; return nil }, nil)
		return applied, cancel
	}
	applied, stop := follow(0, "")
	var v3 RuleVersion
	select {
	case v3 = <-applied:
	case <-time.After(5 * time.Second):
		t.Fatal("FollowRules applied nothing in 5 s")
	}
	stop()
	if v3.Number != 3 || v3.BucketID == "" {
		t.Fatalf("FollowRules applied version %d of bucket %q, want 3 of a named bucket", v3.Number, v3.BucketID)
	}
	if err := s.js.DeleteKeyValue(context.Background(), "tailor_rules"); err != nil {
		t.Fatal(err)
	}
	b = openRuleBucket(t, s)
	applied, stop = follow(v3.Number, v3.BucketID)
	defer stop()
	pushRules(t, b, "y", "new one")
	select {
	case v := <-applied:
		if v.Number != 1 || v.Message != "new one" || v.BucketID == v3.BucketID {
			t.Errorf("FollowRules applied version %d %q of bucket %q; want 1 %q of a new bucket", v.Number, v.Message, v.BucketID, "new one")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("FollowRules applied nothing of the new bucket in 5 s: it still compares the old bucket's numbers")
	}
}
