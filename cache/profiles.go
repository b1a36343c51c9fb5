package cache

import (
	"crypto/sha256"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
	"unique"
	"unsafe"

	"golang.org/x/sync/singleflight"
)

// Profiles are spread over 64 to 128 independently locked shards, so that
// lookups on several cores rarely wait for one lock. Each shard is an
// open-addressing table whose size is a power of two; the shard count is
// chosen so that a full shard fills its table to just under maxLoad.
const (
	minShards = 64
	maxShards = 128
)

// maxLoad is the fullest a shard's table gets, as a fraction: linear
// probing then looks at 1.8 slots on a hit and 4 on a miss, on average,
// in neighbouring cache lines.
const maxLoadNum, maxLoadDen = 5, 8

// shardCount returns the number of shards for size entries, the entries
// each holds and the size of each one's table.
func shardCount(size int) (n, per, table int) {
	k := 3
	for ; k < 62; k++ {
		fill := (1 << k) * maxLoadNum / maxLoadDen
		n = (size + fill - 1) / fill
		if n <= maxShards {
			break
		}
	}
	n = max(n, minShards)
	return n, (size + n - 1) / n, 1 << k
}

// Profiles is the edge's copy of the visitors' profiles: bounded by
// entries, each kept for a TTL after it was stored, with negative entries
// ("no such profile") kept for their own, shorter TTL. It is safe for
// concurrent use.
//
// A million profiles do not fit in any CPU cache, and a lookup costs what
// its dependent memory reads cost (about 240 ns each on the VM this was
// measured on). So each entry is one 64-byte slot of an open-addressing
// table holding the id itself (ids of up to 32 bytes; longer ones by their
// SHA-256), found by one read of one cache line; golang-lru's map of list
// elements takes three to five, and moves an element on every hit.
// Eviction is CLOCK (second chance), an approximation of LRU: a hit sets a
// bit in the slot it has just read.
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
	mu    sync.Mutex
	slots []slot // len is a power of two
	mask  uint64
	n     int // entries held
	max   int // entries allowed
	hand  int // CLOCK hand: the next slot to consider for eviction

	pending map[string]pendingUpdate // ids with a fill in flight
	// hits and misses are counted under the shard's lock: one counter
	// for all would bounce its cache line between cores on every Get.
	hits, misses uint64
	_            [64]byte // keep neighbouring shards' locks off one cache line
}

// inlineID is the longest id kept in a slot as it is; a longer one is kept
// as its SHA-256. Anonymous ids (22 bytes) and most customer ids fit.
const inlineID = 32

// longID marks a slot whose id field holds the SHA-256 of a longer id.
const longID = 0xFF

// slot is a table entry: 64 bytes, one cache line. hash 0 is a free slot.
type slot struct {
	hash    uint64
	p       *Profile // nil: the store has no such profile
	rev     uint64   // KV revision; 0 when unknown
	expires uint32   // seconds since Profiles.base
	idLen   uint8    // bytes of id in use, or longID
	ref     bool     // read since the CLOCK hand last passed
	_       [2]byte
	id      [inlineID]byte
}

var _ [64 - unsafe.Sizeof(slot{})]byte // a slot must fit one cache line

// key is an id as slots compare it.
type key struct {
	hash uint64
	len  uint8
	id   string // the id, or its SHA-256 for a long one
}

func (c *Profiles) keyOf(id string) key {
	h := maphash.String(c.seed, id)
	if h == 0 {
		h = 1 // 0 marks a free slot
	}
	if len(id) > inlineID {
		sum := sha256.Sum256([]byte(id))
		return key{hash: h, len: longID, id: string(sum[:])}
	}
	return key{hash: h, len: uint8(len(id)), id: id}
}

func (s *slot) is(k *key) bool {
	if s.hash != k.hash || s.idLen != k.len {
		return false
	}
	n := int(k.len)
	if k.len == longID {
		n = sha256.Size
	}
	return string(s.id[:n]) == k.id
}

// home is the slot where a hash's probe starts. The low bits choose the
// shard, so the table uses the high ones.
func (s *profileShard) home(h uint64) int { return int((h >> 32) & s.mask) }

// find returns the index of k's slot, or -1.
func (s *profileShard) find(k *key) int {
	for i := s.home(k.hash); ; i = (i + 1) & int(s.mask) {
		sl := &s.slots[i]
		if sl.hash == 0 {
			return -1
		}
		if sl.is(k) {
			return i
		}
	}
}

// insert puts a new entry for k (not present) and returns its index. The
// table is never full: n < max < len(slots).
func (s *profileShard) insert(k *key) int {
	i := s.home(k.hash)
	for s.slots[i].hash != 0 {
		i = (i + 1) & int(s.mask)
	}
	sl := &s.slots[i]
	sl.hash, sl.idLen = k.hash, k.len
	copy(sl.id[:], k.id)
	s.n++
	return i
}

// remove frees slot i, shifting later entries of the same probe run back
// so that no search stops early at the hole (no tombstones).
func (s *profileShard) remove(i int) {
	mask := int(s.mask)
	for {
		s.slots[i] = slot{}
		j := i
		for {
			j = (j + 1) & mask
			if s.slots[j].hash == 0 {
				s.n--
				return
			}
			k := s.home(s.slots[j].hash)
			// The entry at j may fill the hole at i unless its home lies
			// cyclically in (i, j].
			if i <= j {
				if i < k && k <= j {
					continue
				}
			} else if i < k || k <= j {
				continue
			}
			break
		}
		s.slots[i] = s.slots[j]
		i = j
	}
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
// clock. The tables, some 100 bytes per entry, are allocated up front; the
// memory is touched as entries arrive.
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
	n, per, table := shardCount(size)
	c.shards = make([]profileShard, n)
	// One allocation for all tables, so that most of it lies in whole,
	// aligned 2 MB extents that huge pages can back.
	all := make([]slot, n*table)
	adviseHugePages(all)
	for i := range c.shards {
		s := &c.shards[i]
		s.max = per
		s.slots = all[i*table : (i+1)*table : (i+1)*table]
		s.mask = uint64(table - 1)
		s.pending = make(map[string]pendingUpdate)
	}
	return c, nil
}

// ProfileBytes is about what a cached profile takes beside its slot: the
// Profile, its id, segments, traits and scores, for a profile of a few
// segments and traits.
const ProfileBytes = 450

// ProfilesBytes returns about what a store of size profiles takes when it
// is full: the tables NewProfiles allocates up front (some 100 bytes an
// entry), and ProfileBytes per profile. It is what tailor check compares
// with the machine's memory.
func ProfilesBytes(size int) (total, tables int64) {
	if size < minShards {
		size = minShards
	}
	n, _, table := shardCount(size)
	tables = int64(n) * int64(table) * int64(unsafe.Sizeof(slot{}))
	return tables + int64(size)*ProfileBytes, tables
}

func seconds(d time.Duration) uint32 {
	return uint32(min((d+time.Second-1)/time.Second, 1<<31))
}

// shard returns k's shard.
func (c *Profiles) shard(k *key) *profileShard {
	return &c.shards[k.hash%uint64(len(c.shards))]
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
	k := c.keyOf(id)
	s := c.shard(&k)
	now := c.clock()
	s.mu.Lock()
	i := s.find(&k)
	if i >= 0 && now < s.slots[i].expires {
		sl := &s.slots[i]
		sl.ref = true
		p = sl.p
		s.hits++
		s.mu.Unlock()
		return p, true
	}
	s.misses++
	s.mu.Unlock()
	return nil, false
}

// Put stores p (nil: no such profile, kept for the negative TTL) under id,
// unless an entry of a newer revision is cached. rev is the KV revision p
// was read at, 0 when unknown. Put, Update and Fill take ownership of p:
// they replace p's strings with equal, shared ones before anyone else can
// read it. id is copied, so it may point into a buffer the caller reuses.
func (c *Profiles) Put(id string, p *Profile, rev uint64) {
	c.names.profile(p)
	k := c.keyOf(id)
	s := c.shard(&k)
	s.mu.Lock()
	c.putLocked(s, &k, p, rev)
	s.mu.Unlock()
}

func (c *Profiles) putLocked(s *profileShard, k *key, p *Profile, rev uint64) {
	now := c.clock()
	i := s.find(k)
	if i >= 0 && rev < s.slots[i].rev {
		if p == nil && s.slots[i].p == nil {
			// "Still no such profile" after a delete at a later revision
			// (a lookup of a missing key has no revision): the absence is
			// confirmed, so it is kept for another negative TTL.
			s.slots[i].expires = now + c.negTTL
			return
		}
		c.stale.Add(1)
		return
	}
	ttl := c.ttl
	if p == nil {
		ttl = c.negTTL
	}
	if i < 0 {
		if s.n >= s.max {
			c.evict(s, now)
		}
		i = s.insert(k)
	}
	sl := &s.slots[i]
	sl.p, sl.rev, sl.expires = p, rev, now+ttl
}

// evict frees one slot: the first under the hand that is expired or was
// not read since the hand last passed it.
func (c *Profiles) evict(s *profileShard, now uint32) {
	// At most two sweeps: the first clears every reference bit.
	for range 2*len(s.slots) + 1 {
		i := s.hand
		s.hand = (s.hand + 1) & int(s.mask)
		sl := &s.slots[i]
		if sl.hash == 0 {
			continue
		}
		if sl.ref && now < sl.expires {
			sl.ref = false
			continue
		}
		// The entry shifted into i, if any, has not been looked at in
		// this sweep; the hand moves on anyway, giving it one more.
		s.remove(i)
		c.evictions.Add(1)
		return
	}
	panic("cache: clock sweep found no victim") // unreachable: the second sweep finds every bit clear
}

// Update applies a change pushed from the central store: p replaces the
// cached entry for id (nil: the profile was deleted) when id is cached or
// being fetched, unless the entry is newer than rev. Changes for ids this
// edge does not hold are ignored, and Update reports whether it applied.
func (c *Profiles) Update(id string, p *Profile, rev uint64) bool {
	c.names.profile(p)
	k := c.keyOf(id)
	s := c.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.pending[id]; ok {
		if !u.seen || rev > u.rev {
			s.pending[id] = pendingUpdate{p: p, rev: rev, seen: true}
		}
	}
	if s.find(&k) < 0 {
		return false
	}
	c.putLocked(s, &k, p, rev)
	return true
}

// Remove forgets id.
func (c *Profiles) Remove(id string) {
	k := c.keyOf(id)
	s := c.shard(&k)
	s.mu.Lock()
	if i := s.find(&k); i >= 0 {
		s.remove(i)
	}
	s.mu.Unlock()
}

// Clear forgets every entry: after the central store was replaced, no
// cached profile can be trusted.
func (c *Profiles) Clear() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.slots)
		s.n, s.hand = 0, 0
		s.mu.Unlock()
	}
}

// Len returns how many entries (profiles and negative entries) are held.
func (c *Profiles) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.n
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
		k := c.keyOf(id)
		s := c.shard(&k)
		s.mu.Lock()
		s.pending[id] = pendingUpdate{}
		s.mu.Unlock()
		p, rev, err := fetch()
		c.names.profile(p) // before any reader can see p
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
		c.putLocked(s, &k, p, rev)
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
// trait and score names, short trait values), so that a million profiles
// do not hold a million copies of "newsletter". unique.Make keeps one copy
// of each while any profile holds it, and lets it go after.
type interner struct{}

// maxInternedValue is the longest trait value shared: short values repeat
// (a city, a tier); long ones (an address) seldom do.
const maxInternedValue = 32

func (interner) profile(p *Profile) {
	if p == nil {
		return
	}
	for i, s := range p.Segments {
		p.Segments[i] = intern(s)
	}
	p.Stage = intern(p.Stage)
	for i := range p.Traits {
		t := &p.Traits[i]
		t.Name = intern(t.Name)
		if v, ok := t.Value.(string); ok && len(v) <= maxInternedValue {
			if w := intern(v); unsafe.StringData(w) != unsafe.StringData(v) {
				t.Value = w
			}
		}
	}
	for i := range p.Scores {
		p.Scores[i].Name = intern(p.Scores[i].Name)
	}
}

func intern(s string) string {
	if s == "" || len(s) > maxNameLen {
		return s
	}
	return unique.Make(s).Value()
}
