package sync

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tailor-edge/tailor/cache"
	"github.com/tailor-edge/tailor/internal/testkit"
)

// writer is the central store's side: a connection that writes profiles.
func writer(tb testing.TB, url string, replicas int) jetstream.KeyValue {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	var kv jetstream.KeyValue
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "tailor_profiles", Replicas: replicas})
		cancel()
		if err == nil {
			return kv
		}
		if time.Now().After(deadline) {
			tb.Fatalf("create bucket: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // the cluster is electing its leaders
	}
}

// watched opens a Store at url and runs its Watch into a fresh cache.
func watched(tb testing.TB, url string) (*Store, *cache.Profiles) {
	tb.Helper()
	s, err := Open(context.Background(), Options{URL: url, Bucket: "tailor_profiles"})
	if err != nil {
		tb.Fatal(err)
	}
	c, err := cache.NewProfiles(100000, time.Hour, time.Minute, nil)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Watch(ctx, c) }()
	tb.Cleanup(func() { cancel(); <-done; s.Close() })
	for deadline := time.Now().Add(10 * time.Second); !s.Watching(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatal("watch did not start")
		}
	}
	return s, c
}

func TestWatchAppliesPutsAndDeletesToCachedProfilesOnly(t *testing.T) {
	srv := startJetStream(t, 1)[0]
	kv := writer(t, srv.ClientURL(), 1)
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

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	if !testkit.Within(5*time.Second, time.Millisecond, ok) {
		t.Fatal("condition not met within 5s")
	}
}

// startJetStream starts JetStream on loopback: one server, or a cluster of
// n routed to each other.
func startJetStream(tb testing.TB, n int) []*server.Server {
	tb.Helper()
	if n == 1 {
		return []*server.Server{testkit.JetStream(tb, "", -1)}
	}
	return testkit.Cluster(tb, n)
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
			kv := writer(b, servers[0].ClientURL(), n)
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
				for {
					if p, _ := c.Get(id); p != nil && p.Stage == stage {
						break
					}
					if time.Since(start) > 10*time.Second {
						b.Fatalf("update %d not visible after 10s", i)
					}
					time.Sleep(20 * time.Microsecond)
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
