package sync

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Incremental readouts. One folder at a time, across every edge and the
// CLI, reads the events stream through a durable consumer and folds each
// event into a Fold (the readout's aggregates) once:
//
//   - The folder holds a lease: the key "<stream>.lease" of the readouts
//     KV bucket, taken with Create (or, once expired, with an update on
//     its revision), renewed every LeaseTTL/3 by a revision-checked
//     update, and expiring LeaseTTL after its last renewal (a per-key TTL
//     the server enforces) when its holder dies. A holder that stops
//     deletes it, so that another edge takes over at once.
//   - Every SnapshotEvery events or SnapshotInterval, and when it stops,
//     the folder stores a snapshot in the object store of the same name
//     (object "<stream>"): the Fold, the stream sequence of the last event
//     folded, and a bounded record of recent event ids. Only then does it
//     acknowledge the consumer up to that sequence (AckAll).
//   - A folder that takes the lease loads the snapshot and creates the
//     durable consumer again from the sequence after it: it skips every
//     event at or before the snapshot's sequence, so an event is folded
//     once whatever happened to the folder before (killed between two
//     snapshots: the events after the snapshot are folded again, into the
//     snapshot's state, not on top of the lost one). An event whose id was
//     folded recently is not folded again: a copy published after the
//     stream's duplicate window (a publisher retrying after a long outage).
//   - After each step the folder puts the readout (Fold.Readout, with the
//     sequences) in the key "<stream>.readout", which readers get in
//     constant time, whatever the stream's size.
const (
	// DefaultReadoutBucket names the KV bucket and the object store of
	// readouts.
	DefaultReadoutBucket = "tailor_readouts"
	// DefaultLeaseTTL is how long a lease outlives its holder's last
	// renewal.
	DefaultLeaseTTL = 15 * time.Second
	// DefaultSnapshotEvery and DefaultSnapshotInterval say how often a
	// folder stores its snapshot: after that many events folded, or that
	// long after the last when any event has been folded since.
	DefaultSnapshotEvery    = 5_000_000
	DefaultSnapshotInterval = time.Minute

	// readoutConsumer is the durable consumer's name on the events stream.
	readoutConsumer = "tailor_readout"
	// publishEvery is how often a folder puts its readout while folding,
	// and idleRepublish how often while nothing comes (its At says the
	// folder is alive).
	publishEvery  = time.Second
	idleRepublish = 30 * time.Second
	// consumerAckWait is longer than a snapshot takes: events are
	// acknowledged only once the snapshot that holds them is stored.
	// Those redelivered all the same are skipped by sequence.
	consumerAckWait = 10 * time.Minute
	// dedupeHorizon and maxDedupe bound the record of recent event ids:
	// the ids of events up to dedupeHorizon older (by their time) than
	// the newest folded, at most maxDedupe of them. A copy of an event
	// older than that is folded again.
	dedupeHorizon = time.Hour
	maxDedupe     = 1 << 19
	// leaseMarkerTTL is how long the bucket keeps the marker of a lease
	// that expired.
	leaseMarkerTTL = time.Minute
)

// ErrLeaseHeld: another folder holds the readout lease.
var ErrLeaseHeld = errors.New("another folder holds the readout lease")

// ErrNoReadout: no folder has published a readout of the stream yet.
var ErrNoReadout = errors.New("no readout yet")

// Fold is the state a folder keeps: events in, a snapshot and a readout
// out. The folder calls it from one goroutine at a time.
type Fold interface {
	// Add folds one event.
	Add(e *Event)
	// WriteTo writes the state, for Load to read back.
	WriteTo(w io.Writer) (int64, error)
	// Readout is what readers get, the time of the first event folded
	// given.
	Readout(first time.Time) ([]byte, error)
}

// FolderOptions configure Store.Folder. Stream, New and Load are
// required; the zero value of the others is a default.
type FolderOptions struct {
	// Stream is the events stream.
	Stream string
	// Bucket names the readouts KV bucket and object store, created when
	// missing; "" means DefaultReadoutBucket.
	Bucket string
	// Holder names this folder in the lease and in logs; "" means
	// hostname:pid.
	Holder string
	// New returns an empty Fold; Load one read back from what WriteTo
	// wrote.
	New  func() Fold
	Load func(r io.Reader) (Fold, error)
	// SnapshotEvery, SnapshotInterval and LeaseTTL: 0 means the default.
	SnapshotEvery    uint64
	SnapshotInterval time.Duration
	LeaseTTL         time.Duration
	// Logger: nil means the Store's.
	Logger *slog.Logger
}

// Readout is what a folder publishes after each step.
type Readout struct {
	Stream string `json:"stream"`
	// Folded is the stream sequence of the last event folded; Last the
	// stream's last sequence as the folder last knew it.
	Folded uint64 `json:"folded_seq"`
	Last   uint64 `json:"stream_last_seq"`
	// Events counts the events folded; Duplicates the copies of folded
	// events skipped by id; Bad those that did not decode.
	Events     uint64 `json:"events"`
	Duplicates uint64 `json:"duplicates"`
	Bad        uint64 `json:"bad"`
	// First is the time of the first event folded.
	First time.Time `json:"first"`
	// At is when it was published, Holder by whom.
	At     time.Time `json:"at"`
	Holder string    `json:"holder"`
	// Data is the Fold's readout (base64 in the JSON).
	Data []byte `json:"readout"`
}

// Behind is how many events the readout lacks of a stream whose last
// sequence is last.
func (r *Readout) Behind(last uint64) uint64 {
	if last > r.Folded {
		return last - r.Folded
	}
	return 0
}

// FolderStats are a folder's counters, for metrics.
type FolderStats struct {
	// Folded counts events folded by this process; Skipped those it
	// skipped (folded before, by sequence or by id).
	Folded, Skipped uint64
	// Seq is the last sequence folded, Last the stream's last known.
	Seq, Last uint64
	// Holding: this folder holds the lease now.
	Holding bool
	// Snapshots counts snapshots stored; SnapshotBytes and
	// SnapshotSeconds describe the last.
	Snapshots       uint64
	SnapshotBytes   int64
	SnapshotSeconds float64
}

// Folder folds the events stream into a Fold while it holds the lease
// (Run, CatchUp). Make it with Store.Folder.
type Folder struct {
	s   *Store
	o   FolderOptions
	log *slog.Logger
	kv  jetstream.KeyValue
	obj jetstream.ObjectStore
	ttl bool // the bucket takes per-key TTLs

	folded, skipped, seq, last, snapshots atomic.Uint64
	holding                               atomic.Bool
	snapBytes                             atomic.Int64
	snapNanos                             atomic.Int64
}

// Folder returns a folder of the events stream o.Stream; it does nothing
// until Run or CatchUp.
func (s *Store) Folder(o FolderOptions) (*Folder, error) {
	if !isStreamName(o.Stream) {
		return nil, fmt.Errorf("readout folder: %q is not a stream name", o.Stream)
	}
	if o.New == nil || o.Load == nil {
		return nil, errors.New("readout folder: New and Load are required")
	}
	if o.Bucket == "" {
		o.Bucket = DefaultReadoutBucket
	}
	if o.Holder == "" {
		host, _ := os.Hostname()
		o.Holder = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	o.Holder += "/" + NewEventID()[16:] // two folders of one process differ
	if o.SnapshotEvery == 0 {
		o.SnapshotEvery = DefaultSnapshotEvery
	}
	if o.SnapshotInterval <= 0 {
		o.SnapshotInterval = DefaultSnapshotInterval
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.LeaseTTL < time.Second {
		return nil, fmt.Errorf("readout folder: lease ttl %v: want at least 1s", o.LeaseTTL)
	}
	log := o.Logger
	if log == nil {
		log = s.log
	}
	return &Folder{s: s, o: o, log: log.With("component", "readout", "stream", o.Stream)}, nil
}

// Holder is the name this folder takes the lease under.
func (f *Folder) Holder() string { return f.o.Holder }

// Stats returns the folder's counters.
func (f *Folder) Stats() FolderStats {
	return FolderStats{
		Folded: f.folded.Load(), Skipped: f.skipped.Load(), Seq: f.seq.Load(), Last: f.last.Load(),
		Holding: f.holding.Load(), Snapshots: f.snapshots.Load(),
		SnapshotBytes: f.snapBytes.Load(), SnapshotSeconds: time.Duration(f.snapNanos.Load()).Seconds(),
	}
}

func leaseKey(stream string) string   { return Key(stream) + ".lease" }
func readoutKey(stream string) string { return Key(stream) + ".readout" }

// open opens (creating when missing) the readouts bucket and object
// store.
func (f *Folder) open(ctx context.Context) error {
	if f.kv != nil {
		return nil
	}
	c := jetstream.KeyValueConfig{
		Bucket:         f.o.Bucket,
		Description:    "tailor: experiment readouts folded from the events stream, and the lease of the edge folding them",
		History:        1,
		LimitMarkerTTL: leaseMarkerTTL,
	}
	kv, err := f.s.keyValue(ctx, c)
	if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
		// An older server: the lease expires by its holder's clock.
		c.LimitMarkerTTL = 0
		kv, err = f.s.createKeyValue(ctx, c)
	}
	if err != nil {
		return fmt.Errorf("open readouts bucket %q: %w", f.o.Bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("open readouts bucket %q: %w", f.o.Bucket, err)
	}
	obj, err := f.s.js.ObjectStore(ctx, f.o.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obj, err = f.s.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      f.o.Bucket,
			Description: "tailor: snapshots of the readout folders",
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			obj, err = f.s.js.ObjectStore(ctx, f.o.Bucket)
		}
	}
	if err != nil {
		return fmt.Errorf("open readouts object store %q: %w", f.o.Bucket, err)
	}
	f.kv, f.obj, f.ttl = kv, obj, st.LimitMarkerTTL() > 0
	return nil
}

// lease is the lease key's value.
type lease struct {
	Holder string `json:"holder"`
	// Expires is by the holder's clock: where the bucket takes no per-key
	// TTL, a lease expired by more than its TTL is taken over.
	Expires time.Time `json:"expires"`
}

// takeLease takes the lease when it is free or expired, and returns its
// revision; ErrLeaseHeld when another folder holds it.
func (f *Folder) takeLease(ctx context.Context) (uint64, error) {
	key := leaseKey(f.o.Stream)
	val, _ := json.Marshal(lease{Holder: f.o.Holder, Expires: time.Now().Add(f.o.LeaseTTL)})
	e, err := f.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		var opts []jetstream.KVCreateOpt
		if f.ttl {
			opts = append(opts, jetstream.KeyTTL(f.o.LeaseTTL))
		}
		rev, err := f.kv.Create(ctx, key, val, opts...)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return 0, ErrLeaseHeld
		}
		if err != nil {
			return 0, fmt.Errorf("take the readout lease: %w", err)
		}
		return rev, nil
	}
	if err != nil {
		return 0, fmt.Errorf("take the readout lease: %w", err)
	}
	var l lease
	if json.Unmarshal(e.Value(), &l) == nil && time.Now().Before(l.Expires.Add(f.o.LeaseTTL)) {
		return 0, ErrLeaseHeld
	}
	rev, err := f.renew(ctx, e.Revision())
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, ErrLeaseHeld
	}
	return rev, err
}

// renew writes the lease again over revision rev; ErrKeyExists (wrapped)
// when it is not rev any more: the lease was lost.
func (f *Folder) renew(ctx context.Context, rev uint64) (uint64, error) {
	val, _ := json.Marshal(lease{Holder: f.o.Holder, Expires: time.Now().Add(f.o.LeaseTTL)})
	m := &nats.Msg{Subject: subject(f.o.Bucket, leaseKey(f.o.Stream)), Data: val}
	opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(rev)}
	if f.ttl {
		opts = append(opts, jetstream.WithMsgTTL(f.o.LeaseTTL))
	}
	ack, err := f.s.js.PublishMsg(ctx, m, opts...)
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return 0, fmt.Errorf("renew the readout lease: %w", jetstream.ErrKeyExists)
	}
	if err != nil {
		return 0, fmt.Errorf("renew the readout lease: %w", err)
	}
	return ack.Sequence, nil
}

// LeaseHolder returns who holds the readout lease of stream in bucket
// ("" for no one).
func (s *Store) LeaseHolder(ctx context.Context, bucket, stream string) (string, error) {
	val, err := s.readoutValue(ctx, bucket, leaseKey(stream))
	if val == nil || err != nil {
		return "", err
	}
	var l lease
	if json.Unmarshal(val, &l) != nil {
		return "", nil
	}
	ttl := DefaultLeaseTTL
	if time.Now().After(l.Expires.Add(ttl)) {
		return "", nil
	}
	return l.Holder, nil
}

func bucketName(b string) string {
	if b == "" {
		return DefaultReadoutBucket
	}
	return b
}

// ReadReadout returns the latest readout of stream in bucket:
// ErrNoReadout when there is none. One KV read, whatever the stream's
// size.
func (s *Store) ReadReadout(ctx context.Context, bucket, stream string) (*Readout, error) {
	val, err := s.readoutValue(ctx, bucket, readoutKey(stream))
	if err != nil {
		return nil, fmt.Errorf("read the readout: %w", err)
	}
	if val == nil {
		return nil, ErrNoReadout
	}
	var r Readout
	if err := json.Unmarshal(val, &r); err != nil {
		return nil, fmt.Errorf("read the readout: %w", err)
	}
	return &r, nil
}

// readoutValue returns key's value in the readouts bucket (bucket, ""
// for the default): nil when the bucket or the key does not exist.
func (s *Store) readoutValue(ctx context.Context, bucket, key string) ([]byte, error) {
	kv, err := s.js.KeyValue(ctx, bucketName(bucket))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return e.Value(), nil
}

// StreamLast returns the last sequence of the events stream: how far a
// readout should have folded.
func (s *Store) StreamLast(ctx context.Context, stream string) (uint64, error) {
	_, info, err := s.eventStream(ctx, stream)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// Run takes part in folding until ctx ends: it takes the lease whenever
// it is free and folds while it holds it; when ctx ends it stores a
// snapshot and gives the lease up. NATS down, or the stream missing, is
// waited out. It returns nil when ctx ends.
func (f *Folder) Run(ctx context.Context) error {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := f.term(ctx, 0, nil)
		if err != nil && !errors.Is(err, ErrLeaseHeld) && !errors.Is(err, ErrNoStream) {
			f.kv = nil // the bucket may be gone: open it again
		}
		switch {
		case err == nil, errors.Is(err, ErrLeaseHeld), errors.Is(err, ErrNoStream):
			// Another folds, or no event has been published yet.
			attempt = 0
		case ctx.Err() != nil:
		default:
			if attempt%20 == 0 {
				f.log.Warn("readout folder; retrying", "err", err)
			}
		}
		// A lease given up by its holder is taken within a second or
		// two; one whose holder died within its TTL.
		d := f.o.LeaseTTL / 3
		if err != nil && !errors.Is(err, ErrLeaseHeld) && !errors.Is(err, ErrNoStream) {
			d = min(d, retryDelay(attempt)*4)
		}
		if !sleep(ctx, d/2+jitter(d/2)) {
			break
		}
	}
	return nil
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(time.Now().UnixNano() % int64(d))
}

// CatchUp takes the lease (ErrLeaseHeld when another folder holds it),
// folds the stream up to its last event as it is now, stores a snapshot,
// publishes the readout, gives the lease up and returns the readout.
// progress, when not nil, is told how many events are folded of how many
// there are to fold, now and then.
func (f *Folder) CatchUp(ctx context.Context, progress func(done, total uint64)) (*Readout, error) {
	var out *Readout
	err := f.term(ctx, 1, func(r *Readout, done, total uint64) {
		if r != nil {
			out = r
		}
		if progress != nil {
			progress(done, total)
		}
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, errors.New("catch up: no readout")
	}
	return out, nil
}

// term is one lease: take it, load the snapshot, fold, snapshot, give it
// up. With once set, it folds up to the stream's last sequence at the
// start and reports through cb; else until ctx ends or the lease is lost.
func (f *Folder) term(ctx context.Context, once int, cb func(r *Readout, done, total uint64)) error {
	if err := f.s.connected(); err != nil {
		return err
	}
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := f.open(octx)
	cancel()
	if err != nil {
		return err
	}
	st, err := f.s.js.Stream(ctx, f.o.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("%w %q", ErrNoStream, f.o.Stream)
	}
	if err != nil {
		return fmt.Errorf("events stream %q: %w", f.o.Stream, err)
	}
	rev, err := f.takeLease(ctx)
	if err != nil {
		return err
	}
	t := &term{f: f, leaseRev: rev, renewed: time.Now(), once: once == 1, cb: cb}
	f.holding.Store(true)
	defer f.holding.Store(false)
	f.log.Info("took the readout lease", "holder", f.o.Holder)
	err = t.run(ctx, st)
	// Given up, so another folder takes over at once; a lease lost is
	// another's now.
	if !t.lost.Load() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if derr := f.kv.Delete(dctx, leaseKey(f.o.Stream), jetstream.LastRevision(t.rev())); derr != nil {
			f.log.Debug("give the readout lease up", "err", derr)
		}
		cancel()
	}
	return err
}

func (s *Store) connected() error {
	if !s.nc.IsConnected() {
		return ErrUnavailable
	}
	return nil
}

// term is the state of one lease.
type term struct {
	f    *Folder
	once bool
	cb   func(r *Readout, done, total uint64)

	leaseMu  sync.Mutex
	leaseRev uint64
	renewed  time.Time // the last renewal that succeeded
	lost     atomic.Bool

	mu      sync.Mutex // the fold and what follows
	fold    Fold
	hdr     snapHeader
	dedupe  dedupe
	dec     EventDecoder
	ev      Event
	lastMsg jetstream.Msg // of hdr.Seq: what the next snapshot acknowledges
	pending uint64        // the consumer's pending count after lastMsg
	since   uint64        // events folded since the last snapshot
	start   uint64        // the sequence the term started after
	target  uint64        // with once: the sequence to fold up to
	stopped bool          // consuming has stopped: a late callback folds nothing
}

func (t *term) rev() uint64 {
	t.leaseMu.Lock()
	defer t.leaseMu.Unlock()
	return t.leaseRev
}

// mine reports whether the lease is surely still ours: renewed within
// its TTL, less a margin for the server's and our clocks' pace.
func (t *term) mine() bool {
	t.leaseMu.Lock()
	defer t.leaseMu.Unlock()
	return !t.lost.Load() && time.Since(t.renewed) < t.f.o.LeaseTTL*4/5
}

func (t *term) run(ctx context.Context, st jetstream.Stream) error {
	f := t.f
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("events stream %q: %w", f.o.Stream, err)
	}
	if err := t.load(ctx, info); err != nil {
		return err
	}
	t.start, t.target = t.hdr.Seq, info.State.LastSeq
	if t.once && t.cb != nil {
		t.cb(nil, 0, t.target-min(t.start, t.target))
	}
	f.seq.Store(t.hdr.Seq)
	f.last.Store(info.State.LastSeq)
	t.dec = EventDecoder{Lean: true, ID: true}

	// The consumer starts after the snapshot: created again on every
	// lease, so that nothing delivered to a former holder waits for its
	// ack wait to be redelivered out of order.
	cfg := jetstream.ConsumerConfig{
		Durable:       readoutConsumer,
		Description:   "tailor: the readout folder (acknowledged up to its last snapshot)",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       consumerAckWait,
		MaxAckPending: -1,
		MaxDeliver:    -1,
		// Its state (up to millions of events delivered and not yet
		// acknowledged) is not written to disk over and over: a server
		// restart loses it, and the folder then makes it again from its
		// snapshot, as on every lease.
		MemoryStorage: true,
	}
	if t.hdr.Seq > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, t.hdr.Seq+1
	}
	if err := st.DeleteConsumer(ctx, readoutConsumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("reset the readout consumer: %w", err)
	}
	if first := info.State.FirstSeq; t.hdr.Seq > 0 && first > t.hdr.Seq+1 {
		f.log.Warn("events left the stream before they were folded (events_max_age or events_max_bytes): the readout lacks them",
			"folded_up_to", t.hdr.Seq, "stream_first", first)
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("create the readout consumer: %w", err)
	}
	if t.once && t.target <= t.hdr.Seq {
		return t.finish(ctx, true)
	}

	fctx, stop := context.WithCancel(ctx)
	defer stop()
	reached := make(chan struct{})
	var reachedOnce sync.Once
	fatal := make(chan error, 1)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if t.step(m) {
			reachedOnce.Do(func() { close(reached) })
		}
	}, jetstream.PullMaxMessages(readBatch), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConnectionClosed) {
			select {
			case fatal <- err:
			default:
			}
		}
	}))
	if err != nil {
		return fmt.Errorf("read the events stream: %w", err)
	}
	stopConsume := func() {
		cc.Stop()
		select {
		case <-cc.Closed():
		case <-time.After(5 * time.Second):
		}
		// A callback under way has finished once the lock is free.
		t.mu.Lock()
		t.stopped = true
		t.mu.Unlock()
	}
	go t.keepLease(fctx, stop)

	tick := time.NewTicker(publishEvery)
	defer tick.Stop()
	idle := time.NewTicker(readIdleCheck)
	defer idle.Stop()
	lastSnap := time.Now()
	var published, idleSeen uint64
	var publishedAt time.Time
	for {
		select {
		case <-reached:
			stopConsume()
			return t.finish(ctx, true)
		case err := <-fatal:
			stopConsume()
			t.finish(ctx, false)
			return fmt.Errorf("read the events stream: %w", err)
		case <-fctx.Done():
			stopConsume()
			if t.lost.Load() {
				return errors.New("readout lease lost")
			}
			return t.finish(context.Background(), true)
		case <-idle.C:
			if !t.once {
				continue
			}
			// Events deleted at the end of the stream keep the target
			// out of reach: the consumer says when nothing is left.
			t.mu.Lock()
			now := t.hdr.Seq
			t.mu.Unlock()
			if now != idleSeen {
				idleSeen = now
				continue
			}
			if ci, err := cons.Info(ctx); err == nil && ci.NumPending == 0 && ci.Delivered.Stream <= now {
				stopConsume()
				return t.finish(ctx, true)
			}
		case <-tick.C:
			t.mu.Lock()
			seq, since := t.hdr.Seq, t.since
			t.mu.Unlock()
			if seq != published || time.Since(publishedAt) >= idleRepublish {
				t.publish(ctx)
				published, publishedAt = seq, time.Now()
			}
			if since >= f.o.SnapshotEvery || since > 0 && time.Since(lastSnap) >= f.o.SnapshotInterval {
				if err := t.snapshot(ctx); err != nil {
					f.log.Warn("store the readout snapshot; trying again later", "err", err)
				}
				lastSnap = time.Now()
			}
		}
	}
}

// step folds one message; it reports whether a once term has reached its
// target.
func (t *term) step(m jetstream.Msg) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.f
	if t.stopped {
		return false
	}
	meta, err := m.Metadata()
	if err != nil {
		return false
	}
	seq := meta.Sequence.Stream
	if seq <= t.hdr.Seq {
		f.skipped.Add(1) // redelivered, or folded before the snapshot
		return false
	}
	if err := t.dec.Decode(m.Data(), &t.ev); err != nil {
		t.hdr.Bad++
	} else if t.dedupe.seen(t.ev.ID, t.ev.Time.UnixNano()) {
		t.hdr.Duplicates++
		f.skipped.Add(1)
	} else {
		if t.hdr.First.IsZero() {
			t.hdr.First = t.ev.Time.UTC()
		}
		t.fold.Add(&t.ev)
		t.hdr.Events++
		f.folded.Add(1)
	}
	t.hdr.Seq, t.lastMsg, t.pending = seq, m, meta.NumPending
	t.since++
	f.seq.Store(seq)
	if last := seq + meta.NumPending; last > f.last.Load() {
		f.last.Store(last)
	}
	if t.once {
		if t.cb != nil && t.since%readProgressEvery == 0 {
			t.cb(nil, seq-t.start, max(seq, t.target)-t.start)
		}
		return seq >= t.target || meta.NumPending == 0
	}
	return false
}

// keepLease renews the lease every third of its TTL; when it cannot, it
// calls stop (the lease lost, or not surely ours any more).
func (t *term) keepLease(ctx context.Context, stop context.CancelFunc) {
	f := t.f
	every := f.o.LeaseTTL / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, every)
		rev, err := f.renew(rctx, t.rev())
		cancel()
		t.leaseMu.Lock()
		if err == nil {
			t.leaseRev, t.renewed = rev, time.Now()
		}
		t.leaseMu.Unlock()
		switch {
		case errors.Is(err, jetstream.ErrKeyExists):
			t.lost.Store(true)
			f.log.Warn("readout lease lost to another folder; stopping")
			stop()
			return
		case err != nil && !t.mine():
			t.lost.Store(true)
			f.log.Warn("readout lease not renewed within its ttl; stopping", "err", err)
			stop()
			return
		}
	}
}

// finish ends a term: a snapshot and the readout, as long as the lease
// is ours.
func (t *term) finish(ctx context.Context, snapshot bool) error {
	var err error
	if snapshot && t.mine() {
		if err = t.snapshot(ctx); err != nil {
			t.f.log.Warn("store the readout snapshot", "err", err)
		}
	}
	if r := t.publish(ctx); r != nil && t.cb != nil {
		t.cb(r, r.Folded-t.start, max(r.Folded, t.target)-t.start)
	}
	return err
}

// publish puts the readout in the KV, and returns it.
func (t *term) publish(ctx context.Context) *Readout {
	if !t.mine() {
		return nil
	}
	f := t.f
	t.mu.Lock()
	data, err := t.fold.Readout(t.hdr.First)
	r := &Readout{Stream: f.o.Stream, Folded: t.hdr.Seq, Last: max(f.last.Load(), t.hdr.Seq),
		Events: t.hdr.Events, Duplicates: t.hdr.Duplicates, Bad: t.hdr.Bad, First: t.hdr.First,
		At: time.Now().UTC(), Holder: f.o.Holder, Data: data}
	t.mu.Unlock()
	if err != nil {
		f.log.Warn("make the readout", "err", err)
		return nil
	}
	val, err := json.Marshal(r)
	if err != nil {
		f.log.Warn("make the readout", "err", err)
		return nil
	}
	if mp := f.s.nc.MaxPayload(); mp > 0 && int64(len(val)) > mp-1024 {
		f.log.Warn("the readout is larger than the NATS server's max_payload: not published", "bytes", len(val), "max_payload", mp)
		return r
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := f.kv.Put(pctx, readoutKey(f.o.Stream), val); err != nil {
		f.log.Warn("publish the readout", "err", err)
	}
	return r
}

// snapHeader is the snapshot's header: where the fold stands.
type snapHeader struct {
	Stream string `json:"stream"`
	// StreamCreated tells the stream apart from one deleted and created
	// again under its name (its sequences start again).
	StreamCreated time.Time `json:"stream_created"`
	Seq           uint64    `json:"seq"`
	Events        uint64    `json:"events"`
	Duplicates    uint64    `json:"duplicates"`
	Bad           uint64    `json:"bad"`
	First         time.Time `json:"first"`
	Saved         time.Time `json:"saved"`
}

// snapshotMagic starts a snapshot: its format, version 1.
const snapshotMagic = "tailor-readout-snapshot 1\n"

// load reads the snapshot into t, or starts afresh when there is none or
// it is of another stream of the same name.
func (t *term) load(ctx context.Context, info *jetstream.StreamInfo) error {
	f := t.f
	fresh := func() {
		t.fold = f.o.New()
		t.hdr = snapHeader{Stream: f.o.Stream, StreamCreated: info.Created.UTC()}
		t.dedupe = dedupe{}
	}
	res, err := f.obj.Get(ctx, Key(f.o.Stream))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		fresh()
		f.log.Info("no readout snapshot: folding the stream from its start", "events", info.State.Msgs)
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the readout snapshot: %w", err)
	}
	defer res.Close()
	start := time.Now()
	br := bufio.NewReaderSize(res, 1<<20)
	hdr, dd, err := readSnapHeader(br)
	if err == nil && (!hdr.StreamCreated.Equal(info.Created.UTC()) || hdr.Seq > info.State.LastSeq) {
		f.log.Warn("the readout snapshot is of an events stream since deleted and created again: folding the new one from its start",
			"snapshot_seq", hdr.Seq, "stream_last", info.State.LastSeq)
		fresh()
		return nil
	}
	var fold Fold
	if err == nil {
		fold, err = f.o.Load(br)
	}
	if err != nil {
		// A snapshot that does not read is not one to build on, nor one
		// to refuse folding for: start again, and say so.
		f.log.Error("the readout snapshot does not read: folding the stream from its start", "err", err)
		fresh()
		return nil
	}
	t.fold, t.hdr, t.dedupe = fold, hdr, dd
	f.log.Info("loaded the readout snapshot", "seq", hdr.Seq, "events", hdr.Events, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// snapshot stores the fold and where it stands, then acknowledges the
// consumer up to there.
func (t *term) snapshot(ctx context.Context) error {
	f := t.f
	start := time.Now()
	var buf bytes.Buffer
	t.mu.Lock()
	hdr, msg := t.hdr, t.lastMsg
	hdr.Saved = start.UTC()
	err := writeSnapHeader(&buf, hdr, &t.dedupe)
	if err == nil {
		_, err = t.fold.WriteTo(&buf)
	}
	t.since = 0
	t.mu.Unlock()
	if err != nil {
		return fmt.Errorf("write the readout snapshot: %w", err)
	}
	if !t.mine() {
		return errors.New("readout lease lost: snapshot not stored")
	}
	size := int64(buf.Len())
	sctx, cancel := context.WithTimeout(ctx, time.Minute+time.Duration(size>>20)*time.Second)
	defer cancel()
	if _, err := f.obj.Put(sctx, jetstream.ObjectMeta{Name: Key(f.o.Stream),
		Description: fmt.Sprintf("readout of %s up to sequence %d", f.o.Stream, hdr.Seq)}, &buf); err != nil {
		return fmt.Errorf("store the readout snapshot: %w", err)
	}
	if msg != nil {
		// Only now: the events up to here are safe in the snapshot.
		if err := msg.DoubleAck(sctx); err != nil {
			f.log.Debug("acknowledge the readout consumer", "err", err)
		}
	}
	took := time.Since(start)
	f.snapshots.Add(1)
	f.snapBytes.Store(size)
	f.snapNanos.Store(int64(took))
	f.log.Debug("stored the readout snapshot", "seq", hdr.Seq, "bytes", size, "took", took.Round(time.Millisecond))
	return nil
}

// writeSnapHeader writes the magic, the header as a JSON line and the
// record of recent ids.
func writeSnapHeader(w *bytes.Buffer, hdr snapHeader, d *dedupe) error {
	w.WriteString(snapshotMagic)
	b, err := json.Marshal(hdr)
	if err != nil {
		return err
	}
	w.Write(b)
	w.WriteByte('\n')
	d.writeTo(w)
	return nil
}

func readSnapHeader(r *bufio.Reader) (snapHeader, dedupe, error) {
	var hdr snapHeader
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != snapshotMagic {
		return hdr, dedupe{}, errors.New("not a readout snapshot")
	}
	line, err := r.ReadSlice('\n')
	if err != nil {
		return hdr, dedupe{}, fmt.Errorf("snapshot header: %w", err)
	}
	if err := json.Unmarshal(line, &hdr); err != nil {
		return hdr, dedupe{}, fmt.Errorf("snapshot header: %w", err)
	}
	var d dedupe
	if err := d.readFrom(r); err != nil {
		return hdr, dedupe{}, fmt.Errorf("snapshot ids: %w", err)
	}
	return hdr, d, nil
}

// dedupe is the record of recent event ids: a map, and the ids in the
// order they were folded, to forget the oldest.
type dedupe struct {
	ids    map[string]struct{}
	order  []idAt // a queue: order[head:] are in ids
	head   int
	newest int64
}

type idAt struct {
	id string
	at int64
}

// seen records id (of an event of time at, in Unix ns) and reports
// whether it was recorded before. An empty id is never seen.
func (d *dedupe) seen(id string, at int64) bool {
	if id == "" {
		return false
	}
	if d.ids == nil {
		d.ids = map[string]struct{}{}
	}
	if _, ok := d.ids[id]; ok {
		return true
	}
	d.ids[id] = struct{}{}
	d.order = append(d.order, idAt{id, at})
	d.newest = max(d.newest, at)
	horizon := d.newest - int64(dedupeHorizon)
	for d.head < len(d.order) && (len(d.order)-d.head > maxDedupe || d.order[d.head].at < horizon) {
		delete(d.ids, d.order[d.head].id)
		d.order[d.head] = idAt{}
		d.head++
	}
	if d.head > len(d.order)/2 && d.head > 1024 {
		d.order = append(d.order[:0], d.order[d.head:]...)
		d.head = 0
	}
	return false
}

// writeTo writes the record: a count, then each id (length, bytes) and
// time (varint).
func (d *dedupe) writeTo(w *bytes.Buffer) {
	var tmp [binary.MaxVarintLen64]byte
	live := d.order[d.head:]
	w.Write(tmp[:binary.PutUvarint(tmp[:], uint64(len(live)))])
	for _, x := range live {
		w.Write(tmp[:binary.PutUvarint(tmp[:], uint64(len(x.id)))])
		w.WriteString(x.id)
		w.Write(tmp[:binary.PutVarint(tmp[:], x.at)])
	}
}

func (d *dedupe) readFrom(r *bufio.Reader) error {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return err
	}
	if n > maxDedupe {
		return fmt.Errorf("%d ids, more than %d", n, maxDedupe)
	}
	*d = dedupe{ids: make(map[string]struct{}, n), order: make([]idAt, 0, n)}
	var sb strings.Builder
	for range n {
		l, err := binary.ReadUvarint(r)
		if err != nil {
			return err
		}
		if l > 1024 {
			return fmt.Errorf("an id of %d bytes", l)
		}
		sb.Reset()
		if _, err := io.CopyN(&sb, r, int64(l)); err != nil {
			return err
		}
		at, err := binary.ReadVarint(r)
		if err != nil {
			return err
		}
		id := sb.String()
		d.ids[id] = struct{}{}
		d.order = append(d.order, idAt{id, at})
		d.newest = max(d.newest, at)
	}
	return nil
}
