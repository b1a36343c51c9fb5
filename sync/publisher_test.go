package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tailor-edge/tailor/internal/testkit"
)

const testStream = "TAILOR_EVENTS"

// publishPaths are the publisher's two ways of publishing a batch, for
// the tests and benchmarks that run on both: fast-ingest batches where
// the stream allows them, else a message per event (as against a server
// older than 2.14).
var publishPaths = []struct {
	name       string
	perMessage bool
}{
	{"fast-batch", false},
	{"per-message", true},
}

// publisher opens a Store at url and starts its event publisher with o
// (on testStream when o names none); both are closed when the test ends.
func publisher(tb testing.TB, url string, o PublisherOptions) (*Store, *Publisher) {
	tb.Helper()
	s := openStore(tb, url)
	if o.Stream == "" {
		o.Stream = testStream
	}
	p, err := s.Events(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		p.Close(ctx)
	})
	return s, p
}

func streamInfo(tb testing.TB, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return info
}

// stored is one message of the event stream.
type stored struct {
	subject, msgID string
	event          Event
}

// readStream returns every message of the stream, in order.
func readStream(tb testing.TB, js jetstream.JetStream, name string) []stored {
	tb.Helper()
	want := int(streamInfo(tb, js, name).State.Msgs)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	var out []stored
	for len(out) < want {
		batch, err := cons.Fetch(min(1000, want-len(out)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			tb.Fatal(err)
		}
		n := len(out)
		for m := range batch.Messages() {
			var e Event
			if err := json.Unmarshal(m.Data(), &e); err != nil {
				tb.Fatalf("message %d: %v: %s", len(out)+1, err, m.Data())
			}
			out = append(out, stored{subject: m.Subject(), msgID: m.Headers().Get(jetstream.MsgIDHeader), event: e})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			tb.Fatal(err)
		}
		if len(out) == n {
			tb.Fatalf("read %d of %d messages, then nothing", n, want)
		}
	}
	return out
}

// testEvent returns the i-th of a series of events of every type.
func testEvent(i int) Event {
	e := Event{
		ID:          NewEventID(),
		Time:        time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(i) * 1001 * time.Microsecond),
		Visitor:     fmt.Sprint("cust-", i%97),
		AnonymousID: fmt.Sprintf("anon-%04d", i%113),
		URL:         fmt.Sprintf("https://shop.example/products/%d?utm_campaign=spring&x=<y>", i),
		Path:        fmt.Sprintf("/products/%d", i),
		Referrer:    "https://search.example/?q=trail+shoes",
		Stage:       "interest",
		Persona:     "runner",
		Device:      []string{"desktop", "mobile", "tablet", "bot"}[i%4],
		Country:     []string{"DE", "", "FR"}[i%3],
		UTMSource:   []string{"", "newsletter"}[i%2],
		UTMCampaign: []string{"", "spring", "<sale>"}[i%3],
		Bot:         i%4 == 3,
	}
	if i%3 != 0 {
		e.Segments = []string{"vip", "mobile"}[:i%3]
	}
	switch i % 5 {
	case 0:
		e.Type = EventPageview
	case 1:
		e.Type, e.Goal, e.Value = EventGoal, "purchase", float64(i%4)*12.5
	case 2:
		e.Type, e.StageFrom, e.StageTo = EventStage, "interest", "intent"
	case 3:
		e.Type, e.Experiment, e.Variant = EventExposure, "hero-copy-test", "b"
	case 4:
		e.Type, e.ProfileID = EventIdentify, "jane@example.com"
	}
	return e
}

// wireForm is e as it reads back from its JSON.
func wireForm(e Event) Event {
	e.Time = e.Time.UTC()
	if e.Segments == nil {
		e.Segments = []string{}
	}
	if math.IsNaN(e.Value) || math.IsInf(e.Value, 0) {
		e.Value = 0
	}
	return e
}

func TestEventsCreatesTheStreamWithItsLimits(t *testing.T) {
	srv := startJetStream(t, 1)[0]
	_, p := publisher(t, srv.ClientURL(), PublisherOptions{
		MaxAge: time.Hour, MaxBytes: 64 << 20, DuplicateWindow: 90 * time.Second})
	waitFor(t, func() bool { return p.Stats().StreamReady })
	cfg := streamInfo(t, testkit.Client(t, srv.ClientURL()), testStream).Config
	if !slices.Equal(cfg.Subjects, []string{"tailor.events.>"}) || cfg.Storage != jetstream.FileStorage ||
		cfg.Discard != jetstream.DiscardOld || cfg.MaxAge != time.Hour || cfg.MaxBytes != 64<<20 ||
		cfg.Duplicates != 90*time.Second || cfg.Replicas != 1 || !cfg.AllowBatchPublish {
		t.Errorf("stream config = subjects %v, storage %v, discard %v, max age %v, max bytes %d, duplicates %v, replicas %d, allow_batched %v",
			cfg.Subjects, cfg.Storage, cfg.Discard, cfg.MaxAge, cfg.MaxBytes, cfg.Duplicates, cfg.Replicas, cfg.AllowBatchPublish)
	}
	if !p.batched.Load() {
		t.Error("the publisher does not use fast batches on a stream that allows them")
	}
}

func TestEventsDefaultsToUnboundedStreamWithTwoMinuteDuplicateWindow(t *testing.T) {
	srv := startJetStream(t, 1)[0]
	_, p := publisher(t, srv.ClientURL(), PublisherOptions{})
	waitFor(t, func() bool { return p.Stats().StreamReady })
	cfg := streamInfo(t, testkit.Client(t, srv.ClientURL()), testStream).Config
	if cfg.MaxAge != 0 || cfg.MaxBytes != -1 || cfg.Duplicates != 2*time.Minute {
		t.Errorf("stream limits = max age %v, max bytes %d, duplicates %v; want 0, -1, 2m",
			cfg.MaxAge, cfg.MaxBytes, cfg.Duplicates)
	}
}

func TestEventsUpdatesLimitsAndBatchingOfAnExistingStreamButNotItsSubjectsOrStorage(t *testing.T) {
	srv := startJetStream(t, 1)[0]
	js := testkit.Client(t, srv.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: testStream, Subjects: []string{"tailor.events.*"},
		Storage: jetstream.MemoryStorage, MaxAge: 10 * time.Minute, Duplicates: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, p := publisher(t, srv.ClientURL(), PublisherOptions{
		MaxAge: time.Hour, MaxBytes: 1 << 20, DuplicateWindow: time.Minute})
	waitFor(t, func() bool { return p.Stats().StreamReady })
	cfg := streamInfo(t, js, testStream).Config
	if cfg.MaxAge != time.Hour || cfg.MaxBytes != 1<<20 || cfg.Duplicates != time.Minute || !cfg.AllowBatchPublish {
		t.Errorf("limits = max age %v, max bytes %d, duplicates %v, allow_batched %v; want 1h, 1MiB, 1m, true",
			cfg.MaxAge, cfg.MaxBytes, cfg.Duplicates, cfg.AllowBatchPublish)
	}
	if !p.batched.Load() {
		t.Error("the publisher does not use fast batches on the updated stream")
	}
	if !slices.Equal(cfg.Subjects, []string{"tailor.events.*"}) || cfg.Storage != jetstream.MemoryStorage {
		t.Errorf("subjects %v, storage %v; want them as they were", cfg.Subjects, cfg.Storage)
	}
	e := testEvent(0)
	p.Publish(&e)
	waitFor(t, func() bool { return p.Stats().Published == 1 })
}

func TestEventsPublishedBeforeTheServerIsUpLandOnceItIs(t *testing.T) {
	dir, port := t.TempDir(), testkit.FreePort(t)
	start := time.Now()
	_, p := publisher(t, fmt.Sprintf("nats://127.0.0.1:%d", port), PublisherOptions{})
	for i := range 100 {
		e := testEvent(i)
		if !p.Publish(&e) {
			t.Fatalf("Publish(%d) = false with no server", i)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Open, Events and 100 Publish took %v with no server", d)
	}
	if st := p.Stats(); st.StreamReady || st.Depth != 100 {
		t.Errorf("with no server, Stats = %+v; want 100 queued, stream not ready", st)
	}
	srv := testkit.JetStream(t, dir, port)
	waitFor(t, func() bool { return p.Stats().Published == 100 })
	if n := streamInfo(t, testkit.Client(t, srv.ClientURL()), testStream).State.Msgs; n != 100 {
		t.Errorf("stream holds %d events, want 100", n)
	}
}

func TestDeletedStreamIsCreatedAgain(t *testing.T) {
	srv := startJetStream(t, 1)[0]
	_, p := publisher(t, srv.ClientURL(), PublisherOptions{})
	e := testEvent(0)
	p.Publish(&e)
	waitFor(t, func() bool { return p.Stats().Published == 1 })
	js := testkit.Client(t, srv.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, testStream); err != nil {
		t.Fatal(err)
	}
	e = testEvent(1)
	p.Publish(&e)
	waitFor(t, func() bool { return p.Stats().Published == 2 })
	if got := readStream(t, js, testStream); len(got) != 1 || got[0].event.ID != e.ID {
		t.Errorf("the stream created again holds %d events, want the one published since", len(got))
	}
}

func TestEventsRejectsBadOptions(t *testing.T) {
	srv := startJetStream(t, 1)[0]
	s := openStore(t, srv.ClientURL())
	for name, o := range map[string]PublisherOptions{
		"no stream":                {},
		"stream with a dot":        {Stream: "TAILOR.EVENTS"},
		"stream with a space":      {Stream: "TAILOR EVENTS"},
		"negative max age":         {Stream: testStream, MaxAge: -time.Second},
		"max age under 100ms":      {Stream: testStream, MaxAge: time.Millisecond},
		"negative max bytes":       {Stream: testStream, MaxBytes: -1},
		"window past max age":      {Stream: testStream, MaxAge: time.Minute, DuplicateWindow: time.Hour},
		"window under 100ms":       {Stream: testStream, DuplicateWindow: time.Millisecond},
		"six replicas":             {Stream: testStream, Replicas: 6},
		"negative queue":           {Stream: testStream, Queue: -1},
		"negative batch":           {Stream: testStream, Batch: -1},
		"negative duplicateWindow": {Stream: testStream, DuplicateWindow: -time.Second},
	} {
		if p, err := s.Events(o); err == nil {
			p.Close(context.Background())
			t.Errorf("%s: Events(%+v) = nil error", name, o)
		}
	}
	// A short max age shortens the default window with it.
	p, err := s.Events(PublisherOptions{Stream: testStream, MaxAge: time.Minute})
	if err != nil {
		t.Fatalf("Events with max age 1m: %v", err)
	}
	defer p.Close(context.Background())
	if p.stream.Duplicates != time.Minute {
		t.Errorf("duplicate window = %v with max age 1m, want 1m", p.stream.Duplicates)
	}
}

func TestPublishedEventsArriveOnceInOrderWithTheirIDs(t *testing.T) {
	for _, path := range publishPaths {
		t.Run(path.name, func(t *testing.T) {
			// The events are queued before the server is up, so that
			// every batch is a full one: fast batches where the stream
			// allows them.
			dir, port := t.TempDir(), testkit.FreePort(t)
			_, p := publisher(t, fmt.Sprintf("nats://127.0.0.1:%d", port), PublisherOptions{Batch: 64, perMessage: path.perMessage})
			const n = 1000
			sent := make([]Event, n)
			for i := range sent {
				sent[i] = testEvent(i)
				if !p.Publish(&sent[i]) {
					t.Fatalf("Publish(%d) = false", i)
				}
			}
			srv := testkit.JetStream(t, dir, port)
			wire := watchWire(t, srv.ClientURL())
			waitFor(t, func() bool { return p.Stats().Published == n })

			fast := !path.perMessage
			js := testkit.Client(t, srv.ClientURL())
			if allowed := streamInfo(t, js, testStream).Config.AllowBatchPublish; allowed != fast || p.batched.Load() != fast {
				t.Errorf("stream allow_batched = %v, publisher uses fast batches = %v; want %v", allowed, p.batched.Load(), fast)
			}
			if msgs, batched := wire(); msgs == 0 || fast && batched != msgs || !fast && batched != 0 {
				t.Errorf("%d of the %d event messages seen went in fast batches", batched, msgs)
			}
			got := readStream(t, js, testStream)
			if len(got) != n {
				t.Fatalf("stream holds %d events, want %d", len(got), n)
			}
			for i, m := range got {
				want := sent[i]
				if m.subject != "tailor.events."+want.Type || m.msgID != want.ID {
					t.Fatalf("message %d: subject %q, Nats-Msg-Id %q; want %q, %q", i+1, m.subject, m.msgID, want.Subject(), want.ID)
				}
				if !reflect.DeepEqual(m.event, wireForm(want)) {
					t.Fatalf("message %d = %+v\nwant %+v", i+1, m.event, wireForm(want))
				}
			}
			if st := p.Stats(); st.Accepted != n || st.Dropped != 0 || st.Retried != 0 || st.Depth != 0 {
				t.Errorf("Stats = %+v", st)
			}
		})
	}
}

// watchWire subscribes to the event subjects as they cross the server and
// returns a func that counts the events seen so far, and how many of them
// went in a fast batch (their reply subject says so).
func watchWire(tb testing.TB, url string) func() (msgs, batched int) {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	var mu sync.Mutex
	var msgs, batched int
	_, err = nc.Subscribe(EventSubjects, func(m *nats.Msg) {
		if len(m.Data) == 0 {
			return // a fast batch's ping, not an event
		}
		mu.Lock()
		defer mu.Unlock()
		msgs++
		if strings.HasSuffix(m.Reply, ".$FI") {
			batched++
		}
	})
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		tb.Fatal(err)
	}
	return func() (int, int) {
		if err := nc.Flush(); err != nil { // what the server sent has come
			tb.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return msgs, batched
	}
}

func TestPublishingAnEventTwiceStoresItOnce(t *testing.T) {
	srv := startJetStream(t, 1)[0]
	_, p := publisher(t, srv.ClientURL(), PublisherOptions{})
	e := testEvent(1)
	p.Publish(&e)
	waitFor(t, func() bool { return p.Stats().Published == 1 })
	p.Publish(&e)
	waitFor(t, func() bool { return p.Stats().Published == 2 })
	if n := streamInfo(t, testkit.Client(t, srv.ClientURL()), testStream).State.Msgs; n != 1 {
		t.Errorf("stream holds %d messages after the same event twice, want 1", n)
	}
}

func TestPublishRefusesATypeThatIsNoSubjectToken(t *testing.T) {
	srv := startJetStream(t, 1)[0]
	_, p := publisher(t, srv.ClientURL(), PublisherOptions{})
	for _, typ := range []string{"", "page.view", "page view", "*", ">", "a\nb"} {
		if p.Publish(&Event{Type: typ}) {
			t.Errorf("Publish(type %q) = true", typ)
		}
	}
	if st := p.Stats(); st.Dropped != 6 || st.Accepted != 0 {
		t.Errorf("Stats = %+v; want 6 dropped", st)
	}
}

func TestPublishDoesNotKeepTheCallersEvent(t *testing.T) {
	srv := startJetStream(t, 1)[0]
	_, p := publisher(t, srv.ClientURL(), PublisherOptions{})
	segs := []string{"vip"}
	e := Event{Type: EventPageview, Segments: segs}
	p.Publish(&e)
	segs[0] = "changed"
	waitFor(t, func() bool { return p.Stats().Published == 1 })
	got := readStream(t, testkit.Client(t, srv.ClientURL()), testStream)[0]
	if got.event.ID == "" || got.msgID != got.event.ID || got.event.Time.IsZero() || !slices.Equal(got.event.Segments, []string{"vip"}) {
		t.Errorf("stored %+v (id %q); want a fresh id and time and the segments as published", got.event, got.msgID)
	}
	if e.ID != "" || !e.Time.IsZero() {
		t.Errorf("Publish modified its argument: %+v", e)
	}
}

func TestNATSDownQueuesUpToTheBoundThenDropsAndDeliversOnceAfterRestart(t *testing.T) {
	for _, path := range publishPaths {
		t.Run(path.name, func(t *testing.T) {
			dir, port := t.TempDir(), testkit.FreePort(t)
			srv := testkit.JetStream(t, dir, port)
			const queue, batch = 2000, 100
			s, p := publisher(t, srv.ClientURL(), PublisherOptions{Queue: queue, Batch: batch, perMessage: path.perMessage})
			for i := range 10 {
				e := testEvent(i)
				p.Publish(&e)
			}
			waitFor(t, func() bool { return p.Stats().Published == 10 })

			srv.Shutdown()
			srv.WaitForShutdown()
			waitFor(t, func() bool { return !s.Connected() })
			var accepted, refused int
			var slowest time.Duration
			for i := range 10000 {
				e := testEvent(10 + i)
				start := time.Now()
				ok := p.Publish(&e)
				slowest = max(slowest, time.Since(start))
				if ok {
					accepted++
				} else {
					refused++
				}
			}
			t.Logf("with NATS down: %d accepted, %d refused, slowest Publish %v", accepted, refused, slowest)
			if slowest > 50*time.Millisecond {
				t.Errorf("slowest Publish took %v with NATS down", slowest)
			}
			// The queue, and at most one batch taken from it.
			if accepted < queue || accepted > queue+batch {
				t.Errorf("%d accepted with NATS down; want %d to %d", accepted, queue, queue+batch)
			}
			st := p.Stats()
			if st.Dropped != uint64(refused) || st.Accepted != uint64(10+accepted) || st.Published != 10 {
				t.Errorf("Stats = %+v; want %d dropped, %d accepted", st, refused, 10+accepted)
			}
			waitFor(t, func() bool { return p.Stats().Depth == accepted })

			srv = testkit.JetStream(t, dir, port)
			waitFor(t, func() bool { return p.Stats().Published == uint64(10+accepted) })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}
			st = p.Stats()
			got := readStream(t, testkit.Client(t, srv.ClientURL()), testStream)
			if dropped := st.Dropped - uint64(refused); len(got) != int(st.Accepted-dropped) || dropped != 0 {
				t.Errorf("stream holds %d events; accepted %d, dropped at close %d", len(got), st.Accepted, dropped)
			}
			assertDistinctIDs(t, got)
		})
	}
}

func TestServerStoppedMidBatchStoresEveryEventOnce(t *testing.T) {
	for _, path := range publishPaths {
		t.Run(path.name, func(t *testing.T) {
			dir, port := t.TempDir(), testkit.FreePort(t)
			srv := testkit.JetStream(t, dir, port)
			s, p := publisher(t, srv.ClientURL(), PublisherOptions{perMessage: path.perMessage})
			waitFor(t, func() bool { return p.Stats().StreamReady })
			const n = 10000
			ids := make([]string, n)
			for i := range n {
				e := testEvent(i)
				ids[i] = e.ID
				if !p.Publish(&e) {
					t.Fatalf("Publish(%d) = false", i)
				}
			}
			// Stop the server while the publisher is busy with the queue.
			waitFor(t, func() bool { return p.Stats().Published >= 500 })
			srv.Shutdown()
			at := p.Stats().Published
			srv.WaitForShutdown()
			waitFor(t, func() bool { return !s.Connected() })
			if at >= n {
				t.Fatalf("the server stopped after all %d events were published", n)
			}
			srv = testkit.JetStream(t, dir, port)
			back := time.Now()
			waitWithin(t, 20*time.Second, func() bool { return p.Stats().Published == n })
			st := p.Stats()
			t.Logf("stopped at %d published; %d publishes retried; all published %v after the restart", at, st.Retried, time.Since(back))
			if st.Retried == 0 {
				// Timing decides whether the stop lands within a batch or between
				// two; the counts below must hold either way.
				t.Log("the server stopped between two batches: nothing needed a retry")
			}
			got := readStream(t, testkit.Client(t, srv.ClientURL()), testStream)
			if len(got) != n || st.Accepted != n || st.Dropped != 0 {
				t.Errorf("stream holds %d events; want %d (Stats %+v)", len(got), n, st)
			}
			assertDistinctIDs(t, got)
			if !path.perMessage {
				// A fast batch is stored up to its first gap and no
				// further, and retried from there: nothing overtakes.
				for i, m := range got {
					if i < n && m.msgID != ids[i] {
						t.Fatalf("message %d is event %s, want %s: out of order", i+1, m.msgID, ids[i])
					}
				}
			}
		})
	}
}

// TestFastBatchToAMissingStreamCreatesItAgain: a fast batch that nothing
// stores fails at once (its first message finds no responder), and the
// publisher looks for the stream again before the next try.
func TestFastBatchToAMissingStreamCreatesItAgain(t *testing.T) {
	dir, port := t.TempDir(), testkit.FreePort(t)
	srv := testkit.JetStream(t, dir, port)
	s, p := publisher(t, srv.ClientURL(), PublisherOptions{Batch: 64})
	e := testEvent(0)
	p.Publish(&e)
	waitFor(t, func() bool { return p.Stats().Published == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := testkit.Client(t, srv.ClientURL()).DeleteStream(ctx, testStream); err != nil {
		t.Fatal(err)
	}
	// Queue a full batch while the server is away, so that the first
	// publish after it is back is a fast batch to the missing stream.
	srv.Shutdown()
	srv.WaitForShutdown()
	waitFor(t, func() bool { return !s.Connected() })
	const n = 200
	ids := make([]string, n)
	for i := range n {
		e := testEvent(i)
		ids[i] = e.ID
		p.Publish(&e)
	}
	srv = testkit.JetStream(t, dir, port)
	// Well within ackWait: the publisher did not wait for the batch's
	// acknowledgements to time out.
	waitWithin(t, ackWait/2, func() bool { return p.Stats().Published == n+1 })
	got := readStream(t, testkit.Client(t, srv.ClientURL()), testStream)
	if len(got) != n {
		t.Fatalf("the stream created again holds %d events, want the %d published since", len(got), n)
	}
	for i, m := range got {
		if m.msgID != ids[i] {
			t.Fatalf("message %d is event %s, want %s", i+1, m.msgID, ids[i])
		}
	}
	if !p.batched.Load() {
		t.Error("the publisher no longer uses fast batches")
	}
}

func assertDistinctIDs(t *testing.T, got []stored) {
	t.Helper()
	seen := make(map[string]bool, len(got))
	for i, m := range got {
		if seen[m.event.ID] {
			t.Fatalf("message %d: event %s stored twice", i+1, m.event.ID)
		}
		seen[m.event.ID] = true
	}
}

func TestCloseFlushesTheQueue(t *testing.T) {
	srv := startJetStream(t, 1)[0]
	_, p := publisher(t, srv.ClientURL(), PublisherOptions{})
	const n = 5000
	for i := range n {
		e := testEvent(i)
		p.Publish(&e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if st := p.Stats(); st.Published != n || st.Depth != 0 || st.Dropped != 0 {
		t.Errorf("after Close, Stats = %+v; want all %d published", st, n)
	}
	if got := streamInfo(t, testkit.Client(t, srv.ClientURL()), testStream).State.Msgs; got != n {
		t.Errorf("stream holds %d events after Close, want %d", got, n)
	}
	e := testEvent(0)
	if p.Publish(&e) {
		t.Error("Publish after Close = true")
	}
	if err := p.Close(ctx); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestCloseDropsWhatItCannotFlushInTime(t *testing.T) {
	srv := startJetStream(t, 1)[0]
	s, p := publisher(t, srv.ClientURL(), PublisherOptions{})
	waitFor(t, func() bool { return p.Stats().StreamReady })
	srv.Shutdown()
	srv.WaitForShutdown()
	waitFor(t, func() bool { return !s.Connected() })
	for i := range 100 {
		e := testEvent(i)
		p.Publish(&e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := p.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "100 dropped") {
		t.Errorf("Close = %v; want 100 dropped at the deadline", err)
	}
	if st := p.Stats(); st.Dropped != 100 || st.Depth != 0 || st.Published != 0 {
		t.Errorf("Stats = %+v; want 100 dropped", st)
	}
}

func TestCloseGivesUpInTimeWhenTheServerStopsMidBatch(t *testing.T) {
	for _, path := range publishPaths {
		t.Run(path.name, func(t *testing.T) {
			srv := startJetStream(t, 1)[0]
			_, p := publisher(t, srv.ClientURL(), PublisherOptions{perMessage: path.perMessage})
			waitFor(t, func() bool { return p.Stats().StreamReady })
			const n = 10000
			for i := range n {
				e := testEvent(i)
				p.Publish(&e)
			}
			waitFor(t, func() bool { return p.Stats().Published > 0 })
			srv.Shutdown()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := p.Close(ctx)
			took := time.Since(start)
			srv.WaitForShutdown()
			st := p.Stats()
			t.Logf("Close took %v: %v; Stats %+v", took, err, st)
			// Not ackWait: a batch waiting for its acknowledgements is
			// left behind.
			if took > time.Second {
				t.Errorf("Close with a 200ms deadline took %v", took)
			}
			if st.Published+st.Dropped != n || st.Depth != 0 {
				t.Errorf("Stats = %+v; want every event published or dropped", st)
			}
			if st.Published < n && err == nil {
				t.Errorf("Close = nil with %d of %d events published", st.Published, n)
			}
		})
	}
}

func TestCloseWithNothingQueuedDoesNotWaitForNATS(t *testing.T) {
	_, p := publisher(t, fmt.Sprintf("nats://127.0.0.1:%d", testkit.FreePort(t)), PublisherOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.Close(ctx); err != nil {
		t.Errorf("Close = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close with nothing queued took %v with no server", d)
	}
}

// BenchmarkPublisherThroughput measures the events per second a publisher
// moves into an in-process server (file storage), and the CPU time each
// costs: from the first Publish to the last acknowledgement, the producer
// keeping the queue at most half full. It runs for fast batches and for
// per-message publishing.
func BenchmarkPublisherThroughput(b *testing.B) {
	for _, path := range publishPaths {
		b.Run(path.name, func(b *testing.B) {
			srv := startJetStream(b, 1)[0]
			const queue = DefaultEventQueue
			_, p := publisher(b, srv.ClientURL(), PublisherOptions{Queue: queue, perMessage: path.perMessage})
			waitWithin(b, 10*time.Second, func() bool { return p.Stats().StreamReady })
			if p.batched.Load() == path.perMessage {
				b.Fatalf("publishing in fast batches = %v", p.batched.Load())
			}
			e := testEvent(1)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, cpuOK := processCPU()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if !testkit.Within(time.Minute, 100*time.Microsecond, func() bool { return p.Stats().Depth <= queue/2 }) {
					b.Fatal("the queue did not drain to half within a minute")
				}
				e.ID = "" // Publish gives it one
				if !p.Publish(&e) {
					b.Fatal("Publish = false")
				}
			}
			waitWithin(b, time.Minute, func() bool { return p.Stats().Published == uint64(b.N) })
			elapsed := time.Since(start)
			cpu1, _ := processCPU()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			if cpuOK {
				// The client's and the in-process server's CPU together,
				// the producer's too (little beside them).
				b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "cpu-us/event")
			}
		})
	}
}
