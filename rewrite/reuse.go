package rewrite

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"

	"github.com/andybalholm/cascadia"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/tailor-edge/tailor/rewrite/internal/htmltree"
)

// Reuse: a new body for the same URL that differs from the template's page
// only by a per-request token (a CSRF token in a <meta> or a hidden
// <input>, a nonce on <script>, a token in an inline script's JSON) gets a
// template without parsing.
//
// The argument. Let the pages be old = P+X+S and new = P+Y+S (P and S the
// longest common prefix and suffix). Reuse accepts only when X and Y both lie
// inside one of these regions, recorded by Compile:
//
//  1. The start tag of an HTML element that Compile recorded, X and Y
//     strictly between its "<" and its last ">" (the tag is a token
//     read in the data state, so it is read from its "<" to its ">" the same
//     way whatever precedes it). The old and the new tag are each read by
//     x/net/html's tokenizer alone: each must be one start tag token spanning
//     the whole tag, of the same type and name, with the same attributes in
//     the same order, whose values differ only for attribute names the tree
//     builder and the selectors cannot read (not id, class, type, encoding;
//     the element not a formatting element, whose attribute values the
//     Noah's Ark clause compares, nor html or body, whose attributes a later
//     tag merges into). The tokenizer then ends the tag at the same place
//     relative to it, in the same state, and reads the identical S the same
//     way: every token is the same but for those attribute values, and the
//     tree builder, which reads no other attribute values, builds the same
//     tree with every token shifted by len(Y)-len(X) after the tag.
//  2. The content of an HTML <script> or <style> closed by its own end tag
//     (raw text: the tokenizer reads it only for its end tag and, in a
//     script, the "<!--" escapes). X and Y contain no "<" and no NUL, and the
//     tokenizer is in a state at the start of X that plain text keeps: when
//     no "<" precedes X in the content, it is in the script (or raw text)
//     data state, where only "<" matters; otherwise X and Y must also contain
//     no "-" or ">" and the 12 bytes before X no "<" or "-", so that no
//     partial "<!--", "-->", "<script" or "</script" is pending and X and Y
//     are read as text in whichever base state holds. The content's text
//     node changes, nothing else; the whole content may not be replaced (the
//     text token must exist on both sides).
//
// And the selectors must be blind to what changed: every one is a
// cascadia.Sel or SelectorGroup (whose String is the selector's CSS text;
// a compiled func has none, and then only an identical page is reused) whose
// text has no attribute selector ("[") and no
// pseudo-class other than the structural ones (:first-child, :nth-child(),
// :only-of-type, :root...), so that it reads only tag names, id, class and
// the shape of the tree, none of which changed. The same elements then
// match, with the same skips. Offsets at or after the end of X shift by
// len(Y)-len(X); none lies strictly inside X (a safety net checks), and the
// flags Compile derives from the bytes around a span are checked again.
// Anything else is refused: the caller compiles.

// reuseExcludedAttr are the attribute names whose values the tree builder
// (type of <input> in a table, encoding of MathML annotation-xml) or a blind
// selector (id, class) reads.
func reuseExcludedAttr(key []byte) bool {
	switch string(key) {
	case "id", "class", "type", "encoding":
		return true
	}
	return false
}

// reuseTagOK reports whether changes to attribute values of an HTML element
// n may be reused: not a formatting element (the Noah's Ark clause compares
// their attributes) nor html or body (a later tag merges attributes into
// them).
func reuseTagOK(n *html.Node) bool {
	if n.Namespace != "" {
		return false
	}
	switch n.DataAtom {
	case atom.A, atom.B, atom.Big, atom.Code, atom.Em, atom.Font, atom.I, atom.Nobr,
		atom.S, atom.Small, atom.Strike, atom.Strong, atom.Tt, atom.U, atom.Html, atom.Body:
		return false
	}
	return true
}

// structuralPseudo are the pseudo-classes, as cascadia writes them, that
// read only the element structure of the tree.
var structuralPseudo = []string{
	"first-child", "last-child", "only-child", "first-of-type", "last-of-type",
	"only-of-type", "nth-child(", "nth-last-child(", "nth-of-type(", "nth-last-of-type(", "root",
}

// blindSelectors reports whether the selectors read nothing but tag names,
// id, class and the shape of the tree. A selector must be a cascadia.Sel,
// whose String is its CSS text; any attribute selector in it writes "[",
// any pseudo-class ":name". Conservative: a class name with "[" in it, say,
// makes it not blind.
func blindSelectors(sels []cascadia.Matcher) bool {
	for _, m := range sels {
		var txt string
		switch s := m.(type) {
		case cascadia.Sel:
			if s.PseudoElement() != "" {
				return false
			}
			txt = s.String()
		case cascadia.SelectorGroup:
			txt = s.String()
		default:
			return false // a compiled func: its text is gone
		}
		if strings.IndexByte(txt, '[') >= 0 || strings.Contains(txt, "::") {
			return false
		}
		for i := 0; i < len(txt); i++ {
			if txt[i] != ':' {
				continue
			}
			rest, known := txt[i+1:], false
			for _, p := range structuralPseudo {
				if strings.HasPrefix(rest, p) {
					known = true
					break
				}
			}
			if !known {
				return false
			}
		}
	}
	return true
}

// recordReuse records, for Reuse, the start tags and the raw-text contents
// the tree has (page offsets, in source order). Only tags with an attribute
// value other than id or class (see keepTag), of an element whose attribute
// values may change, are kept.
func (c *compiler) recordReuse() {
	t, b := c.t, c.base
	for i := range c.tree.Elems {
		e := &c.tree.Elems[i]
		if e.Start < 0 || !reuseTagOK(e.Node) {
			continue
		}
		if keepTag(t.page[b+e.Start : b+e.StartEnd]) {
			t.tags = append(t.tags, b+e.Start, b+e.StartEnd)
		}
		if (e.Node.DataAtom == atom.Script || e.Node.DataAtom == atom.Style) &&
			e.End > e.StartEnd && e.EndEnd > e.End && e.Flags&htmltree.Void == 0 {
			t.raws = append(t.raws, b+e.StartEnd, b+e.End)
		}
	}
}

// Reuse returns a template for page, a new body for the template's URL,
// without parsing it, when that is provably the template Compile would make
// of page with the same selectors: when page differs from the template's
// page only inside attribute values (not id or class) of one start tag, or
// only inside the text of one inline <script> or <style>, and no selector
// can read what changed. Otherwise it returns nil, false and the caller
// compiles. The template keeps page: the caller must not modify it
// afterwards. It takes time linear in the page's length, about that of
// comparing the two pages.
func (t *Template) Reuse(page []byte) (*Template, bool) {
	old := t.page
	if len(page) >= math.MaxInt32 {
		return nil, false
	}
	p := commonPrefix(old, page)
	if p == len(old) && p == len(page) {
		nt := *t
		nt.page = page
		return &nt, true
	}
	if !t.blind {
		return nil, false
	}
	s := commonSuffix(old[p:], page[p:])
	a, b, b2 := int32(p), int32(len(old)-s), int32(len(page)-s)
	// An insertion (a == b) at the start of a script's content leaves the
	// offsets there where they are: they mark the content's start.
	keep := false
	if !t.inTag(page, a, b, b2) {
		var ok bool
		if ok, keep = t.inRaw(page, a, b, b2); !ok {
			return nil, false
		}
	}
	return t.shift(page, a, b, b2, keep)
}

// commonPrefix returns the length of the longest common prefix of x and y.
func commonPrefix(x, y []byte) int {
	n := min(len(x), len(y))
	i := 0
	const blk = 256
	for i+blk <= n && bytes.Equal(x[i:i+blk], y[i:i+blk]) {
		i += blk
	}
	for i+8 <= n && binary.LittleEndian.Uint64(x[i:]) == binary.LittleEndian.Uint64(y[i:]) {
		i += 8
	}
	for i < n && x[i] == y[i] {
		i++
	}
	return i
}

// commonSuffix returns the length of the longest common suffix of x and y.
func commonSuffix(x, y []byte) int {
	n := min(len(x), len(y))
	i := 0
	const blk = 256
	for i+blk <= n && bytes.Equal(x[len(x)-i-blk:len(x)-i], y[len(y)-i-blk:len(y)-i]) {
		i += blk
	}
	for i+8 <= n && binary.LittleEndian.Uint64(x[len(x)-i-8:]) == binary.LittleEndian.Uint64(y[len(y)-i-8:]) {
		i += 8
	}
	for i < n && x[len(x)-i-1] == y[len(y)-i-1] {
		i++
	}
	return i
}

// find returns the index of the last pair in pairs (start, end, sorted by
// start) whose start is below a, or -1.
func find(pairs []int32, a int32) int {
	lo, hi := 0, len(pairs)/2
	for lo < hi {
		m := (lo + hi) / 2
		if pairs[2*m] < a {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1
}

// inTag reports whether the change old[a:b] → page[a:b2] lies inside one
// recorded start tag and changes only attribute values the tree builder and
// blind selectors do not read (case 1 above).
func (t *Template) inTag(page []byte, a, b, b2 int32) bool {
	k := find(t.tags, a)
	if k < 0 {
		return false
	}
	s0, s1 := t.tags[2*k], t.tags[2*k+1]
	if !(s0 < a && b < s1) || bytes.IndexByte(t.page[a:b], 0) >= 0 || bytes.IndexByte(page[a:b2], 0) >= 0 {
		return false
	}
	// Compile would record the new tag too (so that a template from Reuse
	// is the one Compile makes, down to its records).
	y := page[s0 : s1+b2-b]
	return keepTag(y) && sameTagButValues(t.page[s0:s1], y)
}

// keepTag reports whether a start tag may have an attribute value Reuse
// can accept a change in: an "=" after a name other than id or class. It
// only saves memory: a tag it keeps wrongly is refused by inTag.
func keepTag(tag []byte) bool {
	for i := bytes.IndexByte(tag, '='); i >= 0; {
		j := i
		for j > 0 && isSpace(tag[j-1]) {
			j--
		}
		k := j
		for k > 0 && nameByte(tag[k-1]) {
			k--
		}
		if name := tag[k:j]; !bytes.EqualFold(name, []byte("class")) && !bytes.EqualFold(name, []byte("id")) {
			return true
		}
		n := bytes.IndexByte(tag[i+1:], '=')
		if n < 0 {
			break
		}
		i += 1 + n
	}
	return false
}

// sameTagButValues reports whether the tokenizer reads x and y each as one
// start tag token, alike but for the values of attributes the tree builder
// and blind selectors do not read.
func sameTagButValues(x, y []byte) bool {
	zx := html.NewTokenizer(bytes.NewReader(x))
	zy := html.NewTokenizer(bytes.NewReader(y))
	tx, ty := zx.Next(), zy.Next()
	if tx != ty || (tx != html.StartTagToken && tx != html.SelfClosingTagToken) ||
		len(zx.Raw()) != len(x) || len(zy.Raw()) != len(y) {
		return false
	}
	nx, ax := zx.TagName()
	ny, ay := zy.TagName()
	if !bytes.Equal(nx, ny) {
		return false
	}
	for ax && ay {
		var kx, ky, vx, vy []byte
		kx, vx, ax = zx.TagAttr()
		ky, vy, ay = zy.TagAttr()
		if !bytes.Equal(kx, ky) {
			return false
		}
		if !bytes.Equal(vx, vy) && reuseExcludedAttr(kx) {
			return false
		}
	}
	return ax == ay
}

// inRaw reports whether the change old[a:b] → page[a:b2] lies inside the
// content of one recorded <script> or <style> and is read as text (case 2
// above), and whether the change starts the content.
func (t *Template) inRaw(page []byte, a, b, b2 int32) (ok, atStart bool) {
	k := find(t.raws, a+1) // content may start at a
	if k < 0 {
		return false, false
	}
	c0, e0 := t.raws[2*k], t.raws[2*k+1]
	if !(c0 <= a && b <= e0) || (a == c0 && b == e0) {
		return false, false
	}
	return t.rawText(page, c0, a, b, b2), a == c0
}

func (t *Template) rawText(page []byte, c0, a, b, b2 int32) bool {
	x, y := t.page[a:b], page[a:b2]
	if bytes.IndexByte(x, '<') >= 0 || bytes.IndexByte(y, '<') >= 0 ||
		bytes.IndexByte(x, 0) >= 0 || bytes.IndexByte(y, 0) >= 0 {
		return false
	}
	if bytes.IndexByte(t.page[c0:a], '<') < 0 {
		return true
	}
	const window = 12
	if bytes.ContainsAny(t.page[max(c0, a-window):a], "<-") ||
		bytes.ContainsAny(x, "->") || bytes.ContainsAny(y, "->") {
		return false
	}
	return true
}

// shift returns the template for page, with every offset at or after b
// moved to b2; with keep, an offset at a == b stays.
func (t *Template) shift(page []byte, a, b, b2 int32, keep bool) (*Template, bool) {
	nt := *t
	nt.page = page
	d := b2 - b
	if d == 0 {
		// Nothing moves; check what would refuse a move all the same.
		for i := range t.elems {
			s := &t.elems[i]
			for _, o := range [...]int32{s.s0, s.s1, s.c0, s.e0, s.e1} {
				if a < o && o < b {
					return nil, false
				}
			}
			if !flagsHold(s, page) {
				return nil, false
			}
		}
		return &nt, true
	}
	ok := true
	mv := func(o int32) int32 {
		switch {
		case o < a || o == a && (a < b || keep):
			return o
		case o >= b:
			return o + d
		}
		ok = false
		return o
	}
	// grp and bgrp are token offsets in the page without its byte-order
	// mark: used only to tell groups apart, they move the same way.
	base := int32(0)
	if bytes.HasPrefix(page, bom) {
		base = int32(len(bom))
	}
	mvt := func(o int32) int32 {
		if o < 0 {
			return o
		}
		return mv(o+base) - base
	}
	nt.elems = make([]span, len(t.elems))
	for i, s := range t.elems {
		s.s0, s.s1, s.c0, s.e0, s.e1 = mv(s.s0), mv(s.s1), mv(s.c0), mv(s.e0), mv(s.e1)
		s.grp, s.bgrp = mvt(s.grp), mvt(s.bgrp)
		if !flagsHold(&s, page) {
			return nil, false
		}
		nt.elems[i] = s
	}
	if len(t.tags)+len(t.raws) > 0 {
		buf := make([]int32, len(t.tags)+len(t.raws))
		nt.tags, nt.raws = buf[:len(t.tags):len(t.tags)], buf[len(t.tags):]
		for i, o := range t.tags {
			nt.tags[i] = mv(o)
		}
		for i, o := range t.raws {
			nt.raws[i] = mv(o)
		}
	}
	if !ok {
		return nil, false
	}
	return &nt, true
}

// flagsHold reports whether the flags Compile derives from the bytes next
// to span s hold in page.
func flagsHold(s *span, page []byte) bool {
	lt := s.s0 > 0 && page[s.s0-1] == '<'
	if lt != (s.flags&fLTBefore != 0) {
		return false
	}
	if s.flags&fLTEnd != 0 {
		return s.e0 > s.c0 && page[s.e0-1] == '<'
	}
	// fLTEnd is not set for raw-text elements even when the byte is "<":
	// refuse rather than tell them apart.
	return !(s.e0 > s.c0 && page[s.e0-1] == '<')
}

// nameByte reports whether c can be part of an attribute name.
func nameByte(c byte) bool {
	switch c {
	case ' ', '\n', '\r', '\t', '\f', '"', '\'', '<', '>', '/', '=':
		return false
	}
	return true
}
