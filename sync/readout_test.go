//go:build !nonats

package sync

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tailor-edge/tailor/internal/testkit"
)

// idFold counts each event id it folds: a double count shows as a 2.
type idFold struct {
	IDs map[string]int `json:"ids"`
}

func (c *idFold) Add(e *Event) { c.IDs[e.ID]++ }

func (c *idFold) WriteTo(w io.Writer) (int64, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return 0, err
	}
	n, err := w.Write(b)
	return int64(n), err
}

func (c *idFold) Readout(time.Time) ([]byte, error) { return json.Marshal(c) }

func idFolderOptions(o FolderOptions) FolderOptions {
	if o.Stream == "" {
		o.Stream = testStream
	}
	o.New = func() Fold { return &idFold{IDs: map[string]int{}} }
	o.Load = func(r io.Reader) (Fold, error) {
		c := &idFold{}
		if err := json.NewDecoder(r).Decode(c); err != nil {
			return nil, err
		}
		return c, nil
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = time.Second
	}
	return o
}

func newFolder(tb testing.TB, s *Store, o FolderOptions) *Folder {
	tb.Helper()
	f, err := s.Folder(idFolderOptions(o))
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// readoutIDs reads the published readout's id counts.
func readoutIDs(tb testing.TB, s *Store) (*Readout, map[string]int) {
	tb.Helper()
	r, err := s.ReadReadout(context.Background(), "", testStream)
	if err != nil {
		tb.Fatal(err)
	}
	var c idFold
	if err := json.Unmarshal(r.Data, &c); err != nil {
		tb.Fatal(err)
	}
	return r, c.IDs
}

// checkOnce fails unless ids holds each of want once, and nothing else.
func checkOnce(tb testing.TB, ids map[string]int, want []string) {
	tb.Helper()
	for _, id := range want {
		if ids[id] != 1 {
			tb.Errorf("event %s counted %d times", id, ids[id])
		}
	}
	if len(ids) != len(want) {
		tb.Errorf("%d ids counted, want %d", len(ids), len(want))
	}
}

// publishRaw publishes events as messages of their own, each with its id
// as Nats-Msg-Id unless msgID is false (a copy the stream's duplicate
// window no longer catches), and returns their ids.
func publishRaw(tb testing.TB, js jetstream.JetStream, events []Event, msgID bool) []string {
	tb.Helper()
	ctx := context.Background()
	var ids []string
	for _, e := range events {
		m := &nats.Msg{Subject: e.Subject(), Data: e.AppendJSON(nil), Header: nats.Header{}}
		if msgID {
			m.Header.Set(jetstream.MsgIDHeader, e.ID)
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			tb.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	return ids
}

func makeEvents(from, n int) []Event {
	out := make([]Event, n)
	for i := range out {
		out[i] = testEvent(from + i)
	}
	return out
}

func createEventStream(tb testing.TB, js jetstream.JetStream) {
	tb.Helper()
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: testStream, Subjects: []string{EventSubjects}, Duplicates: time.Minute}); err != nil {
		tb.Fatal(err)
	}
}

func TestCatchUpFoldsEachEventOnceAcrossRestartsAndLateCopies(t *testing.T) {
	srv := testkit.JetStream(t, "", -1)
	js := testkit.Client(t, srv.ClientURL())
	createEventStream(t, js)
	s := openStore(t, srv.ClientURL())
	ctx := context.Background()
	want := publishRaw(t, js, makeEvents(0, 5000), true)

	f := newFolder(t, s, FolderOptions{})
	var last [2]uint64
	r, err := f.CatchUp(ctx, func(done, total uint64) { last = [2]uint64{done, total} })
	if err != nil {
		t.Fatal(err)
	}
	if r.Folded != 5000 || r.Events != 5000 || last != [2]uint64{5000, 5000} {
		t.Errorf("caught up to %d, %d events, progress %v; want 5000", r.Folded, r.Events, last)
	}
	_, ids := readoutIDs(t, s)
	checkOnce(t, ids, want)
	if holder, _ := s.LeaseHolder(ctx, "", testStream); holder != "" {
		t.Errorf("lease still held by %q after CatchUp", holder)
	}

	// Copies of folded events, the stream no longer catching them, and
	// new events: a second CatchUp, from the snapshot, folds the new ones
	// alone.
	fresh := publishRaw(t, js, makeEvents(0, 10), false) // new ids: new events
	dups := make([]Event, 10)
	for i := range dups {
		e := testEvent(i)
		e.ID = want[i]
		dups[i] = e
	}
	publishRaw(t, js, dups, false)
	more := publishRaw(t, js, makeEvents(5000, 100), true)
	want = append(append(want, fresh...), more...)
	r, err = f.CatchUp(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Duplicates != 10 || r.Events != 5110 || r.Folded != 5120 {
		t.Errorf("second catch-up: %d events, %d duplicates, folded to %d; want 5110, 10, 5120", r.Events, r.Duplicates, r.Folded)
	}
	_, ids = readoutIDs(t, s)
	checkOnce(t, ids, want)

	// A folder on another connection (another edge, the CLI) starts from
	// the snapshot: nothing new, nothing counted again.
	s2 := openStore(t, srv.ClientURL())
	r, err = newFolder(t, s2, FolderOptions{}).CatchUp(ctx, nil)
	if err != nil || r.Events != 5110 {
		t.Fatalf("a new folder: %+v, %v", r, err)
	}
	_, ids = readoutIDs(t, s)
	checkOnce(t, ids, want)
}

func TestFolderKilledBetweenSnapshotsCountsNothingTwice(t *testing.T) {
	srv := testkit.JetStream(t, "", -1)
	js := testkit.Client(t, srv.ClientURL())
	createEventStream(t, js)
	want := publishRaw(t, js, makeEvents(0, 3000), true)

	// A folder that snapshots every 1,000 events, on a connection of its
	// own, killed (its connection closed) once it has folded 500 events
	// past its snapshot: those are in no snapshot.
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	killed := &Store{nc: nc, log: slog.Default()}
	killed.js, _ = jetstream.New(nc)
	f := newFolder(t, killed, FolderOptions{SnapshotEvery: 1000, LeaseTTL: time.Second})
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- f.Run(ctx) }()
	waitWithin(t, 10*time.Second, func() bool { st := f.Stats(); return st.Snapshots >= 1 && st.Seq == 3000 })
	want = append(want, publishRaw(t, js, makeEvents(3000, 500), true)...)
	waitWithin(t, 10*time.Second, func() bool { return f.Stats().Seq == 3500 })
	nc.Close()
	cancel()
	<-done
	s := openStore(t, srv.ClientURL())
	obj, err := testkit.Client(t, srv.ClientURL()).ObjectStore(context.Background(), DefaultReadoutBucket)
	if err != nil {
		t.Fatal(err)
	}
	data, err := obj.GetBytes(context.Background(), testStream)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"seq":3000,`)) {
		t.Fatalf("the killed folder's snapshot: %q; the test wants it at 3000", data[:200])
	}
	more := publishRaw(t, js, makeEvents(3500, 200), true)
	want = append(want, more...)

	// The lease expires (1 s); another folder takes it, starts from the
	// snapshot and folds the rest once.
	g := newFolder(t, s, FolderOptions{SnapshotEvery: 1000})
	start := time.Now()
	var r *Readout
	waitWithin(t, 10*time.Second, func() bool {
		r, err = g.CatchUp(context.Background(), nil)
		return !errors.Is(err, ErrLeaseHeld)
	})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("the dead folder's lease took %v to expire; its ttl is 1s", time.Since(start))
	}
	if r.Events != 3700 || r.Folded != 3700 {
		t.Errorf("after the restart: %d events to %d; want 3700", r.Events, r.Folded)
	}
	_, ids := readoutIDs(t, s)
	checkOnce(t, ids, want)
	// The durable consumer is acknowledged up to the snapshot.
	st, _ := js.Stream(context.Background(), testStream)
	ci, err := st.Consumer(context.Background(), readoutConsumer)
	if err != nil {
		t.Fatal(err)
	}
	if info := ci.CachedInfo(); info.AckFloor.Stream != 3700 || info.Config.AckPolicy != jetstream.AckAllPolicy {
		t.Errorf("consumer acknowledged to %d (policy %v); want 3700, ack all", info.AckFloor.Stream, info.Config.AckPolicy)
	}
}

func TestTwoFoldersNeverFoldAtOnceAndTheLeasePasses(t *testing.T) {
	srv := testkit.JetStream(t, "", -1)
	js := testkit.Client(t, srv.ClientURL())
	createEventStream(t, js)
	want := publishRaw(t, js, makeEvents(0, 2000), true)

	folders := make([]*Folder, 2)
	cancels := make([]context.CancelFunc, 2)
	dones := make([]chan error, 2)
	for i := range folders {
		folders[i] = newFolder(t, openStore(t, srv.ClientURL()), FolderOptions{LeaseTTL: time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		cancels[i], dones[i] = cancel, make(chan error, 1)
		go func() { dones[i] <- folders[i].Run(ctx) }()
	}
	defer func() {
		for i := range cancels {
			cancels[i]()
		}
	}()
	holder := func() int {
		h := -1
		for i, f := range folders {
			if f.Stats().Holding {
				if h >= 0 {
					t.Fatal("both folders hold the lease")
				}
				h = i
			}
		}
		return h
	}
	s := openStore(t, srv.ClientURL())
	waitWithin(t, 10*time.Second, func() bool {
		holder()
		r, err := s.ReadReadout(context.Background(), "", testStream)
		return err == nil && r.Folded == 2000
	})
	// Watch them for a while, events flowing: never both.
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		holder()
		if i%50 == 0 {
			want = append(want, publishRaw(t, js, makeEvents(2000+i, 1), true)...)
		}
		time.Sleep(5 * time.Millisecond)
	}
	h := holder()
	if h < 0 {
		t.Fatal("no folder holds the lease")
	}
	// The holder stops: the other takes over and goes on from its
	// snapshot.
	cancels[h]()
	<-dones[h]
	other := folders[1-h]
	waitWithin(t, 10*time.Second, func() bool { return other.Stats().Holding })
	more := publishRaw(t, js, makeEvents(9000, 10), true)
	want = append(want, more...)
	n := uint64(len(want))
	waitWithin(t, 10*time.Second, func() bool {
		r, err := s.ReadReadout(context.Background(), "", testStream)
		return err == nil && r.Folded == n
	})
	r, ids := readoutIDs(t, s)
	checkOnce(t, ids, want)
	if r.Holder != other.Holder() {
		t.Errorf("readout published by %q, want %q", r.Holder, other.Holder())
	}
}

// The record of recent ids forgets those an hour older than the newest,
// and survives a snapshot.
func TestDedupeRecordIsBoundedAndSurvivesASnapshot(t *testing.T) {
	var d dedupe
	for i := range 5000 {
		if d.seen(fmt.Sprint("id-", i), int64(i)*int64(time.Second)) {
			t.Fatalf("id %d seen before it was", i)
		}
	}
	// The newest is at 4999 s: ids of before 1399 s are forgotten.
	if !d.seen("id-4000", 0) || !d.seen("id-1399", 0) || d.seen("id-1398", 0) {
		t.Error("the record does not hold exactly the last hour")
	}
	if n := len(d.ids); n != 3601+1 { // and id-1398, just recorded again
		t.Errorf("%d ids kept, want 3602", n)
	}
	var buf bytes.Buffer
	d.writeTo(&buf)
	var back dedupe
	if err := back.readFrom(bufio.NewReader(&buf)); err != nil {
		t.Fatal(err)
	}
	if len(back.ids) != len(d.ids) || !back.seen("id-4999", 0) || back.newest != d.newest {
		t.Errorf("read back: %d ids, newest %d; want %d, %d", len(back.ids), back.newest, len(d.ids), d.newest)
	}
}

// countFold counts: the folder's own cost, without a readout's.
type countFold struct{ n int }

func (c *countFold) Add(*Event) { c.n++ }
func (c *countFold) WriteTo(w io.Writer) (int64, error) {
	n, err := fmt.Fprint(w, c.n)
	return int64(n), err
}
func (c *countFold) Readout(time.Time) ([]byte, error) { return []byte(fmt.Sprint(c.n)), nil }

// BenchmarkCatchUp folds a stream of 200,000 events from its start, as
// tailor report does with no snapshot: the consumer, decoding and the
// id record, against BenchmarkReadEvents's plain read. Reports events/s.
func BenchmarkCatchUp(b *testing.B) {
	srv := testkit.JetStream(b, b.TempDir(), -1)
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("CATCHUP_EVENTS")); err == nil {
		n = v
	}
	fillStream(b, srv.ClientURL(), n)
	s := openStore(b, srv.ClientURL())
	b.ResetTimer()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		f, err := s.Folder(FolderOptions{Stream: testStream, Bucket: fmt.Sprint("bench_", i),
			New:  func() Fold { return &countFold{} },
			Load: func(io.Reader) (Fold, error) { return &countFold{}, nil }})
		if err != nil {
			b.Fatal(err)
		}
		r, err := f.CatchUp(context.Background(), nil)
		if err != nil || r.Events != uint64(n) {
			b.Fatalf("%+v, %v", r, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "events/s")
}
