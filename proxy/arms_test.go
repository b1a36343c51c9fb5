package proxy

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"github.com/tailor-edge/tailor/rewrite"
	"github.com/tailor-edge/tailor/rules"
)

// The arms of one experiment are counted by one test (exposure truth,
// README "Experiments"): a visitor, in whichever arm, is exposed when the
// experiment's block reached the page they got and some arm would change
// it for them, where no earlier rule took the change. These tests decide
// and render as the proxy does (pageEdits, RenderApplied, exposuresShown)
// for many visitors; TestEveryArmCountedThroughTheProxy does it through
// the proxy.

const armsPage = `<!doctype html><html><body><div id="hero"><h1>Run</h1></div>` +
	`<p class="greet">Hi</p></body></html>`

// loadArmsRules loads rule file src.
func loadArmsRules(t *testing.T, src string) *rules.Set {
	t.Helper()
	dir := t.TempDir()
	writeRules(t, dir, map[string]string{"exp.yaml": src})
	set, err := rules.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// armTally is, per arm of one experiment, how many visitors were in it
// and how many were exposed.
type armTally struct{ in, exposed map[string]int }

// tallyArms decides and renders the home page for n visitors, as the
// proxy does; arm names each visitor's arm of experiment, and visitor
// makes the rules' visitor. Every page must come out as it does without
// the probes: a probe changes no byte.
func tallyArms(t *testing.T, set *rules.Set, n int, experiment string, visitor func(id string) *rules.Visitor, arm func(id string) string) armTally {
	t.Helper()
	page := set.Match("/")
	tpl, err := rewrite.Compile([]byte(armsPage), page.Matchers())
	if err != nil {
		t.Fatal(err)
	}
	tally := armTally{in: map[string]int{}, exposed: map[string]int{}}
	for i := range n {
		id := fmt.Sprintf("visitor-%d", i)
		d := set.Decide(page, visitor(id), nil)
		edits := pageEdits(&d)
		done := make([]bool, len(edits))
		got := tpl.RenderApplied(nil, edits, done)
		if want := tpl.Render(nil, editsOf(d.Actions)); !bytes.Equal(got, want) {
			t.Fatalf("visitor %s: the probes changed the page:\n%s\nwithout them\n%s", id, got, want)
		}
		out := outcome{done: done, probes: d.Probes, changed: len(d.Actions) > 0}
		a := arm(id)
		tally.in[a]++
		for _, x := range exposuresShown(&d, &out) {
			if x.Experiment != experiment {
				continue
			}
			if x.Variant != a {
				t.Fatalf("visitor %s in %s exposed in %s", id, a, x.Variant)
			}
			tally.exposed[a]++
		}
	}
	return tally
}

// allExposed fails unless every visitor of each arm was exposed, and each
// arm holds its configured share (percent) of the visitors, ± 3 points.
func (ta armTally) allExposed(t *testing.T, n int, shares map[string]float64) {
	t.Helper()
	for arm, share := range shares {
		if ta.exposed[arm] != ta.in[arm] {
			t.Errorf("arm %s: %d of %d visitors exposed, want all", arm, ta.exposed[arm], ta.in[arm])
		}
		if pct := 100 * float64(ta.exposed[arm]) / float64(n); math.Abs(pct-share) > 3 {
			t.Errorf("arm %s: %.1f%% of the visitors exposed, want its share %.0f%% ± 3", arm, pct, share)
		}
	}
}

// Example A: variant a sets the heading for everyone, variant b is a map
// with a case for VIPs only. For visitors who are not VIPs, b's version
// of the page is the origin's heading, and they count in b.
func TestArmsOfAVIPOnlyVariantAreCountedAlike(t *testing.T) {
	set := loadArmsRules(t, `pages:
  - match: ["/"]
    rules:
      - id: hero-test
        select: "#hero h1"
        experiment:
          holdout: 34
          variants:
            a: { weight: 50, text: "Run further" }
            b: { weight: 50, map: { by: segment, vip: { text: "Members first" } } }
`)
	// A VIP's arm is the visitor's: b has a case for them.
	armOf := func(id string) string {
		return set.Decide(set.Match("/"), &rules.Visitor{ID: id, Segments: []string{"vip"}}, nil).Exposures[0].Variant
	}
	const n = 3000
	tally := tallyArms(t, set, n, "hero-test", func(id string) *rules.Visitor { return &rules.Visitor{ID: id} }, armOf)
	t.Logf("in the arms: %v; exposed: %v", tally.in, tally.exposed)
	tally.allExposed(t, n, map[string]float64{rules.HoldoutVariant: 34, "a": 33, "b": 33})
}

// exampleB is Example B's rules: an earlier rule sets the heading; the
// experiment's variant a adds a class to it, b sets its text, which the
// earlier rule took. a's class is a change no earlier rule made, so the
// experiment is live for every visitor, in each arm.
const exampleB = `pages:
  - match: ["/"]
    rules:
      - { id: hero-title, select: "#hero h1", text: "Welcome back" }
      - id: hero-test
        select: "#hero h1"
        experiment: { holdout: 34, variants: { a: { weight: 50, add_class: bold }, b: { weight: 50, text: "Run faster" } } }
`

// exampleBArms is exampleB's experiment alone: the same ids, the same
// arms, each with a change on the page.
const exampleBArms = `pages:
  - match: ["/"]
    rules:
      - id: hero-test
        select: "#hero h1"
        experiment: { holdout: 34, variants: { a: { weight: 50, add_class: bold }, b: { weight: 50, text: "Run faster" } } }
`

// armOfSet returns the arm a visitor id is in, by ref's decision.
func armOfSet(ref *rules.Set) func(id string) string {
	return func(id string) string {
		return ref.Decide(ref.Match("/"), &rules.Visitor{ID: id}, nil).Exposures[0].Variant
	}
}

// Example B: the holdout and b were counted by tests the earlier rule
// fails (a Sole probe, b's own text), a by its class alone: a 990 of 990,
// b 0 of 1031, the holdout 0 of 979.
func TestArmsAreCountedAlikeUnderAnEarlierRule(t *testing.T) {
	set := loadArmsRules(t, exampleB)
	const n = 3000
	tally := tallyArms(t, set, n, "hero-test", func(id string) *rules.Visitor { return &rules.Visitor{ID: id} }, armOfSet(loadArmsRules(t, exampleBArms)))
	t.Logf("in the arms: %v; exposed: %v", tally.in, tally.exposed)
	tally.allExposed(t, n, map[string]float64{rules.HoldoutVariant: 34, "a": 33, "b": 33})

	// The same earlier rule on another selector that matches the heading
	// takes its content on the page: a's class still lands, and every arm
	// counts again.
	set = loadArmsRules(t, `pages:
  - match: ["/"]
    rules:
      - { id: hero-title, select: "h1", text: "Welcome back" }
      - id: hero-test
        select: "#hero h1"
        experiment: { holdout: 34, variants: { a: { weight: 50, add_class: bold }, b: { weight: 50, text: "Run faster" } } }
`)
	tally = tallyArms(t, set, n, "hero-test", func(id string) *rules.Visitor { return &rules.Visitor{ID: id} }, armOfSet(loadArmsRules(t, exampleBArms)))
	tally.allExposed(t, n, map[string]float64{rules.HoldoutVariant: 34, "a": 33, "b": 33})

	// When every arm changes the content only, the earlier rule on
	// another selector takes it from all of them: no arm counts.
	set = loadArmsRules(t, `pages:
  - match: ["/"]
    rules:
      - { id: hero-title, select: "h1", text: "Welcome back" }
      - id: hero-test
        select: "#hero h1"
        experiment: { holdout: 34, variants: { a: { weight: 50, text: "Run further" }, b: { weight: 50, text: "Run faster" } } }
`)
	tally = tallyArms(t, set, n, "hero-test", func(id string) *rules.Visitor { return &rules.Visitor{ID: id} }, armOfSet(loadArmsRules(t, exampleBArms)))
	if len(tally.exposed) != 0 {
		t.Errorf("every arm's change was taken by an earlier rule; exposed %v", tally.exposed)
	}
}

// A rule-set experiment whose one rule is an experiment with a case for
// VIPs only: for visitors who are not VIPs the set changes nothing in
// either arm, and counts no one; for VIPs it counts both arms. (It once
// probed the inner rule for the set's treated visitors in its holdout
// though it had nothing for them, and the probe alone made the set's
// exposure true: the treated arm counted everyone, the holdout VIPs
// only.)
func TestRuleSetArmsAreCountedAlike(t *testing.T) {
	set := loadArmsRules(t, `experiments:
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
      - { id: greet, select: ".greet", text: "Hello" }
`)
	// The set's arm: the held-out get the origin's heading for VIPs.
	armOf := func(id string) string {
		d := set.Decide(set.Match("/"), &rules.Visitor{ID: id, Segments: []string{"vip"}}, nil)
		for _, x := range d.Exposures {
			if x.Experiment == "hero-personalization" {
				return x.Variant
			}
		}
		t.Fatalf("visitor %s: no exposure of the set as a VIP: %v", id, d.Exposures)
		return ""
	}
	const n = 1000
	tally := tallyArms(t, set, n, "hero-personalization", func(id string) *rules.Visitor { return &rules.Visitor{ID: id} }, armOf)
	t.Logf("not VIPs: in the arms %v; exposed %v", tally.in, tally.exposed)
	if len(tally.exposed) != 0 {
		t.Errorf("the set has nothing for visitors who are not VIPs; exposed %v", tally.exposed)
	}
	tally = tallyArms(t, set, n, "hero-personalization", func(id string) *rules.Visitor {
		return &rules.Visitor{ID: id, Segments: []string{"vip"}}
	}, armOf)
	t.Logf("VIPs: in the arms %v; exposed %v", tally.in, tally.exposed)
	tally.allExposed(t, n, map[string]float64{rules.HoldoutVariant: 50, rules.TreatedVariant: 50})
}
