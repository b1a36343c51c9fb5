package report

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"reflect"
	"testing"
)

// randomEvents is a stream of n events over about n/8 visitors: page
// views, exposures (sometimes to a second variant, or to an experiment
// not configured), goals (some earlier than the exposure, some
// out of order), logins and events without a visitor.
func randomEvents(rng *rand.Rand, n int) []Event {
	segs := [][]string{nil, {"mobile"}, {"vip", "mobile"}, {"returning"}}
	devices := []string{"", "mobile", "desktop", "tablet"}
	countries := []string{"", "DE", "FR", "US"}
	stages := []string{"", "awareness", "interest", "intent"}
	personas := []string{"", "runner", "hiker"}
	visitors := max(n/8, 2)
	out := make([]Event, 0, n)
	for i := range n {
		v := fmt.Sprintf("v%d", rng.IntN(visitors))
		if rng.IntN(3) == 0 {
			v = fmt.Sprintf("anon-%d", rng.IntN(visitors))
		}
		e := Event{Time: at(i + rng.IntN(40) - 20), Visitor: v,
			Segments: segs[rng.IntN(len(segs))], Stage: stages[rng.IntN(len(stages))], Persona: personas[rng.IntN(len(personas))],
			Device: devices[rng.IntN(len(devices))], Country: countries[rng.IntN(len(countries))], Bot: rng.IntN(50) == 0}
		switch k := rng.IntN(20); {
		case k < 6:
			e.Type = "pageview"
		case k < 7:
			e.Type = "stage"
		case k < 11:
			e.Type = "exposure"
			e.Experiment, e.Variant = "hero", []string{"holdout", "a", "b"}[rng.IntN(3)]
			if rng.IntN(10) == 0 {
				e.Experiment, e.Variant = "gone", []string{"x", "y"}[rng.IntN(2)]
			}
		case k < 17:
			e.Type = "goal"
			e.Goal = []string{"purchase", "subscribe", "click"}[rng.IntN(3)]
			e.Value = float64(rng.IntN(5) * 10)
		case k < 19:
			e.Type = "identify"
			e.Visitor = fmt.Sprintf("v%d", rng.IntN(visitors))
			e.AnonymousID = fmt.Sprintf("anon-%d", rng.IntN(visitors))
		default:
			e.Type = "pageview"
			e.Visitor = ""
		}
		out = append(out, e)
	}
	return out
}

func TestSnapshotRoundTripResumesTheFold(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 1))
	for _, n := range []int{0, 1, 50, 3000} {
		events := randomEvents(rng, n)
		for _, k := range []int{0, n / 3, n} {
			a := New([]Experiment{heroTest}, []string{"purchase"})
			for i := range events {
				a.Add(&events[i])
			}
			b := New([]Experiment{heroTest}, []string{"purchase"})
			for i := range events[:k] {
				b.Add(&events[i])
			}
			var buf bytes.Buffer
			written, err := b.WriteTo(&buf)
			if err != nil || written != int64(buf.Len()) {
				t.Fatalf("n=%d k=%d: WriteTo = %d, %v; %d bytes in the buffer", n, k, written, err, buf.Len())
			}
			c, err := ReadBuilder(bytes.NewReader(buf.Bytes()), []Experiment{heroTest}, []string{"purchase"})
			if err != nil {
				t.Fatalf("n=%d k=%d: ReadBuilder: %v", n, k, err)
			}
			for i := range events[k:] {
				c.Add(&events[k+i])
			}
			want, got := a.Report(t0), c.Report(t0)
			if !reflect.DeepEqual(want, got) {
				t.Errorf("n=%d k=%d: resumed readout differs:\n got %s\nwant %s", n, k, sprint(got), sprint(want))
			}
		}
	}
}

func TestSnapshotRejectsDamage(t *testing.T) {
	b := New([]Experiment{heroTest}, nil)
	events := randomEvents(rand.New(rand.NewPCG(1, 2)), 400)
	for i := range events {
		b.Add(&events[i])
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	snap := buf.Bytes()
	// Every truncation, and a flipped bit anywhere, is an error: never a
	// panic, never a builder with other numbers.
	for _, cut := range []int{0, 3, 5, len(snap) / 2, len(snap) - 1} {
		if _, err := ReadBuilder(bytes.NewReader(snap[:cut]), nil, nil); err == nil {
			t.Errorf("a snapshot cut at %d of %d bytes was read", cut, len(snap))
		}
	}
	for i := 0; i < len(snap); i += 7 {
		bad := bytes.Clone(snap)
		bad[i] ^= 0x10
		if _, err := ReadBuilder(bytes.NewReader(bad), nil, nil); err == nil {
			t.Errorf("a snapshot with byte %d flipped was read", i)
		}
	}
	bad := bytes.Clone(snap)
	bad[4] = 99
	if _, err := ReadBuilder(bytes.NewReader(bad), nil, nil); !errors.Is(err, ErrSnapshot) {
		t.Errorf("an unknown version: %v, want ErrSnapshot", err)
	}
	for _, cut := range []int{3, 10, len(snap) - 1} {
		if _, err := ReadBuilder(bytes.NewReader(snap[:cut]), nil, nil); !errors.Is(err, ErrSnapshot) {
			t.Errorf("a snapshot cut at %d: %v, want ErrSnapshot", cut, err)
		}
	}
	if _, err := ReadBuilder(io.MultiReader(bytes.NewReader(snap), bytes.NewReader([]byte{0})), nil, nil); err == nil {
		t.Error("a snapshot followed by a byte was read")
	}
}

func FuzzReadBuilder(f *testing.F) {
	b := New([]Experiment{heroTest}, nil)
	events := randomEvents(rand.New(rand.NewPCG(3, 4)), 60)
	for i := range events {
		b.Add(&events[i])
	}
	var buf bytes.Buffer
	b.WriteTo(&buf)
	f.Add(buf.Bytes())
	f.Add([]byte("TLRB\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if b, err := ReadBuilder(bytes.NewReader(data), []Experiment{heroTest}, nil); err == nil {
			b.Report(t0)
		}
		// The same with its checksum made right: the decoder itself
		// meets the damage.
		if len(data) >= 9 {
			data = binary.BigEndian.AppendUint32(data[:len(data)-4], crc32.Checksum(data[:len(data)-4], castagnoli))
			if b, err := ReadBuilder(bytes.NewReader(data), []Experiment{heroTest}, nil); err == nil {
				b.ReportBy(t0, BySegment)
				b.Add(&Event{Type: "goal", Visitor: "v1", Goal: "purchase", Value: 1})
			}
		}
	})
}

// BenchmarkSnapshot writes and reads back the snapshot of a builder of
// 100,000 visitors (a page view, an exposure, a goal for one in ten).
func BenchmarkSnapshot(b *testing.B) {
	const n = 100_000
	bu := New([]Experiment{heroTest}, []string{"purchase"})
	for i := range n {
		v := fmt.Sprintf("v1.%022d", i)
		bu.Add(&Event{Type: "pageview", Time: at(i), Visitor: v, Segments: []string{"mobile"}, Stage: "interest"})
		bu.Add(&Event{Type: "exposure", Time: at(i), Visitor: v, Experiment: "hero", Variant: "a", Device: "mobile", Country: "DE"})
		if i%10 == 0 {
			bu.Add(&Event{Type: "goal", Time: at(i), Visitor: v, Goal: "purchase", Value: 100})
		}
	}
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if _, err := bu.WriteTo(&buf); err != nil {
			b.Fatal(err)
		}
		if _, err := ReadBuilder(bytes.NewReader(buf.Bytes()), []Experiment{heroTest}, []string{"purchase"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len())/n, "bytes/visitor")
}

// BenchmarkReport computes the readout of 100,000 visitors, broken down
// by segment: its cost does not grow with them.
func BenchmarkReport(b *testing.B) {
	bu := New([]Experiment{heroTest}, []string{"purchase"})
	events := randomEvents(rand.New(rand.NewPCG(5, 6)), 800_000)
	for i := range events {
		bu.Add(&events[i])
	}
	b.ReportAllocs()
	for b.Loop() {
		bu.ReportBy(t0, BySegment)
	}
}
