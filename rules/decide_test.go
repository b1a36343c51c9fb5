package rules

import (
	"bytes"
	"reflect"
	"slices"
	"testing"

	"github.com/andybalholm/cascadia"
)

const decideRules = `
stages: [awareness, interest, intent, purchase]
segments:
  mobile: { device: mobile }
  vip-mobile: { segment: vip, device: mobile }
pages:
  - match: ["/", "/index.html"]
    rules:
      - id: hero-vip
        when: { segment: vip }
        select: "#hero"
        replace: "<div id=hero>VIP</div>"
      - id: hero-all
        select: "#hero"
        add_class: seen
      - id: cta-by-stage
        select: ".cta"
        map:
          by: stage
          interest: { inner: "guide" }
          intent: { inner: "cart" }
      - id: cta-fallback
        select: ".cta"
        text: "fallback"
      - id: picks
        select: ".picks"
        map:
          by: segment
          runner: { inner: "running picks" }
          vip: { inner: "vip picks" }
          default: { inner: "picks" }
      - id: test
        select: "#hero h1"
        experiment:
          holdout: 50
          variants:
            a: { weight: 100, text: "A" }
      - id: test-fallback
        select: "#hero h1"
        text: "after the test"
  - match: ["/**"]
    rules:
      - id: other
        select: "p"
        remove: true
`

func TestDecide(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": decideRules})
	p := s.Match("/")
	type act struct{ rule, sel, op, value string }
	tests := []struct {
		name      string
		v         Visitor
		r         Request
		actions   []act
		reasons   []string
		segments  []string
		stage     string
		exposures []Exposure
	}{
		{
			name: "vip at intent in the test",
			v:    Visitor{ID: findID(t, "test", false), Segments: []string{"vip", "runner", "vip"}, Stage: "intent"},
			r:    Request{UserAgent: iPhoneUA},
			actions: []act{
				// hero-all's class is another kind of change than
				// hero-vip's content: both are decided (the rewrite
				// engine lets the replace win on the element).
				{"hero-vip", "#hero", "replace", "<div id=hero>VIP</div>"},
				{"hero-all", "#hero", "add_class", "seen"},
				{"cta-by-stage", ".cta", "inner", "cart"},
				{"picks", ".picks", "inner", "running picks"},
				{"test", "#hero h1", "inner", "A"},
				{"other", "p", "remove", ""},
			},
			reasons: []string{
				"matched",
				"matched",
				"map stage intent",
				"content overridden by rule cta-by-stage",
				"map segment runner",
				"experiment variant a",
				"content overridden by rule test",
				"matched",
			},
			segments:  []string{"vip", "runner", "mobile", "vip-mobile"},
			stage:     "intent",
			exposures: []Exposure{{Experiment: "test", Variant: "a", Rule: "test"}},
		},
		{
			name: "anonymous in the holdout",
			v:    Visitor{ID: findID(t, "test", true)},
			actions: []act{
				{"hero-all", "#hero", "add_class", "seen"},
				{"cta-fallback", ".cta", "inner", "fallback"},
				{"picks", ".picks", "inner", "picks"},
				{"other", "p", "remove", ""},
			},
			reasons: []string{
				"segment vip not in []",
				"matched",
				"stage awareness: no map case and no default",
				"matched",
				"map default (no case for segments [])",
				"experiment holdout: the origin's block is kept",
				"content overridden by rule test",
				"matched",
			},
			segments:  []string{},
			stage:     "awareness",
			exposures: []Exposure{{Experiment: "test", Variant: "holdout", Rule: "test"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := s.Decide(p, &tt.v, &tt.r)
			var got []act
			for _, a := range d.Actions {
				got = append(got, act{a.Rule, p.SelectorText(a.Sel), a.Op.String(), string(a.Value)})
			}
			if !reflect.DeepEqual(got, tt.actions) {
				t.Errorf("Decide actions =\n%v\nwant\n%v", got, tt.actions)
			}
			var reasons []string
			for i, tr := range d.Trace {
				if tr.Rule != p.rules[i].id {
					t.Errorf("trace[%d].Rule = %q, want %q", i, tr.Rule, p.rules[i].id)
				}
				reasons = append(reasons, tr.Reason)
			}
			if !slices.Equal(reasons, tt.reasons) {
				t.Errorf("Decide reasons =\n%q\nwant\n%q", reasons, tt.reasons)
			}
			if !slices.Equal(d.Segments, tt.segments) || d.Stage != tt.stage {
				t.Errorf("Decide segments, stage = %q, %q, want %q, %q", d.Segments, d.Stage, tt.segments, tt.stage)
			}
			if !slices.Equal(d.Exposures, tt.exposures) {
				t.Errorf("Decide exposures = %v, want %v", d.Exposures, tt.exposures)
			}
		})
	}
}

// findID returns a visitor id that the experiment rule puts in the holdout
// (or not).
func findID(t *testing.T, rule string, holdout bool) string {
	x := &experiment{holdout: 50, variants: []variant{{name: "a", weight: 100}}}
	for i := range 1000 {
		id := "visitor-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if (x.bucket(rule, id) == nil) == holdout {
			return id
		}
	}
	t.Fatal("no id found")
	return ""
}

func TestDecideWithoutPage(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": decideRules})
	d := s.Decide(nil, &Visitor{Segments: []string{"vip"}}, &Request{UserAgent: iPhoneUA})
	if d.Actions != nil || d.Trace != nil || d.Stage != "awareness" || !slices.Equal(d.Segments, []string{"vip", "mobile", "vip-mobile"}) {
		t.Errorf("Decide(nil page) = %+v, want only segments and stage", d)
	}
	d = s.Decide(nil, nil, nil)
	if d.Stage != "awareness" || len(d.Segments) != 0 {
		t.Errorf("Decide(nil, nil, nil) = %+v", d)
	}
}

func TestMatch(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": decideRules, "b.yaml": `
pages:
  - match: "/b"
    rules: []
`})
	for path, want := range map[string]string{"/": "hero-vip", "/index.html": "hero-vip", "/x/y": "other", "/b": "other"} {
		p := s.Match(path)
		if p == nil || p.RuleIDs()[0] != want {
			t.Errorf("Match(%q) = %v, want the page starting with %s", path, p, want)
		}
	}
	s = mustLoad(t, map[string]string{"a.yaml": `
pages:
  - match: ["/products/*"]
    rules: [{id: r, select: p, remove: true}]
`})
	if p := s.Match("/about"); p != nil {
		t.Errorf("Match(/about) = %v, want nil", p)
	}
	if p := s.Match("/products/x"); p == nil || !slices.Equal(p.Patterns(), []string{"/products/*"}) {
		t.Errorf("Match(/products/x) = %v", p)
	}
}

func TestSelectorsAreDistinct(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": `
pages:
  - match: ["/"]
    rules:
      - {id: a, select: "#hero  h1", text: a}
      - {id: b, select: "#hero h1", text: b}
      - {id: c, select: ".x, .y", text: c}
      - {id: d, select: "div > p:nth-child(2)", text: d}
`})
	p := s.Match("/")
	sels := p.Selectors()
	if len(sels) != 3 {
		t.Fatalf("Selectors() = %v, want 3 distinct", sels)
	}
	if p.rules[0].sel != p.rules[1].sel || p.SelectorText(0) != "#hero  h1" {
		t.Errorf("equal selectors not shared: %d, %d, %q", p.rules[0].sel, p.rules[1].sel, p.SelectorText(0))
	}
	if m := p.Matchers(); len(m) != 3 || m[1].(cascadia.Sel).String() != ".x, .y" {
		t.Errorf("Matchers() = %v, want the selectors", m)
	}
	if got := sels[1].String(); got != ".x, .y" {
		t.Errorf("group selector = %q", got)
	}
	if sp := sels[1].Specificity(); sp != [3]int{0, 1, 0} {
		t.Errorf("group specificity = %v", sp)
	}
}

func TestJourneyInterestsPersonas(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": `
stages: [awareness, interest, intent, purchase]
journey:
  - { path: "/products/*",    stage: interest }
  - { path: ["/cart", "/basket"], stage: intent }
  - { path: "/checkout/done", stage: purchase, goal: purchase, value: 100 }
  - { path: "/newsletter/ok", goal: subscribe, value: 20 }
  - { path: "/**", stage: awareness }
interests:
  half_life: 14d
  rules:
    - { path: "/products/running/**", add: { running: 5 } }
    - { path: "/products/running/trail/**", add: { trail: 3, running: 1 } }
personas:
  min_score: 0.8
  runner: { running: 1.0, trail: 0.3 }
  hiker:  { trail: 1.0, camping: 0.6 }
`})
	for path, want := range map[string]JourneyStep{
		"/products/x":    {Stage: "interest"},
		"/basket":        {Stage: "intent"},
		"/checkout/done": {Stage: "purchase", Goal: "purchase", Value: 100},
		"/newsletter/ok": {Goal: "subscribe", Value: 20},
		"/about":         {Stage: "awareness"},
	} {
		if got, ok := s.Journey(path); !ok || got != want {
			t.Errorf("Journey(%q) = %+v, %v, want %+v", path, got, ok, want)
		}
	}
	if got := s.InterestHalfLife(); got.Hours() != 14*24 {
		t.Errorf("InterestHalfLife = %v", got)
	}
	if got := s.Interests("/products/running/trail/x"); !reflect.DeepEqual(got, map[string]float64{"running": 6, "trail": 3}) {
		t.Errorf("Interests = %v", got)
	}
	if got := s.Interests("/about"); got != nil {
		t.Errorf("Interests(/about) = %v, want nil", got)
	}
	for _, tt := range []struct {
		interests map[string]float64
		want      string
	}{
		{map[string]float64{"running": 10}, "runner"},
		{map[string]float64{"running": 10, "trail": 3}, "runner"},
		{map[string]float64{"trail": 5, "camping": 3}, "hiker"},
		{map[string]float64{"running": 5, "camping": 5}, ""}, // near neither
		{map[string]float64{"cooking": 5}, ""},
		{nil, ""},
	} {
		if got := s.NearestPersona(tt.interests); got != tt.want {
			t.Errorf("NearestPersona(%v) = %q, want %q", tt.interests, got, tt.want)
		}
	}
	if got := s.StageIndex("intent"); got != 2 {
		t.Errorf("StageIndex(intent) = %d", got)
	}
	if got := len(s.Personas()); got != 2 || s.PersonaMinScore() != 0.8 {
		t.Errorf("Personas = %d, min %v", got, s.PersonaMinScore())
	}
}

func TestRulesAcrossFiles(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"a.yaml": "stages: [one, two]\nsegments: { m: { device: mobile } }\n",
		"b.yaml": `
pages:
  - match: ["/"]
    rules:
      - { id: r, select: p, when: { stage: two, segment: m }, text: x }
`,
	})
	d := s.Decide(s.Match("/"), &Visitor{Stage: "two"}, &Request{UserAgent: iPhoneUA})
	if len(d.Actions) != 1 {
		t.Errorf("Decide = %+v, want the rule of b.yaml to use a.yaml's stage and segment", d)
	}
	if got := s.Experiments(); len(got) != 0 {
		t.Errorf("Experiments = %v", got)
	}
}

// A Set is shared by every request: Decide must be safe to call from many
// goroutines at once (run with -race).
func TestDecideConcurrently(t *testing.T) {
	s, err := Load("../examples/rules")
	if err != nil {
		t.Fatal(err)
	}
	p := s.Match("/")
	want := s.Decide(p, &Visitor{ID: "v0", Known: true, Traits: map[string]any{"first_name": "Jo"}, Segments: []string{"vip"}}, &Request{Path: "/", UserAgent: iPhoneUA})
	done := make(chan bool)
	for g := range 8 {
		go func() {
			defer func() { done <- true }()
			for i := range 200 {
				v := &Visitor{ID: "v0", Known: true, Traits: map[string]any{"first_name": "Jo"}, Segments: []string{"vip"}}
				if i%2 == 1 {
					v = &Visitor{ID: "other", Stage: "intent", Visits: g}
				}
				d := s.Decide(p, v, &Request{Path: "/", UserAgent: iPhoneUA})
				if i%2 == 0 && !sameDecision(d, want) {
					t.Errorf("concurrent Decide differs: %+v", d)
					return
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
}

// sameDecision compares decisions, their actions' RawText by what it
// renders for a <script> and a <style>.
func sameDecision(a, b Decision) bool {
	if len(a.Actions) != len(b.Actions) {
		return false
	}
	a.Actions, b.Actions = slices.Clone(a.Actions), slices.Clone(b.Actions)
	for i := range a.Actions {
		x, y := &a.Actions[i], &b.Actions[i]
		if (x.RawText == nil) != (y.RawText == nil) {
			return false
		}
		if x.RawText != nil && (!bytes.Equal(x.RawText("script"), y.RawText("script")) || !bytes.Equal(x.RawText("style"), y.RawText("style"))) {
			return false
		}
		x.RawText, y.RawText = nil, nil
	}
	return reflect.DeepEqual(a, b)
}
