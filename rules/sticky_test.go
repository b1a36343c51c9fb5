package rules

import (
	"slices"
	"strings"
	"testing"
)

// kept is a visitor's kept variants, as the proxy's identity.State
// holds them: experiment -> variant.
type kept map[string]string

func (k kept) Kept(experiment, variant string) bool { return k[experiment] == variant }

const stickyRules = `pages:
  - match: ["/"]
    rules:
      - id: test
        select: "#hero h1"
        experiment:
          holdout: 10
          variants:
            a: { weight: 50, text: "A" }
            b: { weight: 50, text: "B" }
`

// A kept variant is shown whatever the visitor's id and the weights,
// while the experiment has it; a removed one re-buckets; a control
// visitor sees the control and is counted in none whatever they keep.
func TestKeptVariantsStick(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": stickyRules})
	p := s.Match("/")
	variantOf := func(v *Visitor) string {
		d := s.Decide(p, v, nil)
		if len(d.Exposures) != 1 {
			return "none"
		}
		return d.Exposures[0].Variant
	}
	// Visitors bucketed as anonymous keep their variant once logged in
	// (another id) and when the weights go to 0/100.
	moved := 0
	reweighted := mustLoad(t, map[string]string{"a.yaml": strings.Replace(strings.Replace(stickyRules, "weight: 50, text: \"A\"", "weight: 0, text: \"A\"", 1), "weight: 50, text: \"B\"", "weight: 100, text: \"B\"", 1)})
	for i := range 500 {
		anon := "anon-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		first := variantOf(&Visitor{ID: anon})
		k := kept{"test": first}
		if variantOf(&Visitor{ID: "cust-" + anon}) != first {
			moved++ // without the kept variant, a login moves some
		}
		if got := variantOf(&Visitor{ID: "cust-" + anon, Assigned: k}); got != first {
			t.Fatalf("visitor %s kept %s, shown %s after login", anon, first, got)
		}
		if d := reweighted.Decide(reweighted.Match("/"), &Visitor{ID: "cust-" + anon, Assigned: k}, nil); d.Exposures[0].Variant != first {
			t.Fatalf("visitor %s kept %s, shown %s after the weights changed", anon, first, d.Exposures[0].Variant)
		}
		if got := variantOf(&Visitor{ID: anon, Assigned: k, Control: true}); got != "none" {
			t.Fatalf("a control visitor was exposed to %s", got)
		}
	}
	if moved == 0 {
		t.Error("no visitor would have moved at login without kept variants: the test proves nothing")
	}
	// New visitors follow the new weights: none in a.
	for i := range 200 {
		if d := reweighted.Decide(reweighted.Match("/"), &Visitor{ID: "new-" + strings.Repeat("y", i)}, nil); d.Exposures[0].Variant == "a" {
			t.Fatal("a new visitor was bucketed into a at weight 0")
		}
	}
	// A variant the experiment no longer has, and a holdout it no longer
	// holds, bucket the visitor again.
	if got := variantOf(&Visitor{ID: "x", Assigned: kept{"test": "c"}}); got == "c" || got == "none" {
		t.Errorf("a removed variant: shown %q", got)
	}
	noHoldout := mustLoad(t, map[string]string{"a.yaml": strings.Replace(stickyRules, "holdout: 10", "holdout: 0", 1)})
	if d := noHoldout.Decide(noHoldout.Match("/"), &Visitor{ID: "x", Assigned: kept{"test": HoldoutVariant}}, nil); d.Exposures[0].Variant == HoldoutVariant {
		t.Error("a kept holdout was shown by an experiment without one")
	}
	d := s.Decide(p, &Visitor{ID: "x", Assigned: kept{"test": HoldoutVariant}}, nil)
	if len(d.Actions) != 0 || len(d.Probes) != 1 || d.Exposures[0].Variant != HoldoutVariant || !strings.Contains(d.Trace[0].Reason, "kept since the first exposure") {
		t.Errorf("a kept holdout: %+v", d)
	}
}

// A holdout is probed where its change would go, and reported only when
// a variant has a change for the visitor: a variant holding a map with no
// case for them shows nothing, and is not reported either.
func TestHoldoutProbesAndVariantsThatShowNothing(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": `pages:
  - match: ["/"]
    rules:
      - { id: first, select: ".first", text: "1" }
      - id: test
        select: "#hero h1"
        experiment:
          holdout: 50
          variants:
            a: { weight: 100, map: { by: segment, vip: { text: "VIP" } } }
      - { id: last, select: ".last", add_class: x }
`})
	p := s.Match("/")
	held, shown := findID(t, "test", true), findID(t, "test", false)
	// Not a VIP: neither arm has anything to show.
	for _, id := range []string{held, shown} {
		d := s.Decide(p, &Visitor{ID: id}, nil)
		if len(d.Exposures) != 0 || len(d.Probes) != 0 {
			t.Errorf("visitor %s, no case for them: exposures %v, probes %v; want none", id, d.Exposures, d.Probes)
		}
	}
	// A VIP: the variant's change, or the holdout's probe between the
	// first and the last rule's actions.
	d := s.Decide(p, &Visitor{ID: held, Segments: []string{"vip"}}, nil)
	if !slices.Equal(d.Probes, []Probe{{Sel: 1, At: 1, Rule: "test", Content: true, Experiment: "test"}}) || len(d.Actions) != 2 || d.Exposures[0].Variant != HoldoutVariant {
		t.Errorf("VIP in the holdout: actions %v, probes %+v, exposures %v", d.Actions, d.Probes, d.Exposures)
	}
	// The variant visitor is probed alike, at the same place, by a probe
	// that only looks (it keeps nothing from the variant's change).
	d = s.Decide(p, &Visitor{ID: shown, Segments: []string{"vip"}}, nil)
	if !slices.Equal(d.Probes, []Probe{{Sel: 1, At: 1, Rule: "test", Content: true, Experiment: "test", Peek: true}}) || len(d.Actions) != 3 || d.Exposures[0].Variant != "a" {
		t.Errorf("VIP shown a: actions %v, probes %+v, exposures %v", d.Actions, d.Probes, d.Exposures)
	}
	if d := s.Decide(p, &Visitor{ID: held, Segments: []string{"vip"}, Control: true}, nil); len(d.Probes)+len(d.Exposures) != 0 {
		t.Errorf("a control visitor is probed or exposed: %+v", d)
	}
}

const setRules = `pages:
  - match: ["/"]
    rules:
      - { id: greet, select: ".greet", text: "Hello" }
      - id: cta
        select: ".cta"
        map: { by: segment, vip: { text: "VIP offer" } }
      - ` + `{ id: test, select: "#hero h1", experiment: { variants: { a: { weight: 100, text: "A" } } } }` + `
      - { id: other, select: ".other", text: "not in the set" }
experiments:
  home-personalization: { holdout: 30, rules: [greet, cta, test] }
`

func TestRuleSetExperiment(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": setRules})
	p := s.Match("/")
	if xs := s.Experiments(); len(xs) != 2 || xs[1].ID != "home-personalization" || xs[1].Holdout != 30 ||
		!slices.Equal(xs[1].Variants, []Variant{{TreatedVariant, 100}}) {
		t.Errorf("Experiments() = %+v, want test and the rule set", xs)
	}
	x := &ruleSet{name: "home-personalization", holdout: 30}
	var held, treated string
	for i := 0; held == "" || treated == ""; i++ {
		id := "v" + strings.Repeat("x", i)
		if h, _ := x.holds(&Visitor{ID: id}); h {
			held = id
		} else {
			treated = id
		}
	}
	vip := []string{"vip"}
	d := s.Decide(p, &Visitor{ID: held, Segments: vip}, nil)
	if len(d.Actions) != 1 || d.Actions[0].Rule != "other" {
		t.Errorf("held out: actions %v, want other's only", d.Actions)
	}
	if len(d.Probes) != 3 || len(d.Exposures) != 1 || d.Exposures[0].Experiment != "home-personalization" || d.Exposures[0].Variant != HoldoutVariant {
		t.Errorf("held out: probes %+v, exposures %v; want 3 probes and the set's holdout", d.Probes, d.Exposures)
	}
	for k, id := range []string{"greet", "cta", "test"} {
		if pr := d.Probes[k]; pr.Rule != id || pr.Experiment != "home-personalization" || !pr.Content || pr.Peek {
			t.Errorf("held out: probe %d = %+v, want %s's, holding the content, telling the set's exposure", k, pr, id)
		}
	}
	if r := d.Trace[0].Reason; r != "held out by experiment home-personalization: the origin's block is kept" {
		t.Errorf("trace: %q", r)
	}
	// Not a VIP: the map has no case, so it is not probed.
	if d := s.Decide(p, &Visitor{ID: held}, nil); len(d.Probes) != 2 {
		t.Errorf("held out, no map case: probes %+v, want greet's and test's", d.Probes)
	}
	d = s.Decide(p, &Visitor{ID: treated, Segments: vip}, nil)
	// The set's treated visitor: the rules' changes, a probe per rule of
	// the set that tells the set's exposure, as for the holdout but only
	// looking, and the one that tells test's (its variant a's).
	wantProbes := []Probe{
		{Sel: 0, At: 0, Rule: "greet", Content: true, Experiment: "home-personalization", Peek: true},
		{Sel: 1, At: 1, Rule: "cta", Content: true, Experiment: "home-personalization", Peek: true},
		{Sel: 2, At: 2, Rule: "test", Content: true, Experiment: "home-personalization", Peek: true},
		{Sel: 2, At: 2, Rule: "test", Content: true, Experiment: "test", Peek: true},
	}
	if len(d.Actions) != 4 || !slices.Equal(d.Probes, wantProbes) {
		t.Errorf("treated: actions %v, probes %v", d.Actions, d.Probes)
	}
	var names []string
	for _, x := range d.Exposures {
		names = append(names, x.Experiment+":"+x.Variant)
	}
	if !slices.Equal(names, []string{"home-personalization:" + TreatedVariant, "test:a"}) || d.Exposures[0].Rule != "" || d.Exposures[1].Rule != "test" {
		t.Errorf("treated exposures %v (rules %q, %q)", names, d.Exposures[0].Rule, d.Exposures[1].Rule)
	}
	// Sticky: a kept arm wins over the hash; control visitors are held.
	if d := s.Decide(p, &Visitor{ID: held, Assigned: kept{"home-personalization": TreatedVariant}}, nil); len(d.Actions) != 3 {
		t.Errorf("kept treated: %v", d.Actions)
	}
	if d := s.Decide(p, &Visitor{ID: treated, Control: true, Segments: vip}, nil); len(d.Actions) != 1 || len(d.Exposures)+len(d.Probes) != 0 {
		t.Errorf("control: actions %v, exposures %v, probes %v", d.Actions, d.Exposures, d.Probes)
	}
}

func TestRuleSetValidation(t *testing.T) {
	page := "pages:\n  - match: [\"/\"]\n    rules:\n      - { id: a, select: p, text: x }\n      - { id: b, select: p, add_class: y }\n"
	tests := []struct{ name, src, want string }{
		{"unknown rule", "experiments:\n  s: { holdout: 10, rules: [a, nope] }\n", `rules/a.yaml:7:32: experiments.s.rules: no rule has id "nope"`},
		{"in two sets", "experiments:\n  s: { holdout: 10, rules: [a] }\n  t: { holdout: 10, rules: [b, a] }\n", `rules/a.yaml:8:32: experiments.t.rules: rule "a" is already in experiment "s" (rules/a.yaml:7)`},
		{"bad holdout", "experiments:\n  s: { holdout: 100, rules: [a] }\n", `rules/a.yaml:7:17: experiments.s.holdout: want a percentage above 0 and below 100`},
		{"no holdout", "experiments:\n  s: { rules: [a] }\n", `rules/a.yaml:7:6: experiments.s: a rule-set experiment needs holdout:`},
		{"name is a rule id", "experiments:\n  a: { holdout: 10, rules: [b] }\n", `rules/a.yaml:7:3: experiments: "a" is the id of the rule at rules/a.yaml:4`},
		{"no rules", "experiments:\n  s: { holdout: 10, rules: [] }\n", `rules/a.yaml:7:28: experiments.s.rules: want at least one rule id`},
		{"unknown key", "experiments:\n  s: { holdout: 10, rules: [a], weight: 3 }\n", `rules/a.yaml:7:33: unknown key "weight" in experiments.s`},
	}
	for _, tt := range tests {
		got := loadErrors(t, map[string]string{"a.yaml": page + tt.src})
		if len(got) != 1 || !strings.HasPrefix(got[0], tt.want) {
			t.Errorf("%s: errors\n%s\nwant\n%s", tt.name, strings.Join(got, "\n"), tt.want)
		}
	}
}
