package rewrite

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/andybalholm/cascadia"
	"golang.org/x/net/html"

	"github.com/tailor-edge/tailor/rewrite/internal/htmltree"
)

// TestAddClassMarksGoquerySelection is issue 14's measure, end to end: for
// every document and selector, Render with an AddClass edit of a class of
// its own, parse the output with html.Parse, and compare the elements that
// have the class with goquery's selection on html.Parse of the page. The
// two trees must have the same shape (a changed class attribute must not
// change how the page parses); their elements are paired by their place in
// a document-order walk. Elements the parser made without a start tag
// (implied html/head/body/tbody/tr/p) cannot get the class: those pairs
// disagree and are listed with the other causes, and the bar is also
// measured without them.
func TestAddClassMarksGoquerySelection(t *testing.T) {
	docs, ms := diffDocs(t), diffMatchers()
	var (
		all, scoped, issue tally // every pair; implied elements left out; issue 14's selectors
		perSel             = make([]tally, len(diffSelectors))
		perScoped          = make([]tally, len(diffSelectors))
		shapes             int
		causes, pairCauses = counter{}, counter{} // by element, by pair
	)
	for _, d := range docs {
		page := d.Data
		src := bytes.TrimPrefix(page, bom)
		ref, err := html.Parse(bytes.NewReader(src))
		if err != nil {
			continue // TestSelectionAgreesWithGoquery checks Compile fails too
		}
		tpl, err := Compile(page, ms)
		if err != nil {
			t.Errorf("%s: Compile: %v", d.Name, err)
			continue
		}
		tree, err := htmltree.Parse(src)
		if err != nil {
			t.Errorf("%s: htmltree.Parse: %v", d.Name, err)
			continue
		}
		refEls := elementsInOrder(ref)
		recOf := recordsOf(ref, tree)
		pos := make(map[*html.Node]int, len(refEls))
		for i, n := range refEls {
			pos[n] = i
		}
		gdoc := goquery.NewDocumentFromNode(ref)
		for si, sel := range diffSelectors {
			class := fmt.Sprintf("tl-mark-%d", si)
			out := tpl.Render(nil, []Edit{{Sel: si, Op: AddClass, Value: []byte(class)}})
			got, err := html.Parse(bytes.NewReader(bytes.TrimPrefix(out, bom)))
			if err != nil {
				t.Errorf("%s: %q: the output does not parse: %v", d.Name, sel, err)
				continue
			}
			example := fmt.Sprintf("%s %q", d.Name, sel)
			why := map[string]bool{} // the causes of this pair's disagreement
			note := func(cause, example string) {
				causes.note(cause, example)
				c := strings.TrimPrefix(strings.TrimPrefix(cause, "selected, not marked: "), "a clone: ")
				for _, c := range strings.Split(c, "; ") {
					why[c] = true
				}
			}
			want, inScope := map[int]bool{}, map[int]bool{}
			for _, n := range gdoc.Find(sel).Nodes {
				want[pos[n]] = true
				if hasSourceTag(tree, recOf[n]) {
					inScope[pos[n]] = true
				}
			}
			marked := map[int]bool{}
			if diff := sameShape(ref, got, class); diff != "" {
				shapes++
				t.Errorf("%s: add_class on %q changed the tree: %s\n%s", d.Name, sel, diff, out)
				note("the edit changed the tree", example)
				marked[-1] = true // disagrees
			} else {
				for i, n := range elementsInOrder(got) {
					if hasClass(n, class) {
						marked[i] = true
					}
				}
			}
			all.add(want, marked)
			perSel[si].add(want, marked)
			scoped.add(inScope, marked)
			perScoped[si].add(inScope, marked)
			if slices.Contains(issueSelectors, sel) {
				issue.add(want, marked)
			}
			for i := range want {
				if !marked[i] && !marked[-1] {
					note("selected, not marked: "+missCause(tree, ms[si], recOf[refEls[i]]), fmt.Sprintf("%s <%s> #%d", example, refEls[i].Data, i))
				}
			}
			for i := range marked {
				if i >= 0 && !want[i] {
					t.Errorf("%s: add_class on %q marked <%s> #%d, which goquery does not select\n%s", d.Name, sel, refEls[i].Data, i, out)
					note("marked, not selected", fmt.Sprintf("%s <%s> #%d", example, refEls[i].Data, i))
				}
			}
			if len(why) > 0 {
				pairCauses.note(strings.Join(slices.Sorted(maps.Keys(why)), " + "), example)
			}
		}
		tree.Release()
	}
	t.Logf("%d documents, %d selectors; %d edits changed the tree", len(docs), len(diffSelectors), shapes)
	t.Logf("all elements:                     %v", all)
	t.Logf("implied elements left out:        %v", scoped)
	t.Logf("issue 14's selectors %q: %v", issueSelectors, issue)
	for si := range diffSelectors {
		t.Logf("%-20q %v; implied left out: %d disagree", diffSelectors[si], perSel[si], perScoped[si].pairs-perScoped[si].agree)
	}
	pairCauses.log(t, "disagreeing pairs")
	causes.log(t, "elements")
	// Issue 14's acceptance: on its selectors, 97% of the pairs.
	if r := issue.rate(); r < 0.97 {
		t.Errorf("agreement %.2f%% on issue 14's selectors, want at least 97%%", 100*r)
	}
	// On every selector, elements the parser implied have no tag to edit:
	// Render adds none (see doc.go), so they are left out of the bar. Most
	// pairs select nothing on either side, so the bar holds on the others
	// too.
	if r := scoped.rate(); r < 0.97 {
		t.Errorf("agreement %.2f%% without implied elements, want at least 97%%", 100*r)
	}
	if r := scoped.evidence(); r < 0.97 {
		t.Errorf("agreement %.2f%% on the pairs that select something, without implied elements, want at least 97%%", 100*r)
	}
}

// counter counts causes, with the first example of each.
type counter map[string]*struct {
	n       int
	example string
}

func (c counter) note(cause, example string) {
	if c[cause] == nil {
		c[cause] = &struct {
			n       int
			example string
		}{example: example}
	}
	c[cause].n++
}

// log writes the causes, most frequent first.
func (c counter) log(t *testing.T, what string) {
	t.Helper()
	cs := slices.Collect(maps.Keys(c))
	sort.Slice(cs, func(i, j int) bool {
		return c[cs[i]].n > c[cs[j]].n || c[cs[i]].n == c[cs[j]].n && cs[i] < cs[j]
	})
	for _, k := range cs {
		t.Logf("%s: %5d %s (e.g. %s)", what, c[k].n, k, c[k].example)
	}
}

// issueSelectors are the selectors issue 14 names.
var issueSelectors = []string{"p", "div", "table", "b", "body > *", "[id]"}

// tally counts (document, selector) pairs: those where the marked elements
// are exactly the selected ones, and those where both sets are empty,
// which are no evidence of agreement.
type tally struct{ pairs, agree, empty int }

func (c *tally) add(want, marked map[int]bool) {
	c.pairs++
	if len(want) == 0 && len(marked) == 0 {
		c.empty++
	}
	if len(want) != len(marked) {
		return
	}
	for i := range want {
		if !marked[i] {
			return
		}
	}
	c.agree++
}

func (c tally) rate() float64 { return float64(c.agree) / float64(max(c.pairs, 1)) }

// evidence is the rate on the pairs where something is selected or marked.
func (c tally) evidence() float64 {
	return float64(c.agree-c.empty) / float64(max(c.pairs-c.empty, 1))
}

func (c tally) String() string {
	return fmt.Sprintf("%d pairs, %d agree (%.2f%%); %d select nothing on either side; of the other %d, %d agree (%.2f%%)",
		c.pairs, c.agree, 100*c.rate(), c.empty, c.pairs-c.empty, c.agree-c.empty, 100*c.evidence())
}

// hasSourceTag reports whether the element of record ri has a start tag in
// the source, its own or, for a clone, its original's.
func hasSourceTag(tree *htmltree.Tree, ri int32) bool {
	e := &tree.Elems[ri]
	if e.Origin >= 0 {
		e = &tree.Elems[e.Origin]
	}
	return e.Start >= 0
}

// elementsInOrder returns the element nodes under n in document order.
func elementsInOrder(n *html.Node) []*html.Node {
	var els []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			els = append(els, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return els
}

// sameShape compares two trees node for node — type, name, namespace,
// text, attributes — but for class token class, and returns where they
// differ, or "".
func sameShape(a, b *html.Node, class string) string {
	if a.Type != b.Type || a.Data != b.Data || a.Namespace != b.Namespace {
		return fmt.Sprintf("%s differs from %s", nodeString(a), nodeString(b))
	}
	if a.Type == html.ElementNode && !sameAttrs(a.Attr, b.Attr, class) {
		return fmt.Sprintf("the attributes of %s differ: %v, %v", nodeString(a), a.Attr, b.Attr)
	}
	ac, bc := a.FirstChild, b.FirstChild
	for ; ac != nil && bc != nil; ac, bc = ac.NextSibling, bc.NextSibling {
		if d := sameShape(ac, bc, class); d != "" {
			return d
		}
	}
	if ac != nil || bc != nil {
		return fmt.Sprintf("the children of %s differ", nodeString(a))
	}
	return ""
}

func nodeString(n *html.Node) string {
	switch n.Type {
	case html.ElementNode:
		return "<" + strings.TrimPrefix(n.Namespace+" ", " ") + n.Data + ">"
	case html.TextNode:
		return fmt.Sprintf("text %.20q", n.Data)
	}
	return fmt.Sprintf("node %d %.20q", n.Type, n.Data)
}

// sameAttrs reports whether x and y are the same attributes, in the same
// order, but for token class, which y may have gained: class lists are
// compared as tokens without it, and a class attribute left empty counts as
// none.
func sameAttrs(x, y []html.Attribute, class string) bool {
	norm := func(attrs []html.Attribute) []html.Attribute {
		var out []html.Attribute
		for _, a := range attrs {
			if a.Namespace == "" && a.Key == "class" {
				toks := slices.DeleteFunc(strings.Fields(a.Val), func(s string) bool { return s == class })
				if a.Val = strings.Join(toks, " "); a.Val == "" {
					continue
				}
			}
			out = append(out, a)
		}
		return out
	}
	return slices.Equal(norm(x), norm(y))
}

func hasClass(n *html.Node, class string) bool {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == "class" {
			return strings.Contains(" "+strings.Join(strings.Fields(a.Val), " ")+" ", " "+class+" ")
		}
	}
	return false
}

// recordsOf pairs the elements of ref (html.Parse's tree) with the fork's
// records of the same elements in tree.
func recordsOf(ref *html.Node, tree *htmltree.Tree) map[*html.Node]int32 {
	rec := make(map[*html.Node]int32, len(tree.Elems))
	for i := range tree.Elems {
		rec[tree.Elems[i].Node] = int32(i)
	}
	return carryOver(rec, tree.Doc, ref)
}

// missCause says why the element of record ri, which selector sel
// matches, did not get the class.
func missCause(tree *htmltree.Tree, sel cascadia.Matcher, ri int32) string {
	e := &tree.Elems[ri]
	o := ri
	if e.Origin >= 0 {
		o = e.Origin
	} else if e.Start < 0 {
		return "implied by the parser, no start tag"
	}
	orig := &tree.Elems[o]
	var why []string
	if orig.Start < 0 {
		why = append(why, "its original has no start tag")
	}
	if orig.Flags&htmltree.AttrsMerged != 0 {
		why = append(why, "a later <html> or <body> tag offers attributes")
	}
	all, some, ark := true, false, false
	for i := range tree.Elems {
		m := &tree.Elems[i]
		if int32(i) != o && m.Origin != o {
			continue
		}
		ark = ark || m.Flags&htmltree.ArkCompared != 0
		if int32(i) != o {
			some = true
		}
		if !sel.Match(m.Node) {
			all = false
		}
	}
	if ark {
		why = append(why, "the Noah's Ark clause compared its attributes")
	}
	if some && !all {
		why = append(why, "the selector matches only some of the original and its clones")
	}
	if len(why) == 0 {
		why = append(why, "span crosses another")
	}
	cause := strings.Join(why, "; ")
	if e.Origin >= 0 {
		return "a clone: " + cause
	}
	return cause
}
