package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

var heroTest = Experiment{ID: "hero", Holdout: 10, Variants: []Variant{{Name: "a", Weight: 50}, {Name: "b", Weight: 50}}}

func TestReadoutCountsDistinctVisitorsAndExposureBeforeConversion(t *testing.T) {
	b := New([]Experiment{heroTest}, []string{"purchase", "subscribe"})
	events := []Event{
		// v1 sees a, then buys twice: one converted visitor, value 200.
		{Type: "pageview", Time: at(0), Visitor: "v1", Segments: []string{"mobile"}, Stage: "awareness"},
		{Type: "exposure", Time: at(0), Visitor: "v1", Experiment: "hero", Variant: "a"},
		{Type: "exposure", Time: at(5), Visitor: "v1", Experiment: "hero", Variant: "a"},
		{Type: "goal", Time: at(10), Visitor: "v1", Goal: "purchase", Value: 100},
		{Type: "goal", Time: at(20), Visitor: "v1", Goal: "purchase", Value: 100},
		{Type: "pageview", Time: at(20), Visitor: "v1", Segments: []string{"mobile", "vip"}, Stage: "purchase", Persona: "runner"},
		// v2 subscribed before seeing b: no conversion; then b again at
		// the same instant as a goal: that one counts.
		{Type: "goal", Time: at(1), Visitor: "v2", Goal: "subscribe", Value: 20},
		{Type: "goal", Time: at(3), Visitor: "v2", Goal: "purchase", Value: 100},
		{Type: "exposure", Time: at(3), Visitor: "v2", Experiment: "hero", Variant: "b"},
		{Type: "pageview", Time: at(3), Visitor: "v2", Stage: "interest"},
		// v3 is held out and converts.
		{Type: "exposure", Time: at(4), Visitor: "v3", Experiment: "hero", Variant: "holdout"},
		{Type: "goal", Time: at(6), Visitor: "v3", Goal: "subscribe", Value: 20},
		// v4: a visitor who later lands in another variant (their key
		// changed) stays with the first.
		{Type: "exposure", Time: at(7), Visitor: "v4", Experiment: "hero", Variant: "a"},
		{Type: "exposure", Time: at(8), Visitor: "v4", Experiment: "hero", Variant: "b"},
		// An event without a visitor counts only as an event.
		{Type: "pageview", Time: at(9)},
	}
	for i := range events {
		b.Add(&events[i])
	}
	r := b.Report(t0)
	if r.Events != int64(len(events)) || len(r.Experiments) != 1 {
		t.Fatalf("report: %+v", r)
	}
	x := r.Experiments[0]
	got := map[string]VariantResult{}
	var names []string
	for _, v := range x.Variants {
		got[v.Name] = v
		names = append(names, v.Name)
	}
	if want := "[holdout a b]"; fmt.Sprint(names) != want {
		t.Errorf("variants %v, want %s", names, want)
	}
	check := func(variant string, exposed, purchase, subscribe int, value float64) {
		t.Helper()
		v := got[variant]
		if v.Exposed != exposed || v.Goals["purchase"].Converted != purchase || v.Goals["subscribe"].Converted != subscribe || v.ValuePerVisitor != value {
			t.Errorf("%s: exposed %d, purchase %d, subscribe %d, value/visitor %v; want %d, %d, %d, %v",
				variant, v.Exposed, v.Goals["purchase"].Converted, v.Goals["subscribe"].Converted, v.ValuePerVisitor, exposed, purchase, subscribe, value)
		}
	}
	check("a", 2, 1, 0, 100)
	check("b", 1, 1, 0, 100)
	check("holdout", 1, 0, 1, 20)
	if got["holdout"].Goals["subscribe"].Uplift != nil {
		t.Error("the baseline has an uplift")
	}
	if u := got["a"].Goals["purchase"].Uplift; u == nil || u.Value != 0.5 {
		t.Errorf("a's purchase uplift over the holdout = %+v, want 0.5", u)
	}
	if r.Stages["purchase"] != 1 || r.Stages["interest"] != 1 || r.Segments["vip"] != 1 || r.Segments["mobile"] != 1 || r.Personas["runner"] != 1 {
		t.Errorf("sizes by last page view: stages %v, segments %v, personas %v", r.Stages, r.Segments, r.Personas)
	}
	if _, err := json.Marshal(r); err != nil {
		t.Errorf("the report does not encode: %v", err)
	}
}

func sprint(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestIntervalsMatchTheSpecExample(t *testing.T) {
	// SPEC: holdout 150 of 1502, rate 0.0999, ci [0.085, 0.116].
	ci := wilson(150, 1502)
	if math.Abs(ci[0]-0.085) > 0.001 || math.Abs(ci[1]-0.116) > 0.001 {
		t.Errorf("wilson(150, 1502) = %v, want about [0.085, 0.116]", ci)
	}
	// SPEC: a 690 of 6731 against it: uplift 0.0026, ci [-0.014, 0.019]
	// (the example's interval is the normal approximation's; Newcombe's,
	// used here, is [-0.0150, 0.0187] on these counts).
	u := uplift(690, 6731, 150, 1502)
	if math.Abs(u.Value-0.0026) > 0.0001 || math.Abs(u.CI[0]+0.014) > 0.0015 || math.Abs(u.CI[1]-0.019) > 0.0015 {
		t.Errorf("uplift = %+v, want 0.0026 in about [-0.014, 0.019]", u)
	}
	if ci := wilson(0, 10); ci[0] != 0 || ci[1] <= 0 || ci[1] >= 1 {
		t.Errorf("wilson(0, 10) = %v", ci)
	}
	// At the edges the interval still has width: 0 of 4 against 2 of 2
	// is not a certain -100 points.
	if u := uplift(0, 4, 2, 2); u.Value != -1 || u.CI[0] >= -0.5 || u.CI[1] <= -0.5 || u.CI[1] >= 0 {
		t.Errorf("uplift(0/4 vs 2/2) = %+v, want -1 with an interval around, not at, -1", u)
	}
}

func TestSampleRatioMismatch(t *testing.T) {
	split := func(holdout, a, b int, drop string) *SRM {
		t.Helper()
		bu := New([]Experiment{heroTest}, nil)
		n := 0
		add := func(variant string, count int) {
			for range count {
				n++
				bu.Add(&Event{Type: "exposure", Time: t0, Visitor: sprint(n), Experiment: "hero", Variant: variant})
			}
		}
		add("holdout", holdout)
		add("a", a)
		add("b", b)
		if drop != "" {
			add(drop, 1)
		}
		return bu.Report(t0).Experiments[0].SRM
	}
	if s := split(1000, 4500, 4500, ""); s == nil || s.Flag || s.P < 0.99 {
		t.Errorf("an exact split: %+v", s)
	}
	if s := split(1000, 4500, 3825, ""); s == nil || !s.Flag || s.P >= SRMThreshold {
		t.Errorf("15%% of b lost: %+v, want flagged", s)
	}
	if s := split(1000, 4500, 4500, "c"); s == nil || !s.Flag || len(s.Unknown) != 1 {
		t.Errorf("an unknown variant: %+v, want flagged", s)
	}
	// Without a configuration there is nothing to check against.
	bu := New(nil, nil)
	bu.Add(&Event{Type: "exposure", Time: t0, Visitor: "v", Experiment: "gone", Variant: "a"})
	if x := bu.Report(t0).Experiments[0]; x.SRM != nil || x.Variants[0].Expected != 0 {
		t.Errorf("an unconfigured experiment: %+v", x)
	}
}

func BenchmarkAdd(b *testing.B) {
	bu := New([]Experiment{heroTest}, []string{"purchase"})
	segs := []string{"mobile", "returning"}
	events := make([]Event, 1024)
	for i := range events {
		events[i] = Event{Type: "pageview", Time: at(i), Visitor: sprint(i % 300), Segments: segs, Stage: "interest"}
		if i%4 == 0 {
			events[i] = Event{Type: "exposure", Time: at(i), Visitor: sprint(i % 300), Experiment: "hero", Variant: "a"}
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		bu.Add(&events[i%len(events)])
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 81234: "81,234", 1234567: "1,234,567", -1000: "-1,000"} {
		if got := Thousands(n); got != want {
			t.Errorf("Thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestALoginJoinsTheVisitorsTwoIDs(t *testing.T) {
	b := New([]Experiment{heroTest}, []string{"purchase"})
	for _, e := range []Event{
		// Anonymous, they see b; they log in as cust-1 and buy; later,
		// logged out, they browse as their anonymous id again.
		{Type: "pageview", Time: at(0), Visitor: "anon-1", Stage: "awareness"},
		{Type: "exposure", Time: at(0), Visitor: "anon-1", Experiment: "hero", Variant: "b"},
		{Type: "identify", Time: at(5), Visitor: "cust-1", AnonymousID: "anon-1"},
		{Type: "pageview", Time: at(5), Visitor: "cust-1", Stage: "intent"},
		{Type: "exposure", Time: at(5), Visitor: "cust-1", Experiment: "hero", Variant: "a"},
		{Type: "goal", Time: at(9), Visitor: "cust-1", Goal: "purchase", Value: 100},
		{Type: "pageview", Time: at(20), Visitor: "anon-1", Stage: "purchase"},
		// Another visitor logs in before seeing anything.
		{Type: "identify", Time: at(1), Visitor: "cust-2", AnonymousID: "anon-2"},
		{Type: "exposure", Time: at(2), Visitor: "cust-2", Experiment: "hero", Variant: "a"},
	} {
		b.Add(&e)
	}
	r := b.Report(t0)
	got := map[string]VariantResult{}
	for _, v := range r.Experiments[0].Variants {
		got[v.Name] = v
	}
	if got["b"].Exposed != 1 || got["b"].Goals["purchase"].Converted != 1 || got["a"].Exposed != 1 || got["a"].Goals["purchase"].Converted != 0 {
		t.Errorf("a: %+v\nb: %+v\nwant cust-1 counted once, in b (seen first), converted; cust-2 in a", got["a"], got["b"])
	}
	if r.Stages["purchase"] != 1 || len(r.Stages) != 1 {
		t.Errorf("stages %v, want one visitor, last seen in purchase (cust-2 has no page view)", r.Stages)
	}
}

func TestBreakdownGroupsByTheFirstExposure(t *testing.T) {
	b := New([]Experiment{heroTest}, []string{"purchase"})
	for _, e := range []Event{
		// v1: mobile in DE, segments vip and runner, sees a and buys; a
		// later exposure on desktop changes neither variant nor group.
		{Type: "exposure", Time: at(0), Visitor: "v1", Experiment: "hero", Variant: "a", Device: "mobile", Country: "DE", Segments: []string{"vip", "runner"}, Stage: "interest"},
		{Type: "exposure", Time: at(1), Visitor: "v1", Experiment: "hero", Variant: "a", Device: "desktop", Country: "FR"},
		{Type: "goal", Time: at(2), Visitor: "v1", Goal: "purchase", Value: 50},
		// v2: desktop, no segments, holdout.
		{Type: "exposure", Time: at(0), Visitor: "v2", Experiment: "hero", Variant: "holdout", Device: "desktop", Stage: "awareness"},
		// v3: a crawler that says it is a desktop.
		{Type: "exposure", Time: at(0), Visitor: "v3", Experiment: "hero", Variant: "a", Device: "desktop", Bot: true},
		// anon-4 on mobile sees b, then logs in as v4, seen before on
		// desktop in a later: the first exposure (b, mobile) wins.
		{Type: "exposure", Time: at(5), Visitor: "v4", Experiment: "hero", Variant: "a", Device: "desktop"},
		{Type: "exposure", Time: at(3), Visitor: "anon-4", Experiment: "hero", Variant: "b", Device: "mobile", Segments: []string{"vip"}},
		{Type: "identify", Time: at(6), Visitor: "v4", AnonymousID: "anon-4"},
		{Type: "goal", Time: at(7), Visitor: "v4", Goal: "purchase", Value: 30},
	} {
		b.Add(&e)
	}
	groups := func(by Dimension) string {
		t.Helper()
		x := b.ReportBy(t0, by).Experiments[0]
		if x.By != by {
			t.Errorf("by = %q, want %q", x.By, by)
		}
		var out []string
		for _, g := range x.Groups {
			var vs []string
			for _, v := range g.Variants {
				if v.Exposed > 0 {
					vs = append(vs, fmt.Sprintf("%s:%d/%d", v.Name, v.Goals["purchase"].Converted, v.Exposed))
				}
			}
			out = append(out, fmt.Sprintf("%s=%v", g.Value, vs))
		}
		return fmt.Sprint(out)
	}
	for by, want := range map[Dimension]string{
		ByDevice:  "[mobile=[a:1/1 b:1/1] bot=[a:0/1] desktop=[holdout:0/1]]",
		BySegment: "[=[holdout:0/1 a:0/1] vip=[a:1/1 b:1/1] runner=[a:1/1]]",
		ByCountry: "[=[holdout:0/1 a:0/1 b:1/1] DE=[a:1/1]]",
		ByStage:   "[=[a:0/1 b:1/1] awareness=[holdout:0/1] interest=[a:1/1]]",
	} {
		if got := groups(by); got != want {
			t.Errorf("by %s: %s, want %s", by, got, want)
		}
	}
	// Groups have the experiment's variants, the baseline and uplifts.
	x := b.ReportBy(t0, ByDevice).Experiments[0]
	if g := x.Groups[0]; len(g.Variants) != 3 || !g.Variants[0].Baseline || g.Variants[1].Goals["purchase"].Uplift != nil {
		t.Errorf("group %s: %+v, want holdout (baseline, no one exposed), a and b without an uplift", g.Value, g.Variants)
	}
	if r := b.Report(t0); r.Experiments[0].By != "" || r.Experiments[0].Groups != nil {
		t.Errorf("a report without a breakdown has one: %+v", r.Experiments[0])
	}
	if _, err := ParseDimension("browser"); !errors.Is(err, ErrDimension) || !strings.Contains(err.Error(), "segment, device, stage, persona, country") {
		t.Errorf("ParseDimension(browser) = %v", err)
	}
	if d, err := ParseDimension("country"); d != ByCountry || err != nil {
		t.Errorf("ParseDimension(country) = %q, %v", d, err)
	}
}
