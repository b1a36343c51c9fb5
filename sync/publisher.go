package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// Publisher defaults.
const (
	// DefaultEventQueue is PublisherOptions.Queue when 0: half a minute
	// of an outage at 2,000 events a second, some 30 MB of typical
	// events when full.
	DefaultEventQueue = 65536
	// DefaultEventBatch is PublisherOptions.Batch when 0.
	DefaultEventBatch = 256
	// DefaultDuplicateWindow is PublisherOptions.DuplicateWindow when 0,
	// as JetStream's own default.
	DefaultDuplicateWindow = 2 * time.Minute
)

// How the publisher waits. A batch whose acknowledgements have not all
// come within ackWait is tried again (the stream drops what did land);
// so is a fast batch the server has not committed within ackWait.
// Retries back off from minRetryWait to maxRetryWait while NATS is down.
const (
	ackWait       = 5 * time.Second
	streamTimeout = 5 * time.Second
	minRetryWait  = 25 * time.Millisecond
	maxRetryWait  = time.Second
)

// PublisherOptions configure Store.Events. The zero value of every field
// but Stream is a usable default.
type PublisherOptions struct {
	// Stream is the JetStream stream of events, e.g. "TAILOR_EVENTS". It
	// is created when missing, with the subjects EventSubjects.
	Stream string
	// MaxAge is how long the stream keeps an event; 0 keeps them forever.
	MaxAge time.Duration
	// MaxBytes bounds the stream's size, the oldest events going first;
	// 0 means no bound.
	MaxBytes int64
	// DuplicateWindow is how long the stream remembers an event id to
	// drop a copy that a retry publishes again; 0 means
	// DefaultDuplicateWindow, or MaxAge when that is shorter.
	DuplicateWindow time.Duration
	// Replicas is the stream's number of copies in a cluster; 0 means 1.
	Replicas int
	// Queue bounds the events waiting to be published; Publish drops an
	// event when it is full. 0 means DefaultEventQueue.
	Queue int
	// Batch is the most events published before waiting for their
	// acknowledgements; 0 means DefaultEventBatch. Where the stream
	// allows it (nats-server 2.14 and later), a batch of 32 events or
	// more goes as one fast-ingest batch, which the server acknowledges
	// every quarter batch and as a whole rather than event by event.
	Batch int
	// Logger receives the publisher's few messages (stream created or
	// updated, fast batches or not, publishing failing and recovering);
	// nil means the Store's logger.
	Logger *slog.Logger

	// perMessage publishes every event as a message of its own, as
	// against a server without fast batches, and leaves the stream's
	// allow_batched alone. For tests.
	perMessage bool
}

// PublisherStats are a publisher's cumulative counters.
type PublisherStats struct {
	// Accepted counts the events Publish took (returned true for).
	Accepted uint64
	// Published counts the events the stream acknowledged, as stored or
	// as duplicates of an event stored already.
	Published uint64
	// Dropped counts events lost: refused by Publish (queue full,
	// publisher closed, type not a subject token), larger than the
	// server takes, or still waiting when Close gave up.
	Dropped uint64
	// Retried counts publishes repeated after a failed attempt.
	Retried uint64
	// Depth is the number of events accepted and not yet published or
	// dropped: queued, or in a batch awaiting acknowledgement.
	Depth int
	// StreamReady reports whether the stream has been found or created.
	StreamReady bool
}

// Publisher publishes events to a JetStream stream in the background,
// through a bounded queue: Publish never waits for NATS. It takes events
// from the queue a batch at a time (PublisherOptions.Batch) and publishes
// a batch of 32 events or more as one fast-ingest batch when the stream
// allows batched publish (nats-server 2.14 and later), any other batch
// event by event; it logs whether the stream allows it. Either way:
//
// Events are published in the order they were accepted, except that one
// whose publish failed is published again (with the same id) after others
// that went through meanwhile. An event is dropped only when the queue is
// full, the publisher closing, or the event larger than the server takes;
// one that fails otherwise is tried again until it is stored. An event
// the stream stored but whose acknowledgement was lost is stored once,
// provided that it is tried again within the stream's duplicate window
// (consumers that must never see a copy after a longer outage drop
// events by id).
//
// It is safe for concurrent use. Close it before the Store.
type Publisher struct {
	nc         *nats.Conn
	js         jetstream.JetStream // the publisher's own: PublishAsyncComplete waits for its publishes only
	stream     jetstream.StreamConfig
	batchSize  int
	flow       jetstreamext.FastPublishFlowControl
	perMessage bool // PublisherOptions.perMessage
	log        *slog.Logger

	// mu is held shared by Publish and exclusively by Close, so that no
	// event is queued once Close has stopped accepting.
	mu     sync.RWMutex
	closed bool
	queue  chan *Event
	events sync.Pool // of *Event, reused once published

	accepted, published, dropped, retried atomic.Uint64
	held                                  atomic.Int64 // events taken from the queue and not yet published
	ready                                 atomic.Bool
	batched                               atomic.Bool  // the stream allows fast batches
	abandoned                             atomic.Int64 // dropped when Close gave up

	closing   chan struct{} // closed by Close: flush, then stop
	closeOnce sync.Once
	cancel    context.CancelFunc // Close gave up: stop now
	done      chan struct{}

	// Owned by the run goroutine.
	pending   []*Event // the next batch: events that failed first, in order
	spare     []*Event
	retrying  int // pending[:retrying] failed before
	sent      []*Event
	futures   []jetstream.PubAckFuture
	arena     []byte      // the batch's JSON; nil when the last batch may still be read
	msgs      []*nats.Msg // of fast batches, reused; nil when the last one may still be read
	pathKnown bool        // batched has been decided and logged
}

// Events starts a publisher of events to the stream o.Stream, creating
// the stream when it is missing: file storage, subjects EventSubjects,
// o's limits, oldest events discarded first, batched publish allowed.
// When the stream exists, its MaxAge, MaxBytes and duplicate window are
// set to o's and batched publish is allowed (and the change logged); its
// subjects and storage are left as they are. A server older than 2.14
// ignores or refuses allow_batched: the stream is then created or kept
// without it, and events are published one by one. Finding or creating
// the stream happens in the background, retried until it succeeds;
// events wait in the queue meanwhile. Events only reports invalid
// options: it never waits for NATS.
func (s *Store) Events(o PublisherOptions) (*Publisher, error) {
	cfg, err := o.streamConfig()
	if err != nil {
		return nil, err
	}
	queue, batch := o.Queue, o.Batch
	if queue == 0 {
		queue = DefaultEventQueue
	}
	if batch == 0 {
		batch = DefaultEventBatch
	}
	if queue < 0 || batch < 0 {
		return nil, fmt.Errorf("start event publisher: queue %d and batch %d must not be negative", o.Queue, o.Batch)
	}
	log := o.Logger
	if log == nil {
		log = s.log
	}
	js, err := jetstream.New(s.nc,
		// Room for a batch whose acknowledgements timed out by our clock
		// but not yet by the library's, and the next.
		jetstream.WithPublishAsyncMaxPending(2*batch),
		jetstream.WithPublishAsyncTimeout(ackWait))
	if err != nil {
		return nil, fmt.Errorf("start event publisher: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Publisher{
		nc: s.nc, js: js, stream: cfg, batchSize: batch, flow: fastFlow(batch), perMessage: o.perMessage,
		log:     log.With("stream", cfg.Name),
		queue:   make(chan *Event, queue),
		events:  sync.Pool{New: func() any { return new(Event) }},
		closing: make(chan struct{}), cancel: cancel, done: make(chan struct{}),
		pending: make([]*Event, 0, batch), spare: make([]*Event, 0, batch),
		sent: make([]*Event, 0, batch), futures: make([]jetstream.PubAckFuture, 0, batch),
	}
	go p.run(ctx)
	return p, nil
}

// streamConfig checks o's stream settings and returns the stream to
// create.
func (o PublisherOptions) streamConfig() (jetstream.StreamConfig, error) {
	fail := func(format string, args ...any) (jetstream.StreamConfig, error) {
		return jetstream.StreamConfig{}, fmt.Errorf("start event publisher: "+format, args...)
	}
	if !isStreamName(o.Stream) {
		return fail("%q is not a stream name (printable, no spaces, '.', '*', '>', '/' or '\\')", o.Stream)
	}
	if o.MaxAge < 0 || o.MaxAge > 0 && o.MaxAge < 100*time.Millisecond {
		return fail("max age %v: want 0 (forever) or at least 100ms", o.MaxAge)
	}
	if o.MaxBytes < 0 {
		return fail("max bytes %d: want 0 (no bound) or more", o.MaxBytes)
	}
	dup := o.DuplicateWindow
	if dup == 0 {
		dup = DefaultDuplicateWindow
		if o.MaxAge > 0 {
			dup = min(dup, o.MaxAge)
		}
	}
	if dup < 100*time.Millisecond {
		return fail("duplicate window %v: want at least 100ms", o.DuplicateWindow)
	}
	if o.MaxAge > 0 && dup > o.MaxAge {
		return fail("duplicate window %v is longer than max age %v", dup, o.MaxAge)
	}
	replicas := o.Replicas
	if replicas == 0 {
		replicas = 1
	}
	if replicas < 1 || replicas > 5 {
		return fail("replicas %d: want 1 to 5", o.Replicas)
	}
	maxBytes := o.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1 // as the server says "no bound"
	}
	return jetstream.StreamConfig{
		Name:        o.Stream,
		Description: "tailor: visitor events (pageview, goal, stage, exposure, identify)",
		Subjects:    []string{EventSubjects},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		MaxAge:      o.MaxAge,
		MaxBytes:    maxBytes,
		Duplicates:  dup,
		Replicas:    replicas,
		// Servers before 2.14 refuse or ignore it: see ensureStream.
		AllowBatchPublish: !o.perMessage,
	}, nil
}

// isStreamName follows the NATS server's rule for stream names: printable,
// and none of the characters that mean something in subjects or paths.
func isStreamName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '.' || r == '*' || r == '>' || r == '/' || r == '\\' {
			return false
		}
	}
	return true
}

// Publish queues a copy of e for publishing and returns at once, without
// waiting for NATS. An empty ID is filled with NewEventID and a zero Time
// with the current time, in the copy: e is not modified, and not kept.
// Publish returns false, and counts the event dropped, when the queue is
// full, the publisher closed, or e.Type cannot be a subject token.
func (p *Publisher) Publish(e *Event) bool {
	if !validType(e.Type) {
		p.dropped.Add(1)
		return false
	}
	q := p.events.Get().(*Event)
	segs := q.Segments[:0]
	*q = *e
	q.Segments = append(segs, e.Segments...)
	if q.ID == "" {
		q.ID = NewEventID()
	}
	if q.Time.IsZero() {
		q.Time = time.Now()
	}
	p.mu.RLock()
	ok := !p.closed
	if ok {
		select {
		case p.queue <- q:
		default:
			ok = false
		}
	}
	p.mu.RUnlock()
	if !ok {
		p.dropped.Add(1)
		p.release(q)
		return false
	}
	p.accepted.Add(1)
	return true
}

// release returns an event to the pool, keeping none of its strings.
func (p *Publisher) release(e *Event) {
	segs := e.Segments
	clear(segs)
	if cap(segs) > 64 {
		segs = nil
	}
	*e = Event{Segments: segs[:0]}
	p.events.Put(e)
}

// Stats returns the publisher's counters.
func (p *Publisher) Stats() PublisherStats {
	return PublisherStats{
		Accepted: p.accepted.Load(), Published: p.published.Load(),
		Dropped: p.dropped.Load(), Retried: p.retried.Load(),
		Depth:       len(p.queue) + int(p.held.Load()),
		StreamReady: p.ready.Load(),
	}
}

// Close stops accepting events and publishes those still waiting, until
// they are all acknowledged or ctx ends; then it drops (and counts) what
// is left and returns an error saying how many. It waits as long as ctx
// allows for a server that is down. Close may be called more than once.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.closeOnce.Do(func() { close(p.closing) })
	select {
	case <-p.done:
	case <-ctx.Done():
		p.cancel()
		<-p.done
	}
	if n := p.abandoned.Load(); n > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("flush events: %d dropped: %w", n, err)
		}
		return fmt.Errorf("flush events: %d dropped", n)
	}
	return nil
}

// run is the publisher's goroutine: it opens the stream, then publishes
// the queue batch by batch until Close.
func (p *Publisher) run(ctx context.Context) {
	defer close(p.done)
	defer p.abandon()
	if !p.openStream(ctx) {
		return
	}
	failures, warned := 0, false
	recheck := false // a fast batch failed: look at the stream before the next
	for {
		p.fill()
		if n := len(p.pending); n > 0 && n < p.batchSize && p.batched.Load() {
			p.linger(ctx)
		}
		if len(p.pending) == 0 {
			select {
			case e := <-p.queue:
				p.pending = append(p.pending, e)
				continue
			case <-p.closing:
				if len(p.queue) == 0 {
					return
				}
				continue
			case <-ctx.Done():
				return
			}
		}
		if !p.nc.IsConnected() {
			// The Store logs the disconnection; publishing now would only
			// fill the client's reconnect buffer.
			if !sleep(ctx, retryDelay(failures)) {
				return
			}
			failures++
			continue
		}
		var err error
		if recheck {
			// The server may have been replaced by an older one, or the
			// stream deleted or changed: a fast batch is then refused, or
			// its acknowledgements never come.
			var batched bool
			if batched, err = p.ensureStream(ctx); err == nil {
				p.choosePath(batched)
				recheck = false
			}
		}
		fast := false
		if err == nil {
			fast = p.batched.Load() && len(p.pending) >= minFastBatch
			if fast {
				err = p.sendFast(ctx)
			} else {
				err = p.sendAsync(ctx)
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			if warned {
				p.log.Info("publishing events again", "queued", p.Stats().Depth)
			}
			failures, warned = 0, false
			continue
		}
		if !warned {
			p.log.Warn("publish events; retrying", "err", err, "queued", p.Stats().Depth)
			warned = true
		}
		if errors.Is(err, jetstream.ErrNoStreamResponse) {
			// Nothing stores the subjects: the stream may have been
			// deleted, or the server replaced by one without it.
			p.ready.Store(false)
			if !p.openStream(ctx) {
				return
			}
		} else if fast {
			recheck = true
		}
		if !sleep(ctx, retryDelay(failures)) {
			return
		}
		failures++
	}
}

// linger tops the pending batch up from the queue for at most
// fastBatchLinger, until it is full or the publisher closes.
func (p *Publisher) linger(ctx context.Context) {
	t := time.NewTimer(fastBatchLinger)
	defer t.Stop()
	for len(p.pending) < p.batchSize {
		select {
		case e := <-p.queue:
			p.pending = append(p.pending, e)
			p.held.Store(int64(len(p.pending)))
		case <-t.C:
			return
		case <-p.closing:
			p.fill()
			return
		case <-ctx.Done():
			return
		}
	}
}

// fill tops the pending batch up from the queue, without waiting.
func (p *Publisher) fill() {
	defer func() { p.held.Store(int64(len(p.pending))) }()
	for len(p.pending) < p.batchSize {
		select {
		case e := <-p.queue:
			p.pending = append(p.pending, e)
		default:
			return
		}
	}
}

// sendAsync publishes the pending batch message by message and waits for
// their acknowledgements. Acknowledged events are counted and released;
// the others stay pending, in their order, for the next try. It returns
// the first failure.
func (p *Publisher) sendAsync(ctx context.Context) error {
	batch, retrying := p.pending, p.retrying
	arena := p.arena[:0]
	sent, futures := p.sent[:0], p.futures[:0]
	var firstErr error
	var unsent []*Event
	for i, e := range batch {
		start := len(arena)
		arena = e.AppendJSON(arena)
		m := &nats.Msg{Subject: e.Subject(), Data: arena[start:len(arena):len(arena)]}
		f, err := p.js.PublishMsgAsync(m, jetstream.WithMsgID(e.ID), jetstream.WithExpectStream(p.stream.Name))
		if errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject) {
			p.dropUnsendable(e, int64(len(m.Data)), err)
			continue
		}
		if err != nil {
			firstErr, unsent = err, batch[i:]
			break
		}
		if i < retrying {
			p.retried.Add(1)
		}
		sent, futures = append(sent, e), append(futures, f)
	}
	resolved := true
	if len(futures) > 0 {
		// Every future resolves within ackWait (WithPublishAsyncTimeout);
		// the timer only guards against a future that never does.
		t := time.NewTimer(ackWait + time.Second)
		select {
		case <-p.js.PublishAsyncComplete():
		case <-t.C:
			resolved = false
		case <-ctx.Done():
			resolved = false
		}
		t.Stop()
	}
	next := p.spare[:0]
	for i, f := range futures {
		select {
		case <-f.Ok(): // a duplicate too: it is stored
			p.published.Add(1)
			p.release(sent[i])
		default:
			next = append(next, sent[i])
			if firstErr == nil {
				firstErr = jetstream.ErrAsyncPublishTimeout
				select {
				case err := <-f.Err():
					firstErr = err
				default:
				}
			}
		}
	}
	next = append(next, unsent...)
	clear(sent)
	clear(futures)
	p.sent, p.futures = sent, futures
	p.requeue(batch, next)
	if resolved {
		p.arena = arena
	} else {
		// A publish still awaiting its acknowledgement may be sent again
		// by the client from its bytes: leave them alone.
		p.arena = nil
	}
	return firstErr
}

// dropUnsendable drops e, which the server refused for what it is (too
// large, a subject it cannot take): it would fail the same way forever.
func (p *Publisher) dropUnsendable(e *Event, bytes int64, err error) {
	p.log.Warn("drop event the server cannot take", "type", e.Type, "bytes", bytes, "err", err)
	p.dropped.Add(1)
	p.release(e)
}

// requeue makes next, what is left of batch after a try, the pending
// batch, to be tried first (and counted as retried) next time; batch's
// array becomes the spare that the next try's leftovers go into.
func (p *Publisher) requeue(batch, next []*Event) {
	clear(batch)
	p.pending, p.spare, p.retrying = next, batch[:0], len(next)
	p.held.Store(int64(len(next)))
}

// abandon drops what is left when the publisher stops.
func (p *Publisher) abandon() {
	n := len(p.pending)
	for _, e := range p.pending {
		p.release(e)
	}
	p.pending = nil
	for more := true; more; {
		select {
		case e := <-p.queue:
			n++
			p.release(e)
		default:
			more = false
		}
	}
	p.dropped.Add(uint64(n))
	p.abandoned.Store(int64(n))
	p.held.Store(0)
}

// openStream finds or creates the stream, retrying until it succeeds
// (true), or ctx ends or Close leaves nothing to publish (false).
func (p *Publisher) openStream(ctx context.Context) bool {
	for attempt := 0; ; attempt++ {
		if p.drained() {
			return false // closed with nothing to publish: no need for a stream
		}
		if p.nc.IsConnected() {
			batched, err := p.ensureStream(ctx)
			if err == nil {
				p.choosePath(batched)
				p.ready.Store(true)
				return true
			}
			if ctx.Err() != nil {
				return false
			}
			if attempt%20 == 0 {
				p.log.Warn("open event stream; retrying", "err", err)
			}
		}
		if !sleep(ctx, retryDelay(attempt)) {
			return false
		}
	}
}

// ensureStream creates the stream when missing, or brings an existing
// one's limits to the configured ones and allows batched publish on it.
// It returns whether the stream allows batched publish, as the server
// reports its config: a server older than 2.14 leaves the setting out.
func (p *Publisher) ensureStream(ctx context.Context) (batched bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, streamTimeout)
	defer cancel()
	want := p.stream
	st, err := p.js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err := p.js.CreateStream(ctx, want)
		if want.AllowBatchPublish && unknownField(err) {
			want.AllowBatchPublish = false
			st, err = p.js.CreateStream(ctx, want)
		}
		if err != nil {
			// Another edge may have just created it: the next attempt
			// finds it.
			return false, fmt.Errorf("create stream: %w", err)
		}
		got := st.CachedInfo().Config
		p.log.Info("created event stream", "subjects", EventSubjects,
			"max_age", want.MaxAge, "max_bytes", want.MaxBytes, "duplicate_window", want.Duplicates,
			"allow_batched", got.AllowBatchPublish)
		return got.AllowBatchPublish, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up stream: %w", err)
	}
	have := st.CachedInfo().Config
	if !slices.Contains(have.Subjects, EventSubjects) {
		p.log.Warn("event stream does not list the event subjects; events it does not capture are retried until it does",
			"subjects", have.Subjects, "want", EventSubjects)
	}
	limits := have.MaxAge == want.MaxAge && have.MaxBytes == want.MaxBytes && have.Duplicates == want.Duplicates
	if limits && (have.AllowBatchPublish || !want.AllowBatchPublish) {
		return have.AllowBatchPublish, nil
	}
	cfg := have
	cfg.MaxAge, cfg.MaxBytes, cfg.Duplicates = want.MaxAge, want.MaxBytes, want.Duplicates
	cfg.AllowBatchPublish = have.AllowBatchPublish || want.AllowBatchPublish
	st, err = p.js.UpdateStream(ctx, cfg)
	if err != nil && !have.AllowBatchPublish && cfg.AllowBatchPublish && unknownField(err) {
		if limits {
			return false, nil
		}
		cfg.AllowBatchPublish = false
		st, err = p.js.UpdateStream(ctx, cfg)
	}
	if err != nil {
		// The stream takes events all the same: publish with its limits.
		p.log.Warn("update event stream; keeping its config", "err", err)
		return have.AllowBatchPublish, nil
	}
	if !limits {
		p.log.Info("updated event stream limits",
			"max_age", want.MaxAge, "was_max_age", have.MaxAge,
			"max_bytes", want.MaxBytes, "was_max_bytes", have.MaxBytes,
			"duplicate_window", want.Duplicates, "was_duplicate_window", have.Duplicates)
	}
	return st.CachedInfo().Config.AllowBatchPublish, nil
}

// jsErrCodeInvalidJSON is nats-server's JSInvalidJSONErr. In JetStream
// strict mode, the default, a server refuses a request with a field it
// does not know: 2.12 refuses a stream config with allow_batched
// (json: unknown field "allow_batched"). Out of strict mode it ignores
// the field.
const jsErrCodeInvalidJSON jetstream.ErrorCode = 10025

// unknownField reports whether err is the server refusing a request for
// a field it does not know.
func unknownField(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrCodeInvalidJSON
}

// choosePath records whether events go in fast batches, and logs it when
// it is decided or changes.
func (p *Publisher) choosePath(batched bool) {
	batched = batched && !p.perMessage
	if p.pathKnown && p.batched.Load() == batched {
		return
	}
	p.pathKnown = true
	p.batched.Store(batched)
	if batched {
		p.log.Info("publishing events in fast-ingest batches", "batch", p.batchSize)
		return
	}
	p.log.Info("publishing events one message at a time: the stream does not allow batched publish (nats-server before 2.14, or its config could not be updated)")
}

// drained reports whether Close has been called and nothing is left to
// publish.
func (p *Publisher) drained() bool {
	select {
	case <-p.closing:
		return len(p.pending) == 0 && len(p.queue) == 0
	default:
		return false
	}
}

// retryDelay backs off from minRetryWait to maxRetryWait, with jitter so
// that many edges do not retry in step.
func retryDelay(attempt int) time.Duration {
	d := min(minRetryWait<<min(attempt, 10), maxRetryWait)
	return d/2 + mrand.N(d/2+1)
}

// sleep waits for d, or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
