package cache

import (
	"fmt"
	"sync"
	"testing"
)

type blob int

func (b blob) Size() int { return int(b) }

func TestPagesAreBoundedByBytes(t *testing.T) {
	p, err := NewPages[blob](16 * 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		p.Add(fmt.Sprint("page-", i), blob(100))
	}
	entries, bytes, evictions := p.Stats()
	if bytes > 16*1000 {
		t.Errorf("cache holds %d bytes, bound is %d", bytes, 16*1000)
	}
	if entries == 0 || evictions == 0 || int64(entries)*100 != bytes {
		t.Errorf("Stats() = %d entries, %d bytes, %d evictions; want entries*100 == bytes and evictions > 0", entries, bytes, evictions)
	}
	// The most recent pages survive.
	if _, ok := p.Get("page-999"); !ok {
		t.Error("most recently added page was evicted")
	}
}

func TestPagesGetUpdatesRecency(t *testing.T) {
	p, _ := NewPages[blob](400)
	// Four 100-byte pages fill the budget; keys in one shard, so that the
	// shard's own least recently used page is the one to go.
	var keys []string
	target := p.shard("k0")
	for i := 0; len(keys) < 5; i++ {
		k := fmt.Sprint("k", i)
		if p.shard(k) == target {
			keys = append(keys, k)
		}
	}
	for _, k := range keys[:4] {
		p.Add(k, 100)
	}
	p.Get(keys[0]) // keys[1] is now the oldest
	p.Add(keys[4], 100)
	if _, ok := p.Get(keys[0]); !ok {
		t.Error("recently read page was evicted")
	}
	if _, ok := p.Get(keys[1]); ok {
		t.Error("least recently used page was kept")
	}
}

// TestPagesTakeLargePages: a page of a quarter of the budget is cached
// (it was refused above a sixteenth, and compiled again on every request);
// making room for it evicts pages of other shards.
func TestPagesTakeLargePages(t *testing.T) {
	p, _ := NewPages[blob](1600)
	for i := range 15 {
		p.Add(fmt.Sprint("small-", i), 100)
	}
	if !p.Add("large", 400) {
		t.Fatal("a page of a quarter of the budget was refused")
	}
	if _, ok := p.Get("large"); !ok {
		t.Fatal("the large page is not there")
	}
	if _, bytes, _ := p.Stats(); bytes > 1600 {
		t.Errorf("cache holds %d bytes, bound is 1600", bytes)
	}
}

func TestPagesRefuseOversizedAndReplace(t *testing.T) {
	p, _ := NewPages[blob](16 * 100)
	if p.Add("huge", 401) {
		t.Error("a value larger than a quarter of the budget was stored")
	}
	p.Add("a", 50)
	p.Add("a", 60)
	if _, bytes, _ := p.Stats(); bytes != 60 {
		t.Errorf("replacing a value left %d bytes accounted, want 60", bytes)
	}
	p.Purge()
	if n, bytes, _ := p.Stats(); n != 0 || bytes != 0 {
		t.Errorf("after Purge: %d entries, %d bytes", n, bytes)
	}
}

func TestPagesConcurrentUse(t *testing.T) {
	p, _ := NewPages[blob](16 * 10000)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				k := fmt.Sprint(g, "-", i%50)
				if _, ok := p.Get(k); !ok {
					p.Add(k, blob(10+i%90))
				}
			}
		}(g)
	}
	wg.Wait()
	if _, bytes, _ := p.Stats(); bytes > 16*10000 {
		t.Errorf("bound broken under concurrency: %d bytes", bytes)
	}
}

func BenchmarkPagesGet(b *testing.B) {
	p, _ := NewPages[blob](64 << 20)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("/products/item-%d\x00%x", i, i*7919)
		p.Add(keys[i], 100<<10/16)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			p.Get(keys[i%len(keys)])
			i++
		}
	})
}
