package cache

import (
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Sized is a value that knows roughly how many bytes it retains.
type Sized interface {
	Size() int
}

// pageShards spreads keys over independently locked LRUs so that
// concurrent requests for different pages do not queue on one mutex.
const pageShards = 16

// Pages is an LRU of compiled pages bounded by the bytes they retain, not
// by their count: one 5 MiB page weighs as much as fifty 100 KiB ones.
// Get updates recency. It is safe for concurrent use.
//
// The shards share one byte budget: a page may take up to a quarter of it
// (a 10 MiB page is cached by the default 64 MiB cache, not compiled again
// on every request), and making room evicts the least recently used pages
// of the page's own shard first, then of the others.
type Pages[V Sized] struct {
	seed     maphash.Seed
	maxBytes int64
	bytes    atomic.Int64
	shards   [pageShards]pageShard[V]
}

type pageShard[V Sized] struct {
	mu    sync.Mutex
	lru   *simplelru.LRU[string, V]
	bytes int64
	// evictions counts entries pushed out by the byte bound.
	evictions uint64
}

// NewPages returns a page cache holding at most maxBytes in all. A single
// value larger than maxBytes/4 is never cached.
func NewPages[V Sized](maxBytes int64) (*Pages[V], error) {
	if maxBytes < pageShards {
		return nil, errors.New("page cache: size must be at least 16 bytes")
	}
	p := &Pages[V]{seed: maphash.MakeSeed(), maxBytes: maxBytes}
	for i := range p.shards {
		s := &p.shards[i]
		lru, err := simplelru.NewLRU[string, V](1<<30, func(_ string, v V) {
			n := int64(v.Size())
			s.bytes -= n
			p.bytes.Add(-n)
		})
		if err != nil {
			return nil, err
		}
		s.lru = lru
	}
	return p, nil
}

func (p *Pages[V]) shard(key string) int {
	return int(maphash.String(p.seed, key) % pageShards)
}

// Get returns the value for key and marks it recently used.
func (p *Pages[V]) Get(key string) (v V, ok bool) {
	s := &p.shards[p.shard(key)]
	s.mu.Lock()
	v, ok = s.lru.Get(key)
	s.mu.Unlock()
	return v, ok
}

// Add stores v under key, evicting the least recently used values until
// the bound holds. It reports whether v was stored.
func (p *Pages[V]) Add(key string, v V) bool {
	size := int64(v.Size())
	if size > p.maxBytes/4 {
		return false
	}
	home := p.shard(key)
	s := &p.shards[home]
	s.mu.Lock()
	s.lru.Remove(key)
	s.lru.Add(key, v)
	s.bytes += size
	p.bytes.Add(size)
	// The page's own shard first, but never the page just added.
	for p.bytes.Load() > p.maxBytes && s.lru.Len() > 1 {
		s.lru.RemoveOldest()
		s.evictions++
	}
	s.mu.Unlock()
	for k := 1; k < pageShards && p.bytes.Load() > p.maxBytes; k++ {
		o := &p.shards[(home+k)%pageShards]
		o.mu.Lock()
		for p.bytes.Load() > p.maxBytes && o.lru.Len() > 0 {
			o.lru.RemoveOldest()
			o.evictions++
		}
		o.mu.Unlock()
	}
	return true
}

// Purge empties the cache (after a rules reload, say).
func (p *Pages[V]) Purge() {
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		s.lru.Purge()
		s.mu.Unlock()
	}
}

// Stats reports the entries held, the bytes they retain and the evictions
// the byte bound caused so far.
func (p *Pages[V]) Stats() (entries int, bytes int64, evictions uint64) {
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		entries += s.lru.Len()
		bytes += s.bytes
		evictions += s.evictions
		s.mu.Unlock()
	}
	return entries, bytes, evictions
}
