package rules

import (
	"errors"
	"reflect"
	"testing"
)

func TestGoalsDeclareWhatTheBrowserMayReport(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"a.yaml": `
stages: [browse, buy]
journey:
  - { path: /done, stage: buy, goal: purchase, value: 100 }
  - { path: /thanks, goal: subscribe, value: 10 }
goals:
  subscribe: { value: 10 }
  add_to_cart: { value: 5, max_value: 500, click: [".add-to-cart", "button[data-sku]"] }
  newsletter:  { click: "#subscribe", path: ["/blog/**", "/"] }
  video_play:  { value: 1 }
  signup: ~
`,
	})
	if got, want := s.Goals(), []string{"subscribe", "add_to_cart", "newsletter", "video_play", "signup", "purchase"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Goals() = %q, want %q", got, want)
	}
	for _, tt := range []struct {
		name            string
		ok              bool
		value, maxValue float64
	}{
		{"add_to_cart", true, 5, 500},
		{"newsletter", true, 0, 0},
		{"video_play", true, 1, 1},
		{"signup", true, 0, 0},
		// A journey's goal is for the page view to confirm: the browser
		// may not report it, unless goals: declares it too.
		{"purchase", false, 0, 0},
		{"subscribe", true, 10, 10},
		{"refund", false, 0, 0},
	} {
		g, ok := s.Goal(tt.name)
		if ok != tt.ok || g.Value != tt.value || g.MaxValue != tt.maxValue {
			t.Errorf("Goal(%q) = %+v, %v; want value %v, max %v, %v", tt.name, g, ok, tt.value, tt.maxValue, tt.ok)
		}
	}
	all := []ClickGoal{{"add_to_cart", []string{".add-to-cart", "button[data-sku]"}}, {"newsletter", []string{"#subscribe"}}}
	for path, want := range map[string][]ClickGoal{
		"/":              all,
		"/blog/trail/x":  all,
		"/products/shoe": all[:1], // add_to_cart has no path: every page
	} {
		if got := s.ClickGoals(path); !reflect.DeepEqual(got, want) {
			t.Errorf("ClickGoals(%q) = %v, want %v", path, got, want)
		}
	}
	if !s.HasClickGoals() {
		t.Error("HasClickGoals() = false")
	}

	plain := mustLoad(t, map[string]string{"a.yaml": "goals: { signup: { value: 3 } }\n"})
	if plain.HasClickGoals() || plain.ClickGoals("/") != nil {
		t.Errorf("a set without click: has click goals: %v", plain.ClickGoals("/"))
	}
}

func TestGoalProblemsAreAtTheirPlace(t *testing.T) {
	got := loadErrors(t, map[string]string{
		"a.yaml": `goals:
  add_to_cart: { value: -1 }
  "bad name": { value: 1 }
  big: { value: 10, max_value: 5 }
  sel: { click: ["#a >"] }
  where: { path: "/x" }
  typo: { valeu: 3 }
  num: { value: lots }
  globbed: { click: .x, path: "x/*" }
`,
		"b.yaml": "goals:\n  add_to_cart: {}\n",
	})
	want := []string{
		`rules/a.yaml:2:25: goals.add_to_cart.value: a goal's value must not be negative`,
		`rules/a.yaml:3:3: goals: "bad name" is not a name: use letters, digits, _, . and - (at most 128), starting with a letter or digit`,
		`rules/a.yaml:4:32: goals.big.max_value: 5 is less than the goal's value, 10`,
		`rules/a.yaml:5:18: goals.sel.click: invalid selector "#a >": expected selector, found EOF instead`,
		`rules/a.yaml:6:10: goals.where: path: says where the goal script goes for click:; a goal without click: needs none`,
		`rules/a.yaml:7:11: unknown key "valeu" in goals.typo (did you mean "value"?)`,
		`rules/a.yaml:8:17: goals.num.value: want a number, not "lots"`,
		`rules/a.yaml:9:31: goals.globbed.path: path glob "x/*" must start with /`,
		`rules/b.yaml:2:3: goal "add_to_cart" is already declared at rules/a.yaml:2`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", join(got), join(want))
	}
	_, err := loadFiles(t, map[string]string{"a.yaml": "goals: { x: { click: [\"a[\"] } }\n"})
	if !errors.Is(err, ErrSelector) {
		t.Errorf("a bad click selector: %v, want ErrSelector", err)
	}
}

func join(ss []string) string {
	out := ""
	for _, s := range ss {
		out += s + "\n"
	}
	return out
}
