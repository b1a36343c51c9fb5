package rewrite

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/andybalholm/cascadia"
)

func compileT(t testing.TB, page string, sels ...string) *Template {
	t.Helper()
	ms := make([]cascadia.Matcher, len(sels))
	for i, s := range sels {
		ms[i] = cascadia.MustCompile(s)
	}
	tpl, err := Compile([]byte(page), ms)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func TestRender(t *testing.T) {
	tests := []struct {
		name  string
		page  string
		sels  []string
		edits []Edit
		want  string
	}{
		{
			name:  "after an item whose end tag is implied closes it first",
			page:  "<ul><li id=a>one<li id=b>two</ul>",
			sels:  []string{"#a", "#b"},
			edits: []Edit{{Sel: 0, Op: After, Value: []byte("[after a]")}, {Sel: 1, Op: Before, Value: []byte("[before b]")}},
			want:  "<ul><li id=a>one</li>[after a][before b]<li id=b>two</ul>",
		},
		{
			name:  "before an element whose start tag closes a paragraph",
			page:  "<p>a<div id=d>b</div>",
			sels:  []string{"#d"},
			edits: []Edit{{Sel: 0, Op: Before, Value: []byte("X")}},
			want:  "<p>a</p>X<div id=d>b</div>",
		},
		{
			name:  "removing an element that closed a paragraph keeps what follows out of it",
			page:  "<p>a<div id=d>b</div>c",
			sels:  []string{"#d"},
			edits: []Edit{{Sel: 0, Op: Remove}},
			want:  "<p>a</p>c",
		},
		{
			name:  "a text < before an edit does not become a tag",
			page:  "x<<b id=b>y</b>z",
			sels:  []string{"#b"},
			edits: []Edit{{Sel: 0, Op: Replace, Value: []byte("i>")}},
			want:  "x<<!---->i>z",
		},
		{
			name:  "append closes what the end tag would close",
			page:  "<div id=a><span>x</div>",
			sels:  []string{"#a"},
			edits: []Edit{{Sel: 0, Op: Append, Value: []byte("[end]")}},
			want:  "<div id=a><span>x</span>[end]</div>",
		},
		{
			name: "nested elements open at the end of the page close once",
			page: "<div id=a><div id=b>x",
			sels: []string{"#a", "#b"},
			edits: []Edit{
				{Sel: 1, Op: After, Value: []byte("[after b]")},
				{Sel: 0, Op: After, Value: []byte("[after a]")},
				{Sel: 0, Op: Append, Value: []byte("[append a]")},
			},
			want: "<div id=a><div id=b>x</div>[after b][append a]</div>[after a]",
		},
		{
			name:  "a removed element's end tag is not written",
			page:  "<div id=a><p id=b>x",
			sels:  []string{"#a", "#b"},
			edits: []Edit{{Sel: 1, Op: Remove}, {Sel: 0, Op: After, Value: []byte("[after a]")}},
			want:  "<div id=a></div>[after a]",
		},
		{
			name:  "after the content of an element whose content was replaced",
			page:  "<div id=a><p>x",
			sels:  []string{"#a"},
			edits: []Edit{{Sel: 0, Op: Inner, Value: []byte("new")}, {Sel: 0, Op: After, Value: []byte("[after]")}},
			want:  "<div id=a>new</div>[after]",
		},
		{
			name:  "edits with an unknown selector or op are ignored",
			page:  "<p id=a>x</p>",
			sels:  []string{"#a"},
			edits: []Edit{{Sel: 1, Op: Inner, Value: []byte("no")}, {Sel: -1, Op: Inner}, {Sel: 0, Op: 0}, {Sel: 0, Op: 99}},
			want:  "<p id=a>x</p>",
		},
		{
			name:  "an element matched by two selectors gets the first edit of each op",
			page:  `<p id=a class=x>x</p>`,
			sels:  []string{".x", "#a"},
			edits: []Edit{{Sel: 1, Op: SetAttr, Name: "title", Value: []byte("one")}, {Sel: 0, Op: SetAttr, Name: "TITLE", Value: []byte("two")}, {Sel: 0, Op: Inner, Value: []byte("X")}},
			want:  `<p id=a class=x title="one">X</p>`,
		},
		{
			name:  "content and attributes of one element from edits on one selector",
			page:  `<p>a<a class=cta href="/x" data-x=1>old</a>b</p>`,
			sels:  []string{".cta"},
			edits: []Edit{{Sel: 0, Op: Inner, Value: []byte("new")}, {Sel: 0, Op: SetAttr, Name: "href", Value: []byte("/cart")}, {Sel: 0, Op: SetAttr, Name: "data-x"}, {Sel: 0, Op: SetAttr, Name: "data-y", Value: []byte("intent")}, {Sel: 0, Op: AddClass, Value: []byte("vip")}},
			want:  `<p>a<a class="cta vip" href="/cart" data-y="intent">new</a>b</p>`,
		},
		{
			name:  "replacing an element wins over its attribute and class edits",
			page:  `<p>a<a class=cta href="/x">old</a>b</p>`,
			sels:  []string{".cta"},
			edits: []Edit{{Sel: 0, Op: SetAttr, Name: "href", Value: []byte("/cart")}, {Sel: 0, Op: Replace, Value: []byte("<i>new</i>")}, {Sel: 0, Op: AddClass, Value: []byte("vip")}},
			want:  `<p>a<i>new</i>b</p>`,
		},
		{
			name:  "removing an element wins over its attribute edits",
			page:  `<p>a<a class=cta href="/x">old</a>b</p>`,
			sels:  []string{".cta"},
			edits: []Edit{{Sel: 0, Op: SetAttr, Name: "href", Value: []byte("/cart")}, {Sel: 0, Op: Remove}},
			want:  `<p>ab</p>`,
		},
		{
			name:  "remove class wins over a later add",
			page:  `<p class="a b">x</p>`,
			sels:  []string{"p"},
			edits: []Edit{{Sel: 0, Op: RemoveClass, Value: []byte("b")}, {Sel: 0, Op: AddClass, Value: []byte("b")}, {Sel: 0, Op: AddClass, Value: []byte("c")}, {Sel: 0, Op: AddClass, Value: []byte("c")}},
			want:  `<p class="a c">x</p>`,
		},
		{
			name:  "set class then add to it",
			page:  `<p class="a">x</p><p>y</p>`,
			sels:  []string{"p"},
			edits: []Edit{{Sel: 0, Op: SetAttr, Name: "class", Value: []byte("b")}, {Sel: 0, Op: AddClass, Value: []byte("c")}},
			want:  `<p class="b c">x</p><p class="b c">y</p>`,
		},
		{
			name:  "a single-quoted class with a double quote is re-quoted",
			page:  `<p class='a"b'>x</p>`,
			sels:  []string{"p"},
			edits: []Edit{{Sel: 0, Op: AddClass, Value: []byte("c")}},
			want:  `<p class="a&quot;b c">x</p>`,
		},
		{
			name:  "an attribute added after an empty unquoted value is not read as that value",
			page:  `<p a=>x</p><p b= >y</p><p c=d=>z</p>`,
			sels:  []string{"p"},
			edits: []Edit{{Sel: 0, Op: AddClass, Value: []byte("k")}, {Sel: 0, Op: SetAttr, Name: "id", Value: []byte("i")}},
			want:  `<p a="" id="i" class="k">x</p><p b= "" id="i" class="k">y</p><p c=d= id="i" class="k">z</p>`,
		},
		{
			name:  "self-closing foreign element stays self-closing",
			page:  `<svg><rect width=1/><rect/></svg>`,
			sels:  []string{"rect"},
			edits: []Edit{{Sel: 0, Op: SetAttr, Name: "width", Value: []byte("2")}},
			want:  `<svg><rect width="2"><rect width="2"/></svg>`,
		},
		{
			name:  "byte-order mark and doctype are kept",
			page:  "\ufeff<!DOCTYPE html><title>t</title><p>x",
			sels:  []string{"title"},
			edits: []Edit{{Sel: 0, Op: Inner, Value: []byte("T")}},
			want:  "\ufeff<!DOCTYPE html><title>T</title><p>x",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl := compileT(t, tt.page, tt.sels...)
			if got := string(tpl.Render(nil, tt.edits)); got != tt.want {
				t.Errorf("Render(%q) =\n%s\nwant\n%s", tt.page, got, tt.want)
			}
		})
	}
}

// TestSelfClosingFollowsTheTokenizer checks the rule that keeps "<rect
// width=1/>" open: its '/' belongs to the value.
func TestSelfClosingFollowsTheTokenizer(t *testing.T) {
	for tag, want := range map[string]bool{
		"<br/>": true, "<br />": true, `<a b="c"/>`: true, "<a b=c/>": false,
		"<a b=c />": true, "<a/>": true, "<a>": false, "<a b/>": true,
	} {
		if got := selfClosing([]byte(tag)); got != want {
			t.Errorf("selfClosing(%q) = %v, want %v", tag, got, want)
		}
	}
}

func TestRenderWithoutEditsReturnsThePage(t *testing.T) {
	for _, page := range []string{"", "x", "<p>", "\ufeff<!DOCTYPE html>\n<p>x", "<div><table>a<tr>b"} {
		tpl := compileT(t, page, "*")
		if got := string(tpl.Render([]byte("prefix:"), nil)); got != "prefix:"+page {
			t.Errorf("Render(%q, nil) = %q", page, got)
		}
	}
}

func TestRenderAllocatesNothing(t *testing.T) {
	page, sels, _, edits := loadCase(t, "every-op")
	tpl, err := Compile(page, sels)
	if err != nil {
		t.Fatal(err)
	}
	bench := benchTemplate(t)
	trunc := compileT(t, "<div id=a><ul><li>x<li>y", "#a", "li")
	truncEdits := []Edit{{Sel: 0, Op: Append, Value: []byte("A")}, {Sel: 1, Op: After, Value: []byte("B")}}
	page, sels, _, brokenEdits := loadCase(t, "starttag-broken")
	broken, err := Compile(page, sels)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		tpl   *Template
		edits []Edit
	}{{"every op", tpl, edits}, {"bench page", bench, benchEdits}, {"closers", trunc, truncEdits}, {"start tags of broken elements", broken, brokenEdits}} {
		dst := make([]byte, 0, 2*len(c.tpl.page)+1024)
		if n := testing.AllocsPerRun(100, func() { dst = c.tpl.Render(dst[:0], c.edits) }); n != 0 {
			t.Errorf("%s: Render allocates %v times per run, want 0", c.name, n)
		}
		applied := make([]bool, len(c.edits))
		if n := testing.AllocsPerRun(100, func() { dst = c.tpl.RenderApplied(dst[:0], c.edits, applied) }); n != 0 {
			t.Errorf("%s: RenderApplied allocates %v times per run, want 0", c.name, n)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	p := cascadia.MustCompile("p")
	deep := strings.Repeat("<div>", 600)
	for _, c := range []struct {
		page string
		sels []cascadia.Matcher
		want error
	}{
		{"\xff\xfe<\x00p\x00>\x00", []cascadia.Matcher{p}, ErrNotText},
		{"\xfe\xff\x00<\x00p\x00>", []cascadia.Matcher{p}, ErrNotText},
		{"<p>x", []cascadia.Matcher{p, nil}, ErrNilSelector},
		{deep, []cascadia.Matcher{p}, ErrUnparsable},
	} {
		if _, err := Compile([]byte(c.page), c.sels); !errors.Is(err, c.want) {
			t.Errorf("Compile(%.20q) error = %v, want %v", c.page, err, c.want)
		}
	}
}

func TestMatchedAndSkipped(t *testing.T) {
	tpl := compileT(t, "<p><b>1</p><p id=x>2</p><table>t<tr><td>c</table>", "b", "p", "table, td", "#none")
	for _, c := range []struct{ sel, matched, skipped, tagMatched, tagSkipped int }{
		{0, 0, 3, 3, 0}, // the <b> leaks into what follows; its two clones have no tag, but its tag is theirs
		{1, 1, 1, 2, 0}, // the first <p> holds the leaking <b>
		{2, 1, 1, 2, 0}, // the table has foster-parented text; its cell does not
		{3, 0, 0, 0, 0},
		{4, 0, 0, 0, 0}, // out of range
		{-1, 0, 0, 0, 0},
	} {
		if m, s := tpl.Matched(c.sel), tpl.Skipped(c.sel); m != c.matched || s != c.skipped {
			t.Errorf("selector %d: Matched %d, Skipped %d; want %d, %d", c.sel, m, s, c.matched, c.skipped)
		}
		if m, s := tpl.TagMatched(c.sel), tpl.TagSkipped(c.sel); m != c.tagMatched || s != c.tagSkipped {
			t.Errorf("selector %d: TagMatched %d, TagSkipped %d; want %d, %d", c.sel, m, s, c.tagMatched, c.tagSkipped)
		}
	}
	if tpl.Size() < len(tpl.page) {
		t.Errorf("Size() = %d, less than the page", tpl.Size())
	}
}

// TestManySelectors covers selectors past the 64 that fit a bit mask.
func TestManySelectors(t *testing.T) {
	sels := make([]string, 70)
	for i := range sels {
		sels[i] = fmt.Sprintf("#e%d", i)
	}
	var page strings.Builder
	for i := range sels {
		fmt.Fprintf(&page, "<p id=e%d>%d</p>", i, i)
	}
	tpl := compileT(t, page.String(), sels...)
	got := string(tpl.Render(nil, []Edit{{Sel: 69, Op: Inner, Value: []byte("X")}, {Sel: 3, Op: Inner, Value: []byte("Y")}}))
	if !strings.Contains(got, "<p id=e69>X</p>") || !strings.Contains(got, "<p id=e3>Y</p>") || !strings.Contains(got, "<p id=e68>68</p>") {
		t.Errorf("Render = %s", got)
	}
}

func TestRenderConcurrently(t *testing.T) {
	tpl := benchTemplate(t)
	want := string(tpl.Render(nil, benchEdits))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var dst []byte
			for range 20 {
				dst = tpl.Render(dst[:0], benchEdits)
				if string(dst) != want {
					t.Error("concurrent Render differs")
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestStartTagEditsOnBrokenElements covers elements whose span the parser
// broke up: start-tag edits reach them (and the clones made from their
// tag), content edits do not, and an edit whose tag is shared with elements
// the selector does not match, or whose attributes steer the parser, is
// skipped.
func TestStartTagEditsOnBrokenElements(t *testing.T) {
	for _, c := range []struct {
		name, page, sel string
		edit            Edit
		want            string
	}{
		{"leaking original and its clone", "<p><b>x</p>y", "b",
			Edit{Op: AddClass, Value: []byte("k")}, `<p><b class="k">x</p>y`},
		{"its paragraph's tag", "<p><b>x</p>y", "p",
			Edit{Op: AddClass, Value: []byte("k")}, `<p class="k"><b>x</p>y`},
		{"its paragraph's content", "<p><b>x</p>y", "p",
			Edit{Op: Inner, Value: []byte("k")}, "<p><b>x</p>y"},
		{"the clone only", "<p><b>x</p>y", "body > b",
			Edit{Op: AddClass, Value: []byte("k")}, "<p><b>x</p>y"},
		{"the original only", "<p><b>x</p>y", "p > b",
			Edit{Op: AddClass, Value: []byte("k")}, "<p><b>x</p>y"},
		{"adopted link", "<a href=/x><p>x</a>y", "a",
			Edit{Op: SetAttr, Name: "href", Value: []byte("/y")}, `<a href="/y"><p>x</a>y`},
		{"foster-parented", "<table><div class=d>x</div><tr><td>c</table>", "div",
			Edit{Op: RemoveClass, Value: []byte("d")}, `<table><div class="">x</div><tr><td>c</table>`},
		{"foster-parenting table", "<table><div>x</div><tr><td>c</table>", "table",
			Edit{Op: AddClass, Value: []byte("k")}, `<table class="k"><div>x</div><tr><td>c</table>`},
		{"body given attributes by a later tag", "<body><p>x<body class=a>", "body",
			Edit{Op: AddClass, Value: []byte("k")}, "<body><p>x<body class=a>"},
		{"html given attributes by a later tag", "<html><p>x<html lang=en>", "html",
			Edit{Op: SetAttr, Name: "lang", Value: []byte("fr")}, "<html><p>x<html lang=en>"},
		{"body whose attribute a later tag would give back", "<body class=a><p>x<body class=b>", "body",
			Edit{Op: SetAttr, Name: "class", Value: nil}, "<body class=a><p>x<body class=b>"},
		{"Noah's Ark clause", "<b><b><b><b>x", "b",
			Edit{Op: AddClass, Value: []byte("k")}, "<b><b><b><b>x"},
	} {
		tpl := compileT(t, c.page, c.sel)
		if got := string(tpl.Render(nil, []Edit{c.edit})); got != c.want {
			t.Errorf("%s: %v on %q of %q = %q, want %q", c.name, c.edit.Op, c.sel, c.page, got, c.want)
		}
	}
}

// TestReuseShiftsStartTagRecords checks that Reuse moves the start-tag
// records of broken elements as Compile would make them: a token changes in
// the tag of a foster-parented element, and before its adopted neighbours.
func TestReuseShiftsStartTagRecords(t *testing.T) {
	ms := selMatchers(t, "div", "table", "b", "body > *")
	for _, c := range []struct{ old, new string }{
		{`<table><div data-t="1">x</div><tr><td>c</table><p><b>y</p>z`, `<table><div data-t="12345">x</div><tr><td>c</table><p><b>y</p>z`},
		{`<input name=t value="a"><table><div>x</div></table><p><b>y</p>z`, `<input name=t value="abcdef"><table><div>x</div></table><p><b>y</p>z`},
	} {
		if !checkReuse(t, c.old, []byte(c.old), []byte(c.new), ms) {
			t.Errorf("Reuse refused %q for %q", c.new, c.old)
			continue
		}
		tpl, _ := Compile([]byte(c.old), ms)
		got, _ := tpl.Reuse([]byte(c.new))
		want, _ := Compile([]byte(c.new), ms)
		moved := 0
		for _, s := range got.elems {
			if s.flags&fTagOnly != 0 && int(s.s0) > commonPrefix([]byte(c.old), []byte(c.new)) {
				moved++
			}
		}
		if moved < 2 {
			t.Errorf("%q: %d start-tag records after the change, want at least 2", c.new, moved)
		}
		for si := range ms {
			if got.TagMatched(si) != want.TagMatched(si) || got.TagSkipped(si) != want.TagSkipped(si) {
				t.Errorf("%q: selector %d: TagMatched/TagSkipped %d/%d, compiled %d/%d", c.new, si,
					got.TagMatched(si), got.TagSkipped(si), want.TagMatched(si), want.TagSkipped(si))
			}
		}
	}
}

// TestFirstChangeIsBeforeEveryChangedByte: the rendered page and the page
// share every byte before FirstChange, for each edit alone and all at once.
func TestFirstChangeIsBeforeEveryChangedByte(t *testing.T) {
	tpl := benchTemplate(t)
	cases := [][]Edit{benchEdits, nil}
	for _, ed := range benchEdits {
		cases = append(cases, []Edit{ed})
	}
	cases = append(cases, []Edit{{Sel: 1, Op: AddClass, Value: []byte("x")}}, []Edit{{Sel: 4, Op: After, Value: []byte("<p>")}})
	for _, edits := range cases {
		out := tpl.Render(nil, edits)
		fc := tpl.FirstChange(edits)
		if !bytes.Equal(out[:fc], tpl.page[:fc]) {
			t.Errorf("%v: the rendered page differs before FirstChange %d", edits, fc)
		}
		if len(edits) == 0 && fc != len(tpl.page) {
			t.Errorf("no edits: FirstChange = %d, want the page's length %d", fc, len(tpl.page))
		}
		if len(edits) > 0 && fc == len(tpl.page) {
			t.Errorf("%v: FirstChange says nothing changes", edits)
		}
	}
}

// TestRawTextGoesWhereTheContentIsScriptOrStyle (issue 15): content edits
// write RawText into a <script> of JavaScript or JSON and into a <style>,
// Value elsewhere (a client-side template's <script type=text/x-…>
// included); SVG's script and style get it escaped once more, as their
// text is read as markup; a RawText that gives nothing leaves the content
// as it was.
func TestRawTextGoesWhereTheContentIsScriptOrStyle(t *testing.T) {
	page := `<script id=a>x</script><script id=b type="application/ld+json">x</script>` +
		`<script id=c type="text/x-handlebars-template">x</script><style id=d>x</style><p id=e>x</p>` +
		`<svg><style id=f>x</style></svg><script id=g>keep</script>`
	tpl := compileT(t, page, "#a", "#b", "#c", "#d", "#e", "#f", "#g")
	raw := func(elem string) []byte { return []byte(elem + ":a&#59;b") }
	var edits []Edit
	for sel := range 6 {
		edits = append(edits, Edit{Sel: sel, Op: Inner, Value: []byte("html"), RawText: raw})
	}
	edits = append(edits, Edit{Sel: 6, Op: Inner, Value: []byte("html"), RawText: func(string) []byte { return nil }})
	want := `<script id=a>script:a&#59;b</script><script id=b type="application/ld+json">script:a&#59;b</script>` +
		`<script id=c type="text/x-handlebars-template">html</script><style id=d>style:a&#59;b</style><p id=e>html</p>` +
		`<svg><style id=f>style:a&amp;#59;b</style></svg><script id=g>keep</script>`
	if got := string(tpl.Render(nil, edits)); got != want {
		t.Errorf("Render =\n%s\nwant\n%s", got, want)
	}
}

// TestSoleContentEditsExcludeOneAnother: of the Sole content edits that
// apply to one element, through any selectors, the earliest alone does;
// elements only a later one matches take it; edits without Sole compose.
func TestSoleContentEditsExcludeOneAnother(t *testing.T) {
	page := `<body><div id="hero" class="hero">origin</div><div class="hero">other</div></body>`
	sels := []string{"#hero", ".hero", "div.hero"}
	tests := []struct {
		name    string
		edits   []Edit
		want    string
		applied []bool
		by      []int // OverriddenBy per edit
	}{
		{"sole: the first per element", []Edit{
			{Sel: 0, Op: Inner, Value: []byte("first"), Sole: true},
			{Sel: 1, Op: Append, Value: []byte("<i>second</i>"), Sole: true},
			{Sel: 2, Op: Replace, Value: []byte("<p>third</p>"), Sole: true},
		}, `<body><div id="hero" class="hero">first</div><div class="hero">other<i>second</i></div></body>`, []bool{true, true, false}, []int{-1, 0, 0}},
		{"sole and start-tag edits", []Edit{
			{Sel: 0, Op: Before, Value: []byte("B"), Sole: true},
			{Sel: 1, Op: After, Value: []byte("A"), Sole: true},
			{Sel: 1, Op: SetAttr, Name: "data-x", Value: []byte("1")},
		}, `<body>B<div id="hero" class="hero" data-x="1">origin</div><div class="hero" data-x="1">other</div>A</body>`, []bool{true, true, true}, []int{-1, 0, -1}},
		{"without sole they compose", []Edit{
			{Sel: 0, Op: Inner, Value: []byte("first")},
			{Sel: 1, Op: Append, Value: []byte("<i>second</i>")},
		}, `<body><div id="hero" class="hero">first<i>second</i></div><div class="hero">other<i>second</i></div></body>`, []bool{true, true}, []int{-1, -1}},
		{"sole: one element, the later two applied nowhere", []Edit{
			{Sel: 0, Op: Inner, Value: []byte("first"), Sole: true},
			{Sel: 0, Op: Append, Value: []byte("<i>second</i>"), Sole: true},
			{Sel: 0, Op: Replace, Value: []byte("<p>third</p>"), Sole: true},
			{Sel: 0, Op: SetAttr, Name: "data-x", Value: []byte("1")},
			{Sel: 1, Op: SetAttr, Name: "data-x", Value: []byte("2")},
		}, `<body><div id="hero" class="hero" data-x="1">first</div><div class="hero" data-x="2">other</div></body>`, []bool{true, false, false, true, true}, []int{-1, 0, 0, -1, -1}},
	}
	tpl := compileT(t, page, sels...)
	for _, tt := range tests {
		applied := make([]bool, len(tt.edits))
		if got := string(tpl.RenderApplied(nil, tt.edits, applied)); got != tt.want {
			t.Errorf("%s: Render =\n%s\nwant\n%s", tt.name, got, tt.want)
		}
		if !slices.Equal(applied, tt.applied) {
			t.Errorf("%s: applied = %v, want %v", tt.name, applied, tt.applied)
		}
		for i := range tt.edits {
			if got := tpl.OverriddenBy(tt.edits, i); got != tt.by[i] {
				t.Errorf("%s: OverriddenBy(%d) = %d, want %d", tt.name, i, got, tt.by[i])
			}
		}
	}
}
