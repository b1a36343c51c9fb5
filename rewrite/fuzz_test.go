package rewrite

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/andybalholm/cascadia"
	"golang.org/x/net/html"

	"github.com/tailor-edge/tailor/rewrite/internal/html5lib"
	"github.com/tailor-edge/tailor/rewrite/internal/htmltree"
)

var (
	fuzzSelectors = []string{"p", "div, span", "li", "td, tr", "b, a", "svg *", "*"}
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
// It also checks that the parser builds the tree html.Parse builds.
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
	})
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
