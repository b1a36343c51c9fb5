package rules

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

const composeRules = `
pages:
  - match: ["/book/index.html"]
    rules:
      - id: book-hero
        select: "#hero"
        text: "Book now"
  - match: ["/book/**"]
    rules:
      - id: book-footer
        select: "footer .promo"
        inner: "10% off"
      - id: book-hero-all
        select: "#hero"
        text: "Books"
  - match: ["/**"]
    rules:
      - id: site-hero-track
        select: " #hero"
        attr: { data-track: site }
`

// TestPagesCompose: every page whose match: fits applies, in file order,
// with their rules on one selector composing as one page's do (issue 17).
func TestPagesCompose(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": composeRules})
	tests := []struct {
		path  string
		rules []string
		sels  []string
	}{
		{"/book/index.html", []string{"book-hero", "book-footer", "book-hero-all", "site-hero-track"}, []string{"#hero", "footer .promo"}},
		{"/book/other.html", []string{"book-footer", "book-hero-all", "site-hero-track"}, []string{"footer .promo", "#hero"}},
		{"/", []string{"site-hero-track"}, []string{" #hero"}},
	}
	for _, tt := range tests {
		p := s.Match(tt.path)
		if p == nil {
			t.Fatalf("Match(%q) = nil", tt.path)
		}
		var sels []string
		for i := range p.Selectors() {
			sels = append(sels, p.SelectorText(i))
		}
		if !slices.Equal(p.RuleIDs(), tt.rules) || !slices.Equal(sels, tt.sels) || len(p.Matchers()) != len(sels) {
			t.Errorf("Match(%q) = rules %q, selectors %q, want %q, %q", tt.path, p.RuleIDs(), sels, tt.rules, tt.sels)
		}
	}
	if s.Match("/") != s.Pages()[2] {
		t.Errorf("Match(/) is not the one page that matches")
	}
	if a, b := s.Match("/book/x.html"), s.Match("/book/y/z.html"); a != b {
		t.Errorf("Match of two paths matching the same pages gave two pages")
	}
	if a, b := s.Match("/book/index.html"), s.Match("/book/x.html"); a == b {
		t.Errorf("Match of paths matching different pages gave one page")
	}

	d := s.Decide(s.Match("/book/index.html"), nil, nil)
	var got []string
	for _, a := range d.Actions {
		got = append(got, fmt.Sprintf("%s %s %s=%s", a.Rule, a.Op, a.Name, a.Value))
	}
	want := []string{"book-hero inner =Book now", "book-footer inner =10% off", "site-hero-track attr data-track=site"}
	if !slices.Equal(got, want) {
		t.Errorf("Decide actions = %q, want %q", got, want)
	}
	if tr := d.Trace[2]; tr.Fired || tr.Reason != "content overridden by rule book-hero" ||
		!reflect.DeepEqual(tr.Overridden, []Override{{"content", "book-hero"}}) {
		t.Errorf("trace of book-hero-all = %+v, want overridden by book-hero", tr)
	}
}

// TestMatchConcurrently builds a combination's page once however many
// requests ask for it at once (run with -race).
func TestMatchConcurrently(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": composeRules})
	pages := make([]*Page, 16)
	var wg sync.WaitGroup
	for i := range pages {
		wg.Go(func() { pages[i] = s.Match("/book/index.html") })
	}
	wg.Wait()
	for _, p := range pages[1:] {
		if p != pages[0] {
			t.Fatalf("concurrent Match calls gave different pages")
		}
	}
}

const kindsRules = `
pages:
  - match: ["/"]
    rules:
      - id: cta-text
        select: ".cta"
        text: "Finish your order"
      - id: cta-link
        select: ".cta"
        attr: { href: /cart, data-x: "", data-stage: "{{ .Stage }}" }
      - id: cta-text-again
        when: { known: true }
        select: ".cta"
        inner: "<b>again</b>"
      - id: cta-link-again
        select: ".cta"
        attr: { href: /other, title: "t" }
      - id: cta-class
        select: ".cta"
        add_class: "stage-{{ .Stage }}"
      - id: cta-class-again
        select: ".cta"
        remove_class: "stage-{{ .Stage }}"
      - id: cta-other-class
        select: ".cta"
        remove_class: "old"
`

// TestRulesComposePerKindOfChange: for one selector, the first matching
// rule makes each kind of change: the content, each attribute, each class.
func TestRulesComposePerKindOfChange(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": kindsRules})
	d := s.Decide(s.Match("/"), &Visitor{Known: true, Stage: "intent"}, nil)
	var got []string
	for _, a := range d.Actions {
		got = append(got, fmt.Sprintf("%s %s %s=%q", a.Rule, a.Change(), a.Name, a.Value))
	}
	want := []string{
		`cta-text content =""`, // the value is checked below
		`cta-link attribute href href="/cart"`,
		`cta-link attribute data-x data-x=""`,
		`cta-link attribute data-stage data-stage="intent"`,
		`cta-link-again attribute title title="t"`,
		`cta-class class stage-intent ="stage-intent"`,
		`cta-other-class class old ="old"`,
	}
	got[0] = got[0][:strings.Index(got[0], "=")+1] + `""`
	if !slices.Equal(got, want) {
		t.Errorf("Decide actions =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	type tr struct {
		fired      bool
		reason     string
		overridden []Override
	}
	var traces []tr
	for _, x := range d.Trace {
		traces = append(traces, tr{x.Fired, x.Reason, x.Overridden})
	}
	wantTraces := []tr{
		{true, "matched", nil},
		{true, "matched", nil},
		{false, "content overridden by rule cta-text", []Override{{"content", "cta-text"}}},
		{true, "matched; attribute href overridden by rule cta-link", []Override{{"attribute href", "cta-link"}}},
		{true, "matched", nil},
		{false, "class stage-intent overridden by rule cta-class", []Override{{"class stage-intent", "cta-class"}}},
		{true, "matched", nil},
	}
	if !reflect.DeepEqual(traces, wantTraces) {
		t.Errorf("Decide trace =\n%+v\nwant\n%+v", traces, wantTraces)
	}
}

// TestHoldoutKeepsTheChangesOfItsVariants: the control of an experiment
// keeps the origin's content, so a later content rule is overridden, but
// an attribute the variants do not touch is another rule's to change.
func TestHoldoutKeepsTheChangesOfItsVariants(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": `
pages:
  - match: ["/"]
    rules:
      - id: test
        select: "#hero h1"
        experiment:
          holdout: 50
          variants:
            a: { weight: 100, text: "A" }
      - id: after-test
        select: "#hero h1"
        text: "after the test"
      - id: track
        select: "#hero h1"
        attr: { data-track: h1 }
`})
	d := s.Decide(s.Match("/"), &Visitor{ID: findID(t, "test", true)}, nil)
	if len(d.Actions) != 1 || d.Actions[0].Rule != "track" {
		t.Errorf("Decide actions = %+v, want track's only", d.Actions)
	}
	if r := d.Trace[1].Reason; r != "content overridden by rule test" {
		t.Errorf("after-test: %q, want overridden by the holdout", r)
	}
	if !reflect.DeepEqual(d.Exposures, []Exposure{{Experiment: "test", Variant: HoldoutVariant, Rule: "test"}}) {
		t.Errorf("Exposures = %v, want the holdout", d.Exposures)
	}
}

// TestNestedHoldoutKeepsOnlyItsExperimentsChanges: the holdout of an
// experiment in one cell of a map keeps the origin's for what that
// experiment's variants change, not for what the map's other cells would:
// a later rule changing those reaches holdout and variant visitors alike,
// so that the arms differ by the variant alone.
func TestNestedHoldoutKeepsOnlyItsExperimentsChanges(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": `
stages: [awareness, interest, intent]
pages:
  - match: ["/"]
    rules:
      - id: m
        select: "#hero"
        map:
          by: stage
          intent:
            experiment:
              holdout: 50
              variants:
                a: {weight: 100, text: "A"}
          interest: {attr: {href: /interest}}
      - id: later
        select: "#hero"
        attr: {href: /later}
      - id: later-text
        select: "#hero"
        text: "later"
`})
	p := s.Match("/")
	for _, arm := range []struct {
		holdout bool
		want    []string
	}{
		{true, []string{"later href=/later"}},
		{false, []string{"m =A", "later href=/later"}},
	} {
		d := s.Decide(p, &Visitor{ID: findID(t, "m[intent]", arm.holdout), Stage: "intent"}, nil)
		var got []string
		for _, a := range d.Actions {
			got = append(got, fmt.Sprintf("%s %s=%s", a.Rule, a.Name, a.Value))
		}
		if !slices.Equal(got, arm.want) {
			t.Errorf("holdout %v: Decide actions = %q, want %q", arm.holdout, got, arm.want)
		}
		if r := d.Trace[1].Reason; r != "matched" {
			t.Errorf("holdout %v: later: %q, want matched", arm.holdout, r)
		}
		if r := d.Trace[2].Reason; r != "content overridden by rule m" {
			t.Errorf("holdout %v: later-text: %q, want overridden by m", arm.holdout, r)
		}
	}
}

func TestAttrTakesManyPairs(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": `
pages:
  - match: ["/"]
    rules:
      - id: link
        select: a
        attr: { href: "/vip?s={{ .Stage }}", onclick: "go({{ .Stage }})", data-x: "", data-y: ~ }
`})
	d := s.Decide(s.Match("/"), &Visitor{Stage: "a b"}, nil)
	var got []string
	for _, a := range d.Actions {
		got = append(got, fmt.Sprintf("%s=%s", a.Name, a.Value))
	}
	want := []string{`href=/vip?s=a%20b`, `onclick=go(&#34;a b&#34;)`, `data-x=`, `data-y=`}
	if !slices.Equal(got, want) {
		t.Errorf("Decide actions = %q, want %q", got, want)
	}
	if r := s.Pages()[0].Rules()[0].Action; r != "attr: href=/vip?s={{ .Stage }}, onclick=go({{ .Stage }}), data-x=, data-y=~" {
		t.Errorf("summary = %q", r)
	}
}

// TestShadowedRuleWarns: a rule whose every change an earlier rule
// without conditions makes on its selector can never fire, with conditions
// or without; rules making other kinds of change, after a conditional
// rule, with a class that is a template, maps and rules of other pages
// are not warned of.
func TestShadowedRuleWarns(t *testing.T) {
	s := mustLoad(t, map[string]string{"home.yaml": `
pages:
  - match: ["/"]
    rules:
      - id: cta-text
        select: ".cta"
        text: "Finish your order"
      - id: cta-link
        select: ".cta"
        attr: { href: /cart }
      - id: cta-class
        select: ".cta"
        add_class: "x-{{ .Stage }}"
      - id: vip-text
        when: { segment: vip }
        select: ".cta"
        text: "VIP"
      - id: cta-inner
        select: ".cta"
        inner: "<b>never</b>"
      - id: cta-link-and-title
        select: ".cta"
        attr: { href: /other, title: t }
      - id: cta-class-again
        select: ".cta"
        add_class: "x-{{ .Stage }}"
      - id: vip-link
        if: 'visitor.known'
        select: "#vip"
        attr: { href: /vip }
      - id: vip-link-again
        select: "#vip"
        attr: { href: /vip2 }
      - id: cta-map
        select: ".cta"
        map: { by: segment, vip: { text: "map" } }
      - id: cta-href-again
        select: ".cta"
        attr: { HREF: /again }
  - match: ["/**"]
    rules:
      - id: site-cta
        select: ".cta"
        text: "other page"
`})
	var got []string
	for _, w := range s.Warnings() {
		if !errors.Is(w, ErrShadowedRule) {
			t.Errorf("warning %v is not ErrShadowedRule", w)
		}
		got = append(got, w.Error())
	}
	want := []string{
		`rules/home.yaml:17:9: warning: text: rule vip-text never fires: what it changes on ".cta" (content) is changed first by rule cta-text (line 7), which has no conditions`,
		`rules/home.yaml:20:9: warning: inner: rule cta-inner never fires: what it changes on ".cta" (content) is changed first by rule cta-text (line 7), which has no conditions`,
		`rules/home.yaml:39:9: warning: attr: rule cta-href-again never fires: what it changes on ".cta" (attribute href) is changed first by rule cta-link (line 10), which has no conditions`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("Warnings() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A holdout whose variants all make a change an earlier rule made is
// overridden once per kind of change, however many variants make it.
func TestOverriddenHoldoutNamesEachChangeOnce(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": `
pages:
  - match: ["/"]
    rules:
      - { id: first, select: "#hero h1", text: "first" }
      - id: test
        select: "#hero h1"
        experiment:
          holdout: 50
          variants:
            a: { weight: 50, text: "A" }
            b: { weight: 50, text: "B" }
`})
	d := s.Decide(s.Match("/"), &Visitor{ID: findID(t, "test", true)}, nil)
	if r := d.Trace[1].Reason; r != "experiment holdout: content overridden by rule first" {
		t.Errorf("test: %q, want the content overridden once", r)
	}
	if len(d.Exposures) != 0 {
		t.Errorf("Exposures = %v, want none: the holdout kept nothing of its own", d.Exposures)
	}
}
