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
