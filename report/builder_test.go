package report

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
)

// scratch recomputes every tally and size from the visitors b keeps, as
// a readout without incremental tallies would.
func scratch(b *Builder) (map[string]map[string]string, [3]map[string]int) {
	out := map[string]map[string]string{}
	acc := map[string]map[string]*tally{}
	add := func(exp, key string, v *visitor, x exposure) {
		if acc[exp] == nil {
			acc[exp] = map[string]*tally{}
		}
		t := acc[exp][key]
		if t == nil {
			t = &tally{}
			acc[exp][key] = t
		}
		t.exposed++
		var value int64
		var goals []int32
		for _, h := range v.goals {
			if h.at >= x.at {
				value += h.value
				if !slices.Contains(goals, h.goal) {
					goals = append(goals, h.goal)
					t.convert(h.goal, 1)
				}
			}
		}
		t.sum = t.sum.add(i128of(value))
		t.sumSq = t.sumSq.add(square(value))
	}
	sizes := [3]map[string]int{{}, {}, {}}
	for _, v := range b.visitors {
		for _, s := range v.segments {
			sizes[0][s]++
		}
		if v.lastSeen != 0 && v.stage != "" {
			sizes[1][v.stage]++
		}
		if v.lastSeen != 0 && v.persona != "" {
			sizes[2][v.persona]++
		}
		for _, x := range v.exposures {
			c := x.cell
			add(c.experiment, c.variant, v, x)
			var one [1]string
			for d := range Dimensions {
				var values []string
				for _, value := range c.group.values(d, &one) {
					if !slices.Contains(values, value) {
						values = append(values, value)
					}
				}
				for _, value := range values {
					add(c.experiment, fmt.Sprintf("%s=%s/%s", Dimensions[d], value, c.variant), v, x)
				}
			}
		}
	}
	for exp, m := range acc {
		out[exp] = map[string]string{}
		for k, t := range m {
			out[exp][k] = t.String()
		}
	}
	return out, sizes
}

// incremental lists b's tallies as scratch does, without the empty ones.
func incremental(b *Builder) map[string]map[string]string {
	out := map[string]map[string]string{}
	put := func(exp, key string, t *tally) {
		if s := t.String(); s != (&tally{}).String() {
			if out[exp] == nil {
				out[exp] = map[string]string{}
			}
			out[exp][key] = s
		}
	}
	for exp, xt := range b.tallies {
		for variant, t := range xt.variants {
			put(exp, variant, t)
		}
		for d, byValue := range xt.by {
			for value, byVariant := range byValue {
				for variant, t := range byVariant {
					put(exp, fmt.Sprintf("%s=%s/%s", Dimensions[d], value, variant), t)
				}
			}
		}
	}
	return out
}

func (t *tally) String() string {
	c := t.converted
	for len(c) > 0 && c[len(c)-1] == 0 {
		c = c[:len(c)-1]
	}
	return fmt.Sprintf("exposed %d converted %v sum %v sumSq %v", t.exposed, c, t.sum, t.sumSq)
}

func TestIncrementalTalliesEqualARecount(t *testing.T) {
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 18))
		events := randomEvents(rng, 100+rng.IntN(2000))
		b := New([]Experiment{heroTest}, []string{"purchase"})
		for i := range events {
			b.Add(&events[i])
			if i%97 != 0 && i != len(events)-1 {
				continue
			}
			want, wantSizes := scratch(b)
			got := incremental(b)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("seed %d, after event %d (%+v): tallies\n got %v\nwant %v", seed, i, events[i], got, want)
			}
			r := b.Report(t0)
			if fmt.Sprint(r.Segments, r.Stages, r.Personas) != fmt.Sprint(wantSizes[0], wantSizes[1], wantSizes[2]) {
				t.Fatalf("seed %d, after event %d: sizes %v %v %v, want %v", seed, i, r.Segments, r.Stages, r.Personas, wantSizes)
			}
		}
	}
}

// BenchmarkAddStream folds a realistic stream: 10 events per visitor
// (page views, an exposure to each of two experiments, a goal or two,
// a login for some) over a growing population of visitors.
func BenchmarkAddStream(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const visitors = 100_000
	ids := make([]string, visitors)
	for i := range ids {
		ids[i] = fmt.Sprintf("v1.%022d", rng.Uint64())
	}
	segs := [][]string{nil, {"mobile"}, {"vip", "mobile"}, {"returning"}}
	events := make([]Event, 1<<16)
	for i := range events {
		v := ids[rng.IntN(visitors)]
		e := Event{Type: "pageview", Time: at(i), Visitor: v, Segments: segs[rng.IntN(4)], Stage: "interest", Device: "mobile", Country: "DE"}
		switch k := rng.IntN(10); {
		case k < 2:
			e.Type, e.Experiment, e.Variant = "exposure", []string{"hero", "cta"}[k], []string{"holdout", "a", "b"}[rng.IntN(3)]
		case k < 3:
			e.Type, e.Goal, e.Value = "goal", "purchase", 100
		}
		events[i] = e
	}
	bu := New([]Experiment{heroTest}, []string{"purchase"})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		bu.Add(&events[i%len(events)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkVisitorMemory measures what a builder keeps per visitor, each
// new, with a page view, an exposure and, for one in ten, a goal; and
// how fast such a stream of new visitors folds.
func BenchmarkVisitorMemory(b *testing.B) {
	const n = 200_000
	events := make([]Event, 0, 3*n)
	for i := range n {
		v := fmt.Sprintf("v1.%022d", i)
		events = append(events,
			Event{Type: "pageview", Time: at(i), Visitor: v, Segments: []string{"mobile"}, Stage: "interest"},
			Event{Type: "exposure", Time: at(i), Visitor: v, Experiment: "hero", Variant: "a", Device: "mobile", Country: "DE"})
		if i%10 == 0 {
			events = append(events, Event{Type: "goal", Time: at(i), Visitor: v, Goal: "purchase", Value: 100})
		}
	}
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		bu := New([]Experiment{heroTest}, []string{"purchase"})
		start := time.Now()
		for i := range events {
			bu.Add(&events[i])
		}
		b.ReportMetric(float64(len(events))/time.Since(start).Seconds(), "events/s")
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/visitor")
		runtime.KeepAlive(bu)
	}
}
