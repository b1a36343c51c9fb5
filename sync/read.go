package sync

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fastjson"
)

// readBatch is how many events a reader asks the server for at a time:
// large, because reading a whole stream is throughput, not latency (some
// 25 MB of events in flight; 4096 read about half as fast).
const readBatch = 65536

// readProgressEvery is how often a read reports its progress, in events.
const readProgressEvery = 4096

// readIdleCheck is how long a read waits without a message before it
// asks the consumer whether any are left.
const readIdleCheck = time.Second

// ErrNoStream means the events stream does not exist (yet): no proxy has
// published to it.
var ErrNoStream = errors.New("no events stream")

// eventStream returns the events stream and what it holds now
// (ErrNoStream when it does not exist).
func (s *Store) eventStream(ctx context.Context, stream string) (jetstream.Stream, *jetstream.StreamInfo, error) {
	st, err := s.js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil, fmt.Errorf("%w %q", ErrNoStream, stream)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("events stream %q: %w", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("events stream %q: %w", stream, err)
	}
	return st, info, nil
}

// ReadEvents reads the events stream from its first event at or after
// since to its last event at the moment the read starts, in stream order,
// and calls fn with each message's data (valid only during the call).
// progress, when not nil, is told how many events there are to read and
// how many have been read, now and then. Nothing is acknowledged or
// changed: the stream is read through an ordered consumer of its own.
func (s *Store) ReadEvents(ctx context.Context, stream string, since time.Time, progress func(read, total uint64), fn func(data []byte)) (uint64, error) {
	st, info, err := s.eventStream(ctx, stream)
	if err != nil {
		return 0, err
	}
	if info.State.Msgs == 0 || !info.State.LastTime.IsZero() && info.State.LastTime.Before(since) {
		return 0, nil
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if !since.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("read events stream %q: %w", stream, err)
	}
	total := cons.CachedInfo().NumPending
	if total == 0 {
		return 0, nil
	}
	// The ordered consumer hands each message once, in order, even when
	// it recreates itself after a gap. The read ends at the stream's last
	// message when it began, or when nothing is pending (that message
	// gone: expired, evicted, deleted); messages published since come
	// after it. Consume calls back from the connection's delivery
	// goroutine, quicker than pulling messages one by one through an
	// iterator; mu keeps fn from running once the read has returned.
	last := info.State.LastSeq
	var (
		mu   sync.Mutex
		n    uint64
		seq  uint64 // the stream sequence of the last message read
		over bool
	)
	done := make(chan struct{})
	end := func() { // with mu held
		if !over {
			over = true
			close(done)
		}
	}
	fatal := make(chan error, 1)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if over {
			return
		}
		meta, err := m.Metadata()
		if err != nil || meta.Sequence.Stream > last {
			end()
			return
		}
		fn(m.Data())
		n++
		seq = meta.Sequence.Stream
		if progress != nil && n%readProgressEvery == 0 {
			progress(n, max(n, total))
		}
		if meta.Sequence.Stream == last || meta.NumPending == 0 {
			end()
		}
	}, jetstream.PullMaxMessages(readBatch), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		// The ordered consumer recreates itself after most errors; not
		// after these.
		if errors.Is(err, jetstream.ErrConnectionClosed) || errors.Is(err, jetstream.ErrStreamNotFound) {
			select {
			case fatal <- err:
			default:
			}
		}
	}))
	if err != nil {
		return 0, fmt.Errorf("read events stream %q: %w", stream, err)
	}
	stop := func() uint64 {
		cc.Stop()
		mu.Lock()
		defer mu.Unlock()
		over = true
		return n
	}
	// A message delivered before the ones after it were deleted says
	// more are pending; when the read stalls, the consumer says whether
	// anything is left.
	idle := time.NewTicker(readIdleCheck)
	defer idle.Stop()
	var before uint64
wait:
	for {
		select {
		case <-done:
			n = stop()
			break wait
		case err := <-fatal:
			return stop(), fmt.Errorf("read events stream %q: %w", stream, err)
		case <-ctx.Done():
			return stop(), ctx.Err()
		case <-idle.C:
			mu.Lock()
			now, at := n, seq
			mu.Unlock()
			if now != before {
				before = now
				continue
			}
			if ci, err := cons.Info(ctx); err == nil && ci.NumPending == 0 && ci.Delivered.Stream <= at {
				n = stop()
				break wait
			}
		}
	}
	if progress != nil {
		progress(n, max(n, total))
	}
	return n, nil
}

// EventDecoder reads events' JSON, as AppendJSON writes it, reusing its
// buffers from one event to the next (fastjson, in one pass over each
// object: several times quicker than encoding/json). Repeated strings —
// types, stages, segments, experiments — are shared, not allocated again.
// Not safe for concurrent use.
type EventDecoder struct {
	// Lean leaves out what a readout does not use: id, url, path,
	// referrer and profile_id stay empty, and anonymous_id but on
	// identify events (when "type" comes first, as AppendJSON writes).
	Lean bool
	// ID keeps the id with Lean: a readout folder skips an event whose
	// id it has folded.
	ID bool

	p    fastjson.Parser
	strs map[string]string
}

// maxShared bounds the strings a decoder keeps for sharing.
const maxShared = 1 << 20

// str returns b as a string, shared when it was seen before.
func (d *EventDecoder) str(b []byte) string {
	if s, ok := d.strs[string(b)]; ok { // no allocation to look up
		return s
	}
	s := string(b)
	if d.strs == nil {
		d.strs = map[string]string{}
	}
	if len(d.strs) < maxShared {
		d.strs[s] = s
	}
	return s
}

// Decode reads one event into e; every field is overwritten, and
// Segments reuses its array.
func (d *EventDecoder) Decode(data []byte, e *Event) error {
	v, err := d.p.ParseBytes(data)
	if err != nil {
		return err
	}
	o, err := v.Object()
	if err != nil {
		return errors.New("an event is a JSON object")
	}
	segs := e.Segments[:0]
	if segs == nil {
		segs = []string{} // as AppendJSON writes none: []
	}
	*e = Event{}
	var timeErr error
	o.Visit(func(key []byte, v *fastjson.Value) {
		if v.Type() != fastjson.TypeString {
			switch string(key) {
			case "segments":
				a, _ := v.Array()
				for _, s := range a {
					if s.Type() == fastjson.TypeString {
						segs = append(segs, d.str(s.GetStringBytes()))
					}
				}
			case "value":
				e.Value, _ = v.Float64()
			case "bot":
				e.Bot = v.Type() == fastjson.TypeTrue
			}
			return
		}
		switch string(key) {
		case "type":
			e.Type = d.str(v.GetStringBytes())
		case "time":
			if e.Time, err = time.Parse(time.RFC3339Nano, string(v.GetStringBytes())); err != nil {
				timeErr = fmt.Errorf("time: %w", err)
			}
		case "visitor":
			// One of very many: a string of its own is cheaper than a
			// lookup in a table as large as the audience.
			e.Visitor = string(v.GetStringBytes())
		case "stage":
			e.Stage = d.str(v.GetStringBytes())
		case "persona":
			e.Persona = d.str(v.GetStringBytes())
		case "goal":
			e.Goal = d.str(v.GetStringBytes())
		case "stage_from":
			e.StageFrom = d.str(v.GetStringBytes())
		case "stage_to":
			e.StageTo = d.str(v.GetStringBytes())
		case "experiment":
			e.Experiment = d.str(v.GetStringBytes())
		case "variant":
			e.Variant = d.str(v.GetStringBytes())
		case "device":
			e.Device = d.str(v.GetStringBytes())
		case "country":
			e.Country = d.str(v.GetStringBytes())
		case "utm_source":
			e.UTMSource = d.str(v.GetStringBytes())
		case "utm_campaign":
			e.UTMCampaign = d.str(v.GetStringBytes())
		case "anonymous_id":
			if d.Lean && e.Type == EventIdentify {
				// The one a readout needs: it joins a login's two ids.
				e.AnonymousID = string(v.GetStringBytes())
			}
		case "id":
			if d.Lean && d.ID {
				e.ID = string(v.GetStringBytes())
			}
		}
		if d.Lean {
			return
		}
		switch string(key) {
		case "id":
			e.ID = string(v.GetStringBytes())
		case "anonymous_id":
			e.AnonymousID = string(v.GetStringBytes())
		case "url":
			e.URL = string(v.GetStringBytes())
		case "path":
			e.Path = string(v.GetStringBytes())
		case "referrer":
			e.Referrer = string(v.GetStringBytes())
		case "profile_id":
			e.ProfileID = string(v.GetStringBytes())
		}
	})
	e.Segments = segs
	return timeErr
}
