package sync

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tailor-edge/tailor/cache"
)

// How the watch notices that it has stopped hearing from the server. The
// client library's own recovery of a watch after a server restart was
// measured to stay silent for 12 s, so the watch does not rely on it: it
// is re-created from the next revision on every reconnect, and when it has
// heard nothing for idleCheck it asks the stream for its last revision, so
// a watch that missed updates is caught within a second or two.
const (
	idleCheck   = time.Second
	statTimeout = 2 * time.Second
)

// WatchStats are the watch's counters.
type WatchStats struct {
	// Applied counts changes applied to cached profiles.
	Applied uint64
	// Ignored counts changes to profiles this edge does not hold.
	Ignored uint64
	// Rejected counts profile documents that are not valid profiles,
	// from the watch (the cached profile is kept) and from Get (the
	// visitor is served without one).
	Rejected uint64
	// Restarts counts watches re-created (reconnects, stalls).
	Restarts uint64
	// Revision is the last revision seen.
	Revision uint64
	// LagSeconds is the time from the last change's put on the server to
	// its arrival here, in seconds (clock skew between hosts included).
	LagSeconds float64
}

type watchCounters struct {
	applied, ignored, rejected, restarts, revision atomic.Uint64
	lagNanos                                       atomic.Int64
}

// Watching reports whether Watch has started following the bucket.
func (s *Store) Watching() bool { return s.watching.Load() }

// Stats returns the watch's counters.
func (s *Store) Stats() WatchStats {
	w := &s.watch
	return WatchStats{Applied: w.applied.Load(), Ignored: w.ignored.Load(), Rejected: w.rejected.Load(), Restarts: w.restarts.Load(),
		Revision: w.revision.Load(), LagSeconds: time.Duration(w.lagNanos.Load()).Seconds()}
}

// Watch applies every change made to the bucket to the profiles c holds,
// until ctx ends: a put replaces the cached profile, a delete makes it
// absent, and changes to profiles c does not hold are ignored. A put of a
// document that is not a valid profile changes nothing: the last good
// profile stays cached, and the put is logged and counted (Rejected). It starts
// from the bucket's current revision and tracks the last one it applied:
// after a reconnect, a server restart or a stall it resumes from the next,
// so no change made meanwhile is missed. It waits for the bucket first.
func (s *Store) Watch(ctx context.Context, c *cache.Profiles) error {
	kv, err := s.KV(ctx)
	if err != nil {
		return err
	}
	last, err := s.lastRevision(ctx, kv)
	for err != nil {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(maxReconnectWait):
		}
		last, err = s.lastRevision(ctx, kv)
	}
	s.watch.revision.Store(last)
	for attempt := 0; ctx.Err() == nil; attempt++ {
		// The head before the watch: everything up to it that still
		// exists is delivered before the watch says it has caught up.
		head, err := s.lastRevision(ctx, kv)
		if err != nil {
			head = 0
		}
		w, err := kv.WatchAll(ctx, jetstream.ResumeFromRevision(last+1))
		if err != nil {
			if attempt%20 == 0 {
				s.log.Warn("watch profile bucket; retrying", "err", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(reconnectDelay(attempt)):
			}
			continue
		}
		attempt = 0
		s.watching.Store(true)
		last = s.follow(ctx, kv, w, c, last, head)
		w.Stop()
		// The client's delivery goroutine may be blocked handing the old
		// watch an entry nobody will read; drain it so that it can end.
		go drain(w)
		if ctx.Err() == nil {
			s.watch.restarts.Add(1)
			s.log.Debug("resuming profile watch", "from", last+1)
		}
	}
	return nil
}

// follow applies w's changes until ctx ends or w must be re-created, and
// returns the last revision applied.
// head is the bucket's newest revision when w was created: once w has
// delivered what existed then, revisions up to head that it did not
// deliver were purged and are skipped, or every idle check would find the
// watch behind and restart it.
func (s *Store) follow(ctx context.Context, kv jetstream.KeyValue, w jetstream.KeyWatcher, c *cache.Profiles, last, head uint64) uint64 {
	tick := time.NewTicker(idleCheck)
	defer tick.Stop()
	heard := time.Now()
	for {
		select {
		case <-ctx.Done():
			return last
		case e, ok := <-w.Updates():
			if !ok {
				return last // closed under us: re-create
			}
			if e == nil { // caught up with what existed at creation
				last = max(last, head)
				s.watch.revision.Store(last)
				continue
			}
			if e.Revision() <= last {
				continue // a replay
			}
			s.apply(e, c)
			last = e.Revision()
			s.watch.revision.Store(last)
			heard = time.Now()
		case <-s.reconnects:
			return last
		case now := <-tick.C:
			if now.Sub(heard) < idleCheck || !s.nc.IsConnected() {
				continue
			}
			head, err := s.lastRevision(ctx, kv)
			if err != nil {
				continue
			}
			heard = now
			switch {
			case head > last:
				// The server has changes the watch did not deliver.
				s.log.Info("profile watch fell behind; resuming", "at", last, "head", head)
				return last
			case head < last:
				// The bucket was recreated: its revisions start over and
				// the cache may hold profiles it no longer has.
				s.log.Warn("profile bucket was reset; clearing the profile cache", "was", last, "now", head)
				c.Clear()
				return head
			}
		}
	}
}

// drain reads a stopped watcher's channel until the client closes it, for
// at most a minute.
func drain(w jetstream.KeyWatcher) {
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	for {
		select {
		case _, ok := <-w.Updates():
			if !ok {
				return
			}
		case <-t.C:
			return
		}
	}
}

func (s *Store) apply(e jetstream.KeyValueEntry, c *cache.Profiles) {
	id, ok := ID(e.Key())
	if !ok {
		s.watch.ignored.Add(1)
		return
	}
	var p *cache.Profile
	if e.Operation() == jetstream.KeyValuePut {
		var err error
		if p, err = cache.ParseProfile(e.Value()); err != nil {
			// The central store's bug, not the visitor's: dropping the
			// profile would serve them as a stranger (issue 15).
			s.watch.rejected.Add(1)
			s.log.Warn("profile update is not valid; the last good profile stays cached", "rev", e.Revision(), "err", err)
			s.watch.lagNanos.Store(int64(time.Since(e.Created())))
			return
		}
	}
	if c.Update(id, p, e.Revision()) {
		s.watch.applied.Add(1)
	} else {
		s.watch.ignored.Add(1)
	}
	s.watch.lagNanos.Store(int64(time.Since(e.Created())))
}

// lastRevision returns the bucket's newest revision.
func (s *Store) lastRevision(ctx context.Context, kv jetstream.KeyValue) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, statTimeout)
	defer cancel()
	st, err := kv.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("read profile bucket status: %w", err)
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return 0, errors.New("read profile bucket status: no stream info")
	}
	return bs.StreamInfo().State.LastSeq, nil
}
