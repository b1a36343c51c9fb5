package cache

import (
	"errors"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sync/singleflight"
)

// Profiles are spread over 64 to 128 independently locked shards, so that
// lookups on several cores rarely wait for one lock. The count is chosen
// so that a full shard's map sits just under its maximum load: a Go map
// doubles past 7/8 full, and a shard just past a doubling wastes half its
// slots.
const (
	minShards = 64
	maxShards = 128
)

// shardCount returns the number of shards for size entries and the size
// of each.
func shardCount(size int) (n, per int) {
	for k := 3; k < 62; k++ {
		fill := (1 << k) * 7 / 8
		n = (size + fill - 1) / fill
		if n <= maxShards {
			break
		}
	}
	n = max(n, minShards)
	return n, (size + n - 1) / n
}

// Profiles is the edge's copy of the visitors' profiles: bounded by
// entries, each kept for a TTL after it was stored, with negative entries
// ("no such profile") kept for their own, shorter TTL. It is safe for
// concurrent use.
//
// Eviction is CLOCK (second chance), an approximation of LRU: a hit only
// sets a bit on the entry, where an LRU list would move an element on every
// read. With a million profiles a lookup is bound by cache misses, and the
// list move (the element and both neighbours) costs more of them than the
// map probe itself.
//
// Every entry carries the KV revision it came from, and a store never
// replaces an entry with an older revision: a background fill that read
// the store before an update arrived cannot undo the update. Updates that
// arrive while a fill for the same id is in flight are kept for that fill.
type Profiles struct {
	seed    maphash.Seed
	shards  []profileShard
	base    int64  // unix nanoseconds: expiry times count seconds from it
	ttl     uint32 // seconds
	negTTL  uint32 // seconds
	now     func() time.Time
	flights singleflight.Group
	names   interner

	evictions, stale atomic.Uint64
}

type profileShard struct {
	mu sync.Mutex
	// m holds the entries by the 64-bit hash of their id, with ids of up
	// to inlineID bytes kept in the entry itself: a lookup reads one map
	// slot and never follows a pointer to compare the id. With a million
	// profiles every pointer followed is a cache (and TLB) miss.
	m map[uint64]profileEntry
	// long holds the entries whose id is longer than inlineID, or whose
	// hash another id already took in m.
	long     map[string]profileEntry
	longKeys map[uint32]string // ring slot → id, for the entries in long
	ring     []uint64          // CLOCK order: the hash of the id in each slot
	// refs has a bit per ring slot, set when the entry is read: a few KB
	// per shard that stay in the CPU's cache.
	refs    []uint64
	free    []uint32 // free slots in ring
	hand    int
	max     int
	pending map[string]pendingUpdate // ids with a fill in flight
	// hits and misses are counted under the shard's lock: one counter
	// for all would bounce its cache line between cores on every Get.
	hits, misses uint64
	_            [64]byte // keep neighbouring shards' locks off one cache line
}

// inlineID is the longest id kept in the entry itself; anonymous ids (22
// bytes) and most customer ids fit.
const inlineID = 23

// profileEntry is stored by value in the shard's map, 48 bytes: a million
// of them.
type profileEntry struct {
	p       *Profile // nil: the store has no such profile
	rev     uint64   // KV revision; 0 when unknown
	expires uint32   // seconds since Profiles.base
	slot    uint32   // ring slot
	idLen   uint8    // 0 for an entry in long
	id      [inlineID]byte
}

func (e *profileEntry) is(id string) bool {
	return int(e.idLen) == len(id) && string(e.id[:e.idLen]) == id
}

// find returns id's entry; long says which map holds it.
func (s *profileShard) find(h uint64, id string) (e profileEntry, long, ok bool) {
	if e, ok = s.m[h]; ok && e.is(id) {
		return e, false, true
	}
	if len(s.long) > 0 {
		e, ok = s.long[id]
		return e, true, ok
	}
	return e, false, false
}

// store writes an entry that find returned (long as it said).
func (s *profileShard) store(h uint64, id string, long bool, e profileEntry) {
	if long {
		s.long[id] = e
	} else {
		s.m[h] = e
	}
}

// drop deletes an entry and frees its slot.
func (s *profileShard) drop(h uint64, id string, long bool, slot uint32) {
	if long {
		delete(s.long, id)
		delete(s.longKeys, slot)
	} else {
		delete(s.m, h)
	}
	s.refs[slot/64] &^= 1 << (slot % 64)
}

// pendingUpdate is the newest update seen for an id while a fill was in
// flight.
type pendingUpdate struct {
	p    *Profile
	rev  uint64
	seen bool
}

// NewProfiles returns a store of size profiles, rounded up to a multiple
// of the shard count (each shard holds its share). Entries expire within a
// second of their TTL. now may be nil (time.Now); tests pass their own
// clock.
func NewProfiles(size int, ttl, negativeTTL time.Duration, now func() time.Time) (*Profiles, error) {
	if size < minShards {
		return nil, errors.New("profile cache: size must be at least 64")
	}
	if ttl < time.Second || negativeTTL < time.Second {
		return nil, errors.New("profile cache: ttl and negative ttl must be at least a second")
	}
	if now == nil {
		now = time.Now
	}
	c := &Profiles{seed: maphash.MakeSeed(), now: now, base: now().UnixNano(),
		ttl: seconds(ttl), negTTL: seconds(negativeTTL)}
	c.names.m = make(map[string]string)
	n, per := shardCount(size)
	c.shards = make([]profileShard, n)
	for i := range c.shards {
		s := &c.shards[i]
		s.max = per
		s.m = make(map[uint64]profileEntry, per)
		s.long = make(map[string]profileEntry)
		s.longKeys = make(map[uint32]string)
		s.pending = make(map[string]pendingUpdate)
	}
	return c, nil
}

func seconds(d time.Duration) uint32 {
	return uint32(min((d+time.Second-1)/time.Second, 1<<31))
}

// shard returns id's shard and hash.
func (c *Profiles) shard(id string) (*profileShard, uint64) {
	h := maphash.String(c.seed, id)
	return &c.shards[h%uint64(len(c.shards))], h
}

// clock returns the time in whole seconds since base.
func (c *Profiles) clock() uint32 {
	return uint32((c.now().UnixNano() - c.base) / int64(time.Second))
}

// Get looks id up. cached is false on a miss (never stored, evicted or
// expired): the caller should ask the central store. When cached is true,
// p is the profile, or nil when the store is known to have none. A hit
// marks the entry as recently used.
func (c *Profiles) Get(id string) (p *Profile, cached bool) {
	s, h := c.shard(id)
	now := c.clock()
	s.mu.Lock()
	e, _, ok := s.find(h, id)
	ok = ok && now < e.expires
	if ok {
		s.refs[e.slot/64] |= 1 << (e.slot % 64)
		s.hits++
	} else {
		s.misses++
	}
	s.mu.Unlock()
	if !ok {
		return nil, false
	}
	return e.p, true
}

// Put stores p (nil: no such profile, kept for the negative TTL) under id,
// unless an entry of a newer revision is cached. rev is the KV revision p
// was read at, 0 when unknown. Put takes ownership of p: it may replace
// p's strings with equal, shared ones before storing it. id is copied, so
// it may point into a buffer the caller reuses.
func (c *Profiles) Put(id string, p *Profile, rev uint64) {
	s, h := c.shard(id)
	s.mu.Lock()
	c.putLocked(s, h, id, p, rev)
	s.mu.Unlock()
}

func (c *Profiles) putLocked(s *profileShard, h uint64, id string, p *Profile, rev uint64) {
	now := c.clock()
	e, long, ok := s.find(h, id)
	if ok && rev < e.rev {
		c.stale.Add(1)
		return
	}
	if p != nil {
		c.names.profile(p)
	}
	ttl := c.ttl
	if p == nil {
		ttl = c.negTTL
	}
	if ok {
		e.p, e.expires, e.rev = p, now+ttl, rev
		s.store(h, id, long, e)
		return
	}
	e = profileEntry{p: p, expires: now + ttl, rev: rev}
	_, taken := s.m[h]
	long = len(id) > inlineID || taken
	if long {
		id = strings.Clone(id)
	} else {
		e.idLen = uint8(copy(e.id[:], id))
	}
	// The slot first: finding one may evict the entry that held h.
	e.slot = c.slotFor(s, h, now)
	if long {
		s.longKeys[e.slot] = id
	}
	s.store(h, id, long, e)
}

// slotFor returns the ring slot for a new entry of hash h, evicting one
// when the shard is full: the first under the hand that is expired or was
// not read since the hand last passed.
func (c *Profiles) slotFor(s *profileShard, h uint64, now uint32) uint32 {
	if n := len(s.free); n > 0 {
		slot := s.free[n-1]
		s.free = s.free[:n-1]
		s.ring[slot] = h
		return slot
	}
	if len(s.ring) < s.max {
		s.ring = append(s.ring, h)
		if len(s.ring) > 64*len(s.refs) {
			s.refs = append(s.refs, 0)
		}
		return uint32(len(s.ring) - 1)
	}
	// At most two sweeps: the first clears every reference bit.
	for range 2*len(s.ring) + 1 {
		slot := uint32(s.hand)
		s.hand = (s.hand + 1) % len(s.ring)
		vh := s.ring[slot]
		id, long := s.longKeys[slot]
		var e profileEntry
		if long {
			e = s.long[id]
		} else {
			e = s.m[vh]
		}
		word, bit := &s.refs[slot/64], uint64(1)<<(slot%64)
		if *word&bit != 0 && now < e.expires {
			*word &^= bit
			continue
		}
		s.drop(vh, id, long, slot)
		c.evictions.Add(1)
		s.ring[slot] = h
		return slot
	}
	panic("cache: clock sweep found no victim") // unreachable: the second sweep finds every bit clear
}

// Update applies a change pushed from the central store: p replaces the
// cached entry for id (nil: the profile was deleted) when id is cached or
// being fetched, unless the entry is newer than rev. Changes for ids this
// edge does not hold are ignored, and Update reports whether it applied.
func (c *Profiles) Update(id string, p *Profile, rev uint64) bool {
	s, h := c.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.pending[id]; ok {
		if !u.seen || rev > u.rev {
			s.pending[id] = pendingUpdate{p: p, rev: rev, seen: true}
		}
	}
	if _, _, ok := s.find(h, id); !ok {
		return false
	}
	c.putLocked(s, h, id, p, rev)
	return true
}

// Remove forgets id.
func (c *Profiles) Remove(id string) {
	s, h := c.shard(id)
	s.mu.Lock()
	if e, long, ok := s.find(h, id); ok {
		s.drop(h, id, long, e.slot)
		s.free = append(s.free, e.slot)
	}
	s.mu.Unlock()
}

// Clear forgets every entry: after the central store was replaced, no
// cached profile can be trusted.
func (c *Profiles) Clear() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.m)
		clear(s.long)
		clear(s.longKeys)
		s.ring, s.free, s.refs, s.hand = nil, nil, nil, 0
		s.mu.Unlock()
	}
}

// Len returns how many entries (profiles and negative entries) are held.
func (c *Profiles) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m) + len(s.long)
		s.mu.Unlock()
	}
	return n
}

// Cap returns how many entries the store holds at most.
func (c *Profiles) Cap() int { return len(c.shards) * c.shards[0].max }

// Stats are the store's counters since it was made.
type Stats struct {
	Hits, Misses, Evictions uint64
	// Stale counts stores refused because a newer revision was cached.
	Stale uint64
}

// Stats returns the counters.
func (c *Profiles) Stats() Stats {
	st := Stats{Evictions: c.evictions.Load(), Stale: c.stale.Load()}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		st.Hits += s.hits
		st.Misses += s.misses
		s.mu.Unlock()
	}
	return st
}

// Fetched is the outcome of a fill.
type Fetched struct {
	// Profile is nil when the store has none (or on error).
	Profile *Profile
	Err     error
}

// Fill fetches id from the central store and caches the answer (a nil
// profile with a nil error is cached as missing; an error caches nothing),
// in the background: the caller waits on the channel for as long as it
// cares to. Concurrent Fills of one id share one fetch. An update for id
// that arrives while the fetch is in flight wins over the fetched value
// when it is newer.
func (c *Profiles) Fill(id string, fetch func() (*Profile, uint64, error)) <-chan Fetched {
	out := make(chan Fetched, 1)
	ch := c.flights.DoChan(id, func() (any, error) {
		s, h := c.shard(id)
		s.mu.Lock()
		s.pending[id] = pendingUpdate{}
		s.mu.Unlock()
		p, rev, err := fetch()
		s.mu.Lock()
		defer s.mu.Unlock()
		u := s.pending[id]
		delete(s.pending, id)
		if u.seen && (err != nil || u.rev > rev) {
			p, rev, err = u.p, u.rev, nil
		}
		if err != nil {
			return nil, err
		}
		c.putLocked(s, h, id, p, rev)
		return p, nil
	})
	go func() {
		r := <-ch
		p, _ := r.Val.(*Profile)
		out <- Fetched{Profile: p, Err: r.Err}
	}()
	return out
}

// interner shares the strings that many profiles repeat (segment, stage,
// trait and score names), up to a bound, so that a million profiles do not
// hold a million copies of "newsletter".
type interner struct {
	mu sync.Mutex
	m  map[string]string
}

const (
	maxInterned      = 16384
	maxInternedValue = 32
)

func (in *interner) profile(p *Profile) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for i, s := range p.Segments {
		p.Segments[i] = in.get(s)
	}
	p.Stage = in.get(p.Stage)
	for i := range p.Traits {
		t := &p.Traits[i]
		t.Name = in.get(t.Name)
		// Short values repeat too (a city, a tier): share those as well.
		if v, ok := t.Value.(string); ok && len(v) <= maxInternedValue {
			if w := in.get(v); unsafe.StringData(w) != unsafe.StringData(v) {
				t.Value = w
			}
		}
	}
	for i := range p.Scores {
		p.Scores[i].Name = in.get(p.Scores[i].Name)
	}
}

func (in *interner) get(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := in.m[s]; ok {
		return v
	}
	if len(in.m) < maxInterned && len(s) <= maxNameLen {
		in.m[s] = s
	}
	return s
}
