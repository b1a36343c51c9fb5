package rewrite

import (
	"bytes"
	"os"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/andybalholm/cascadia"
	"golang.org/x/net/html"
)

// The benchmark page (testdata/bench-page.html, ~100 KB: navigation, a
// product grid, a comparison table, teasers, inline scripts and styles)
// and five personalised blocks, the same bench/lolhtml/rewrite.mjs uses.
var (
	benchSelectors = []string{"#hero", ".greeting", ".cta", "footer .promo", "#recommendations"}
	benchValues    = []string{
		`<section id="hero" class="hero hero--vip"><h1>Welcome back, Jane</h1><p>Your size is back in stock: <a href="/p/shoe-42">Trail Shoe Model 42</a>.</p></section>`,
		`Welcome back, Jane!`,
		`<a href="/guide">Read the buyer's guide</a>`,
		``,
		`<article class="teaser"><h3><a href="/blog/ultra">Your first ultra</a></h3><p>Picked for runners like you.</p></article>`,
	}
	benchEdits = []Edit{
		{Sel: 0, Op: Replace, Value: []byte(benchValues[0])},
		{Sel: 1, Op: Inner, Value: []byte(benchValues[1])},
		{Sel: 2, Op: Inner, Value: []byte(benchValues[2])},
		{Sel: 3, Op: Remove},
		{Sel: 4, Op: Append, Value: []byte(benchValues[4])},
	}
)

func benchPage(tb testing.TB) []byte {
	tb.Helper()
	page, err := os.ReadFile("testdata/bench-page.html")
	if err != nil {
		tb.Fatal(err)
	}
	return page
}

func benchMatchers() []cascadia.Matcher {
	ms := make([]cascadia.Matcher, len(benchSelectors))
	for i, s := range benchSelectors {
		ms[i] = cascadia.MustCompile(s)
	}
	return ms
}

func benchTemplate(tb testing.TB) *Template {
	tb.Helper()
	tpl, err := Compile(benchPage(tb), benchMatchers())
	if err != nil {
		tb.Fatal(err)
	}
	for i := range benchSelectors {
		if tpl.Matched(i) != 1 {
			tb.Fatalf("%q matched %d elements, want 1", benchSelectors[i], tpl.Matched(i))
		}
	}
	return tpl
}

// BenchmarkRender renders the five blocks from a compiled template.
func BenchmarkRender(b *testing.B) {
	tpl := benchTemplate(b)
	dst := make([]byte, 0, 2*len(tpl.page))
	b.SetBytes(int64(len(tpl.page)))
	b.ReportAllocs()
	for b.Loop() {
		dst = tpl.Render(dst[:0], benchEdits)
	}
}

// BenchmarkCopy copies the page into a reused buffer: the floor for Render.
func BenchmarkCopy(b *testing.B) {
	page := benchPage(b)
	dst := make([]byte, 0, 2*len(page))
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		dst = append(dst[:0], page...)
	}
}

// BenchmarkGoquery does the same five edits the way a DOM rewriter does:
// parse, find, mutate, render.
func BenchmarkGoquery(b *testing.B) {
	page := benchPage(b)
	ms := make([]goquery.Matcher, len(benchSelectors))
	for i, s := range benchSelectors {
		ms[i] = cascadia.MustCompile(s)
	}
	var buf bytes.Buffer
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		goqueryRewrite(b, page, ms, &buf)
	}
}

func goqueryRewrite(tb testing.TB, page []byte, ms []goquery.Matcher, w *bytes.Buffer) {
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(page))
	if err != nil {
		tb.Fatal(err)
	}
	doc.FindMatcher(ms[0]).ReplaceWithHtml(benchValues[0])
	doc.FindMatcher(ms[1]).SetHtml(benchValues[1])
	doc.FindMatcher(ms[2]).SetHtml(benchValues[2])
	doc.FindMatcher(ms[3]).Remove()
	doc.FindMatcher(ms[4]).AppendHtml(benchValues[4])
	if err := html.Render(w, doc.Nodes[0]); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkCompileRender rewrites a page never seen before: Compile, then
// Render.
func BenchmarkCompileRender(b *testing.B) {
	page := benchPage(b)
	ms := benchMatchers()
	dst := make([]byte, 0, 2*len(page))
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		tpl, err := Compile(page, ms)
		if err != nil {
			b.Fatal(err)
		}
		dst = tpl.Render(dst[:0], benchEdits)
	}
}

// BenchmarkHTMLParse is html.Parse of the page, what any selection on it
// costs at least.
func BenchmarkHTMLParse(b *testing.B) {
	page := benchPage(b)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := html.Parse(bytes.NewReader(page)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenize runs golang.org/x/net/html's tokenizer alone.
func BenchmarkTokenize(b *testing.B) {
	page := benchPage(b)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		z := html.NewTokenizer(bytes.NewReader(page))
		for z.Next() != html.ErrorToken {
		}
	}
}

// TestBenchmarkRatios runs the benchmarks above in one process and reports
// the ratios the issue sets goals for. It runs only with
// TAILOR_BENCH_RATIOS=1 (run it with -cpu 1): timings need a quiet machine.
func TestBenchmarkRatios(t *testing.T) {
	if os.Getenv("TAILOR_BENCH_RATIOS") == "" {
		t.Skip("set TAILOR_BENCH_RATIOS=1 to measure")
	}
	benches := []struct {
		name string
		fn   func(*testing.B)
	}{
		{"Render", BenchmarkRender}, {"Copy", BenchmarkCopy}, {"Goquery", BenchmarkGoquery},
		{"CompileRender", BenchmarkCompileRender}, {"HTMLParse", BenchmarkHTMLParse}, {"Tokenize", BenchmarkTokenize},
	}
	// Three rounds, interleaved; the fastest round of each counts, which
	// keeps other load on the machine out of the ratios.
	ns := map[string]float64{}
	res := map[string]testing.BenchmarkResult{}
	for range 3 {
		for _, bb := range benches {
			r := testing.Benchmark(bb.fn)
			if v := float64(r.T.Nanoseconds()) / float64(r.N); ns[bb.name] == 0 || v < ns[bb.name] {
				ns[bb.name], res[bb.name] = v, r
			}
		}
	}
	for _, bb := range benches {
		r := res[bb.name]
		t.Logf("%-14s %12.0f ns/op %8d B/op %6d allocs/op", bb.name, ns[bb.name], r.AllocedBytesPerOp(), r.AllocsPerOp())
	}
	goal := func(ok bool) string {
		if ok {
			return "goal met"
		}
		return "GOAL MISSED"
	}
	g, c, p := ns["Goquery"]/ns["Render"], ns["Render"]/ns["Copy"], ns["CompileRender"]/ns["HTMLParse"]
	t.Logf("Goquery / Render       = %7.1fx (goal >= 500x: %s)", g, goal(g >= 500))
	t.Logf("Render / Copy          = %7.2fx (goal <= 3x: %s)", c, goal(c <= 3))
	t.Logf("CompileRender / Parse  = %7.2fx (goal <= 1.5x: %s)", p, goal(p <= 1.5))
	t.Logf("Tokenize / Parse       = %7.2fx", ns["Tokenize"]/ns["HTMLParse"])
}
