package selector

import (
	"golang.org/x/net/html"
)

// A Run matches selectors on the nodes of one tree, which must not change
// while the Run is used. It memoises what it works out about nodes (whether
// the left part of a selector matches there), so that matching every
// element of a page costs no more than the page's size times the
// selector's steps, and counts that work against a budget. A Run is not
// safe for concurrent use.
type Run struct {
	memo  map[key]bool
	stack []*html.Node
	left  int
	out   bool
}

type key struct {
	n     *html.Node
	sel   *Selector
	state int32
}

// maxMemo bounds the memo (about 40 bytes an entry): past it, the memo
// starts afresh, which costs time, bounded by the budget, not memory.
const maxMemo = 1 << 20

// NewRun returns a Run that gives up after budget units of work: a unit
// is a node visited by a combinator or a relational pseudo-class (which
// tries a compound selector there); an answer memoised costs memoUnits.
// Matching "a b" on an element whose ancestors are no a costs the
// element's depth; matching a compound selector alone costs nothing.
func NewRun(budget int) *Run { return &Run{left: budget} }

// Exhausted reports whether the Run ran out of budget. Its answers since
// then are false, and wrong where a match was not found in time.
func (r *Run) Exhausted() bool { return r.out }

// Match reports whether n matches s, or false once the budget is spent.
func (r *Run) Match(s *Selector, n *html.Node) bool {
	return !r.out && r.group(s, s.group, n)
}

// spend takes n units from the budget, reporting whether any was left.
func (r *Run) spend(n int) bool {
	if r.left -= n; r.left < 0 {
		r.out = true
	}
	return !r.out
}

// memoUnits is what storing an answer costs: a step up or back takes
// about 5 ns, a memo entry 50 to 250 (a map insert, and its share of the
// map's growth).
const memoUnits = 16

func (r *Run) put(k key, v bool) {
	if r.out || !r.spend(memoUnits) {
		return // v may stand for a search that was cut short
	}
	if r.memo == nil {
		r.memo = make(map[key]bool)
	} else if len(r.memo) >= maxMemo {
		clear(r.memo)
	}
	r.memo[k] = v
}

func (r *Run) group(s *Selector, g []*complexSel, n *html.Node) bool {
	for _, c := range g {
		if r.subject(s, c, n) {
			return true
		}
		if r.out {
			return false
		}
	}
	return false
}

// subject reports whether c matches n: its last compound at n, the rest
// to the left.
func (r *Run) subject(s *Selector, c *complexSel, n *html.Node) bool {
	k := len(c.parts) - 1
	return r.compound(s, &c.parts[k], n) && r.rest(s, c, k, n)
}

// match reports whether parts[:k+1] of c match with parts[k] at n,
// memoised.
func (r *Run) match(s *Selector, c *complexSel, k int, n *html.Node) bool {
	if k == 0 {
		return r.compound(s, &c.parts[0], n) // memoised when it is worth it
	}
	id := key{n, s, c.match + int32(k)}
	if v, ok := r.memo[id]; ok {
		return v
	}
	v := r.compound(s, &c.parts[k], n) && r.rest(s, c, k, n)
	r.put(id, v)
	return v && !r.out
}

// rest reports whether parts[:k] of c match where the combinator ops[k]
// leads from n, which matches parts[k]. The combinators select as
// cascadia's do: " " any ancestor (the document node too), ">" the
// parent, "+" the first previous sibling that is not text or a comment,
// "~" any previous sibling (text too).
func (r *Run) rest(s *Selector, c *complexSel, k int, n *html.Node) bool {
	if k == 0 {
		return true
	}
	switch c.ops[k] {
	case '>':
		return n.Parent != nil && r.spend(1) && r.match(s, c, k-1, n.Parent)
	case '+':
		for y := n.PrevSibling; y != nil && r.spend(1); y = y.PrevSibling {
			if y.Type != html.TextNode && y.Type != html.CommentNode {
				return r.match(s, c, k-1, y)
			}
		}
		return false
	case ' ':
		if c.greedy[k] {
			for y := n.Parent; y != nil && r.spend(1); y = y.Parent {
				if r.compound(s, &c.parts[k-1], y) {
					return r.rest(s, c, k-1, y)
				}
			}
			return false
		}
		return r.reach(s, c, k, n.Parent, up)
	case '~':
		return r.reach(s, c, k, n.PrevSibling, back)
	}
	return false
}

func up(n *html.Node) *html.Node   { return n.Parent }
func back(n *html.Node) *html.Node { return n.PrevSibling }

// reach reports whether y, or a node next(y), next(next(y))..., matches
// parts[:k] of c, memoising the answer for every node it passes.
func (r *Run) reach(s *Selector, c *complexSel, k int, y *html.Node, next func(*html.Node) *html.Node) bool {
	state := c.reach + int32(k)
	base := len(r.stack)
	found := false
	for ; y != nil && r.spend(1); y = next(y) {
		if v, ok := r.memo[key{y, s, state}]; ok {
			found = v
			break
		}
		r.stack = append(r.stack, y)
		if r.match(s, c, k-1, y) {
			found = true
			break
		}
	}
	// Every node passed matched no parts[:k] itself: its answer is that
	// of the node the walk stopped at.
	for _, z := range r.stack[base:] {
		r.put(key{z, s, state}, found)
	}
	r.stack = r.stack[:base]
	return found && !r.out
}

// compound reports whether n matches compound p: cascadia's part, then
// the relational pseudo-classes (which, as cascadia's, match elements
// only), memoised unless p is cheap (see Selector.compound).
func (r *Run) compound(s *Selector, p *compound, n *html.Node) bool {
	if p.state < 0 {
		return p.local == nil || p.local.Match(n)
	}
	id := key{n, s, p.state}
	if v, ok := r.memo[id]; ok {
		return v
	}
	v := p.local == nil || p.local.Match(n)
	if len(p.rel) > 0 && n.Type != html.ElementNode {
		v = false
	}
	for i := 0; i < len(p.rel) && v && !r.out; i++ {
		rel := &p.rel[i]
		switch rel.kind {
		case 'n':
			v = !r.group(s, rel.arg, n)
		case 'c':
			v = false
			for ch := n.FirstChild; ch != nil && !v && r.spend(1); ch = ch.NextSibling {
				v = r.group(s, rel.arg, ch)
			}
		case 'h':
			v = r.has(s, rel, n)
		}
	}
	r.put(id, v)
	return v && !r.out
}

// has reports whether a node under n matches rel's argument, searching
// as cascadia does (text children too, but only elements' subtrees), and
// memoises the answer for every element it passes.
func (r *Run) has(s *Selector, rel *relational, n *html.Node) bool {
	id := key{n, s, rel.state}
	if v, ok := r.memo[id]; ok {
		return v
	}
	v := false
	for ch := n.FirstChild; ch != nil && !v && r.spend(1); ch = ch.NextSibling {
		v = r.group(s, rel.arg, ch) || (ch.Type == html.ElementNode && r.has(s, rel, ch))
	}
	r.put(id, v)
	return v && !r.out
}
