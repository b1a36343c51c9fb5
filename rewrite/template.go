package rewrite

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"strings"
	"unsafe"

	"github.com/andybalholm/cascadia"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/tailor-edge/tailor/internal/selector"
	"github.com/tailor-edge/tailor/rewrite/internal/htmltree"
)

// Template is a compiled page: the page's bytes and, for each selector, the
// source spans of the elements it matched. It is immutable and safe for
// concurrent use.
type Template struct {
	page  []byte
	elems []span  // rewritable matched elements, in source order
	sels  []int32 // selectors of each span (span.selOff, span.selN)
	nsel  int
	// bounds and closers hold the end tags Render writes for elements whose
	// end tag is implied: closers[bounds[i]:bounds[i+1]] is "</name>".
	bounds  []int32
	closers []byte
	// Per selector: the elements content edits can rewrite and those they
	// cannot; the elements start-tag edits can rewrite and those they
	// cannot.
	matched, skipped       []int32
	tagMatched, tagSkipped []int32
	// For Reuse (see reuse.go): whether the selectors are blind to
	// attribute values and text, and, when they are, the start tags
	// [tags[2k], tags[2k+1]) and raw-text contents [raws[2k], raws[2k+1])
	// a change may lie in.
	blind      bool
	tags, raws []int32
	// texts and comments are the text and comment tokens Reuse may
	// accept a change in (htmltree's Tree.Texts and Tree.Comments).
	texts, comments []int32
}

// span is one rewritable element: start tag [s0,s1), content [c0,e0), end
// tag [e0,e1) (e0 == e1 when the end tag is implied). A span with fTagOnly
// is an element whose start tag only may be rewritten (its content in the
// tree is not the source between its tags): it is recorded as a void
// element, c0 == e0 == e1 == s1, and only start-tag edits apply to it.
type span struct {
	s0, s1, c0, e0, e1 int32
	parent             int32  // index of the nearest enclosing span, or -1
	selOff, selN       int32  // its selectors in Template.sels
	mask               uint64 // its selectors below 64, as bits
	// The elements the token at e0 closed form a group, innermost first: the
	// element's open descendants, then it (its closers, in Template.bounds
	// from clOff, entry gi being its own).
	grp, gi, clOff int32
	// The elements its start tag closed (before-group bgrp, bn closers in
	// Template.bounds from bclOff): what goes before the element goes after
	// them.
	bgrp, bn, bclOff int32
	flags            uint16
}

const (
	fVoid        uint16 = 1 << iota // no content: closed by the tag that opened it
	fNoSelfClose                    // never write its own end tag (html, body)
	fNoEnd                          // open at an end of page where nothing can be written (see eofSafe)
	fLTBefore                       // a text "<" precedes the start tag
	fLTEnd                          // a text "<" ends the content
	fTagOnly                        // only start-tag edits apply (see span)
	fNoTag                          // start-tag edits do not apply: its tag is not its only source of attributes
	fScript                         // a <script> of JavaScript or JSON: content edits write Edit.RawText's
	fStyle                          // a <style>: content edits write Edit.RawText's CSS
	fForeign                        // a script or style in SVG or MathML: its text is read as markup too
)

// jsTypes are the <script> types whose content is JavaScript or JSON (as
// html/template's isJSType has them); another type (a client-side
// template, text/x-handlebars-template) holds text that its code turns
// into markup, which HTML escaping suits.
var jsTypes = map[string]bool{
	"": true, "application/ecmascript": true, "application/javascript": true, "application/json": true,
	"application/ld+json": true, "application/x-ecmascript": true, "application/x-javascript": true,
	"module": true, "text/ecmascript": true, "text/javascript": true, "text/javascript1.0": true,
	"text/javascript1.1": true, "text/javascript1.2": true, "text/javascript1.3": true,
	"text/javascript1.4": true, "text/javascript1.5": true, "text/jscript": true, "text/livescript": true,
	"text/x-ecmascript": true, "text/x-javascript": true,
}

// isJSScript reports whether the <script> n holds JavaScript or JSON.
func isJSScript(n *html.Node) bool {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == "type" {
			t, _, _ := strings.Cut(a.Val, ";")
			return jsTypes[strings.ToLower(strings.TrimSpace(t))]
		}
	}
	return true
}

var bom = []byte("\xef\xbb\xbf")

// Compile parses page and records, for each selector, the source byte spans
// of the elements it matches. The template keeps page: the caller must not
// modify it afterwards.
//
// Selectors match the elements cascadia matches on the tree html.Parse
// builds for page (after a leading UTF-8 byte-order mark, which is skipped
// as browsers skip it). Elements without a source start tag of their own,
// or whose source span is not their content in the tree, are skipped and
// counted for content edits (see Skipped); start-tag edits still reach
// those with a start tag, and clones made from it (see TagMatched and
// doc.go).
//
// Selectors compiled by the rules package (internal/selector) match in
// time polynomial in the page's size, and their work on the page is
// bounded (matchBudget); any other cascadia.Matcher is called as it is,
// once per element.
//
// Compile fails only on a page that is not text (ErrNotText), that is too
// large (ErrTooLarge) or that the parser gives up on (ErrUnparsable), on a
// nil selector (ErrNilSelector), and when matching the selectors would
// take too long (ErrTooComplex).
func Compile(page []byte, sels []cascadia.Matcher) (*Template, error) {
	return compile(page, sels, matchBudget, perElement)
}

// matchBudget bounds the work of matching a page's selectors, in
// selector.Run's units (about a node visited), beyond one compound
// selector per element and selector, which is all most selectors take;
// a page may spend it plus perElement units per element. The
// "span div×13 p" of issue 14 takes 60 units on a page nested 60 deep,
// ".missing *" on 100000 elements 30 deep 3M; 4M units took from 25 ms
// (walks up to the root) to about 0.2 s (memo lookups of mixed
// combinators) on a CI machine. A page past it is compiled again on its
// next request.
const (
	matchBudget = 1 << 22
	perElement  = 64
)

func compile(page []byte, sels []cascadia.Matcher, budget, perElem int) (*Template, error) {
	if len(page) >= math.MaxInt32 {
		return nil, fmt.Errorf("compile %d bytes: %w", len(page), ErrTooLarge)
	}
	for i, m := range sels {
		if m == nil {
			return nil, fmt.Errorf("compile selector %d: %w", i, ErrNilSelector)
		}
	}
	if !isText(page) {
		return nil, fmt.Errorf("compile: %w", ErrNotText)
	}
	base := int32(0)
	if bytes.HasPrefix(page, bom) {
		base = int32(len(bom))
	}
	tree, err := htmltree.Parse(page[base:])
	if err != nil {
		return nil, fmt.Errorf("compile: %w: %v", ErrUnparsable, err)
	}
	defer tree.Release()
	return compileTree(page, base, tree, sels, budget, perElem)
}

// compileTree is compile's work once page[base:] is parsed.
func compileTree(page []byte, base int32, tree *htmltree.Tree, sels []cascadia.Matcher, budget, perElem int) (*Template, error) {
	c := compiler{
		t: &Template{
			page:       page,
			nsel:       len(sels),
			matched:    make([]int32, len(sels)),
			skipped:    make([]int32, len(sels)),
			tagMatched: make([]int32, len(sels)),
			tagSkipped: make([]int32, len(sels)),
		},
		tree: tree,
		base: base,
	}
	c.run = selector.NewRun(budget + perElem*len(tree.Elems))
	if !c.match(sels) {
		return nil, fmt.Errorf("compile: %w", ErrTooComplex)
	}
	if c.t.blind = blindSelectors(sels); c.t.blind {
		c.recordReuse()
	}
	return c.t, nil
}

// isText rejects UTF-16 (and UTF-32) bodies, which splicing UTF-8 fragments
// would corrupt. A body that merely has odd bytes is parsed as HTML, as
// browsers do: without tags in it, no selector matches.
func isText(page []byte) bool {
	return !bytes.HasPrefix(page, []byte("\xfe\xff")) && !bytes.HasPrefix(page, []byte("\xff\xfe"))
}

type compiler struct {
	run    *selector.Run // the budget of matching (see matchBudget)
	t      *Template
	tree   *htmltree.Tree
	base   int32
	groups map[int32]int32 // closing token → its closers in t.bounds
	stack  []int32         // enclosing spans, while building
	eof    int8            // whether the end of the page is in data state: 0 unknown, 1 yes, -1 no
}

// skip says why a matched element cannot be rewritten.
type skip uint8

const (
	rewritable skip = iota
	noStartTag      // implied, or a clone: no source tag of its own
	tainted         // the parser moved content in or out of its span (see htmltree's taints)
	leaks           // a formatting element left open inside is re-opened after it
	foreignEnd      // closed without its end tag by a token whose handling an edit would change
	crossing        // its span does not nest in the others' (never seen; a safety net)
	cloned          // the parser made copies of it, with its attributes, elsewhere
)

// hit reports whether m matches n: by the budgeted run for selectors of
// the rules package, as it is for any other matcher.
func (c *compiler) hit(m cascadia.Matcher, n *html.Node) bool {
	if s, ok := m.(*selector.Selector); ok {
		return c.run.Match(s, n)
	}
	return m.Match(n)
}

// match runs the selectors on every element and records the ones edits can
// rewrite: the whole element when its span is its content in the tree,
// else its start tag alone, for start-tag edits. Records come in creation
// order, so elements with a start tag come in source order. It returns false when the
// budget of matching ran out.
func (c *compiler) match(sels []cascadia.Matcher) bool {
	t := c.t
	fams := c.families(sels)
	var hits, tagHits []int32
	for ri := range c.tree.Elems {
		e := &c.tree.Elems[ri]
		hits = hits[:0]
		for si, m := range sels {
			if c.hit(m, e.Node) {
				hits = append(hits, int32(si))
			}
		}
		if c.run.Exhausted() {
			return false
		}
		if len(hits) == 0 || !c.attached(e) {
			continue
		}
		if e.Origin >= 0 {
			// A clone has the attributes of its original's start tag: the
			// start-tag edits of its original reach it.
			f := fams[e.Origin]
			for _, si := range hits {
				t.skipped[si]++
				if f != nil && f.edited && f.whole(si) {
					t.tagMatched[si]++
				} else {
					t.tagSkipped[si]++
				}
			}
			continue
		}
		f := fams[int32(ri)]
		s, g, why := c.span(e)
		if why == rewritable && f != nil {
			why = cloned
		}
		if why == rewritable {
			why = c.add(s, g, hits)
		}
		if why == rewritable {
			tag := t.tagMatched
			if s.flags&fNoTag != 0 {
				tag = t.tagSkipped
			}
			for _, si := range hits {
				t.matched[si]++
				tag[si]++
			}
			continue
		}
		// Content edits skip it; start-tag edits may still apply, when the
		// elements the selector matched among it and its clones are the
		// elements an edit of its tag changes.
		tagHits = tagHits[:0]
		for _, si := range hits {
			t.skipped[si]++
			if f == nil || f.whole(si) {
				tagHits = append(tagHits, si)
			} else {
				t.tagSkipped[si]++
			}
		}
		tag := t.tagSkipped
		if len(tagHits) > 0 && c.addTag(e, f, tagHits) {
			tag = t.tagMatched
			if f != nil {
				f.edited = true
			}
		}
		for _, si := range tagHits {
			tag[si]++
		}
	}
	return true
}

// attached reports whether e is in the document: a <frameset> may have
// replaced the <body> that held it.
func (c *compiler) attached(e *htmltree.Elem) bool {
	return !c.tree.Detached || attached(e.Node, c.tree.Doc)
}

// family is an element the parser cloned (the adoption agency algorithm,
// the reconstruction of active formatting elements) and its clones. They
// all have the attributes of its start tag: an edit of that tag changes
// every one of them in the browser, so it is made only for a selector that
// matches all of them.
type family struct {
	n      int32   // members in the document
	hits   []int32 // per selector, the members it matches
	noTag  bool    // its tag cannot be edited (see addTag)
	edited bool    // its tag is recorded for start-tag edits
}

// whole reports whether selector si matches every member of f.
func (f *family) whole(si int32) bool { return f.n > 0 && f.hits[si] == f.n }

// families returns the families of the tree, by their original's record;
// nil when the parser made no clone.
func (c *compiler) families(sels []cascadia.Matcher) map[int32]*family {
	tr := c.tree
	if len(tr.Clones) == 0 {
		return nil
	}
	fams := make(map[int32]*family)
	join := func(f *family, e *htmltree.Elem) {
		if e.Flags&htmltree.ArkCompared != 0 {
			f.noTag = true
		}
		if !c.attached(e) {
			return
		}
		f.n++
		for si, m := range sels {
			if c.hit(m, e.Node) {
				f.hits[si]++
			}
		}
	}
	for _, ci := range tr.Clones {
		o := tr.Elems[ci].Origin
		if o < 0 {
			continue
		}
		f := fams[o]
		if f == nil {
			f = &family{hits: make([]int32, len(sels))}
			fams[o] = f
			// An original out of the document would be edited unseen.
			f.noTag = tr.Elems[o].Start < 0 || !c.attached(&tr.Elems[o])
			join(f, &tr.Elems[o])
		}
		join(f, &tr.Elems[ci])
	}
	return fams
}

// addTag records e's start tag for start-tag edits of selectors hits. It
// refuses an element whose attributes are not only its tag's (a later
// <html> or <body> tag offers it attributes), and one whose attributes
// decide what the Noah's Ark clause keeps: editing them could change the
// tree.
func (c *compiler) addTag(e *htmltree.Elem, f *family, hits []int32) bool {
	if e.Start < 0 || e.Flags&(htmltree.AttrsMerged|htmltree.ArkCompared) != 0 || (f != nil && f.noTag) {
		return false
	}
	page := c.t.page
	s0, s1 := e.Start+c.base, e.StartEnd+c.base
	if !(s0 < s1 && int(s1) <= len(page)) {
		return false
	}
	s := span{
		s0: s0, s1: s1, c0: s1, e0: s1, e1: s1,
		parent: -1, grp: -1, clOff: -1, bgrp: -1, bclOff: -1,
		flags: fVoid | fTagOnly,
	}
	if s0 > 0 && page[s0-1] == '<' {
		s.flags |= fLTBefore
	}
	return c.add(s, noGroups, hits) == rewritable
}

func attached(n, doc *html.Node) bool {
	for n.Parent != nil {
		n = n.Parent
	}
	return n == doc
}

// closedByCurrentNode reports whether e was closed by a start tag that
// pops only the current node: a heading by a heading, an option or
// optgroup by an option or optgroup (in body, where text reconstructs
// active formatting elements).
func closedByCurrentNode(e *htmltree.Elem) bool {
	if html.TokenType(e.PopType) != html.StartTagToken || e.Node.Namespace != "" {
		return false
	}
	switch e.Node.DataAtom {
	case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		switch e.PopAtom {
		case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
			return true
		}
	case atom.Option, atom.Optgroup:
		return e.PopAtom == atom.Option || e.PopAtom == atom.Optgroup
	}
	return false
}

// groups locate, in the tree's Pops, the first element of the groups whose
// end tags Render may write for a span: the group closed with it, and the
// group its start tag closed; -1 for none.
type groups struct{ end, before int32 }

var noGroups = groups{-1, -1}

// span works out e's source span, or why e has none that an edit can use.
func (c *compiler) span(e *htmltree.Elem) (s span, g groups, why skip) {
	if e.Start < 0 || e.End < 0 {
		return span{}, noGroups, noStartTag
	}
	if e.Taint&htmltree.Leaked != 0 {
		// A formatting element left open inside e is re-opened after e:
		// e's content goes on past its end.
		return span{}, noGroups, leaks
	}
	if e.Taint != 0 && !(e.Taint == htmltree.SetsMode && c.lastInTemplate(e)) {
		return span{}, noGroups, tainted
	}
	if e.Flags&htmltree.Reconstructs != 0 && closedByCurrentNode(e) {
		// A start tag closed e only because e was the current node (<h2>
		// after an open <h1>, <option> after <option>), and formatting
		// elements closed before e wait to be re-opened: content written
		// into e (text) would re-open them in it, they would then be the
		// current node, and e would go on past its end.
		return span{}, noGroups, tainted
	}
	t, b := c.t, c.base
	s = span{
		s0: e.Start + b, s1: e.StartEnd + b,
		e0: e.End + b, e1: e.EndEnd + b,
		parent: -1, grp: -1, clOff: -1, bgrp: -1, bclOff: -1,
	}
	if e.Flags&htmltree.Void != 0 {
		s.flags |= fVoid
		s.e0, s.e1 = s.s1, s.s1
	}
	if e.Flags&htmltree.AtEOF != 0 && !c.eofSafe() {
		s.flags |= fNoEnd
	}
	if s.e0 == s.e1 && html.TokenType(e.PopType) == html.TextToken {
		// Text closes <head> or <colgroup> after putting its leading
		// whitespace in it.
		s.e0 += leadingSpace(t.page[s.e0:])
		s.e1 = s.e0
	}
	s.c0 = s.s1
	if e.Flags&(htmltree.AttrsMerged|htmltree.ArkCompared) != 0 {
		s.flags |= fNoTag // see addTag
	}
	n := e.Node
	switch n.Data { // in any namespace: an SVG <script> runs too
	case "script":
		if isJSScript(n) {
			s.flags |= fScript
		}
	case "style":
		s.flags |= fStyle
	}
	if s.flags&(fScript|fStyle) != 0 && n.Namespace != "" {
		s.flags |= fForeign
	}
	if n.Namespace == "" {
		switch n.DataAtom {
		case atom.Pre, atom.Listing, atom.Textarea:
			// The parser drops a newline right after the start tag: keep it
			// outside the content so that new content is not shifted by it.
			s.c0 += leadingNewline(t.page[s.c0:s.e0])
		case atom.Html, atom.Body:
			s.flags |= fNoSelfClose
		}
	}
	if !(s.s0 < s.s1 && s.s1 <= s.c0 && s.c0 <= s.e0 && s.e0 <= s.e1 && int(s.e1) <= len(t.page)) {
		return span{}, noGroups, crossing
	}
	if s.s0 > 0 && t.page[s.s0-1] == '<' {
		s.flags |= fLTBefore
	}
	if s.e0 > s.c0 && t.page[s.e0-1] == '<' && !rawText(n) {
		s.flags |= fLTEnd
	}
	g = noGroups
	if e.PopIdx >= 0 && s.flags&fVoid == 0 {
		if g.end, why = c.group(e, &s); why != rewritable {
			return span{}, noGroups, why
		}
	}
	g.before = c.beforeGroup(e, &s)
	return s, g, rewritable
}

// beforeGroup finds the elements e's start tag closed ("<li>" closes the
// previous item, "<div>" an open paragraph). It leaves none to write when
// one of them is a formatting element the parser re-opens later: its end
// tag would stop that.
func (c *compiler) beforeGroup(e *htmltree.Elem, s *span) int32 {
	pops, elems := c.tree.Pops, c.tree.Elems
	k := sort.Search(len(pops), func(k int) bool { return elems[pops[k]].End >= e.Start })
	g0, n := k, int32(0)
	for ; k < len(pops) && elems[pops[k]].End == e.Start; k++ {
		m := &elems[pops[k]]
		if m.Taint&htmltree.Leaked != 0 {
			return -1
		}
		if m.Created < e.Start {
			n = int32(k-g0) + 1
		}
	}
	if n == 0 {
		return -1
	}
	s.bgrp, s.bn = e.Start, n
	return int32(g0)
}

// lastInTemplate reports whether only whitespace follows e in its
// template: e's tag chose how the template's content is parsed, which only
// matters to what follows it.
func (c *compiler) lastInTemplate(e *htmltree.Elem) bool {
	if e.Parent < 0 {
		return false
	}
	t := &c.tree.Elems[e.Parent]
	if t.Node != e.Node.Parent || t.End < e.EndEnd {
		return false
	}
	for _, b := range c.t.page[c.base+e.EndEnd : c.base+t.End] {
		if !isSpace(b) {
			return false
		}
	}
	return true
}

// rawText reports whether n's content is text the tokenizer does not
// look into for tags (bar its own end tag).
func rawText(n *html.Node) bool {
	if n.Namespace != "" {
		return false
	}
	switch n.DataAtom {
	case atom.Script, atom.Style, atom.Textarea, atom.Title, atom.Xmp, atom.Iframe,
		atom.Noembed, atom.Noframes, atom.Noscript, atom.Plaintext:
		return true
	}
	return false
}

// leadingSpace returns the length of the whitespace that starts b, as
// characters or character references.
func leadingSpace(b []byte) int32 {
	n := 0
	for n < len(b) {
		if isSpace(b[n]) {
			n++
			continue
		}
		if b[n] != '&' {
			break
		}
		end := bytes.IndexByte(b[n:min(len(b), n+12)], ';')
		if end < 0 {
			break
		}
		if r := html.UnescapeString(string(b[n : n+end+1])); len(r) != 1 || !isSpace(r[0]) {
			break
		}
		n += end + 1
	}
	return int32(n)
}

// leadingNewline returns the length of the newline that starts b as the
// parser sees it: "\n", "\r\n", "\r", or a character reference to one
// (and "&#13;" followed by a newline, as the parser drops both).
func leadingNewline(b []byte) int32 {
	n, cr := 0, false
	for range 2 {
		switch {
		case bytes.HasPrefix(b[n:], []byte("\r\n")):
			return int32(n + 2)
		case len(b) > n && (b[n] == '\n' || b[n] == '\r'):
			return int32(n + 1)
		case len(b) > n && b[n] == '&' && !cr:
			end := bytes.IndexByte(b[n:min(len(b), n+12)], ';')
			if end < 0 {
				return int32(n)
			}
			switch html.UnescapeString(string(b[n : n+end+1])) {
			case "\n":
				return int32(n + end + 1)
			case "\r":
				n, cr = n+end+1, true
				continue
			}
			return int32(n)
		}
		return int32(n)
	}
	return int32(n)
}

// eofSafe reports whether Render can write end tags and content at the
// end of the page: the page does not end inside an unterminated comment,
// CDATA section or <plaintext>, and where it ends inside a <script> (or
// another element whose content is raw text) its end tag still ends it.
// It asks the tokenizer, on a copy of the page's tail followed by a probe.
func (c *compiler) eofSafe() bool {
	if c.eof != 0 {
		return c.eof > 0
	}
	c.eof = -1
	tr, src := c.tree, c.t.page[c.base:]
	if int(tr.EOF) < len(src) {
		c.eof = 1 // a cut-short tag follows the last token: Render writes before it
		return true
	}
	// The elements open at the end, innermost first. After <plaintext>
	// everything is text (even formatting elements the parser re-opens in it).
	if p := tr.Pops; len(p) > 0 {
		k := len(p) - 1
		for k > 0 && tr.Elems[p[k-1]].Flags&htmltree.AtEOF != 0 {
			k--
		}
		for _, ri := range p[k:] {
			if e := &tr.Elems[ri]; e.Flags&htmltree.AtEOF != 0 && e.Node.Namespace == "" && e.Node.DataAtom == atom.Plaintext {
				return false
			}
		}
		if top := &tr.Elems[p[k]]; top.Flags&htmltree.AtEOF != 0 && top.Node.Namespace == "" && top.Start >= 0 {
			switch top.Node.DataAtom {
			case atom.Script, atom.Style, atom.Textarea, atom.Title, atom.Xmp, atom.Iframe,
				atom.Noembed, atom.Noframes, atom.Noscript:
				end := "</" + top.Node.Data + ">"
				if probe(src[top.Start:tr.EOF], end, 0, html.EndTagToken, false) {
					c.eof = 1
				}
				return c.eof > 0
			}
		}
	}
	// Text or a comment must end cleanly: not inside a comment or a CDATA
	// section, nor on a "<" or "</" that what Render writes would complete.
	raw := src[tr.LastStart:tr.EOF]
	cdata := tr.Last == html.TextToken && bytes.HasPrefix(raw, []byte("<![CDATA["))
	if !probe(raw, "x<a>", 1, html.StartTagToken, cdata) {
		return false
	}
	c.eof = 1
	return true
}

// probe reports whether the tokenizer, given tail+next, reads a token of
// type tt that starts at len(tail)+at and ends with next: whether the end
// of tail leaves the tokenizer where tail alone leaves it.
func probe(tail []byte, next string, at int, tt html.TokenType, cdata bool) bool {
	b := make([]byte, 0, len(tail)+len(next))
	b = append(append(b, tail...), next...)
	z := html.NewTokenizer(bytes.NewReader(b))
	z.AllowCDATA(cdata)
	for off := 0; ; {
		k := z.Next()
		if k == html.ErrorToken {
			return false
		}
		n := len(z.Raw())
		if off == len(tail)+at {
			return k == tt && off+n == len(b)
		}
		if off += n; off > len(tail)+at {
			return false
		}
	}
}

// add appends span s matched by selectors hits; it refuses a span that
// crosses an earlier one.
func (c *compiler) add(s span, g groups, hits []int32) skip {
	t := c.t
	// Spans must nest: pop the spans that end before s starts.
	for len(c.stack) > 0 && t.elems[c.stack[len(c.stack)-1]].e1 <= s.s0 {
		c.stack = c.stack[:len(c.stack)-1]
	}
	if len(c.stack) > 0 {
		s.parent = c.stack[len(c.stack)-1]
		if p := &t.elems[s.parent]; s.s0 < p.c0 || s.e1 > p.e0 {
			return crossing
		}
	}
	if g.end >= 0 {
		s.clOff = c.closers(s.grp, g.end)
	}
	if g.before >= 0 {
		s.bclOff = c.closers(s.bgrp, g.before)
	}
	s.selOff, s.selN = int32(len(t.sels)), int32(len(hits))
	for _, si := range hits {
		t.sels = append(t.sels, si)
		if si < 64 {
			s.mask |= 1 << si
		}
	}
	c.stack = append(c.stack, int32(len(t.elems)))
	t.elems = append(t.elems, s)
	return rewritable
}

// group finds the elements the token that closed e closed with it (its
// open descendants, innermost first, then e), whose end tags Render writes
// where the source has none.
//
// It also refuses e when that token did not close e as its end tag and the
// parser handled it by the HTML rules from inside SVG or MathML, where after
// an edit of e (which leaves e or e's parent as the current node) it would
// apply the rules for foreign content: "<svg><td><foreignObject><span></td>"
// closes the SVG <td> as HTML's </td> does, but "<svg><td></td>" closes only
// the SVG <td>. (The other way round is safe: foreign content hands a token
// it does not take, an end tag or a tag that breaks out, to the HTML rules
// at the nearest HTML element, as an edit would.)
func (c *compiler) group(e *htmltree.Elem, s *span) (int32, skip) {
	pops, elems := c.tree.Pops, c.tree.Elems
	g0 := e.PopIdx
	for g0 > 0 && elems[pops[g0-1]].End == e.End {
		g0--
	}
	s.grp, s.gi = e.End, e.PopIdx-g0
	if s.e1 == s.e0 && e.Flags&htmltree.AtEOF == 0 {
		top := elems[pops[g0]].Node
		tt := html.TokenType(e.PopType)
		if !htmltree.ForeignRules(top, tt, e.PopAtom) {
			if htmltree.ForeignRules(e.Node, tt, e.PopAtom) {
				return -1, foreignEnd
			}
			if p := e.Node.Parent; p != nil && htmltree.ForeignRules(p, tt, e.PopAtom) {
				return -1, foreignEnd
			}
		}
	}
	if s.gi > 0 || s.e1 == s.e0 {
		return g0, rewritable
	}
	return -1, rewritable
}

// closers returns the index in t.bounds of the end tags of the group the
// token grp closed, from the tree's Pops[g0], adding them the first time.
func (c *compiler) closers(grp, g0 int32) int32 {
	if off, ok := c.groups[grp]; ok {
		return off
	}
	if c.groups == nil {
		c.groups = make(map[int32]int32)
	}
	t, pops, elems := c.t, c.tree.Pops, c.tree.Elems
	off := int32(len(t.bounds))
	c.groups[grp] = off
	t.bounds = append(t.bounds, int32(len(t.closers)))
	for k := int(g0); k < len(pops) && elems[pops[k]].End == grp; k++ {
		// An element the closing token itself created was not open before it.
		if m := &elems[pops[k]]; m.Created < grp {
			t.closers = append(t.closers, "</"...)
			t.closers = append(t.closers, m.Node.Data...)
			t.closers = append(t.closers, '>')
		}
		t.bounds = append(t.bounds, int32(len(t.closers)))
	}
	return off
}

// Same reports whether page is byte for byte the page t was compiled
// from, so that t serves it as it is.
func (t *Template) Same(page []byte) bool { return bytes.Equal(t.page, page) }

// Matched returns how many elements selector sel matched that can be
// rewritten.
func (t *Template) Matched(sel int) int {
	return perSelector(t.matched, sel)
}

// Skipped returns how many elements selector sel matched that content
// edits (all but SetAttr, AddClass and RemoveClass) cannot rewrite: the
// parser made them without a start tag of their own, or their source span
// is not their content in the tree. Start-tag edits may still rewrite them
// (see TagMatched).
func (t *Template) Skipped(sel int) int {
	return perSelector(t.skipped, sel)
}

// TagMatched returns how many elements selector sel matched that start-tag
// edits (SetAttr, AddClass, RemoveClass) rewrite: elements with a start tag
// of their own, whatever the parser did with their content, and clones
// that the parser made from a start tag the edit changes.
func (t *Template) TagMatched(sel int) int {
	return perSelector(t.tagMatched, sel)
}

// TagSkipped returns how many elements selector sel matched that start-tag
// edits cannot rewrite: elements without a source tag (implied ones, clones
// of an element the selector does not match with all its clones), and
// elements whose attributes do not come from their tag alone or decide
// the tree's shape (see doc.go).
func (t *Template) TagSkipped(sel int) int {
	return perSelector(t.tagSkipped, sel)
}

// perSelector returns counts[sel], 0 for a selector out of range.
func perSelector(counts []int32, sel int) int {
	if sel < 0 || sel >= len(counts) {
		return 0
	}
	return int(counts[sel])
}

// Size returns the approximate number of bytes the template retains,
// the page included, for a cache bounded in bytes.
func (t *Template) Size() int {
	return int(unsafe.Sizeof(*t)) + cap(t.page) +
		cap(t.elems)*int(unsafe.Sizeof(span{})) +
		(cap(t.sels)+cap(t.bounds)+cap(t.matched)+cap(t.skipped)+cap(t.tagMatched)+cap(t.tagSkipped)+cap(t.tags)+cap(t.raws)+cap(t.texts)+cap(t.comments))*4 +
		cap(t.closers)
}

// Len returns the length of the page the template was compiled from.
func (t *Template) Len() int { return len(t.page) }
