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
// only where neither the tree builder nor the selectors look — per-request
// tokens (a CSRF token in a <meta> or a hidden <input>, a nonce on
// <script>, a token in an inline script's JSON), a request id in a
// comment, a session id or a date in the text — gets a template without
// parsing.
//
// The argument, for one changed region. Let the pages be old = P+X+S and
// new = P+Y+S. Reuse accepts only when X lies in one of these regions,
// recorded by Compile, and Y is read as the same kind of region:
//
//  1. The start tag of an HTML element that Compile recorded, X strictly
//     between its "<" and its last ">" (the tag is a token read in the data
//     state, so it is read from its "<" to its ">" the same way whatever
//     precedes it). The old and the new tag are each read alone as
//     x/net/html's tokenizer reads them (by tagScanner, without the
//     tokenizer's allocations; FuzzReuseScanners checks the two agree):
//     each must be one start tag token spanning the whole tag, of the same type and name, with the same attributes in the same
//     order, whose values differ only for attribute names the tree builder
//     and the selectors cannot read (not id, class, type, encoding; the
//     element not a formatting element, whose attribute values the Noah's
//     Ark clause compares, nor html or body, whose attributes a later tag
//     merges into). The tokenizer then ends the tag at the same place
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
//     node changes, nothing else; the whole content may not come or go (the
//     text token must exist on both sides).
//  3. A comment token, X inside its data (after "<!--"), the new comment
//     read by the tokenizer alone as one comment token. A comment starts in
//     the data state and leaves the tokenizer in it, and every insertion mode
//     (foreign content too) only inserts a comment node for it, reading
//     nothing of its data.
//  4. A text token the tree builder stores as is (htmltree's freeText: read
//     by the in-body rules with the tokenizer's own data, which no earlier
//     insertion mode trimmed, with no NUL and a character that is not
//     whitespace, not the first text of a <pre> or <listing>, not after
//     <plaintext>), the new text read by the tokenizer alone as one text
//     token that also has no NUL, a character that is not whitespace, and
//     whitespace first exactly when the old one had (the modes before the
//     body split leading whitespace off). A text token starts in the data
//     state and ends where markup starts; the in-body rules do the same for
//     any such text: reconstruct the active formatting elements, insert or
//     foster-parent it (or join it to the text node before it), and clear
//     framesetOK. Only the text node's data changes.
//
// A page that gains or loses a leading byte-order mark is refused: Compile
// skips the mark, so the page is parsed from another offset.
//
// Pages that differ in several places are taken one region at a time,
// from the first: after the changes up to region k are accepted, the page
// with them is the old page of the next step, and the argument above holds
// for it (the context a raw-text region reads, the bytes before it, is
// taken from the new page). By induction the whole new page gives the same
// tree but for attribute values, text and comment data, with every token
// shifted by the regions before it.
//
// And the selectors must be blind to what changed: every one is a
// cascadia.Sel or SelectorGroup (whose String is the selector's CSS text;
// a compiled func has none, and then only an identical page is reused) whose
// text has no attribute selector ("[") and no pseudo-class other than the
// structural ones (:first-child, :nth-child(), :only-of-type, :root...),
// which count elements only, so that it reads only tag names, id, class and
// the shape of the tree, none of which changed. The same elements then
// match, with the same skips. Offsets at or after the end of a region shift
// by the regions before them; none lies strictly inside one (a safety net
// checks), and the flags Compile derives from the bytes around a span are
// checked again. Anything else is refused: the caller compiles.

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
// id, class and the shape of the tree: any attribute selector writes "[",
// and the pseudo-classes must be structural. Conservative: a class name
// with "[" in it, say, makes it not blind.
func blindSelectors(sels []cascadia.Matcher) bool {
	return selectorTextsAllow(sels, "[", structuralPseudo)
}

// selectorTextsAllow reports whether every one of sels has a CSS text (a
// cascadia.Sel or SelectorGroup, whose String is it: a compiled func's
// text is gone), no pseudo-element, none of the bytes in banned, and no
// pseudo-class ":name" but those starting with one of pseudo. It reads the
// text, so it is conservative: a banned byte in a quoted attribute value
// counts too. blindSelectors, Forward and Local ask it.
func selectorTextsAllow(sels []cascadia.Matcher, banned string, pseudo []string) bool {
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
			return false
		}
		if strings.ContainsAny(txt, banned) || strings.Contains(txt, "::") {
			return false
		}
		for i := 0; i < len(txt); i++ {
			if txt[i] != ':' {
				continue
			}
			rest, known := txt[i+1:], false
			for _, p := range pseudo {
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
	t.texts = make([]int32, 0, len(c.tree.Texts))
	for _, o := range c.tree.Texts {
		t.texts = append(t.texts, b+o)
	}
	t.comments = make([]int32, 0, len(c.tree.Comments))
	for _, o := range c.tree.Comments {
		t.comments = append(t.comments, b+o)
	}
}

// maxReuseRegions bounds the changed regions Reuse accepts in one page; a
// page that differs in more places is compiled.
const maxReuseRegions = 256

// move is one changed region: old page bytes [a, b) became new page bytes
// ending at b2. Offsets at or after b move by b2-b (the change of length of
// all regions up to this one); with keep, an offset at a == b stays.
type move struct {
	a, b, b2 int32
	keep     bool
}

// Reuse returns a template for page, a new body for the template's URL,
// without parsing it, when that is provably the template Compile would make
// of page with the same selectors: when page differs from the template's
// page only in regions the tree builder and the selectors cannot read (see
// the argument above: attribute values of start tags, the text of inline
// scripts and styles, comments, and text in the body), in any number of
// places. Otherwise it returns nil, false and the caller compiles. The
// template keeps page: the caller must not modify it afterwards. It takes
// time linear in the page's length, about that of comparing the two pages,
// plus a tokenizer's reading of each changed region.
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
	// Compile skips a leading byte-order mark: a page that gains or loses
	// one is parsed from another offset (and its first text may turn into
	// whitespace, or a doctype into the first token).
	if bytes.HasPrefix(old, bom) != bytes.HasPrefix(page, bom) {
		return nil, false
	}
	var buf [8]move
	moves := buf[:0]
	i, j := int32(p), int32(p)
	for {
		if len(moves) == maxReuseRegions {
			return nil, false
		}
		lo := int32(0)
		if len(moves) > 0 {
			lo = moves[len(moves)-1].b
		}
		m, ok := t.region(page, i, j, lo)
		if !ok {
			return nil, false
		}
		moves = append(moves, m)
		n := int32(commonPrefix(old[m.b:], page[m.b2:]))
		i, j = m.b+n, m.b2+n
		if int(i) == len(old) && int(j) == len(page) {
			break
		}
	}
	return t.shift(page, moves)
}

// region finds the recorded region that holds the first difference,
// old[i] against page[j], and where it ends on both sides; ok is false
// when there is none that reads alike, or when it would start before lo,
// the end of the region before.
func (t *Template) region(page []byte, i, j, lo int32) (m move, ok bool) {
	for _, in := range [...]func([]byte, int32, int32) (move, bool){t.inTag, t.inComment, t.inText, t.inRaw} {
		if m, ok = in(page, i, j); ok {
			// How the page ends decides what Render may write there
			// (Compile's eofSafe): a region that ends it is refused.
			return m, m.a >= lo && int(m.b) < len(t.page) && int(m.b2) < len(page)
		}
	}
	return move{}, false
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

// inTag: the difference lies inside one recorded start tag, and the new
// tag is read as the same tag but for attribute values the tree builder and
// blind selectors do not read (case 1 above).
func (t *Template) inTag(page []byte, i, j int32) (move, bool) {
	k := find(t.tags, i)
	if k < 0 {
		return move{}, false
	}
	s0, s1 := t.tags[2*k], t.tags[2*k+1]
	if !(s0 < i && i < s1) {
		return move{}, false
	}
	n0 := s0 + j - i
	if n0 < 0 {
		return move{}, false
	}
	n := tagLen(page[n0:])
	if n <= 0 {
		return move{}, false
	}
	x, y := t.page[s0:s1], page[n0:n0+n]
	if bytes.IndexByte(x, 0) >= 0 || bytes.IndexByte(y, 0) >= 0 {
		return move{}, false
	}
	// Compile would record the new tag too (so that a template from Reuse
	// is the one Compile makes, down to its records).
	if !keepTag(y) || !sameTagButValuesScan(x, y) {
		return move{}, false
	}
	return move{a: s0, b: s1, b2: n0 + n}, true
}

// tagLen returns the length of the start tag that starts b (with "<" and a
// letter, as a recorded tag does), read as the tokenizer reads it (see
// tagScanner), or 0 when b ends inside it.
func tagLen(b []byte) int32 {
	sc := newTagScanner(b)
	for {
		if _, ok := sc.next(); !ok {
			break
		}
	}
	if sc.pos >= len(b) || b[sc.pos] != '>' {
		return 0
	}
	return int32(sc.pos + 1)
}

// sameTagButValuesScan reports whether x and y, read by tagScanner as
// x/net/html's tokenizer reads them (without its allocations; the test
// oracle sameTagButValues reads them with the tokenizer), are each one
// tag (tagLen), of the same kind (self-closing when "/" precedes the final
// ">", as the tokenizer decides) and name, with the same attribute names
// in the same order, whose values differ only for names the tree builder
// and blind selectors do not read.
func sameTagButValuesScan(x, y []byte) bool {
	if int(tagLen(x)) != len(x) || int(tagLen(y)) != len(y) ||
		(x[len(x)-2] == '/') != (y[len(y)-2] == '/') {
		return false
	}
	sx, sy := newTagScanner(x), newTagScanner(y)
	if !equalFold(x[1:sx.nameEnd], y[1:sy.nameEnd]) {
		return false
	}
	for {
		ax, okx := sx.next()
		ay, oky := sy.next()
		if okx != oky {
			return false
		}
		if !okx {
			return true
		}
		kx, ky := x[ax.k0:ax.k1], y[ay.k0:ay.k1]
		if !equalFold(kx, ky) {
			return false
		}
		if !bytes.Equal(x[ax.v0:ax.v1], y[ay.v0:ay.v1]) && reuseExcludedAttr(bytes.ToLower(kx)) {
			return false
		}
	}
}

// tokenLen returns the length of the token of type tt that starts b, read
// from the data state, or 0 when b starts with another kind of token. The
// tokenizer first reads a window of about guess bytes (a token ending
// before the window's end ends there in b too: what follows it is not
// read), then, for a longer token, the whole of b.
func tokenLen(b []byte, tt html.TokenType, guess int) int32 {
	if w := 2*guess + 512; w < len(b) {
		if n := tokenLenIn(b[:w], tt); n > 0 && int(n) < w {
			return n
		}
	}
	return tokenLenIn(b, tt)
}

func tokenLenIn(b []byte, tt html.TokenType) int32 {
	if got, n := htmltree.FirstToken(b); got == tt {
		return int32(n)
	}
	return 0
}

// inComment: the difference lies inside a comment's data (after its
// "<!--"), and the new bytes there are read as one comment too. A comment
// token, in any insertion mode, only makes a comment node; the tokenizer is
// in the data state after it, as it was before.
func (t *Template) inComment(page []byte, i, j int32) (move, bool) {
	k := find(t.comments, i)
	if k < 0 {
		return move{}, false
	}
	m0, m1 := t.comments[2*k], t.comments[2*k+1]
	if !(m0+4 <= i && i < m1) || !bytes.HasPrefix(t.page[m0:], []byte("<!--")) {
		return move{}, false
	}
	n0 := m0 + j - i
	if n0 < 0 {
		return move{}, false
	}
	n := tokenLen(page[n0:], html.CommentToken, int(m1-m0))
	if n <= 0 || bytes.IndexByte(page[n0:n0+n], 0) >= 0 || bytes.IndexByte(t.page[m0:m1], 0) >= 0 {
		return move{}, false
	}
	return move{a: m0, b: m1, b2: n0 + n}, true
}

// inText: the difference lies in (or right after) a text token the tree
// builder stores as is (htmltree's freeText), and the new bytes there are
// read as one text token that is free text too: no NUL, a character that is
// not whitespace, and whitespace first exactly when the old text had it
// (an insertion mode before the body splits leading whitespace off).
func (t *Template) inText(page []byte, i, j int32) (move, bool) {
	k := find(t.texts, i+1) // the difference may start the text
	if k < 0 {
		return move{}, false
	}
	x0, x1 := t.texts[2*k], t.texts[2*k+1]
	if !(x0 <= i && i <= x1) {
		return move{}, false
	}
	n0 := x0 + j - i
	if n0 < 0 {
		return move{}, false
	}
	n := textLen(page[n0:])
	if n <= 0 {
		return move{}, false
	}
	y := page[n0 : n0+n]
	// No carriage return on either side (the tokenizer rewrites "\r\n"
	// and "\r"; refusing both ways keeps Reuse symmetric).
	if bytes.IndexByte(y, 0) >= 0 || bytes.IndexByte(y, '\r') >= 0 || bytes.IndexByte(t.page[x0:x1], '\r') >= 0 {
		return move{}, false
	}
	sx, nx := spaceFirst(t.page[x0:x1])
	sy, ny := spaceFirst(y)
	if !ny || sx != sy || !nx {
		return move{}, false
	}
	return move{a: x0, b: x1, b2: n0 + n}, true
}

// textLen returns the length of the text token that starts b, read from
// the data state: up to a "<" that starts markup (followed by a letter,
// "/", "!" or "?", as the tokenizer's data state decides) or the end.
func textLen(b []byte) int32 {
	for k := 0; ; {
		lt := bytes.IndexByte(b[k:], '<')
		if lt < 0 {
			return int32(len(b))
		}
		k += lt + 1
		if k < len(b) {
			if c := b[k] | 0x20; 'a' <= c && c <= 'z' || b[k] == '/' || b[k] == '!' || b[k] == '?' {
				return int32(k - 1)
			}
		}
	}
}

// spaceFirst reports, for text as the tokenizer decodes it (character
// references included), whether it starts with whitespace and whether it
// has a character that is not whitespace.
func spaceFirst(text []byte) (first, other bool) {
	if bytes.IndexByte(text, '&') < 0 {
		for _, c := range text {
			if !isSpace(c) {
				return len(text) > 0 && isSpace(text[0]), true
			}
		}
		return len(text) > 0, false
	}
	d := html.UnescapeString(string(text))
	return d != "" && isSpace(d[0]), strings.TrimLeft(d, htmlSpace) != ""
}

// htmlSpace is the whitespace of the tree builder ("\t\n\f\r ").
const htmlSpace = "\t\n\f\r "

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

// inRaw: the difference lies inside the content of one recorded <script>
// or <style>, and what changed up to the next "<" on each side is read as
// text (case 2 above).
func (t *Template) inRaw(page []byte, i, j int32) (move, bool) {
	k := find(t.raws, i+1) // content may start at i
	if k < 0 {
		return move{}, false
	}
	c0, e0 := t.raws[2*k], t.raws[2*k+1]
	if !(c0 <= i && i <= e0) {
		return move{}, false
	}
	// The change ends, on each side, before the next "<" (the content's
	// end tag starts with one); what the two share before it is not part
	// of it.
	q := i + int32(bytes.IndexByte(t.page[i:e0+1], '<'))
	lt := bytes.IndexByte(page[j:], '<')
	if q < i || lt < 0 {
		return move{}, false
	}
	q2 := j + int32(lt)
	s := int32(commonSuffix(t.page[i:q], page[j:q2]))
	b, b2 := q-s, q2-s
	if i == c0 && b == e0 && (b == i || b2 == j) {
		return move{}, false // the content's text node would come or go
	}
	nc0 := c0 + j - i
	if nc0 < 0 {
		return move{}, false
	}
	if !rawTextChange(t.page[i:b], page[j:b2], page[nc0:j]) {
		return move{}, false
	}
	return move{a: i, b: b, b2: b2, keep: i == c0}, true
}

// rawTextChange reports whether x, then y, after the content before, read
// as script or style text with the tokenizer in the same state.
func rawTextChange(x, y, before []byte) bool {
	if bytes.IndexByte(x, '<') >= 0 || bytes.IndexByte(y, '<') >= 0 ||
		bytes.IndexByte(x, 0) >= 0 || bytes.IndexByte(y, 0) >= 0 {
		return false
	}
	if bytes.IndexByte(before, '<') < 0 {
		return true
	}
	const window = 12
	if bytes.ContainsAny(before[max(0, len(before)-window):], "<-") ||
		bytes.ContainsAny(x, "->") || bytes.ContainsAny(y, "->") {
		return false
	}
	return true
}

// shift returns the template for page, with every offset moved by the
// regions that changed before it; an offset strictly inside a changed
// region refuses the page.
func (t *Template) shift(page []byte, moves []move) (*Template, bool) {
	nt := *t
	nt.page = page
	moved := false
	for _, m := range moves {
		moved = moved || m.b2 != m.b
	}
	ok := true
	mv := func(o int32) int32 {
		// The last region that starts at or before o.
		lo, hi := 0, len(moves)
		for lo < hi {
			h := (lo + hi) / 2
			if moves[h].a <= o {
				lo = h + 1
			} else {
				hi = h
			}
		}
		k := lo - 1
		if k < 0 {
			return o
		}
		m := &moves[k]
		if o == m.a && (m.a < m.b || m.keep) {
			if k == 0 {
				return o
			}
			return o + moves[k-1].b2 - moves[k-1].b
		}
		if o >= m.b {
			return o + m.b2 - m.b
		}
		ok = false
		return o
	}
	if !moved {
		// Nothing moves; check what would refuse a move all the same.
		for i := range t.elems {
			s := &t.elems[i]
			for _, o := range [...]int32{s.s0, s.s1, s.c0, s.e0, s.e1} {
				mv(o)
			}
			if !ok || !flagsHold(s, page) {
				return nil, false
			}
		}
		return &nt, true
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
	if n := len(t.tags) + len(t.raws) + len(t.texts) + len(t.comments); n > 0 {
		buf := make([]int32, n)
		for _, rec := range []*[]int32{&nt.tags, &nt.raws, &nt.texts, &nt.comments} {
			src := *rec
			dst := buf[:len(src):len(src)]
			buf = buf[len(src):]
			for i, o := range src {
				dst[i] = mv(o)
			}
			*rec = dst
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
	if int(s.e1) > len(page) || s.s0 > s.e0 {
		return false // an offset the shift refused, not moved: ok is false anyway
	}
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
