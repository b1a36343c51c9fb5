package rewrite

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/andybalholm/cascadia"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/tailor-edge/tailor/rewrite/internal/html5lib"
	"github.com/tailor-edge/tailor/rewrite/internal/htmltree"
)

// diffSelectors cover the selector kinds rules use: type, class, id,
// attribute, descendant, child, structural pseudo-classes, universal.
var diffSelectors = []string{
	"*",
	"p",
	"div",
	"a",
	"b",
	"li",
	"ul > li",
	"table td",
	"tr",
	"table",
	"body > *",
	"head *",
	":first-child",
	"p:nth-child(2)",
	"[id]",
	".c, .hero, .promo",
	"svg *, math *",
	"select option",
}

// diffMatchers returns diffSelectors compiled.
func diffMatchers() []cascadia.Matcher {
	ms := make([]cascadia.Matcher, len(diffSelectors))
	for i, s := range diffSelectors {
		ms[i] = cascadia.MustCompile(s)
	}
	return ms
}

// diffDocs returns the html5lib documents and this package's test pages.
func diffDocs(t *testing.T) []html5lib.Doc {
	t.Helper()
	var docs []html5lib.Doc
	if dir := html5lib.Dir(".."); dir != "" {
		d, err := html5lib.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		docs = d
	} else if os.Getenv("CI") != "" {
		t.Fatal("html5lib corpus not found; set TAILOR_HTML5LIB_CORPUS")
	} else {
		t.Log("html5lib corpus not found; set TAILOR_HTML5LIB_CORPUS; testing this package's pages only")
	}
	pages, err := filepath.Glob("testdata/*.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		if strings.HasSuffix(p, ".expected.html") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, html5lib.Doc{Name: p, Data: b})
	}
	return docs
}

// TestSelectionAgreesWithGoquery is the differential test: for every
// document and selector, the elements goquery selects on html.Parse that
// have a start tag of their own in the source must be exactly the elements
// the template can rewrite. It also checks that Render without edits returns
// the page and that an Inner edit of each rewritable element, re-parsed,
// gives that element the new content and leaves the rest of the text alone.
func TestSelectionAgreesWithGoquery(t *testing.T) {
	docs, ms := diffDocs(t), diffMatchers()
	var (
		pairs, agree, oracleless, blind, innerChecked int
		causes                                        = map[string]int{}
		examples                                      = map[string]string{}
	)
	for _, d := range docs {
		page := d.Data
		src := bytes.TrimPrefix(page, bom)
		base := int32(len(page) - len(src))
		ref, refErr := html.Parse(bytes.NewReader(src))
		tpl, err := Compile(page, ms)
		if refErr != nil {
			if err == nil {
				t.Errorf("%s: Compile succeeded where html.Parse failed: %v", d.Name, refErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: Compile: %v", d.Name, err)
			continue
		}
		if out := tpl.Render(nil, nil); !bytes.Equal(out, page) {
			t.Errorf("%s: Render(nil) differs from the page", d.Name)
		}
		srcOf := forkOracle(t, src, ref)
		if marks, inserted, ok := markerOracle(src, ref); ok {
			blind += crossCheck(t, d.Name, srcOf, marks, inserted)
		} else {
			oracleless++
		}
		tree, _ := htmltree.Parse(src)
		gdoc := goquery.NewDocumentFromNode(ref)
		for si := range ms {
			want := map[int32]bool{}
			for _, n := range gdoc.Find(diffSelectors[si]).Nodes {
				if off, ok := srcOf[n]; ok {
					want[off+base] = true
				}
			}
			got := map[int32]bool{}
			for i := range tpl.elems {
				s := &tpl.elems[i]
				if s.flags&fTagOnly != 0 {
					continue // start-tag edits only: TestAddClassMarksGoquerySelection
				}
				for _, k := range tpl.sels[s.selOff : s.selOff+s.selN] {
					if int(k) == si {
						got[s.s0] = true
					}
				}
			}
			pairs++
			same := len(want) == len(got)
			for off := range got {
				if !want[off] {
					same = false
					t.Errorf("%s: selector %q: element at %d is rewritable but has no start tag of its own", d.Name, diffSelectors[si], off)
				}
			}
			for off := range want {
				if !got[off] {
					same = false
					c := skipCause(page, tree, off-base)
					causes[c]++
					if _, ok := examples[c]; !ok {
						examples[c] = fmt.Sprintf("%s %q at %d", d.Name, diffSelectors[si], off)
					}
				}
			}
			if same {
				agree++
			}
		}
		innerChecked += checkInner(t, d.Name, page, tpl)
	}
	rate := float64(agree) / float64(pairs)
	t.Logf("%d documents, %d (document, selector) pairs: %d agree (%.2f%%); %d Inner edits re-parsed",
		len(docs), pairs, agree, 100*rate, innerChecked)
	t.Logf("marker cross-check: %d documents whose tree the markers change; %d start tags its tokenizer could not see", oracleless, blind)
	var cs []string
	for c := range causes {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return causes[cs[i]] > causes[cs[j]] })
	for _, c := range cs {
		t.Logf("skipped elements: %5d %s (e.g. %s)", causes[c], c, examples[c])
	}
	if rate < 0.97 {
		t.Errorf("agreement %.2f%%, want at least 97%%", 100*rate)
	}
}

// skipCause explains why the element with its start tag at off (in the
// page without byte-order mark) is not rewritable.
func skipCause(page []byte, tree *htmltree.Tree, off int32) string {
	if tree == nil {
		return "unparsable"
	}
	base := int32(len(page) - len(bytes.TrimPrefix(page, bom)))
	c := compiler{t: &Template{page: page}, tree: tree, base: base}
	for i := range tree.Elems {
		e := &tree.Elems[i]
		if e.Start != off {
			continue
		}
		_, _, why := c.span(e)
		switch why {
		case tainted:
			var whys []string
			for bit, name := range map[uint8]string{
				htmltree.FosterParented: "foster parenting", htmltree.Adopted: "adoption agency",
				htmltree.Misplaced: "misplaced comment", htmltree.Merged: "attributes merged into html/body",
				htmltree.Reopened: "re-opened", htmltree.Unstacked: "removed from under open elements",
				htmltree.SetsMode: "sets its template's mode", htmltree.Leaked: "formatting element left open inside re-opened after it",
			} {
				if e.Taint&bit != 0 {
					whys = append(whys, name)
				}
			}
			sort.Strings(whys)
			return strings.Join(whys, "+")
		case leaks:
			return "formatting element left open inside re-opened after it"
		case foreignEnd:
			return "closed by a token handled as foreign content or not depending on its content"
		case noStartTag:
			return "no start tag"
		}
		return "span crosses another"
	}
	return "no record"
}

// markerOracle finds, independently of the fork, which elements of ref have
// a source start tag of their own: it inserts an attribute carrying the
// tag's offset into every start tag a standalone tokenizer sees, parses that
// copy with html.Parse and reads the attribute back (a second element
// carrying an offset already seen is a clone). It fails when the markers
// changed the tree (the Noah's Ark clause compares attributes, for one).
// It also returns the offsets where it inserted markers.
func markerOracle(src []byte, ref *html.Node) (map[*html.Node]int32, map[int32]bool, bool) {
	const key = "data-tlsrc"
	var marked []byte
	inserted := map[int32]bool{}
	z := html.NewTokenizer(bytes.NewReader(src))
	off := 0
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			marked = append(marked, src[off:]...)
			break
		}
		raw := z.Raw()
		if tt == html.StartTagToken || tt == html.SelfClosingTagToken {
			ne := newTagScanner(src[off : off+len(raw)]).nameEnd
			marked = append(marked, src[off:off+ne]...)
			marked = append(marked, " "+key+"="...)
			marked = strconv.AppendInt(marked, int64(off), 10)
			marked = append(marked, ' ')
			marked = append(marked, src[off+ne:off+len(raw)]...)
			inserted[int32(off)] = true
		} else {
			marked = append(marked, raw...)
		}
		off += len(raw)
	}
	mt, err := html.Parse(bytes.NewReader(marked))
	if err != nil {
		return nil, nil, false
	}
	srcOf := map[*html.Node]int32{}
	seen := map[int32]bool{}
	var walk func(a, b *html.Node) bool
	walk = func(a, b *html.Node) bool {
		if a.Type != b.Type || a.Data != b.Data || a.Namespace != b.Namespace {
			return false
		}
		if a.Type == html.ElementNode {
			var rest []html.Attribute
			mark := int32(-1)
			for _, at := range b.Attr {
				if at.Key == key && at.Namespace == "" && mark < 0 {
					v, _ := strconv.Atoi(at.Val)
					mark = int32(v)
					continue
				}
				rest = append(rest, at)
			}
			if len(rest) != len(a.Attr) {
				return false
			}
			for i := range rest {
				if rest[i] != a.Attr[i] {
					return false
				}
			}
			if mark >= 0 && !seen[mark] {
				seen[mark] = true
				srcOf[a] = mark
			}
		}
		ac, bc := a.FirstChild, b.FirstChild
		for ac != nil && bc != nil {
			if !walk(ac, bc) {
				return false
			}
			ac, bc = ac.NextSibling, bc.NextSibling
		}
		return ac == nil && bc == nil
	}
	return srcOf, inserted, walk(ref, mt)
}

// crossCheck compares the fork's start tags with the marker oracle's. They
// may differ only where the oracle is known to be blind: a start tag its
// standalone tokenizer took for raw text (in SVG <title>, which the parser
// tokenizes as markup), and the marker of a later <html> or <body> tag
// merged into an element the parser implied. It returns how many start tags
// the oracle could not see.
func crossCheck(t *testing.T, name string, fork, marks map[*html.Node]int32, inserted map[int32]bool) (blind int) {
	t.Helper()
	for n, off := range fork {
		m, ok := marks[n]
		switch {
		case ok && m != off:
			t.Errorf("%s: <%s> starts at %d for the fork, at %d for the markers", name, n.Data, off, m)
		case !ok && inserted[off]:
			t.Errorf("%s: <%s> at %d has a start tag for the fork, a clone for the markers", name, n.Data, off)
		case !ok:
			blind++
		}
	}
	for n, m := range marks {
		if _, ok := fork[n]; !ok && n.DataAtom != atom.Html && n.DataAtom != atom.Body {
			t.Errorf("%s: <%s> has the start tag at %d for the markers, none for the fork", name, n.Data, m)
		}
	}
	return blind
}

// forkOracle reads the start tags from the fork's records, for documents
// where the markers change the tree.
func forkOracle(t *testing.T, src []byte, ref *html.Node) map[*html.Node]int32 {
	tree, err := htmltree.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	start := map[*html.Node]int32{}
	for i := range tree.Elems {
		if e := &tree.Elems[i]; e.Start >= 0 {
			start[e.Node] = e.Start
		}
	}
	return carryOver(start, tree.Doc, ref)
}

// carryOver keys the values of m, keyed by nodes of the fork's tree doc,
// by the nodes of ref (html.Parse's tree of the same page) at the same
// places instead.
func carryOver(m map[*html.Node]int32, doc, ref *html.Node) map[*html.Node]int32 {
	out := make(map[*html.Node]int32, len(m))
	var walk func(a, b *html.Node)
	walk = func(a, b *html.Node) {
		if v, ok := m[b]; ok {
			out[a] = v
		}
		for ac, bc := a.FirstChild, b.FirstChild; ac != nil && bc != nil; ac, bc = ac.NextSibling, bc.NextSibling {
			walk(ac, bc)
		}
	}
	walk(ref, doc)
	return out
}

// checkInner renders edits of rewritable elements of tpl, one element at a
// time, and checks the re-parsed result: an Inner edit gives the element the
// new content (and only it); Prepend, Append, Before, After, Replace and
// Remove put their text where they should and leave the rest of the text
// alone. It returns how many elements it checked.
func checkInner(t *testing.T, name string, page []byte, tpl *Template) int {
	t.Helper()
	src := bytes.TrimPrefix(page, bom)
	base := int32(len(page) - len(src))
	orig, err := htmltree.Parse(src)
	if err != nil {
		return 0
	}
	byStart := map[int32]*html.Node{}
	for i := range orig.Elems {
		if e := &orig.Elems[i]; e.Start >= 0 {
			byStart[e.Start+base] = e.Node
		}
	}
	// Pages with many elements get a sample: each check parses the page
	// seven times.
	step := max(1, len(tpl.elems)/40)
	if len(page) > 16<<10 {
		step = max(1, len(tpl.elems)/8)
	}
	checked := 0
	for i := 0; i < len(tpl.elems); i += step {
		s := tpl.elems[i]
		if s.flags&fTagOnly != 0 {
			continue // content edits do not apply
		}
		n := byStart[s.s0]
		if n == nil {
			t.Errorf("%s: no element starts at %d", name, s.s0)
			continue
		}
		one := *tpl
		s.parent = -1
		one.elems = []span{s}
		one.sels = []int32{0}
		one.elems[0].selOff, one.elems[0].selN, one.elems[0].mask = 0, 1, 1
		one.nsel = 1
		render := func(op Op, v string) ([]byte, *htmltree.Tree, *html.Node) {
			out := one.Render(nil, []Edit{{Sel: 0, Op: op, Value: []byte(v)}})
			re, err := htmltree.Parse(bytes.TrimPrefix(out, bom))
			if err != nil {
				t.Errorf("%s: re-parse after %v on <%s> at %d: %v", name, op, n.Data, s.s0, err)
				return out, nil, nil
			}
			for j := range re.Elems {
				if re.Elems[j].Start+base == s.s0 {
					return out, re, re.Elems[j].Node
				}
			}
			return out, re, nil
		}
		checked++
		mark := fmt.Sprintf("TLMARK%d", i)
		before, after := textAround(orig.Doc, n)
		text := textContent(n)
		loose := n.DataAtom == atom.Html || n.DataAtom == atom.Body
		value, noText := innerValue(n, mark)

		// Inner.
		if s.flags&fVoid != 0 {
			if out, _, _ := render(Inner, mark); !bytes.Equal(out, page) {
				t.Errorf("%s: Inner on void <%s> at %d changed the page", name, n.Data, s.s0)
			}
		} else if !noText {
			out, re, m := render(Inner, value)
			switch {
			case !bytes.HasPrefix(out, page[:s.c0]) || !bytes.HasSuffix(out, page[s.e0:]):
				t.Errorf("%s: Inner on <%s> at %d changed bytes outside its content", name, n.Data, s.s0)
			case re == nil:
			case m == nil:
				t.Errorf("%s: after Inner on <%s> at %d, no element starts there", name, n.Data, s.s0)
			default:
				got := textContent(m)
				if loose {
					got = strings.TrimSpace(got)
				}
				if got != mark && !(loose && strings.HasPrefix(got, mark)) {
					t.Errorf("%s: after Inner on <%s> at %d its text is %q, want %q\n%s", name, n.Data, s.s0, got, mark, excerpt(out, s.s0))
				} else if rb, ra := textAround(re.Doc, m); !loose && (rb != before || ra != after) {
					t.Errorf("%s: Inner on <%s> at %d changed the text around it: %q|%q -> %q|%q", name, n.Data, s.s0, before, after, rb, ra)
				}
			}
		}
		if loose {
			continue
		}
		// The parser moves or drops whitespace between elements depending on
		// where it is (before <body>, in tables): compare the rest.
		checkText := func(op Op, v, want string) {
			t.Helper()
			out, re, _ := render(op, v)
			if re == nil {
				return
			}
			if got := textContent(re.Doc); noSpace(got) != noSpace(want) {
				t.Errorf("%s: %v %q on <%s> at %d: text %q, want %q\n%s", name, op, v, n.Data, s.s0, got, want, excerpt(out, s.s0))
			}
		}
		frameset := n.DataAtom == atom.Frameset // without it, the text it ignored shows
		if !frameset {
			checkText(Remove, "", before+after)
		}
		// Append and After are dropped where the page ends inside a
		// comment or the like that nothing written after it could leave.
		noEnd := s.flags&fNoEnd != 0
		if s.flags&fVoid == 0 && !noText && n.DataAtom != atom.Template {
			checkText(Prepend, value, before+mark+text+after)
			if !noEnd {
				checkText(Append, value, before+text+mark+after)
			}
		}
		if flowParent(n) && !frameset {
			checkText(Before, mark, before+mark+text+after)
			if !noEnd {
				checkText(After, mark, before+text+mark+after)
			}
			checkText(Replace, mark, before+mark+after)
		}
	}
	return checked
}

// flowParent reports whether text may stand beside n: its parent is not a
// table part, a select, a frameset, html or head.
func flowParent(n *html.Node) bool {
	p := n.Parent
	if n.Namespace == "" && (n.DataAtom == atom.Head || n.DataAtom == atom.Frameset) {
		return false
	}
	if p == nil || p.Type != html.ElementNode || p.Namespace != "" {
		return p != nil && p.Type == html.ElementNode
	}
	switch p.DataAtom {
	case atom.Table, atom.Tbody, atom.Thead, atom.Tfoot, atom.Tr, atom.Colgroup,
		atom.Select, atom.Frameset, atom.Html, atom.Head, atom.Template:
		return false
	}
	return true
}

// innerValue returns content for an Inner edit of n that is valid where n
// is, made of one text: mark. skip is true where no content can hold text.
func innerValue(n *html.Node, mark string) (value string, skip bool) {
	if n.Namespace != "" {
		return mark, false
	}
	switch n.DataAtom {
	case atom.Table:
		return "<tr><td>" + mark + "</td></tr>", false
	case atom.Tbody, atom.Thead, atom.Tfoot:
		return "<tr><td>" + mark + "</td></tr>", false
	case atom.Tr:
		return "<td>" + mark + "</td>", false
	case atom.Select:
		return "<option>" + mark + "</option>", false
	case atom.Head:
		return "<title>" + mark + "</title>", false
	case atom.Colgroup, atom.Frameset:
		return "", true
	}
	return mark, false
}

func noSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(" \t\n\r\f", r) {
			return -1
		}
		return r
	}, s)
}

func textContent(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// textAround returns the document's text before n and after n's subtree.
func textAround(doc, n *html.Node) (before, after string) {
	var b, a strings.Builder
	w := &b
	var walk func(*html.Node)
	walk = func(c *html.Node) {
		if c == n {
			w = &a
			return
		}
		if c.Type == html.TextNode {
			w.WriteString(c.Data)
		}
		for k := c.FirstChild; k != nil; k = k.NextSibling {
			walk(k)
		}
	}
	walk(doc)
	return b.String(), a.String()
}

func excerpt(b []byte, at int32) string {
	lo, hi := max(0, int(at)-80), min(len(b), int(at)+160)
	return string(b[lo:hi])
}
