package rules

import (
	"reflect"
	"testing"
)

func TestPageRulesDescribeWhatEachBlockShows(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"a.yaml": `
stages: [awareness, interest, intent]
pages:
  - match: ["/"]
    rules:
      - id: greet
        when: { known: true }
        select: ".greeting"
        text: "Welcome back,
          {{ .Traits.first_name }}!"
      - id: cta
        select: ".cta"
        map:
          by: stage
          interest: { inner: '<a href="/guide">Guide</a>' }
          default: { replace: { file: fragments/cta.html } }
      - id: hero-test
        select: "#hero h1"
        experiment:
          holdout: 10
          variants:
            a: { weight: 50, text: "Run further" }
            b: { weight: 50, attr: { title: "x" } }
`,
		"rules/fragments/cta.html": `<div class="cta">Shop</div>`,
	})
	got := s.Pages()[0].Rules()
	want := []RuleInfo{
		{ID: "greet", Selector: ".greeting", Kind: "rule", Conditional: true, Action: "text: Welcome back, {{ .Traits.first_name }}!"},
		{ID: "cta", Selector: ".cta", Kind: "map", By: "stage", Cases: []CaseInfo{
			{Key: "interest", Action: `inner: <a href="/guide">Guide</a>`},
			{Key: "default", Action: "replace: file fragments/cta.html"}}},
		{ID: "hero-test", Selector: "#hero h1", Kind: "experiment", Cases: []CaseInfo{
			{Key: "holdout", Action: "the origin's block", Weight: 10},
			{Key: "a", Action: "text: Run further", Weight: 45},
			{Key: "b", Action: "attr: title=x", Weight: 45}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Rules() =\n%+v\nwant\n%+v", got, want)
	}
}
