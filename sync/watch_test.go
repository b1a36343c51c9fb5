package sync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/cache"
	"github.com/tailor-edge/tailor/internal/testkit"
)

// watched opens a Store at url and runs its Watch into a fresh cache.
func watched(tb testing.TB, url string) (*Store, *cache.Profiles) {
	tb.Helper()
	s := openStore(tb, url)
	c, err := cache.NewProfiles(100000, time.Hour, time.Minute, nil)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Watch(ctx, c) }()
	tb.Cleanup(func() { cancel(); <-done }) // before openStore's Close
	testkit.CheckFor(tb, 10*time.Second, 5*time.Millisecond, func() error {
		if !s.Watching() {
			return errors.New("the watch has not started")
		}
		return nil
	})
	return s, c
}

func TestWatchAppliesPutsAndDeletesToCachedProfilesOnly(t *testing.T) {
	srv := startJetStream(t, 1)[0]
	kv := testkit.Bucket(t, srv.ClientURL(), "tailor_profiles", 1)
	s, c := watched(t, srv.ClientURL())
	c.Put("held", &cache.Profile{ID: "held", Stage: "awareness"}, 0)
	ctx := context.Background()
	if _, err := kv.Put(ctx, "stranger", []byte(`{"id":"stranger"}`)); err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Put(ctx, "held", []byte(`{"id":"held","stage":"intent"}`))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { p, _ := c.Get("held"); return p != nil && p.Stage == "intent" })
	if _, ok := c.Get("stranger"); ok {
		t.Error("an update for a profile the edge does not hold was cached")
	}
	kv.Delete(ctx, "held")
	waitFor(t, func() bool { p, ok := c.Get("held"); return ok && p == nil })
	st := s.Stats()
	if st.Applied != 2 || st.Ignored != 1 || st.Revision <= rev {
		t.Errorf("Stats = %+v; want 2 applied, 1 ignored, revision past %d", st, rev)
	}
}

func TestKeyEncoding(t *testing.T) {
	for id, want := range map[string]string{
		"cust-42":                "cust-42",
		"A_b-9":                  "A_b-9",
		"jane@example.com":       "b64.amFuZUBleGFtcGxlLmNvbQ",
		"a.b":                    "b64.YS5i",
		"b64.x":                  "b64.YjY0Lng",
		strings.Repeat("x", 200): strings.Repeat("x", 200),
		strings.Repeat("x", 201): "b64." + strings.Repeat("eHh4", 67),
	} {
		if got := Key(id); got != want {
			t.Errorf("Key(%q) = %q, want %q", id, got, want)
		}
		if back, ok := ID(Key(id)); !ok || back != id {
			t.Errorf("ID(Key(%q)) = %q, %v", id, back, ok)
		}
	}
	// Keys no id maps to are refused, so a stray key cannot alias a profile.
	for _, k := range []string{"", "b64.", "b64.!!", "b64.Y3VzdC00Mg", "a.b", "a b"} {
		if id, ok := ID(k); ok {
			t.Errorf("ID(%q) = %q, want refused", k, id)
		}
	}
}

// BenchmarkUpdatePropagation measures the time from a KV put by the
// central store's writer to the change being visible in an edge's cache,
// one update at a time, on one node and on a 3-node cluster (writer and
// edge on different nodes). Run with -benchtime 10000x.
func BenchmarkUpdatePropagation(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			servers := startJetStream(b, n)
			kv := testkit.Bucket(b, servers[0].ClientURL(), "tailor_profiles", n)
			_, c := watched(b, servers[len(servers)-1].ClientURL())
			const ids = 1000
			for i := range ids {
				id := fmt.Sprint("cust-", i)
				c.Put(id, &cache.Profile{ID: id}, 0)
			}
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				id := fmt.Sprint("cust-", i%ids)
				stage := strconv.Itoa(i)
				doc := `{"id":"` + id + `","stage":"` + stage + `","segments":["vip"]}`
				start := time.Now()
				if _, err := kv.Put(ctx, id, []byte(doc)); err != nil {
					b.Fatal(err)
				}
				if !testkit.Within(10*time.Second, 20*time.Microsecond, func() bool {
					p, _ := c.Get(id)
					return p != nil && p.Stage == stage
				}) {
					b.Fatalf("update %d not visible after 10s", i)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
