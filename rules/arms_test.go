package rules

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

// Example A of the review of issue 18: the arms of one experiment must be
// counted by one test. Variant a sets the heading for everyone; variant b
// is a map with a case for VIPs only. For a visitor who is not a VIP, a
// would change the block, so the experiment is live for them in every
// arm: a b visitor without a case saw b's version of the page (the
// origin's heading) and counts in b, as a holdout visitor counts in the
// holdout. Counting b only when b's own change applied left b with no
// one but VIPs (30,000 visitors: holdout 10,165, a 9,965, b 0).
const armsRules = `pages:
  - match: ["/"]
    rules:
      - id: hero-test
        select: "#hero h1"
        experiment:
          holdout: 34
          variants:
            a: { weight: 50, text: "Run further" }
            b: { weight: 50, map: { by: segment, vip: { text: "Members first" } } }
`

func TestEveryArmIsCountedByOneTest(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": armsRules})
	p := s.Match("/")
	const n = 30000
	got := map[string]int{}
	for i := range n {
		id := fmt.Sprintf("visitor-%d", i)
		d := s.Decide(p, &Visitor{ID: id}, nil)
		if len(d.Exposures) != 1 {
			t.Fatalf("visitor %s: exposures %v, want one: a would change the block for them", id, d.Exposures)
		}
		arm := d.Exposures[0].Variant
		got[arm]++
		// One probe, the same in every arm but that the holdout's holds
		// the origin's content where the others only look.
		want := Probe{Sel: 0, At: 0, Rule: "hero-test", Content: true, Experiment: "hero-test", Peek: arm != HoldoutVariant}
		if len(d.Probes) != 1 || d.Probes[0] != want {
			t.Fatalf("visitor %s in %s: probes %+v, want %+v", id, arm, d.Probes, want)
		}
		// The arm is the one the visitor is in: a VIP, for whom b has a
		// case, is in the same one.
		if vip := s.Decide(p, &Visitor{ID: id, Segments: []string{"vip"}}, nil); vip.Exposures[0].Variant != arm {
			t.Fatalf("visitor %s: %s, and %s as a VIP", id, arm, vip.Exposures[0].Variant)
		}
	}
	for arm, share := range map[string]float64{HoldoutVariant: 34, "a": 33, "b": 33} {
		if pct := 100 * float64(got[arm]) / n; math.Abs(pct-share) > 2 {
			t.Errorf("arm %s: %d of %d visitors exposed (%.1f%%), want %.0f%% ± 2", arm, got[arm], n, pct, share)
		}
	}
	t.Logf("exposures over %d visitors who are not VIPs: %v", n, got)

	// Neither arm has anything for anyone when no variant has a change:
	// a map with a VIP case only in both, the visitor no VIP.
	s = mustLoad(t, map[string]string{"a.yaml": `pages:
  - match: ["/"]
    rules:
      - id: hero-test
        select: "#hero h1"
        experiment:
          holdout: 34
          variants:
            a: { weight: 50, map: { by: segment, vip: { text: "A" } } }
            b: { weight: 50, map: { by: segment, vip: { add_class: b } } }
`})
	for i := range 300 {
		d := s.Decide(s.Match("/"), &Visitor{ID: fmt.Sprintf("visitor-%d", i)}, nil)
		if len(d.Exposures)+len(d.Probes) != 0 {
			t.Fatalf("no arm has a change for visitor-%d: exposures %v, probes %+v", i, d.Exposures, d.Probes)
		}
	}
}

// Review of issue 18, item 2: in a rule-set experiment, a visitor in the
// set's treated arm and in its rule's own holdout, with no case in the
// rule's variant, was probed though the rule had nothing for them (the
// held exposure's index was taken for the set's), and that probe alone
// made the set's exposure true. Neither the rule nor the set is live for
// them: no probe, no exposure. A VIP in the same arms is probed for both.
func TestRuleSetProbesOnlyWhatHasAChange(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": `experiments:
  hero-personalization: { holdout: 50, rules: [hero-test] }
pages:
  - match: ["/"]
    rules:
      - id: hero-test
        select: "#hero h1"
        experiment:
          holdout: 50
          variants:
            a: { weight: 100, map: { by: segment, vip: { text: "Members first" } } }
`})
	p := s.Match("/")
	set := &ruleSet{name: "hero-personalization", holdout: 50}
	found := 0
	for i := 0; found < 20; i++ {
		id := fmt.Sprintf("visitor-%d", i)
		if held, _ := set.holds(&Visitor{ID: id}); held || s.exps["hero-test"].bucket("hero-test", id) != nil {
			continue // not treated by the set, or not in the rule's holdout
		}
		found++
		if d := s.Decide(p, &Visitor{ID: id}, nil); len(d.Probes)+len(d.Exposures) != 0 {
			t.Errorf("visitor %s, no case for them: probes %+v, exposures %v; want none", id, d.Probes, d.Exposures)
		}
		d := s.Decide(p, &Visitor{ID: id, Segments: []string{"vip"}}, nil)
		want := []Probe{
			{Sel: 0, At: 0, Rule: "hero-test", Content: true, Experiment: "hero-personalization", Peek: true},
			{Sel: 0, At: 0, Rule: "hero-test", Content: true, Experiment: "hero-test"},
		}
		if !slices.Equal(d.Probes, want) || len(d.Exposures) != 2 || d.Exposures[0].Variant != TreatedVariant || d.Exposures[1].Variant != HoldoutVariant {
			t.Errorf("VIP %s: probes %+v, exposures %v; want the set's (treated) and the rule's (holdout)", id, d.Probes, d.Exposures)
		}
	}
}
