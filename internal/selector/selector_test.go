package selector

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/cascadia"
	"golang.org/x/net/html"
)

// Selectors that exercise the split (escapes, strings, regular
// expressions, comments, parentheses) and every combinator mix.
var testSelectors = []string{
	"*", "p", "div p", "div > p", "div + p", "div ~ p", "div, p", "*|*.a p",
	"span div div div p", "div > div p", "div p > a", "div ~ p a", "a + b ~ c d",
	"body > div div ~ p", "div div > div div", "ul li ~ li > a", "div + div + div",
	"p ~ p ~ p", "div > p ~ p + p", "html body div", ":root > body > *",
	".a .b", "#x .a", "[data-x] p", `[title="a b > c, d"] p`, `[title='a)b'] + p`,
	`[class~=a i] p`, `[href#=(x|y)] a`, "div:not(.a) p", "div:not(div div) > p",
	"div:has(p a) > span", ":has(p) > p", "div:has(div div p)", "div:haschild(p) ~ div",
	"p:not(:has(a))", "div:not(p, a b) div", `p:contains("a > b") ~ p`,
	`:contains("x") p`, `div:containsOwn(x) p`, `p:matches(^a( b)?$)`, "p:nth-child(2n+1) a",
	"p:nth-child( 2n /* ) */ + 1 ) ~ p", "li:nth-last-of-type(odd) a", "p:first-child + p",
	"div /* comment */ p", "div/**/p", "div\t>\np", `.a\31 .b`, `d\69 v p`, `\64 iv p`,
	`:\6e ot(p) a`, "p:lang(en) a", "input:checked ~ label", ":empty + p", "a:link b",
	"div:only-child p", "p:first-of-type ~ p:last-of-type", "svg circle", "table > tbody > tr > td",
	"div:not(:not(div div)) p", "div:has(p):not(:has(a)) p", "div:haschild(div:haschild(p))",
	":not(p) > :not(div) ~ :has(b)", "html > :not(head) div:has(div + p)",
}

var testDocs = []string{
	`<div class=a><p>x</p><div><p class=b>y <a href=/>z</a></p></div></div><p>t</p>`,
	`<!DOCTYPE html><html lang=en><body><ul><li>a<li><a>b</a><li>c</ul><p>1<p>2<p>3<p>4</body>`,
	`<div id=x><span><div><div><div><p>deep</p></div></div></div></span></div><div><p>a</p>text<p>b</p><!-- c --><p>c</p></div>`,
	`<table><tr><td>a<td>b</table><svg><circle/><g><circle/></g></svg><p title="a b > c, d">q</p><p>r</p>`,
	`<div><div><p>x</p></div><p>y</p><div><div><p><a>z</a></p></div></div></div><input type=checkbox checked><label>l</label>`,
	`<p>a > b</p><p>x</p><div>x<p>own</p></div><div data-x><p>p</p></div><p></p><p> </p><a href=x>l</a><p class='a A'><b>z</b></p>`,
}

// compare checks s against cascadia on every node of doc and returns how
// many nodes it compared and how many cascadia matched.
func compare(t testing.TB, s *Selector, doc *html.Node) (nodes, matched int) {
	t.Helper()
	want := s.Cascadia()
	run := NewRun(1 << 30)
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		nodes++
		w := want.Match(n)
		if w {
			matched++
		}
		if got := s.Match(n); got != w {
			t.Errorf("%q.Match(%s) = %v, cascadia says %v", s.String(), describe(n), got, w)
		}
		if got := run.Match(s, n); got != w {
			t.Errorf("Run.Match(%q, %s) = %v, cascadia says %v", s.String(), describe(n), got, w)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return nodes, matched
}

func describe(n *html.Node) string {
	var path []string
	for ; n != nil; n = n.Parent {
		switch n.Type {
		case html.ElementNode:
			path = append(path, n.Data)
		case html.TextNode:
			path = append(path, "#text")
		case html.DocumentNode:
			path = append(path, "#document")
		default:
			path = append(path, "#other")
		}
	}
	for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
		path[i], path[j] = path[j], path[i]
	}
	return strings.Join(path, ">")
}

func parse(t testing.TB, doc string) *html.Node {
	t.Helper()
	n, err := html.Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMatchAgreesWithCascadia(t *testing.T) {
	var pairs, empty int
	for _, src := range testSelectors {
		s, err := Compile(src)
		if err != nil {
			t.Errorf("Compile(%q): %v", src, err)
			continue
		}
		for _, d := range testDocs {
			if _, m := compare(t, s, parse(t, d)); m == 0 {
				empty++
			}
			pairs++
		}
	}
	t.Logf("%d (selector, document) pairs, %d where cascadia selects nothing", pairs, empty)
	if empty*3 > pairs*2 {
		t.Errorf("%d of %d pairs select nothing: the test proves little", empty, pairs)
	}
}

func TestCompileRefusesWhatCascadiaRefuses(t *testing.T) {
	for _, src := range []string{"", "div >", "p::before", "a[", ":nope", "p, ", "div:not(", "*|*"} {
		_, want := cascadia.ParseGroup(src)
		_, err := Compile(src)
		if want == nil || err == nil || err.Error() != want.Error() {
			t.Errorf("Compile(%q) = %v, cascadia says %v", src, err, want)
		}
	}
}

func TestStringAndSpecificityAreCascadias(t *testing.T) {
	for _, src := range []string{"#a .b > p", "p, #x, .y z"} {
		s, err := Compile(src)
		if err != nil {
			t.Fatal(err)
		}
		g, _ := cascadia.ParseGroup(src)
		if s.String() != g.String() {
			t.Errorf("String() = %q, want %q", s.String(), g.String())
		}
		var best cascadia.Specificity
		for _, sel := range g {
			if best.Less(sel.Specificity()) {
				best = sel.Specificity()
			}
		}
		if s.Specificity() != best {
			t.Errorf("%q: Specificity() = %v, want %v", src, s.Specificity(), best)
		}
	}
}

// deepPage nests depth divs around a p, without a span anywhere: the page
// and the selector of issue 14.
func deepPage(depth int) string {
	return strings.Repeat("<div>", depth) + "<p>x</p>" + strings.Repeat("</div>", depth)
}

const deepSelector = "span div div div div div div div div div div div div div p"

func TestDeepDescendantSelectorIsQuick(t *testing.T) {
	doc := parse(t, deepPage(60))
	for _, src := range []string{deepSelector, "span > div div div div div div div div div div div div div p",
		"span div > div div > div div div div div div div div div div p", "div:has(span div div div div div div div div div div div div div p)",
		"p:not(span div div div div div div div div div div div div div p)"} {
		s, err := Compile(src)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		run := NewRun(1 << 20)
		n := countMatches(run, s, doc)
		if run.Exhausted() {
			t.Errorf("%q: budget exhausted on a 60-deep page", src)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%q: %v to match a 60-deep page", src, d)
		}
		want := 0
		if strings.HasPrefix(src, "p:not") {
			want = 1
		}
		if n != want {
			t.Errorf("%q matched %d nodes, want %d", src, n, want)
		}
	}
}

func TestRunGivesUpPastItsBudget(t *testing.T) {
	s, err := Compile("span div > div div > div div > div p")
	if err != nil {
		t.Fatal(err)
	}
	doc := parse(t, deepPage(200))
	run := NewRun(100)
	countMatches(run, s, doc)
	if !run.Exhausted() {
		t.Fatal("Exhausted() = false after matching a 200-deep page on a budget of 100")
	}
	if run.Match(s, doc) {
		t.Error("Match after exhaustion = true")
	}
}

func TestErrUnsupportedIsNeverReturnedForOurSelectors(t *testing.T) {
	for _, src := range testSelectors {
		if _, err := Compile(src); errors.Is(err, ErrUnsupported) {
			t.Errorf("Compile(%q): %v", src, err)
		}
	}
}

// BenchmarkDeepSelectorMatch matches issue 14's selector on every node of
// its page, in one Run as rewrite.Compile does.
func BenchmarkDeepSelectorMatch(b *testing.B) {
	s, err := Compile(deepSelector)
	if err != nil {
		b.Fatal(err)
	}
	var nodes []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		nodes = append(nodes, n)
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(parse(b, deepPage(60)))
	b.ReportAllocs()
	for b.Loop() {
		run := NewRun(1 << 24)
		for _, n := range nodes {
			if run.Match(s, n) {
				b.Fatal("matched")
			}
		}
	}
}

func TestCostlySelectors(t *testing.T) {
	for _, tc := range []struct {
		sel  string
		want []string
	}{
		{"#hero h1", nil},
		{"ul > li a", nil},
		{"div > p ~ a", nil},
		{"main .grid .card", []string{`"main .grid .card" has 2 descendant or sibling combinators in a row`}},
		{"a > " + deepSelector, []string{`"span div div div div div div div div div div div div div p" has 14 descendant`}},
		{"h1 ~ p ~ a > b", []string{`"h1 ~ p ~ a" has 2 descendant or sibling`}},
		{"div:has(p a)", []string{`:has(p a) has a descendant combinator`}},
		{"div:has(p > a)", nil},
		{"x, div:not(a b c)", []string{`"a b c" has 2`}},
	} {
		s, err := Compile(tc.sel)
		if err != nil {
			t.Fatal(err)
		}
		got := s.Costly()
		if len(got) != len(tc.want) {
			t.Errorf("Costly(%q) = %q, want %d warnings", tc.sel, got, len(tc.want))
			continue
		}
		for i := range got {
			if !strings.HasPrefix(got[i], tc.want[i]) {
				t.Errorf("Costly(%q)[%d] = %q, want it to start %q", tc.sel, i, got[i], tc.want[i])
			}
		}
	}
}

// TestPseudoClassesAreAskedOncePerNode: ":contains(zzz) p" walks up from
// every p, and cascadia's :contains reads an ancestor's whole text each
// time: 3000 p under 300 ancestors read 300 × 3000 × 3000 bytes. The
// memo reads each ancestor's text once.
func TestPseudoClassesAreAskedOncePerNode(t *testing.T) {
	doc := parse(t, strings.Repeat("<div>", 300)+strings.Repeat("<p>abc</p>", 3000))
	s, err := Compile(`:contains("zzz") p`)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	run := NewRun(1 << 24)
	n := countMatches(run, s, doc)
	if d := time.Since(start); d > time.Second || n != 0 || run.Exhausted() {
		t.Errorf("matched %d in %v (exhausted: %v), want 0 in well under a second", n, d, run.Exhausted())
	}
}

// countMatches matches s, in run, on n and every node below it, and
// returns how many it matched.
func countMatches(run *Run, s *Selector, n *html.Node) int {
	count := 0
	if run.Match(s, n) {
		count++
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		count += countMatches(run, s, c)
	}
	return count
}
