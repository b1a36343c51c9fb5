package cache

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable time source for TTL tests.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) advance(d time.Duration) { c.t.Add(int64(d)) }

func newTestProfiles(t *testing.T, size int) (*Profiles, *clock) {
	t.Helper()
	clk := &clock{}
	clk.t.Store(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC).UnixNano())
	c, err := NewProfiles(size, 10*time.Minute, 30*time.Second, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	return c, clk
}

func TestProfilesExpireAfterTheirTTL(t *testing.T) {
	c, clk := newTestProfiles(t, 1000)
	c.Put(&Profile{ID: "cust-1", Stage: "interest"})
	c.PutMissing("ghost")
	if p, ok := c.Get("cust-1"); !ok || p.Stage != "interest" {
		t.Fatalf("Get(cust-1) = %v, %v; want the profile", p, ok)
	}
	if p, ok := c.Get("ghost"); !ok || p != nil {
		t.Fatalf("Get(ghost) = %v, %v; want a cached miss", p, ok)
	}
	clk.advance(31 * time.Second)
	if _, ok := c.Get("ghost"); ok {
		t.Error("negative entry outlived its 30s TTL")
	}
	if _, ok := c.Get("cust-1"); !ok {
		t.Error("profile expired before its 10m TTL")
	}
	clk.advance(10 * time.Minute)
	if _, ok := c.Get("cust-1"); ok {
		t.Error("profile outlived its 10m TTL")
	}
}

func TestProfilesUpdateOnlyWhatIsCached(t *testing.T) {
	c, _ := newTestProfiles(t, 1000)
	if c.Update(&Profile{ID: "stranger"}) {
		t.Error("Update cached a profile this edge never looked up")
	}
	if _, ok := c.Get("stranger"); ok {
		t.Error("an update for an uncached id was stored")
	}
	c.PutMissing("newbie")
	if !c.Update(&Profile{ID: "newbie", Segments: []string{"vip"}}) {
		t.Error("Update of a negatively cached id was ignored")
	}
	if p, ok := c.Get("newbie"); !ok || p == nil || p.Segments[0] != "vip" {
		t.Errorf("Get(newbie) = %v, %v; want the updated profile", p, ok)
	}
	c.Remove("newbie")
	if _, ok := c.Get("newbie"); ok {
		t.Error("Remove left the profile cached")
	}
}

func TestProfilesAreBoundedAndKeepRecentlyRead(t *testing.T) {
	c, clk := newTestProfiles(t, 64*10) // 10 per shard
	hot := "hot-visitor"
	c.Put(&Profile{ID: hot})
	// 400 reads 1.1s apart stay within the 10m TTL (reads do not extend
	// it; only an update does).
	for i := 0; i < 2000; i++ {
		c.Put(&Profile{ID: fmt.Sprint("v", i)})
		if i%5 == 0 {
			clk.advance(1100 * time.Millisecond)
			if _, ok := c.Get(hot); !ok {
				t.Fatalf("the visitor read every few puts was evicted after %d puts", i)
			}
		}
	}
	if n := c.Len(); n > 640 {
		t.Errorf("Len() = %d, bound is 640", n)
	}
	if _, _, ev := c.Stats(); ev == 0 {
		t.Error("no eviction counted")
	}
}

func TestProfilesLoadSharesOneFetch(t *testing.T) {
	c, _ := newTestProfiles(t, 1000)
	var fetches atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]*Profile, 20)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p, err := c.Load("cust-7", func() (*Profile, error) {
				fetches.Add(1)
				<-release
				return &Profile{ID: "cust-7", Stage: "intent"}, nil
			})
			if err != nil {
				t.Error(err)
			}
			results[i] = p
		}(i)
	}
	time.Sleep(50 * time.Millisecond) // let them all wait on the one fetch
	close(release)
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Errorf("20 concurrent misses made %d fetches, want 1", n)
	}
	for i, p := range results {
		if p == nil || p.Stage != "intent" {
			t.Errorf("Load %d = %v", i, p)
		}
	}
	// A fetch that finds nothing is remembered; an error is not.
	if p, err := c.Load("ghost", func() (*Profile, error) { return nil, nil }); p != nil || err != nil {
		t.Errorf("Load(ghost) = %v, %v", p, err)
	}
	if p, ok := c.Get("ghost"); !ok || p != nil {
		t.Error("a fetch that found nothing was not cached as missing")
	}
	boom := errors.New("store down")
	if _, err := c.Load("flaky", func() (*Profile, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("Load error = %v, want %v", err, boom)
	}
	if _, ok := c.Get("flaky"); ok {
		t.Error("a failed fetch was cached")
	}
}

func TestProfilesConcurrentUse(t *testing.T) {
	c, _ := newTestProfiles(t, 64*50)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for i := 0; i < 5000; i++ {
				id := fmt.Sprint("v", r.IntN(5000))
				switch r.IntN(4) {
				case 0:
					c.Put(&Profile{ID: id})
				case 1:
					c.Update(&Profile{ID: id, Stage: "interest"})
				case 2:
					c.Remove(id)
				default:
					if p, ok := c.Get(id); ok && p != nil && p.ID != id {
						t.Errorf("Get(%s) returned %s's profile", id, p.ID)
					}
				}
			}
		}(g)
	}
	wg.Wait()
}

// sampleProfile is the shape the issue measures: 5 segments, 3 traits.
func sampleProfile(i int) *Profile {
	return &Profile{
		ID:       fmt.Sprintf("cust-%08d", i),
		Segments: []string{"vip", "runner", "newsletter", "mobile", "de"},
		Stage:    "retention",
		Traits:   map[string]any{"first_name": "Jane", "city": "Lyon", "tier": "gold"},
	}
}

func TestProfileMemoryPerEntry(t *testing.T) {
	if raceEnabled {
		// The race detector's shadow memory would be counted too; the
		// plain test run measures it.
		t.Skip("measures heap bytes, which -race inflates")
	}
	const n = 1_000_000
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	c, err := NewProfiles(n, time.Hour, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		c.Put(sampleProfile(i))
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	per := (after.HeapInuse - before.HeapInuse) / n
	t.Logf("%d profiles (5 segments, 3 traits): %d bytes each, cache and profile together", c.Len(), per)
	runtime.KeepAlive(c)
	// Issue 5 asks for 600 bytes; this guards against growing past the
	// 710 measured when the store was written.
	if per > 800 {
		t.Errorf("%d bytes per cached profile, was 710", per)
	}
}

// bench1M is built once for every run of BenchmarkProfilesGetHit1M:
// rebuilding a million profiles per run would leave the garbage collector
// working through the previous million during the timed loop.
var bench1M struct {
	once sync.Once
	c    *Profiles
	ids  []string
}

func BenchmarkProfilesGetHit1M(b *testing.B) {
	const n = 1_000_000
	bench1M.once.Do(func() {
		c, err := NewProfiles(n, time.Hour, time.Minute, nil)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < n; i++ {
			c.Put(sampleProfile(i))
		}
		// Shards fill unevenly, so a few thousand of the million were
		// evicted: look up only the ones held, so every Get is a hit.
		for i := 0; i < n; i++ {
			if id := fmt.Sprintf("cust-%08d", i); c.Len() > 0 {
				if _, ok := c.Get(id); ok {
					bench1M.ids = append(bench1M.ids, id)
				}
			}
		}
		bench1M.c = c
	})
	c, ids := bench1M.c, bench1M.ids
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 1))
		for pb.Next() {
			if _, ok := c.Get(ids[r.IntN(len(ids))]); !ok {
				b.Fatal("miss")
			}
		}
	})
}
