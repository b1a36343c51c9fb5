package journey

import (
	"testing"
	"testing/fstest"
	"time"

	"github.com/tailor-edge/tailor/cache"
	"github.com/tailor-edge/tailor/identity"
	"github.com/tailor-edge/tailor/rules"
)

func testSet(t *testing.T) *rules.Set {
	t.Helper()
	set, err := rules.LoadFS(fstest.MapFS{"rules/j.yaml": {Data: []byte(`stages: [awareness, interest, intent]
journey:
  - { path: "/products/**", stage: interest }
  - { path: "/cart", stage: intent, goal: cart, value: 10 }
interests:
  half_life: 1h
  rules:
    - { path: "/products/**", add: { running: 4 } }
personas:
  runner: { running: 1.0 }
`)}}, "rules")
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// Next is pure: the same state, input and time give the same view. A
// first view starts visit 1; a view after visitGap starts the next visit
// and clears its engagement; the journey moves the stage forward only,
// unless the profile is unsure; a goal adds its value; interests decay
// and add up; an unchanged state is not rewritten within stateRefresh.
func TestNext(t *testing.T) {
	set := testSet(t)
	now := time.Unix(1_800_000_000, 0)
	at := func(path string) Input { return Input{Path: path, Step: StepOf(set, path), Now: now} }

	first := Next(set, identity.State{}, false, at("/products/shoe"))
	if first.State.Visits != 1 || first.Stage != "interest" || first.StageTo != "interest" || !first.Changed ||
		first.Persona != "runner" || first.Interests["running"] != 4 {
		t.Errorf("first view: %+v", first)
	}

	prev := first.State
	prev.LastSeen = now.Unix() - int64(2*visitGap/time.Second)
	again := Next(set, prev, true, at("/cart"))
	if again.State.Visits != 2 || again.Stage != "intent" || again.Goal != "cart" || again.State.Engagement != 10 {
		t.Errorf("a view after the gap, to /cart: %+v", again)
	}
	if back := Next(set, again.State, true, at("/products/x")); back.Stage != "intent" || back.StageTo != "" {
		t.Errorf("the journey moved a visitor back: %+v", back)
	}
	unsure := at("/cart")
	unsure.Unsure = true
	if v := Next(set, first.State, true, unsure); v.Stage != "interest" {
		t.Errorf("an unsure profile let the edge move the stage: %+v", v)
	}

	hourLater := at("/products/y")
	hourLater.Now = now.Add(time.Hour)
	if v := Next(set, first.State, true, hourLater); v.Interests["running"] != 2+4 {
		t.Errorf("interests after a half-life and a view: %v, want 6", v.Interests)
	}
	quiet := first.State
	if v := Next(set, quiet, true, Input{Path: "/about", Now: now.Add(10 * time.Second)}); v.Changed {
		t.Errorf("a view that changed nothing rewrote the state within stateRefresh: %+v", v)
	}

	profile := &cache.Profile{ID: "c", Stage: "intent", UpdatedAt: now.Add(time.Minute)}
	in := at("/products/z")
	in.Profile = profile
	if v := Next(set, first.State, true, in); v.Stage != "intent" {
		t.Errorf("a newer profile's stage did not count: %+v", v)
	}
	if a, b := Next(set, prev, true, at("/cart")), Next(set, prev, true, at("/cart")); a.State.Visits != b.State.Visits || a.Stage != b.Stage {
		t.Error("Next is not a function of its arguments")
	}
}

// Conclude is pure too: it leaves the view as it was and gives the next
// state and the exposures to report together. An exposure is reported
// once per visit (the state remembers it, so the next view's Conclude
// does not report it again); the state keeps the last
// identity.MaxExposed, and each exposure's variant for good.
func TestConcludeRecordsEachExposureOnce(t *testing.T) {
	set := testSet(t)
	now := time.Unix(1_800_000_000, 0)
	first := Next(set, identity.State{}, false, Input{Path: "/", Now: now})
	hero := rules.Exposure{Experiment: "hero", Variant: "b"}
	held := rules.Exposure{Experiment: "cta", Variant: rules.HoldoutVariant}

	out := first.Conclude([]rules.Exposure{hero, held})
	if len(out.Exposures) != 2 || !out.Send || len(out.State.Exposed) != 2 {
		t.Fatalf("first view: %d exposures, send %v, %d in state; want 2, true, 2", len(out.Exposures), out.Send, len(out.State.Exposed))
	}
	if len(first.State.Exposed) != 0 {
		t.Errorf("Conclude changed the view's state: %v", first.State.Exposed)
	}
	if again := first.Conclude([]rules.Exposure{hero, held}); len(again.Exposures) != 2 {
		t.Errorf("a second Conclude of the same view gave %d exposures, want the same 2", len(again.Exposures))
	}

	// The next page view, ten seconds on, from the cookie out.State.
	later := now.Add(10 * time.Second)
	second := Next(set, out.State, true, Input{Path: "/", Now: later})
	if next := second.Conclude([]rules.Exposure{hero, held}); len(next.Exposures) != 0 || next.Send {
		t.Errorf("second view: %d exposures, send %v; want none reported again and no cookie", len(next.Exposures), next.Send)
	}

	if got := first.Conclude(nil); got.Send != first.Changed || len(got.Exposures) != 0 || len(got.State.Exposed) != 0 {
		t.Errorf("nothing reported: %+v, want the view's state and Changed %v", got, first.Changed)
	}

	// A quiet view (nothing else changed) that meets a new experiment
	// must send the cookie, with a fresh last-seen time.
	quiet := Next(set, out.State, true, Input{Path: "/", Now: later})
	x := rules.Exposure{Experiment: "footer", Variant: "a"}
	q := quiet.Conclude([]rules.Exposure{x})
	if !q.Send || q.State.LastSeen != later.Unix() || len(q.State.Exposed) != 3 {
		t.Errorf("quiet view meeting %v: send %v, last seen %d, %d exposed; want true, %d, 3", x, q.Send, q.State.LastSeen, len(q.State.Exposed), later.Unix())
	}

	many := make([]rules.Exposure, identity.MaxExposed+3)
	for i := range many {
		many[i] = rules.Exposure{Experiment: "e" + string(rune('a'+i)), Variant: "a"}
	}
	if full := first.Conclude(many); len(full.State.Exposed) != identity.MaxExposed || len(full.Exposures) != len(many) {
		t.Errorf("%d exposures: %d kept in state, %d reported; want %d and %d", len(many), len(full.State.Exposed), len(full.Exposures), identity.MaxExposed, len(many))
	}
}

// Conclude keeps each true exposure's variant in the state, and the next
// visit (after 30 minutes) still has it, though its exposures are
// reported again; meeting a kept experiment again changes no cookie.
func TestConcludeKeepsVariantsAcrossVisits(t *testing.T) {
	set := testSet(t)
	now := time.Unix(1_800_000_000, 0)
	first := Next(set, identity.State{}, false, Input{Path: "/", Now: now})
	out := first.Conclude([]rules.Exposure{{Experiment: "hero", Variant: "b"}, {Experiment: "cta", Variant: rules.HoldoutVariant}})
	if !out.State.Kept("hero", "b") || !out.State.Kept("cta", rules.HoldoutVariant) || first.State.Kept("hero", "b") {
		t.Fatalf("first view: kept %v; the view's own state %v", out.State.Sticky, first.State.Sticky)
	}
	later := now.Add(10 * time.Second)
	again := Next(set, out.State, true, Input{Path: "/", Now: later})
	if o := again.Conclude([]rules.Exposure{{Experiment: "hero", Variant: "b"}}); o.Send || len(o.Exposures) != 0 {
		t.Errorf("the same variant again in the visit: send %v, %d exposures; want no cookie, none", o.Send, len(o.Exposures))
	}
	next := Next(set, out.State, true, Input{Path: "/", Now: now.Add(31 * time.Minute)})
	if next.State.Visits != 2 || !next.State.Kept("hero", "b") || len(next.State.Exposed) != 0 {
		t.Errorf("next visit: visits %d, kept %v, exposed %v", next.State.Visits, next.State.Sticky, next.State.Exposed)
	}
	if o := next.Conclude([]rules.Exposure{{Experiment: "hero", Variant: "b"}}); len(o.Exposures) != 1 || !o.State.Kept("hero", "b") {
		t.Errorf("next visit's exposure: %+v", o)
	}
}
