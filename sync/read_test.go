//go:build !nonats

package sync

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/internal/testkit"
)

// fillStream publishes n testEvents to the test stream at url and waits
// until the stream holds them.
func fillStream(tb testing.TB, url string, n int) {
	tb.Helper()
	_, p := publisher(tb, url, PublisherOptions{Queue: n + 1})
	for i := range n {
		e := testEvent(i)
		if !p.Publish(&e) {
			tb.Fatalf("event %d not queued", i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		tb.Fatal(err)
	}
}

func TestReadEventsReadsTheStreamInOrderFromATime(t *testing.T) {
	srv := testkit.JetStream(t, t.TempDir(), -1)
	s := openStore(t, srv.ClientURL())
	ctx := context.Background()
	if _, err := s.ReadEvents(ctx, testStream, time.Time{}, nil, func([]byte) {}); !errors.Is(err, ErrNoStream) {
		t.Errorf("a missing stream: %v, want ErrNoStream", err)
	}
	const n = 10_000
	fillStream(t, srv.ClientURL(), n)

	var d EventDecoder
	var got []Event
	var decodeErr error
	var lastProgress [2]uint64
	read, err := s.ReadEvents(ctx, testStream, time.Time{}, func(r, total uint64) { lastProgress = [2]uint64{r, total} }, func(data []byte) {
		var e Event
		if err := d.Decode(data, &e); err != nil && decodeErr == nil {
			decodeErr = fmt.Errorf("event %d: %v: %s", len(got), err, data)
		}
		got = append(got, e)
	})
	if decodeErr != nil {
		t.Fatal(decodeErr)
	}
	if err != nil || read != n || len(got) != n || lastProgress != [2]uint64{n, n} {
		t.Fatalf("read %d events (%d decoded, progress %v), err %v; want %d", read, len(got), lastProgress, err, n)
	}
	for i := range got {
		if want := wireForm(testEvent(i)); !reflect.DeepEqual(got[i], want) {
			want.ID = got[i].ID // minted on publish
			if !reflect.DeepEqual(got[i], want) {
				t.Fatalf("event %d = %+v\nwant %+v", i, got[i], want)
			}
		}
	}
	// Reading starts at the first event stored at or after since, by the
	// time the stream stored it: nothing is stored after now.
	read, err = s.ReadEvents(ctx, testStream, time.Now().Add(time.Second), nil, func([]byte) {})
	if err != nil || read != 0 {
		t.Errorf("from a second from now: %d events, %v; want none", read, err)
	}
	// A read stops at the stream's end as it was when it began: events
	// published meanwhile are for the next read.
	_, more := publisher(t, srv.ClientURL(), PublisherOptions{Queue: 100})
	first := true
	read, err = s.ReadEvents(ctx, testStream, time.Time{}, nil, func([]byte) {
		if first {
			first = false
			for i := range 10 {
				e := testEvent(n + i)
				more.Publish(&e)
			}
			fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			more.Close(fctx)
		}
	})
	if err != nil || read != n {
		t.Errorf("with 10 events published during the read: %d events, %v; want %d", read, err, n)
	}
	// Events deleted (expired, evicted) during a read, the last among
	// them, do not keep it waiting for them.
	js := testkit.Client(t, srv.ClientURL())
	st, err := js.Stream(ctx, testStream)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info(ctx)
	last := info.State.LastSeq
	first = true
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	read, err = s.ReadEvents(rctx, testStream, time.Time{}, nil, func([]byte) {
		if first {
			first = false
			for seq := last - 5; seq <= last; seq++ {
				if err := st.DeleteMsg(ctx, seq); err != nil {
					t.Errorf("delete %d: %v", seq, err)
				}
			}
		}
	})
	// (Those already on their way to the reader when deleted are read.)
	if err != nil || read < n+10-6 || read > n+10 {
		t.Errorf("with the last 6 events deleted during the read: %d events, %v; want %d to %d", read, err, n+10-6, n+10)
	}
	// A cancelled read stops at once.
	cctx, cancelRead := context.WithCancel(ctx)
	read, err = s.ReadEvents(cctx, testStream, time.Time{}, nil, func([]byte) { cancelRead() })
	if !errors.Is(err, context.Canceled) || read >= n {
		t.Errorf("a cancelled read: %d events, %v; want it stopped early", read, err)
	}
}

func TestDecodeEventRejectsWhatIsNoEvent(t *testing.T) {
	var d EventDecoder
	var e Event
	for _, bad := range []string{``, `[]`, `"x"`, `{"time":"yesterday"}`, `{"type":`} {
		if err := d.Decode([]byte(bad), &e); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
	if err := d.Decode([]byte(`{"type":"pageview","segments":["a",1,"b"],"value":"x"}`), &e); err != nil || !reflect.DeepEqual(e.Segments, []string{"a", "b"}) || e.Value != 0 {
		t.Errorf("odd fields: %+v, %v", e, err)
	}
	// Lean leaves out what a readout does not use.
	lean := EventDecoder{Lean: true}
	full := testEvent(3)
	if err := lean.Decode(full.AppendJSON(nil), &e); err != nil || e.URL != "" || e.ID != "" || e.AnonymousID != "" || e.Experiment != "hero-copy-test" || e.Visitor != full.Visitor {
		t.Errorf("lean: %+v, %v", e, err)
	}
	// It keeps what breakdowns read: device, country, campaign, bot.
	if e.Device != full.Device || e.Country != full.Country || e.UTMSource != full.UTMSource || e.UTMCampaign != full.UTMCampaign || e.Bot != full.Bot || !e.Bot {
		t.Errorf("lean breakdown fields: %+v, want those of %+v", e, full)
	}
	// but for an identify event's anonymous id, which joins a login's ids.
	ident := testEvent(4)
	if err := lean.Decode(ident.AppendJSON(nil), &e); err != nil || e.Type != EventIdentify || e.AnonymousID != ident.AnonymousID || e.ProfileID != "" {
		t.Errorf("lean identify: %+v, %v", e, err)
	}
}

// BenchmarkReadEvents reads a stream of 200,000 events and decodes each:
// what tailor report does before counting. Reports events/s.
func BenchmarkReadEvents(b *testing.B) {
	srv := testkit.JetStream(b, b.TempDir(), -1)
	const n = 200_000
	fillStream(b, srv.ClientURL(), n)
	s := openStore(b, srv.ClientURL())
	d := EventDecoder{Lean: true}
	var e Event
	b.ResetTimer()
	start := time.Now()
	cpu0, cpuOK := processCPU()
	for b.Loop() {
		read, err := s.ReadEvents(context.Background(), testStream, time.Time{}, nil, func(data []byte) {
			if err := d.Decode(data, &e); err != nil {
				b.Fatal(err)
			}
		})
		if err != nil || read != n {
			b.Fatalf("read %d, %v", read, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "events/s")
	if cpu1, _ := processCPU(); cpuOK {
		// The reader and the in-process server together.
		b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(n*b.N), "cpu-µs/event")
	}
}
