package htmltree

import (
	"reflect"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Safe points (tailor): offsets between two tokens where the parser's
// state is plain enough that the rest of the page parses, below the open
// elements, as it would after nothing but their start tags: the insertion
// mode is "in body", no formatting element is active (nothing the
// adoption agency algorithm or the reconstruction of active formatting
// elements can reach back to), no template, no table (foster parenting),
// no form pointer, and every open element is an HTML element whose start
// tag, replayed, opens it again the same way (not a raw-text, table,
// select, template, formatting or foreign element, nor <pre>, <listing>,
// <head> or <form>). A page too large to hold can be rewritten in pieces
// cut at such points (rewrite's Segmenter), each parsed after start tags
// that re-open the elements open at its cut; the Segmenter checks that
// they do.

// SafePoint is a safe point: the offset of the token after it and the
// records of the open elements there, outermost first.
type SafePoint struct {
	Off   int32
	Stack []int32
	// AttrN is how many attributes each open element had there: a later
	// <html> or <body> tag adds those the element lacks.
	AttrN      []int32
	FramesetOK bool
	Quirks     bool
}

// ParseSafe is Parse that also records safe points, at most one in every
// `every` bytes of input, and says whether the end of the input is one
// (end, with the state there).
func ParseSafe(page []byte, every int32) (t *Tree, safe []SafePoint, end *SafePoint, err error) {
	st := &safeRecorder{every: every}
	t, err = parse(page, st)
	if err != nil {
		return nil, nil, nil, err
	}
	return t, st.points, st.end, nil
}

type safeRecorder struct {
	every  int32
	next   int32
	points []SafePoint
	end    *SafePoint
}

var inBodyPtr = reflect.ValueOf(insertionMode(inBodyIM)).Pointer()

// noteSafe runs at the start of every token (beginToken), before it is
// processed: the state is the state after the tokens before it.
func (p *parser) noteSafe() {
	st := p.safe
	eof := p.rawType == html.ErrorToken
	if p.tokStart < st.next && !eof {
		return
	}
	if !p.plain() {
		return
	}
	sp := SafePoint{Off: p.tokStart, Stack: append([]int32(nil), p.oeRec...), FramesetOK: p.framesetOK, Quirks: p.quirks}
	sp.AttrN = make([]int32, len(p.oe))
	for i, n := range p.oe {
		sp.AttrN[i] = int32(len(n.Attr))
	}
	if eof {
		st.end = &sp
		return
	}
	st.points = append(st.points, sp)
	st.next = p.tokStart + st.every
}

// plain reports whether the parser is in a safe state (see above).
func (p *parser) plain() bool {
	if p.im == nil || reflect.ValueOf(p.im).Pointer() != inBodyPtr ||
		len(p.afe) > 0 || len(p.templateStack) > 0 || p.fosterParenting || p.form != nil ||
		len(p.oe) < 2 || p.oe[0].DataAtom != atom.Html || p.oe[1].DataAtom != atom.Body ||
		len(p.oe) != len(p.oeRec) {
		return false
	}
	for _, n := range p.oe {
		if n.Type != html.ElementNode || n.Namespace != "" || n.DataAtom == 0 {
			return false
		}
		switch n.DataAtom {
		case atom.A, atom.B, atom.Big, atom.Code, atom.Em, atom.Font, atom.I, atom.Nobr,
			atom.S, atom.Small, atom.Strike, atom.Strong, atom.Tt, atom.U,
			atom.Applet, atom.Marquee, atom.Object, atom.Template, atom.Head, atom.Form,
			atom.Table, atom.Caption, atom.Colgroup, atom.Tbody, atom.Thead, atom.Tfoot, atom.Tr, atom.Td, atom.Th,
			atom.Select, atom.Option, atom.Optgroup, atom.Pre, atom.Listing, atom.Frameset,
			atom.Script, atom.Style, atom.Textarea, atom.Title, atom.Xmp, atom.Iframe,
			atom.Noembed, atom.Noframes, atom.Noscript, atom.Plaintext, atom.Svg, atom.Math:
			return false
		}
	}
	return true
}
