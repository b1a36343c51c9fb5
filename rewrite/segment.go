package rewrite

import (
	"bytes"
	"fmt"
	"math"

	"github.com/andybalholm/cascadia"
	"golang.org/x/net/html"

	"github.com/tailor-edge/tailor/rewrite/internal/htmltree"
)

// Segmenter rewrites a page too large to hold whole, piece by piece, in
// memory bounded by the piece: each piece ends at a safe point of the
// parse (htmltree's SafePoint: in body, no active formatting element, no
// table, no template, only plain elements open), and the next piece is
// parsed after a synthetic start that re-opens, with the same names and
// attributes, the elements open there (and the page's doctype, which sets
// quirks mode). Below those elements the parser builds for the piece what
// it builds for the same bytes in the whole page: what happens after a
// safe point cannot reach back into what came before it, nor can what
// came before reach into it other than through the open elements.
// Re-opening is checked: the synthetic start must parse to the same open
// elements and state, or the point is not used.
//
// Selectors must be local (see Local): they read an element and its
// ancestors only, which are the same in the piece; its preceding siblings
// are not. An element a content edit applies to must lie within one
// piece: a point inside such an element is not used. So a piece is
// rendered as Render renders those bytes in the whole page.
//
// One difference remains, on pages with a second <html> or <body> tag
// that has attributes: those are added to the element, in the whole
// page's tree, from the start; pieces before that tag see the element
// without them (a selector such as ".late-class .promo" may match there
// in the whole page but not in a piece), and Compile leaves the start tag
// of <html> or <body> unedited then (doc.go) where the Segmenter has sent
// it already.
type Segmenter struct {
	sels    []cascadia.Matcher
	edits   []Edit
	content []bool // per selector: a content edit uses it
	prefix  []byte // the synthetic start of the next piece
	doctype []byte // the page's doctype, rendered, once the first piece is parsed
	first   bool   // the next piece starts the page
	every   int32  // bytes between safe points
	page    []byte // the piece with its prefix (reused)
	// Per selector: whether a content edit, and a start-tag edit, changed
	// an element so far.
	matched, tagMatched []bool
	// Per edit: whether it changed an element so far (applied), and in
	// the piece being cut (piece), which counts once the cut holds.
	applied, piece []bool
}

// segmentEvery is how often a safe point is recorded (at most): a piece
// ends within about this much of where the caller asked.
const segmentEvery = 4 << 10

// localPseudo are the pseudo-classes, as cascadia writes them, that read
// only the element and its ancestors; :not() and :is() read what their
// arguments read, which the scan checks too.
var localPseudo = []string{
	"root", "not(", "is(", "where(", "link", "checked",
}

// Local reports whether every one of sels reads only an element, its
// attributes and its ancestors: no sibling combinator ("+", "~", which it
// rejects anywhere in the text, attribute values included), no
// positional, :has(), :empty or text pseudo-class.
func Local(sels []cascadia.Matcher) bool {
	return selectorTextsAllow(sels, "+~", localPseudo)
}

// NewSegmenter returns a Segmenter for edits on the elements sels match,
// or false when the selectors the edits use are not all local.
func NewSegmenter(sels []cascadia.Matcher, edits []Edit) (*Segmenter, bool) {
	s := &Segmenter{
		sels: sels, edits: edits, first: true, every: segmentEvery,
		content: make([]bool, len(sels)), matched: make([]bool, len(sels)), tagMatched: make([]bool, len(sels)),
		applied: make([]bool, len(edits)), piece: make([]bool, len(edits)),
	}
	for _, e := range edits {
		if e.Sel < 0 || e.Sel >= len(sels) || e.Op < Replace || e.Op > Probe {
			continue
		}
		if sels[e.Sel] == nil || !Local(sels[e.Sel:e.Sel+1]) {
			return nil, false
		}
		switch e.Op {
		case SetAttr, AddClass, RemoveClass, Probe:
			// A probe writes nothing: it may lie across a cut.
		default:
			s.content[e.Sel] = true
		}
	}
	return s, true
}

// Next appends to dst the rendered start of piece, the page's bytes
// following those of the pieces before, and says how many bytes of piece
// that was: the longest start that ends at a safe point, or, with final
// (piece is the rest of the page), all of it. With used == 0 nothing could
// be cut yet: the caller should hold more of the page and call again with
// all of it.
func (s *Segmenter) Next(dst, piece []byte, final bool) (out []byte, used int, err error) {
	page := append(append(s.page[:0], s.prefix...), piece...)
	s.page = page
	if len(page) >= math.MaxInt32 {
		return dst, 0, fmt.Errorf("segment of %d bytes: %w", len(page), ErrTooLarge)
	}
	if !isText(page) {
		return dst, 0, fmt.Errorf("segment: %w", ErrNotText)
	}
	from := int32(len(s.prefix))
	base := int32(0)
	if s.first && bytes.HasPrefix(page, bom) {
		base = int32(len(bom))
	}
	tree, safe, _, err := htmltree.ParseSafe(page[base:], s.every)
	if err != nil {
		return dst, 0, fmt.Errorf("segment: %w: %v", ErrUnparsable, err)
	}
	defer tree.Release()
	tpl, err := compileTree(page, base, tree, s.sels, matchBudget, perElement)
	if err != nil {
		return dst, 0, err
	}
	if s.first && s.doctype == nil {
		s.doctype = doctypeOf(tree.Doc)
	}
	if final {
		out, _ = s.render(tpl, dst, from, int32(len(page)), true)
		return out, len(piece), nil
	}
	for k := len(safe) - 1; k >= 0; k-- {
		sp := &safe[k]
		cut := base + sp.Off
		if cut <= from {
			break
		}
		// Only complete tokens before the cut; no text "<" right before it,
		// which an edit of the next piece's first element could join.
		if sp.Off > tree.LastStart || sp.Off > tree.EOF || page[cut-1] == '<' || s.contentOpen(tree, sp) {
			continue
		}
		prefix, ok := s.reopen(tree, sp)
		if !ok {
			continue
		}
		out, ok := s.render(tpl, dst, from, cut, false)
		if !ok {
			continue
		}
		s.prefix, s.first = prefix, false
		return out, int(cut - from), nil
	}
	return dst, 0, nil
}

// Matched reports whether a content edit of selector sel changed the page
// so far, TagMatched whether a start-tag edit did.
func (s *Segmenter) Matched(sel int) int {
	return b2i(sel >= 0 && sel < len(s.matched) && s.matched[sel])
}
func (s *Segmenter) TagMatched(sel int) int {
	return b2i(sel >= 0 && sel < len(s.tagMatched) && s.tagMatched[sel])
}

// Applied reports whether edits[edit] changed an element of the page so
// far, as Template.RenderApplied reports it for a whole page.
func (s *Segmenter) Applied(edit int) bool {
	return edit >= 0 && edit < len(s.applied) && s.applied[edit]
}

// Changed reports whether an edit changed the page so far.
func (s *Segmenter) Changed() bool {
	for i := range s.matched {
		if s.matched[i] || s.tagMatched[i] {
			return true
		}
	}
	return false
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// contentOpen reports whether a selector a content edit uses matches an
// element open at the safe point: its edit would reach past the cut.
func (s *Segmenter) contentOpen(tree *htmltree.Tree, sp *htmltree.SafePoint) bool {
	for _, ri := range sp.Stack {
		n := tree.Elems[ri].Node
		for si, m := range s.sels {
			if s.content[si] && m.Match(n) {
				return true
			}
		}
	}
	return false
}

// reopen returns the synthetic start that re-opens the elements open at
// the safe point, when it parses to the same elements and state.
func (s *Segmenter) reopen(tree *htmltree.Tree, sp *htmltree.SafePoint) ([]byte, bool) {
	b := append([]byte(nil), s.doctype...)
	for i, ri := range sp.Stack {
		n := tree.Elems[ri].Node
		b = append(b, '<')
		b = append(b, n.Data...)
		for _, a := range n.Attr[:sp.AttrN[i]] {
			if a.Namespace != "" {
				return nil, false
			}
			b = append(b, ' ')
			b = append(b, a.Key...)
			b = append(b, `="`...)
			b = append(b, html.EscapeString(a.Val)...)
			b = append(b, '"')
		}
		b = append(b, '>')
	}
	t2, _, end, err := htmltree.ParseSafe(b, math.MaxInt32)
	if err != nil {
		return nil, false
	}
	defer t2.Release()
	if end == nil || len(end.Stack) != len(sp.Stack) || end.FramesetOK != sp.FramesetOK || end.Quirks != sp.Quirks {
		return nil, false
	}
	for i, ri := range sp.Stack {
		x, y := tree.Elems[ri].Node, t2.Elems[end.Stack[i]].Node
		xa := x.Attr[:sp.AttrN[i]] // as they were at the safe point
		if x.Data != y.Data || x.DataAtom != y.DataAtom || x.Namespace != y.Namespace || len(xa) != len(y.Attr) {
			return nil, false
		}
		for j := range xa {
			if xa[j] != y.Attr[j] {
				return nil, false
			}
		}
	}
	return b, true
}

// doctypeOf renders the document's doctype, or nothing.
func doctypeOf(doc *html.Node) []byte {
	for c := doc.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.DoctypeNode {
			var b bytes.Buffer
			if html.Render(&b, c) == nil {
				return b.Bytes()
			}
		}
	}
	return []byte{}
}

// render appends page[from:to] of tpl with the edits applied to the
// elements that start there, and notes which edits applied. Unless final,
// an edit that reaches past to refuses the cut (false).
func (s *Segmenter) render(t *Template, dst []byte, from, to int32, final bool) ([]byte, bool) {
	r := newRenderer(t, dst, s.edits)
	if r.mask == 0 && !r.wide {
		return append(dst, t.page[from:to]...), true
	}
	var applied []int32
	r.applied = &applied
	clear(s.piece)
	r.done = s.piece
	if !r.span(from, to, final) {
		return dst, false
	}
	for i, ok := range s.piece {
		s.applied[i] = s.applied[i] || ok
	}
	for _, i := range applied {
		e := &t.elems[i]
		a := r.resolve(e)
		for _, k := range []int{a.over, a.inner, a.prepend, a.append, a.before, a.after} {
			if k >= 0 {
				s.matched[s.edits[k].Sel] = true
			}
		}
		if a.startTag {
			for k := range s.edits {
				switch ed := &s.edits[k]; ed.Op {
				case SetAttr, AddClass, RemoveClass:
					if r.applies(e, ed) {
						s.tagMatched[ed.Sel] = true
					}
				}
			}
		}
	}
	return r.dst, true
}
