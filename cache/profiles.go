package cache

import (
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/sync/singleflight"
)

// profileShards spreads profiles over independently locked LRUs, so that
// lookups on two cores rarely wait for one lock.
const profileShards = 64

// Profiles is the edge's copy of the visitors' profiles: bounded by
// entries, each kept for a TTL after it was stored, with negative entries
// ("no such profile") kept for their own, shorter TTL. Profiles are
// immutable once stored: a reader never sees a half-updated one, and an
// update replaces the pointer. It is safe for concurrent use.
type Profiles struct {
	seed    maphash.Seed
	shards  [profileShards]profileShard
	ttl     time.Duration
	negTTL  time.Duration
	now     func() time.Time
	flights singleflight.Group

	hits, misses, evictions atomic.Uint64
}

type profileShard struct {
	mu  sync.Mutex
	lru *simplelru.LRU[string, profileEntry]
}

// profileEntry is stored by value in the LRU's element: one pointer chase
// fewer per lookup.
type profileEntry struct {
	p       *Profile // nil: the store has no such profile
	expires int64    // unix nanoseconds
}

// NewProfiles returns a store of at most size profiles. now may be nil
// (time.Now); tests pass their own clock.
func NewProfiles(size int, ttl, negativeTTL time.Duration, now func() time.Time) (*Profiles, error) {
	if size < profileShards {
		return nil, errors.New("profile cache: size must be at least 64")
	}
	if ttl <= 0 || negativeTTL <= 0 {
		return nil, errors.New("profile cache: ttl and negative ttl must be positive")
	}
	if now == nil {
		now = time.Now
	}
	c := &Profiles{seed: maphash.MakeSeed(), ttl: ttl, negTTL: negativeTTL, now: now}
	per := (size + profileShards - 1) / profileShards
	for i := range c.shards {
		lru, err := simplelru.NewLRU[string, profileEntry](per, func(string, profileEntry) {
			c.evictions.Add(1)
		})
		if err != nil {
			return nil, err
		}
		c.shards[i].lru = lru
	}
	return c, nil
}

func (c *Profiles) shard(id string) *profileShard {
	return &c.shards[maphash.String(c.seed, id)%profileShards]
}

// Get looks id up. cached is false on a miss (never stored, evicted or
// expired): the caller should ask the central store. When cached is true,
// p is the profile, or nil when the store is known to have none.
func (c *Profiles) Get(id string) (p *Profile, cached bool) {
	s := c.shard(id)
	now := c.now().UnixNano()
	s.mu.Lock()
	e, ok := s.lru.Get(id)
	s.mu.Unlock()
	if !ok || now >= e.expires {
		c.misses.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	return e.p, true
}

// Put stores p under p.ID for the TTL, replacing what was there.
func (c *Profiles) Put(p *Profile) {
	c.store(p.ID, p, c.ttl)
}

// PutMissing remembers, for the negative TTL, that the store has no
// profile id.
func (c *Profiles) PutMissing(id string) {
	c.store(id, nil, c.negTTL)
}

func (c *Profiles) store(id string, p *Profile, ttl time.Duration) {
	e := profileEntry{p: p, expires: c.now().UnixNano() + int64(ttl)}
	s := c.shard(id)
	s.mu.Lock()
	s.lru.Add(id, e)
	s.mu.Unlock()
}

// Update replaces the profile only if one (or a negative entry) is cached
// for its id, and reports whether it did: a change pushed from the central
// store matters only for visitors this edge has seen.
func (c *Profiles) Update(p *Profile) bool {
	s := c.shard(p.ID)
	s.mu.Lock()
	ok := s.lru.Contains(p.ID)
	s.mu.Unlock()
	if ok {
		c.Put(p)
	}
	return ok
}

// Remove forgets id.
func (c *Profiles) Remove(id string) {
	s := c.shard(id)
	s.mu.Lock()
	s.lru.Remove(id)
	s.mu.Unlock()
}

// Len returns how many entries (profiles and negative entries) are held.
func (c *Profiles) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}

// Stats returns the hits, misses and evictions counted so far.
func (c *Profiles) Stats() (hits, misses, evictions uint64) {
	return c.hits.Load(), c.misses.Load(), c.evictions.Load()
}

// Load returns the cached profile for id, or calls fetch to get it and
// caches the answer (a nil profile with a nil error is cached as missing).
// Concurrent Loads of one id share one fetch. An error is returned as is
// and nothing is cached.
func (c *Profiles) Load(id string, fetch func() (*Profile, error)) (*Profile, error) {
	if p, ok := c.Get(id); ok {
		return p, nil
	}
	v, err, _ := c.flights.Do(id, func() (any, error) {
		p, err := fetch()
		if err != nil {
			return nil, err
		}
		if p == nil {
			c.PutMissing(id)
		} else {
			c.Put(p)
		}
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	p, _ := v.(*Profile)
	return p, nil
}
