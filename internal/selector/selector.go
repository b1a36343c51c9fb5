package selector

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/andybalholm/cascadia"
	"golang.org/x/net/html"
)

// Selector is a compiled CSS selector, or a group of them separated by
// commas. It is a cascadia.Sel: String, Specificity and PseudoElement are
// those of the selector cascadia compiles from the same text, and Match
// selects the same nodes. It is immutable and safe for concurrent use.
type Selector struct {
	sel    cascadia.Sel // what cascadia compiled, for String and Specificity
	group  []*complexSel
	states int32 // memo states used (see Run)
}

var _ cascadia.Sel = (*Selector)(nil)

// complexSel is one selector of a group: compounds joined by
// combinators, matched from the right.
type complexSel struct {
	parts []compound
	ops   []byte // ops[k] joins parts[k-1] and parts[k]
	// greedy[k]: for the descendant combinator ops[k], the ancestor
	// nearest to the node is the only one worth trying (see rest).
	greedy []bool
	// Memo states: match of parts[:k+1] ending at a node (match+k), and
	// whether a node or one before it (its ancestors, or its earlier
	// siblings) ends such a match of parts[:k] (reach+k).
	match, reach int32
}

// compound is a compound selector: the simple selectors cascadia matches
// (local, nil when there are none) and the relational pseudo-classes, whose
// arguments are matched here.
type compound struct {
	local cascadia.Sel
	rel   []relational
	state int32  // memo state of the whole compound at a node, or -1 when it is cheap
	text  string // as cascadia writes it, for messages
}

type relational struct {
	kind  byte // 'n' :not(), 'h' :has(), 'c' :haschild()
	arg   []*complexSel
	state int32 // memo state of :has() at a node
}

// ErrUnsupported is returned by Compile for a selector cascadia accepts
// but whose parts Compile could not find as cascadia does: a bug, never
// seen; the selector is refused rather than matched differently.
var ErrUnsupported = errors.New("selector cannot be split into compound selectors")

// Compile compiles a CSS selector or a comma-separated group of them, as
// cascadia.ParseGroup does (an invalid selector returns cascadia's error;
// pseudo-elements are refused).
func Compile(s string) (sel *Selector, err error) {
	defer func() {
		if v := recover(); v != nil {
			sel, err = nil, fmt.Errorf("compile selector: %v", v)
		}
	}()
	g, err := cascadia.ParseGroup(s)
	if err != nil {
		return nil, err
	}
	p := &scanner{s: s}
	src, err := p.group(0)
	if err != nil || p.i != len(s) {
		return nil, fmt.Errorf("scan %q: %w", s, ErrUnsupported)
	}
	sel = &Selector{sel: g[0]}
	if len(g) > 1 {
		sel.sel = group(g)
	}
	var text strings.Builder
	sel.group, err = sel.build(src, &text)
	if err != nil {
		return nil, err
	}
	if text.String() != g.String() {
		return nil, fmt.Errorf("split %q: cascadia reads %q, the parts %q: %w", s, g.String(), text.String(), ErrUnsupported)
	}
	return sel, nil
}

// build compiles the scanned group src, writing into text what cascadia's
// String would write for it, so that Compile can check the split.
func (s *Selector) build(src []srcComplex, text *strings.Builder) ([]*complexSel, error) {
	out := make([]*complexSel, len(src))
	for i, sc := range src {
		if i > 0 {
			text.WriteString(", ")
		}
		c := &complexSel{ops: sc.ops, greedy: make([]bool, len(sc.ops))}
		c.match = s.newStates(len(sc.parts))
		c.reach = s.newStates(len(sc.parts))
		for k, sp := range sc.parts {
			if k > 0 {
				fmt.Fprintf(text, " %c ", sc.ops[k])
			}
			part, err := s.compound(sp, text)
			if err != nil {
				return nil, err
			}
			c.parts = append(c.parts, part)
		}
		for k := 1; k < len(c.ops); k++ {
			// A farther ancestor matching parts[:k] has its own ancestors
			// above the nearer one: when parts[k-1] is joined by a
			// descendant combinator too (or is the first), the nearest
			// one matches whenever a farther one does. Earlier siblings
			// would allow the same for "~", but siblings are not bounded
			// as ancestors are (512 deep): walking back from each of 20000
			// siblings took 1.8 s; the memo takes 16 ms.
			c.greedy[k] = c.ops[k] == ' ' && (k == 1 || c.ops[k-1] == ' ')
		}
		out[i] = c
	}
	return out, nil
}

func (s *Selector) newStates(n int) int32 {
	first := s.states
	s.states += int32(n)
	return first
}

// compound compiles one compound selector: its simple selectors but the
// relational ones, joined, by cascadia; those, here.
func (s *Selector) compound(src srcCompound, text *strings.Builder) (compound, error) {
	var local strings.Builder
	var strs []string
	c := compound{state: -1}
	pseudo := false
	for _, piece := range src.pieces {
		if piece.name == "" {
			local.WriteString(piece.text)
			pseudo = pseudo || piece.text[0] == ':'
			if piece.text == "*" {
				continue // cascadia writes no universal selector beside others
			}
			// A trailing space gives cascadia the lookahead it had in
			// the selector (":matches()" alone is "EOF in regular
			// expression") and ends the compound as a combinator would.
			one, err := cascadia.Parse(piece.text + " ")
			if err != nil {
				return c, fmt.Errorf("parse %q: %w", piece.text, ErrUnsupported)
			}
			strs = append(strs, one.String())
			continue
		}
		r := relational{kind: piece.name[0], state: -1}
		if piece.name == "haschild" {
			r.kind = 'c'
		}
		var arg strings.Builder
		var err error
		if r.arg, err = s.build(piece.arg, &arg); err != nil {
			return c, err
		}
		if r.kind == 'h' {
			r.state = s.newStates(1)
		}
		c.rel = append(c.rel, r)
		strs = append(strs, ":"+piece.name+"("+arg.String()+")")
	}
	if len(strs) == 0 {
		strs = append(strs, "*")
	}
	c.text = strings.Join(strs, "")
	text.WriteString(c.text)
	if local.Len() > 0 {
		sel, err := cascadia.Parse(local.String() + " ")
		if err != nil {
			return c, fmt.Errorf("parse %q: %w", local.String(), ErrUnsupported)
		}
		c.local = sel
	}
	// Tag, id, class and attribute selectors read only the node: it is
	// cheaper to ask cascadia again than the memo. The rest may read much
	// more, in a walk up from every candidate ("*:contains(x) p" reads
	// the text of every ancestor of every p): they are asked once a node.
	if len(c.rel) > 0 || pseudo {
		c.state = s.newStates(1)
	}
	return c, nil
}

// group is a cascadia.SelectorGroup as a cascadia.Sel.
type group cascadia.SelectorGroup

func (g group) Match(n *html.Node) bool { return cascadia.SelectorGroup(g).Match(n) }
func (g group) String() string          { return cascadia.SelectorGroup(g).String() }
func (g group) PseudoElement() string   { return "" }

// Specificity is the highest of the group's.
func (g group) Specificity() cascadia.Specificity {
	var best cascadia.Specificity
	for _, sel := range g {
		if sp := sel.Specificity(); best.Less(sp) {
			best = sp
		}
	}
	return best
}

// Match reports whether n matches the selector. Each call starts afresh;
// a Run keeps what it learns across the elements of a page.
func (s *Selector) Match(n *html.Node) bool {
	r := Run{left: math.MaxInt}
	return r.Match(s, n)
}

// String returns the selector as cascadia writes it.
func (s *Selector) String() string { return s.sel.String() }

// Specificity returns cascadia's specificity of the selector (for a
// group, the highest).
func (s *Selector) Specificity() cascadia.Specificity { return s.sel.Specificity() }

// PseudoElement returns "": pseudo-elements are refused.
func (s *Selector) PseudoElement() string { return s.sel.PseudoElement() }

// Cascadia returns the selector as cascadia compiled it, which matches the
// same nodes, by backtracking.
func (s *Selector) Cascadia() cascadia.Sel { return s.sel }
