package rewrite

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/andybalholm/cascadia"
	"golang.org/x/net/html"

	"github.com/tailor-edge/tailor/rewrite/internal/html5lib"
	"github.com/tailor-edge/tailor/rewrite/internal/htmltree"
)

var (
	fuzzSelectors = []string{"p", "div, span", "li", "td, tr", "b, a", "svg *", "*", "body > *, p > b, [id]"}
	fuzzEdits     = []Edit{
		{Sel: 0, Op: Inner, Value: []byte("[inner]")},
		{Sel: 0, Op: After, Value: []byte("[after]")},
		{Sel: 1, Op: Append, Value: []byte("[append]")},
		{Sel: 1, Op: SetAttr, Name: "data-t", Value: []byte("1")},
		{Sel: 1, Op: AddClass, Value: []byte("c")},
		{Sel: 2, Op: Remove},
		{Sel: 3, Op: Prepend, Value: []byte("[prepend]")},
		{Sel: 4, Op: Before, Value: []byte("[before]")},
		{Sel: 4, Op: RemoveClass, Value: []byte("x")},
		{Sel: 5, Op: Replace, Value: []byte("<g/>")},
		{Sel: 6, Op: SetAttr, Name: "id", Value: []byte("")},
	}
)

// FuzzCompileRender feeds arbitrary bytes to Compile and Render: they never
// panic, Render without edits returns the input, and with edits the output
// keeps, in order, every byte of the input outside the rewritten elements.
// It also checks that the parser builds the tree html.Parse builds, and that
// an AddClass, re-parsed, gives the same tree with the class on exactly the
// elements recorded for start-tag edits (and their clones), all of which
// the selector matches.
func FuzzCompileRender(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.src.html")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"", "<", "<p", "<p>x", "<!--", "<![CDATA[", "<svg><![CDATA[x", "<plaintext>", "<script><!--<script>",
		"<table>x<tr><td>y", "<b><p>x</b>y", "<a><div>x</a>y", "<ul><li>a<li>b", "<p><b>x</p>y",
		"\ufeff<!DOCTYPE html><p>x", "<template><tr><td>x</template>", "<svg><td><foreignObject><span></td>x",
		"<select><option>a<option>b</select>", "<frameset><frame></frameset>", "<body></body>x</html><!--c-->",
		"<pre>\nx</pre>", "<textarea>\r\nx", "<div/class=x>", "<a b=c/>", `<p class='a"b' CLASS=x>`,
		"<a><p>x</a>y", "<p id=a><b id=b>x</p><p>y", "<b><b><b><b>x</p>y", "<body><p>x<body class=a>",
		"<table><b class=c>x<tr><td>y</table>z", `<p><i class="tl-fuzz">x</p>y`,
	} {
		f.Add([]byte(s))
	}
	ms := fuzzMatchers()
	f.Fuzz(func(t *testing.T, page []byte) {
		tpl, err := Compile(page, ms)
		if err != nil {
			if !errors.Is(err, ErrUnparsable) && !errors.Is(err, ErrNotText) {
				t.Fatalf("Compile: %v", err)
			}
			return
		}
		if got := tpl.Render(nil, nil); !bytes.Equal(got, page) {
			t.Fatalf("Render(nil) = %q, want the input", got)
		}
		out := tpl.Render(nil, fuzzEdits)
		// The input outside the outermost rewritable elements must survive.
		pos, end := 0, 0
		for i := range tpl.elems {
			s := &tpl.elems[i]
			if s.s0 < int32(end) {
				continue
			}
			if !keep(out, page[end:s.s0], &pos) {
				t.Fatalf("output lost input bytes %d-%d %q:\n%q", end, s.s0, page[end:s.s0], out)
			}
			end = int(s.e1)
		}
		if !keep(out, page[end:], &pos) {
			t.Fatalf("output lost the input's tail %q:\n%q", page[end:], out)
		}
		src := bytes.TrimPrefix(page, bom)
		want, err := html.Parse(bytes.NewReader(src))
		if err != nil {
			return
		}
		got, err := htmltree.Parse(src)
		if err != nil {
			t.Fatalf("htmltree.Parse: %v where html.Parse succeeds", err)
		}
		if w, g := html5lib.Tree(want), html5lib.Tree(got.Doc); w != g {
			t.Fatalf("tree differs from html.Parse:\n%s\n---\n%s", w, g)
		}
		checkInner(t, "input", page, tpl)
		for _, si := range []int{4, 6, 7} {
			checkAddClass(t, page, tpl, ms[si], si, want, got)
		}
	})
}

// checkAddClass renders an AddClass of selector si and parses the output:
// the tree must keep its shape, and the elements with the class must be
// those whose start tag (or whose original's) tpl records for si, each
// matched by sel. ref is html.Parse's tree of the page, tree the fork's.
func checkAddClass(t *testing.T, page []byte, tpl *Template, sel cascadia.Matcher, si int, ref *html.Node, tree *htmltree.Tree) {
	t.Helper()
	const class = "tl-fuzz"
	out := tpl.Render(nil, []Edit{{Sel: si, Op: AddClass, Value: []byte(class)}})
	got, err := html.Parse(bytes.NewReader(bytes.TrimPrefix(out, bom)))
	if err != nil {
		t.Fatalf("add_class on %q: the output does not parse: %v\n%q", fuzzSelectors[si], err, out)
	}
	if d := sameShape(ref, got, class); d != "" {
		t.Fatalf("add_class on %q changed the tree: %s\n%q", fuzzSelectors[si], d, out)
	}
	base := int32(len(page) - len(bytes.TrimPrefix(page, bom)))
	tagged := map[int32]bool{} // start tags, in the page without byte-order mark
	for i := range tpl.elems {
		s := &tpl.elems[i]
		if s.flags&fNoTag == 0 && slices.Contains(tpl.sels[s.selOff:s.selOff+s.selN], int32(si)) {
			tagged[s.s0-base] = true
		}
	}
	recOf := recordsOf(ref, tree)
	gotEls := elementsInOrder(got)
	for i, n := range elementsInOrder(ref) {
		want := false
		if ri, ok := recOf[n]; ok {
			e := &tree.Elems[ri]
			if e.Origin >= 0 {
				e = &tree.Elems[e.Origin]
			}
			want = e.Start >= 0 && tagged[e.Start]
		}
		if want && !sel.Match(n) {
			t.Fatalf("add_class on %q: <%s> #%d is recorded, but the selector does not match it\n%q", fuzzSelectors[si], n.Data, i, out)
		}
		if has := hasClass(gotEls[i], class); has != (want || hasClass(n, class)) {
			t.Fatalf("add_class on %q: <%s> #%d has the class: %v, want %v\n%q", fuzzSelectors[si], n.Data, i, has, want, out)
		}
	}
}

func fuzzMatchers() []cascadia.Matcher {
	ms := make([]cascadia.Matcher, len(fuzzSelectors))
	for i, s := range fuzzSelectors {
		ms[i] = cascadia.MustCompile(s)
	}
	return ms
}

// keep finds seg in out at or after *pos and moves *pos past it.
func keep(out, seg []byte, pos *int) bool {
	if len(seg) == 0 {
		return true
	}
	i := bytes.Index(out[*pos:], seg)
	if i < 0 {
		return false
	}
	*pos += i + len(seg)
	return true
}
