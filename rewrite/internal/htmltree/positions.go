package htmltree

import (
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Element flags.
const (
	// Void marks an element closed by the very token that opened it (void
	// elements, self-closing foreign elements, a <form> in a table): it has
	// no content.
	Void uint8 = 1 << iota
	// Ended marks <body> or <html> ended by its end tag while the parser
	// keeps it open: later content may still be appended to it in the tree,
	// but its source span stops at that end tag.
	Ended
	// AtEOF marks an element left open at the end of the input.
	AtEOF
	// AttrsMerged marks <html> or <body> offered attributes by a later
	// <html> or <body> tag: its attributes are not only those of its own
	// tag, or would not be once an edit removed one the later tag has.
	AttrsMerged
	// ArkCompared marks a formatting element (or clone) whose attributes
	// the Noah's Ark clause compared with those of at least two others of
	// its name: a change to its attributes may change which of them the
	// list of active formatting elements keeps, and so the tree.
	ArkCompared
	// Reconstructs marks an element made while the list of active
	// formatting elements held entries not on the stack of open elements:
	// text (and some tags) inside it would make the parser re-open them
	// there.
	Reconstructs
)

// Taints say why an element's tree content is not the source bytes between
// its tags.
const (
	FosterParented uint8 = 1 << iota // content of a table (or of what it opened) moved before it
	Adopted                          // rearranged by the adoption agency algorithm
	Misplaced                        // a comment in its span went to <html> or the document
	Merged                           // a tag in its span added attributes to <html> or <body>
	Reopened                         // closed, then re-opened (<head> after </head>)
	Unstacked                        // removed from under other open elements (</form>)
	SetsMode                         // its tag set its template's insertion mode for what follows
	Leaked                           // a formatting element opened in it is re-opened (cloned) after it ended
)

// Elem is what the parser knows about one element node it created.
//
// Offsets are byte offsets into the parsed input. Start is -1 when no source
// start tag of its own created the element: implied html/head/body/tbody/tr/p,
// <br> from </br>, and clones made by the adoption agency algorithm or by the
// reconstruction of active formatting elements.
type Elem struct {
	Node *html.Node
	// Start and StartEnd delimit the start tag, when the element has one.
	Start, StartEnd int32
	// End and EndEnd delimit the token that closed the element; End == EndEnd
	// when the element has no end tag of its own (implied end, or EOF).
	// End is -1 while the element is open. The elements one token closed
	// share their End.
	End, EndEnd int32
	// Created is the offset of the token during which the element was made.
	Created int32
	// PopIdx is the element's index in Tree.Pops, or -1.
	PopIdx int32
	// Origin is the record this element is a clone of (the first of a chain
	// of clones), or -1.
	Origin int32
	// Parent is the record below it on the stack of open elements when it
	// was made, or -1.
	Parent int32
	// PopAtom and PopType are the tag and type of the token that closed it.
	PopAtom atom.Atom
	PopType uint8 // an html.TokenType
	Flags   uint8
	Taint   uint8 // why its span is not its content, or 0
}

// Tree is the parse tree together with the source position of each element.
type Tree struct {
	Doc *html.Node
	// Elems holds one record per element node, in the order the parser
	// created them (source order for elements with a start tag).
	Elems []Elem
	// Pops lists records in the order the parser closed them; the records
	// closed by one token are contiguous, innermost first.
	Pops []int32
	// Clones lists the records that are clones.
	Clones []int32
	// Detached reports that the parser removed elements from the tree after
	// creating them (a <frameset> replacing <body>).
	Detached bool
	// EOF is the offset of the end of the tokens: the input's length, or
	// the start of a tag cut short by the end of the input.
	EOF int32
	// Last is the type of the last token before EOF, LastStart its offset.
	Last      html.TokenType
	LastStart int32
	// Texts and Comments hold, as start and end offsets in pairs, the text
	// tokens whose characters the tree builder only stores (see freeText)
	// and the comment tokens, which it only stores in every insertion mode.
	// Another text or comment of the same kind there builds the same tree
	// but for that node's data.
	Texts, Comments []int32

	buf *buffers
}

// positions is the parser state behind Tree; parse.go calls its hooks at
// every change of the stack of open elements.
type positions struct {
	recs    []Elem
	oeRec   []int32              // record index of each entry of p.oe
	fmtRec  map[*html.Node]int32 // formatting elements and their clones
	headRec int32                // the record of p.head, or -1
	pops    []int32
	clones  []int32

	off              int32 // bytes consumed so far
	tokN             int32 // ordinal of the current token
	tokStart, tokEnd int32
	rawType          html.TokenType // the current token's type as tokenized
	tokName          string         // its name, for end tags
	tokAtom          atom.Atom      // its tag, for tags
	lastType         html.TokenType // the previous token's type
	lastStart        int32          // and offset
	tokHasSource     bool           // an element already took the current start tag
	explicit         int32          // the record given the current end tag, or -1
	implied          int            // > 0 while parsing an implied token
	setsMode         bool           // the current start tag sets its template's insertion mode
	cloneOf          *html.Node     // set while the reconstruction inserts a clone
	detached         bool
	buf              *buffers      // where slabs come from and go back to
	slab             []html.Node   // the slab newNode fills
	nslabs           int           // slabs of buf in use
	tokData          string        // the current token's data as tokenized
	texts, comments  []int32       // see Tree.Texts and Tree.Comments
	safe             *safeRecorder // safe points to record (safe.go), or nil
}

// Parse parses page exactly as html.Parse does (same tree, node for node) and
// reports the source position of every element. Release the tree's records
// when done with them.
func Parse(page []byte) (*Tree, error) { return parse(page, nil) }

// parse is Parse, recording safe points with st when it is not nil.
func parse(page []byte, st *safeRecorder) (*Tree, error) {
	p := &parser{
		tokenizer: newTokenizer(page),
		doc: &html.Node{
			Type: html.DocumentNode,
		},
		scripting:  true,
		framesetOK: true,
		im:         initialIM,
	}
	p.headRec = -1
	p.safe = st
	b := pool.Get().(*buffers)
	// Pages have an element every 30 to 40 bytes.
	if n := len(page)/32 + 16; cap(b.recs) < n {
		b.recs, b.pops = make([]Elem, 0, n), make([]int32, 0, n)
	}
	p.recs, p.pops, p.oeRec = b.recs[:0], b.pops[:0], b.oeRec[:0]
	p.buf = b
	p.texts, p.comments = b.texts[:0], b.comments[:0]
	if err := p.parse(); err != nil {
		b.used = p.nslabs
		b.clearSlabs()
		pool.Put(b)
		return nil, err
	}
	b.oeRec = p.oeRec
	b.used = p.nslabs
	return &Tree{
		Doc: p.doc, Elems: p.recs, Pops: p.pops, Clones: p.clones, Detached: p.detached,
		EOF: p.tokStart, Last: p.lastType, LastStart: p.lastStart, buf: b,
		Texts: p.texts, Comments: p.comments,
	}, nil
}

// buffers are the slices of a Tree, kept for the next Parse: a page's
// records are as large as a tenth of its tree.
// slabSize is how many nodes a slab holds.
const slabSize = 256

// newNode returns n placed in a slab: a page's element and text nodes are
// most of a parse's allocations, and the tree is dropped once compiled
// (Release), so slabs are reused instead of left to the garbage collector.
func (p *parser) newNode(n html.Node) *html.Node {
	if len(p.slab) == cap(p.slab) {
		if p.nslabs < len(p.buf.slabs) {
			p.slab = p.buf.slabs[p.nslabs][:0]
		} else {
			p.slab = make([]html.Node, 0, slabSize)
			p.buf.slabs = append(p.buf.slabs, p.slab)
		}
		p.nslabs++
	}
	p.slab = append(p.slab, n)
	return &p.slab[len(p.slab)-1]
}

type buffers struct {
	// slabs hold the nodes newNode made, the first used of them by the
	// last Parse; after Release they are cleared and reused.
	slabs           [][]html.Node
	used            int
	recs            []Elem
	pops, oeRec     []int32
	texts, comments []int32
}

var pool = sync.Pool{New: func() any { return new(buffers) }}

// Release hands the tree's records back for reuse by a later Parse. The
// tree's Elems, Pops and Clones must not be used after it.
func (t *Tree) Release() {
	b := t.buf
	if b == nil {
		return
	}
	clear(t.Elems) // drop the node pointers, not to keep the tree alive
	b.clearSlabs()
	b.recs, b.pops = t.Elems[:0], t.Pops[:0]
	b.texts, b.comments = t.Texts[:0], t.Comments[:0]
	t.Elems, t.Pops, t.Clones, t.buf = nil, nil, nil, nil
	t.Texts, t.Comments = nil, nil
	pool.Put(b)
}

// beginToken records the span of the token just read.
func (p *parser) beginToken() {
	if p.tokN > 0 {
		p.lastType, p.lastStart = p.rawType, p.tokStart
	}
	p.tokN++
	p.tokStart = p.off
	p.off += int32(len(p.tokenizer.Raw()))
	p.tokEnd = p.off
	p.rawType = p.tok.Type
	p.tokData = p.tok.Data
	p.tokAtom = p.tok.DataAtom
	if p.rawType == html.CommentToken {
		// Every insertion mode, and foreign content, only inserts a
		// comment node for a comment token (after body, into <html>): its
		// data changes nothing else.
		p.comments = append(p.comments, p.tokStart, p.tokEnd)
	}
	p.tokName = ""
	if p.rawType == html.EndTagToken {
		p.tokName = p.tok.Data
	}
	p.tokHasSource = false
	p.setsMode = false
	p.explicit = -1
	if p.safe != nil {
		p.noteSafe()
	}
}

// newRecord makes the record of an element entering the stack of open
// elements for the first time.
func (p *parser) newRecord(n *html.Node) int32 {
	ri := int32(len(p.recs))
	parent := int32(-1)
	if len(p.oeRec) > 0 {
		parent = p.oeRec[len(p.oeRec)-1]
	}
	p.recs = append(p.recs, Elem{
		Node: n, Start: -1, StartEnd: -1, End: -1, EndEnd: -1,
		Created: p.tokStart, PopIdx: -1, Origin: -1, Parent: parent,
	})
	if top := p.afe.top(); top != nil && top.Type != scopeMarkerNode && p.oe.index(top) == -1 {
		p.recs[ri].Flags |= Reconstructs // as reconstructActiveFormattingElements tests
	}
	if p.cloneOf != nil {
		origin, ok := p.fmtRec[p.cloneOf]
		if !ok {
			origin = p.recordOf(p.cloneOf)
		}
		if origin >= 0 {
			if p.recs[origin].Origin >= 0 {
				origin = p.recs[origin].Origin
			}
			p.leaked(origin)
		}
		p.recs[ri].Origin = origin
		p.clones = append(p.clones, ri)
		p.registerFormatting(n, ri)
	}
	return ri
}

// registerFormatting remembers the record of a formatting element (or a
// clone of one), which the parser may clone later.
func (p *parser) registerFormatting(n *html.Node, ri int32) {
	if p.fmtRec == nil {
		p.fmtRec = make(map[*html.Node]int32)
	}
	p.fmtRec[n] = ri
}

// arkCompared is called before the Noah's Ark clause looks for elements
// like a new formatting element of tag tag: when three of its name are
// already in the list (after the last marker), their attributes and the new
// element's decide what the list keeps.
func (p *parser) arkCompared(tag atom.Atom, ri int32) {
	n := 0
	for i := len(p.afe) - 1; i >= 0 && p.afe[i].Type != scopeMarkerNode; i-- {
		if e := p.afe[i]; e.Type == html.ElementNode && e.Namespace == "" && e.DataAtom == tag {
			n++
		}
	}
	if n < 3 {
		return
	}
	p.recs[ri].Flags |= ArkCompared
	for i := len(p.afe) - 1; i >= 0 && p.afe[i].Type != scopeMarkerNode; i-- {
		if e := p.afe[i]; e.Type == html.ElementNode && e.Namespace == "" && e.DataAtom == tag {
			if r, ok := p.fmtRec[e]; ok {
				p.recs[r].Flags |= ArkCompared
			}
		}
	}
}

// merged records that a later <html> or <body> tag offered attributes to
// the element at stack index i (it takes those it does not have).
func (p *parser) merged(i int) {
	if len(p.tok.Attr) > 0 {
		p.recs[p.oeRec[i]].Flags |= AttrsMerged
	}
}

// leaked is called when the parser re-opens (clones) the formatting element
// of record ri (a clone of a clone re-opens the first): it and the elements
// that held its start tag and have ended carry content past their end.
func (p *parser) leaked(ri int32) {
	for ri >= 0 {
		r := &p.recs[ri]
		if r.End < 0 {
			return // open, and so is what encloses it
		}
		r.Taint |= Leaked
		ri = r.Parent
	}
}

// recordOf finds the record of n the slow way, from the most recent; the
// parser needs it only on rare paths (clones, <head> re-opened).
func (p *parser) recordOf(n *html.Node) int32 {
	for i := len(p.recs) - 1; i >= 0; i-- {
		if p.recs[i].Node == n {
			return int32(i)
		}
	}
	return -1
}

// markSource gives the current start tag to the element addElement just
// pushed, unless the element is implied or the tag already has an element.
func (p *parser) markSource() {
	if p.implied > 0 || p.tokHasSource {
		return
	}
	if p.rawType != html.StartTagToken && p.rawType != html.SelfClosingTagToken {
		return
	}
	r := &p.recs[p.oeRec[len(p.oeRec)-1]]
	r.Start, r.StartEnd = p.tokStart, p.tokEnd
	if p.setsMode {
		r.Taint |= SetsMode
	}
	p.tokHasSource = true
}

// taintFrom taints the open elements from stack index i up.
func (p *parser) taintFrom(i int, why uint8) {
	for j := max(i, 0); j < len(p.oeRec); j++ {
		p.recs[p.oeRec[j]].Taint |= why
	}
}

// taintOpen taints the open elements from stack index i up whose source span
// has not already ended.
func (p *parser) taintOpen(i int, why uint8) {
	for j := max(i, 0); j < len(p.oeRec); j++ {
		if r := &p.recs[p.oeRec[j]]; r.Flags&Ended == 0 {
			r.Taint |= why
		}
	}
}

// popped records that the current token closed record ri.
func (p *parser) popped(ri int32) {
	r := &p.recs[ri]
	if r.Flags&Ended != 0 {
		return
	}
	if r.End >= 0 { // closed before: it was re-opened
		r.Taint |= Reopened
		return
	}
	r.PopIdx = int32(len(p.pops))
	p.pops = append(p.pops, ri)
	r.End, r.EndEnd = p.tokStart, p.tokStart
	r.PopType, r.PopAtom = uint8(p.rawType), p.tokAtom
	if r.Created == p.tokStart {
		r.Flags |= Void
	}
	if p.rawType == html.ErrorToken {
		r.Flags |= AtEOF
	}
	// An end tag belongs to the outermost element of its name that it closes.
	if p.rawType == html.EndTagToken && strings.EqualFold(r.Node.Data, p.tokName) {
		if p.explicit >= 0 {
			q := &p.recs[p.explicit]
			q.EndEnd = q.End
		}
		r.EndEnd = p.tokEnd
		p.explicit = ri
	}
}

func (p *parser) popOE() *html.Node {
	i := len(p.oe) - 1
	p.popped(p.oeRec[i])
	p.oeRec = p.oeRec[:i]
	return p.oe.pop()
}

func (p *parser) popTo(i int) {
	for j := len(p.oe) - 1; j >= i; j-- {
		p.popped(p.oeRec[j])
	}
	p.oe = p.oe[:i]
	p.oeRec = p.oeRec[:i]
}

// removeOE removes n wherever it is in the stack; an element removed from
// under others keeps no meaningful span.
func (p *parser) removeOE(n *html.Node) {
	i := p.oe.index(n)
	if i == -1 {
		return
	}
	ri := p.oeRec[i]
	if i != len(p.oe)-1 {
		p.recs[ri].Taint |= Unstacked
	}
	p.popped(ri)
	p.oe.remove(n)
	p.oeRec = append(p.oeRec[:i], p.oeRec[i+1:]...)
}

// replaceOE puts clone, a clone of node, in node's place in the stack.
func (p *parser) replaceOE(node, clone *html.Node) {
	i := p.oe.index(node)
	ri := p.oeRec[i]
	p.recs[ri].Taint |= Adopted
	p.popped(ri)
	p.cloneOf = node
	p.oeRec[i] = p.newRecord(clone)
	p.cloneOf = nil
	p.oe[i] = clone
}

// insertOE inserts clone, a clone of of, at stack index i.
func (p *parser) insertOE(i int, clone, of *html.Node) {
	p.cloneOf = of
	ri := p.newRecord(clone)
	p.cloneOf = nil
	p.oe.insert(i, clone)
	p.oeRec = append(p.oeRec, 0)
	copy(p.oeRec[i+1:], p.oeRec[i:])
	p.oeRec[i] = ri
}

// repushHead re-opens <head> for a head element found after </head>: its
// tree content then differs from its source span.
func (p *parser) repushHead() {
	if p.headRec < 0 || p.recs[p.headRec].Node != p.head {
		p.headRec = p.recordOf(p.head)
	}
	ri := p.headRec
	p.oe = append(p.oe, p.head)
	p.oeRec = append(p.oeRec, ri)
	p.recs[ri].Taint |= Reopened
}

// bodyEnded is called when </body> (or </html> standing for it) switches
// the parser to "after body". The parser keeps <body> open, but when nothing
// else is open its source span ends here.
func (p *parser) bodyEnded() {
	n := len(p.oe)
	if n < 2 || p.oe[n-1] != p.oe[1] || p.oe[1].DataAtom != atom.Body {
		return
	}
	p.endSpecial(p.oeRec[1], "body")
}

// htmlEnded is bodyEnded for </html>.
func (p *parser) htmlEnded() {
	if len(p.oe) == 0 || p.oe[0].DataAtom != atom.Html {
		return
	}
	for _, ri := range p.oeRec[1:] {
		if p.recs[ri].Flags&Ended == 0 {
			return
		}
	}
	p.endSpecial(p.oeRec[0], "html")
}

func (p *parser) endSpecial(ri int32, name string) {
	r := &p.recs[ri]
	if r.Flags&Ended != 0 || r.End >= 0 {
		return
	}
	r.Flags |= Ended
	r.End, r.EndEnd = p.tokStart, p.tokStart
	if p.rawType == html.EndTagToken && p.tokName == name {
		r.EndEnd = p.tokEnd
	}
}

// ForeignRules reports whether the parser handles a token of type tt and
// tag tag by the rules for foreign content when n is the current node: the
// choice inForeignContent makes.
func ForeignRules(n *html.Node, tt html.TokenType, tag atom.Atom) bool {
	if n == nil || n.Type != html.ElementNode || n.Namespace == "" {
		return false
	}
	if tt == html.SelfClosingTagToken {
		tt = html.StartTagToken
	}
	if mathMLTextIntegrationPoint(n) {
		if tt == html.StartTagToken && tag != atom.Mglyph && tag != atom.Malignmark {
			return false
		}
		if tt == html.TextToken {
			return false
		}
	}
	if n.Namespace == "math" && n.DataAtom == atom.AnnotationXml && tt == html.StartTagToken && tag == atom.Svg {
		return false
	}
	if htmlIntegrationPoint(n) && (tt == html.StartTagToken || tt == html.TextToken) {
		return false
	}
	return tt != html.ErrorToken
}

// freeText records the current token when it is a text token that inBodyIM
// stores as is: the tokenizer's own data, untouched by an earlier insertion
// mode (which trims or splits whitespace), without NUL, with a character
// that is not whitespace, and not the first text of a <pre> or <listing>
// (whose leading newline is dropped). The parser then does the same for any
// such text: reconstruct the active formatting elements, insert (or foster-
// parent, or append to the previous text node) the text, clear framesetOK.
func (p *parser) freeText(d string) {
	if p.rawType != html.TextToken || len(d) != len(p.tokData) || len(d) == 0 ||
		unsafe.StringData(d) != unsafe.StringData(p.tokData) ||
		strings.IndexByte(d, 0) >= 0 || strings.TrimLeft(d, whitespace) == "" {
		return
	}
	if n := len(p.texts); n > 0 && p.texts[n-2] == p.tokStart {
		return // reprocessed
	}
	if p.oe.contains(atom.Plaintext) {
		return // the rest of the page is one text token only after <plaintext>
	}
	p.texts = append(p.texts, p.tokStart, p.tokEnd)
}

// clearSlabs zeroes the nodes of the slabs in use, so that a pooled slab
// keeps no tree alive, and makes them free for the next Parse.
func (b *buffers) clearSlabs() {
	for _, sl := range b.slabs[:b.used] {
		clear(sl[:cap(sl)])
	}
	b.used = 0
}
