package rewrite

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/andybalholm/cascadia"

	"github.com/tailor-edge/tailor/rewrite/internal/htmltree"
)

// prefixCuts are where TestPrefixSafe cuts a page: at and after a "<" or
// a ">" (where tags begin and end), and in the middle of the page; at
// most maxCuts of them, spread over the page (each cut parses a prefix).
func prefixCuts(page []byte) []int {
	const maxCuts = 24
	cuts := []int{len(page) / 2}
	for i, b := range page {
		if b == '<' || b == '>' {
			cuts = append(cuts, i, i+1)
		}
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	if len(cuts) <= maxCuts {
		return cuts
	}
	out := make([]int, 0, maxCuts)
	for k := range maxCuts {
		out = append(out, cuts[k*len(cuts)/maxCuts])
	}
	return out
}

// rearranged reports whether the parser moved content of page after making
// it (foster parenting, the adoption agency algorithm, re-opened
// formatting elements, clones): a prefix's tree may then differ from the
// page's in what precedes the cut.
func rearranged(page []byte) bool {
	tree, err := htmltree.Parse(bytes.TrimPrefix(page, bom))
	if err != nil {
		return true
	}
	defer tree.Release()
	if len(tree.Clones) > 0 || tree.Detached {
		return true
	}
	for i := range tree.Elems {
		if tree.Elems[i].Taint != 0 {
			return true
		}
	}
	return false
}

// selectorsWhere returns the selectors of texts that ok accepts (Forward,
// Local), parsed as selMatchers parses them, and their texts.
func selectorsWhere(tb testing.TB, ok func([]cascadia.Matcher) bool, texts []string) (ms []cascadia.Matcher, kept []string) {
	tb.Helper()
	for i, m := range selMatchers(tb, texts...) {
		if ok([]cascadia.Matcher{m}) {
			ms = append(ms, m)
			kept = append(kept, texts[i])
		}
	}
	return ms, kept
}

// TestPrefixSafe: for every document and forward selector (with an
// AddClass and an Inner edit), and every cut of the page, the bytes
// PrefixSafe lets through come out of Render of the whole page unchanged,
// except, rarely, where the parser rearranged the tree after the cut.
// (The proxy checks this on every streamed page and serves the origin's
// page when it does not hold; these are the conflicts it would count.)
func TestPrefixSafe(t *testing.T) {
	docs := diffDocs(t)
	ms, texts := selectorsWhere(t, Forward, diffSelectors)
	if len(ms) < len(diffSelectors)/2 {
		t.Fatalf("only %d of %d selectors are forward: %q", len(ms), len(diffSelectors), texts)
	}
	var cuts, unsafe, unsafePlain, ahead int
	examples := map[string]int{}
	for _, d := range docs {
		tpl, err := Compile(d.Data, ms)
		if err != nil {
			continue
		}
		re := rearranged(d.Data)
		for si := range ms {
			used := make([]bool, len(ms))
			used[si] = true
			edits := []Edit{{Sel: si, Op: AddClass, Value: []byte("m")}, {Sel: si, Op: Inner, Value: []byte("[x]")}}
			out := tpl.Render(nil, edits)
			for _, cut := range prefixCuts(d.Data) {
				safe, found, err := PrefixSafe(d.Data[:cut], ms, used)
				if err != nil {
					t.Fatalf("%s: PrefixSafe(%d): %v", d.Name, cut, err)
				}
				if safe < 0 || safe > cut {
					t.Fatalf("%s %q: PrefixSafe(%d) = %d", d.Name, texts[si], cut, safe)
				}
				cuts++
				if found && safe > tpl.FirstChange(edits) {
					ahead++
				}
				if !bytes.HasPrefix(out, d.Data[:safe]) {
					unsafe++
					if !re {
						unsafePlain++
						examples[fmt.Sprintf("%s %q cut %d", d.Name, texts[si], cut)]++
					}
				}
			}
		}
	}
	t.Logf("%d documents, %d forward selectors, %d (document, selector, cut) triples: %d let through a byte Render changes (%.3f%%), %d of them on a page the parser did not rearrange; %d found a match after the first change",
		len(docs), len(ms), cuts, unsafe, 100*float64(unsafe)/float64(max(cuts, 1)), unsafePlain, ahead)
	n := 0
	for ex := range examples {
		if n++; n <= 10 {
			t.Errorf("unsafe on a page the parser did not rearrange: %s", ex)
		}
	}
	if float64(unsafe) > 0.01*float64(cuts) {
		t.Errorf("%d of %d triples unsafe: over 1%%", unsafe, cuts)
	}
}

// FuzzPrefixSafe cuts arbitrary pages anywhere: PrefixSafe never panics,
// lets through no more than the prefix, and, on a page the parser does not
// rearrange, only bytes Render of the whole page leaves unchanged.
func FuzzPrefixSafe(f *testing.F) {
	for _, s := range []string{
		"<p>x<div>y</div>", "<ul><li>a<li>b</ul>", "<table><tr><td>x</table>", "<b><p>x</b>y",
		"<svg><g><p>x", "<!-- <p> -->x<p>y", "<script>if(a<b)</script><p>", "x<<p>y", "\ufeff<p>x",
		"<textarea>\n<p></textarea><p>", "<select><option>a<p>b", "<div id=a><b id=b>x</b></div>",
	} {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	ms := selMatchers(f, fuzzSelectors...)
	if !Forward(ms) {
		f.Fatal("the fuzz selectors are not forward")
	}
	used := make([]bool, len(ms))
	for _, e := range fuzzEdits {
		used[e.Sel] = true
	}
	f.Fuzz(func(t *testing.T, page []byte, at uint16) {
		cut := int(at) % (len(page) + 1)
		safe, _, err := PrefixSafe(page[:cut], ms, used)
		if err != nil {
			return // Compile refuses such a page too
		}
		if safe < 0 || safe > cut {
			t.Fatalf("PrefixSafe(%d bytes) = %d", cut, safe)
		}
		tpl, err := Compile(page, ms)
		if err != nil || rearranged(page) {
			return
		}
		if out := tpl.Render(nil, fuzzEdits); !bytes.HasPrefix(out, page[:safe]) {
			t.Fatalf("PrefixSafe(%d) = %d, but Render changes %q of\n%q", cut, safe, page[:safe], out)
		}
	})
}

// TestPrefixSafeStopsBeforeATagCutShort: a "<" inside the quoted value of
// a tag the prefix cuts short is not where the tag begins.
func TestPrefixSafeStopsBeforeATagCutShort(t *testing.T) {
	m, err := cascadia.ParseGroup(".promo")
	if err != nil {
		t.Fatal(err)
	}
	prefix := []byte(`<p>x</p><div class="promo" data-x="a<b`)
	safe, found, err := PrefixSafe(prefix, []cascadia.Matcher{m}, []bool{true})
	if err != nil {
		t.Fatal(err)
	}
	if want := bytes.Index(prefix, []byte("<div")); found || safe > want {
		t.Errorf("PrefixSafe = %d (found %v), want at most %d, where the cut-short tag begins", safe, found, want)
	}
}
