package sync

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tailor-edge/tailor/cache"
)

// Get returns the profile stored under id and its revision, for a cache
// that Watch keeps fresh; a nil profile and a nil error when there is
// none. It fails fast with ErrUnavailable while the store cannot be
// reached, and until Watch has started: a profile read before the watch
// knows where it starts could miss an update made in between.
func (s *Store) Get(ctx context.Context, id string) (*cache.Profile, uint64, error) {
	if !s.watching.Load() {
		return nil, 0, ErrUnavailable
	}
	raw, rev, err := s.GetRaw(ctx, id)
	if err != nil || raw == nil {
		return nil, rev, err
	}
	p, err := cache.ParseProfile(raw)
	if err != nil {
		// A bad document is the central store's bug, not a reason to keep
		// asking: the edge treats it as absent, and says so in the log.
		s.watch.rejected.Add(1)
		s.log.Warn("profile in the store is not valid; serving the visitor without it", "rev", rev, "err", err)
		return nil, rev, nil
	}
	return p, rev, nil
}

// GetRaw returns the document stored under id as it is, and its revision;
// nil when there is none.
func (s *Store) GetRaw(ctx context.Context, id string) ([]byte, uint64, error) {
	kv, err := s.bucketNow()
	if err != nil {
		return nil, 0, err
	}
	e, err := kv.Get(ctx, Key(id))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return nil, 0, nil
	case err != nil:
		return nil, 0, fmt.Errorf("get profile: %w", err)
	}
	return e.Value(), e.Revision(), nil
}

// Put stores doc, a profile document, under id and returns its revision.
func (s *Store) Put(ctx context.Context, id string, doc []byte) (uint64, error) {
	kv, err := s.bucketNow()
	if err != nil {
		return 0, err
	}
	rev, err := kv.Put(ctx, Key(id), doc)
	if err != nil {
		return 0, fmt.Errorf("put profile: %w", err)
	}
	return rev, nil
}

// Delete removes the profile stored under id; deleting one that is not
// there is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	kv, err := s.bucketNow()
	if err != nil {
		return err
	}
	if err := kv.Delete(ctx, Key(id)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete profile: %w", err)
	}
	return nil
}
