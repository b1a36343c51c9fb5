package rewrite

import (
	"bytes"
	"fmt"
	"math"

	"github.com/andybalholm/cascadia"

	"github.com/tailor-edge/tailor/internal/selector"
	"github.com/tailor-edge/tailor/rewrite/internal/htmltree"
)

// Prefixes: a page that is still arriving, and was never compiled, may be
// sent ahead up to the first element a selector matches in what has
// arrived, when the selectors are forward: whether one matches an element
// is decided by the element's start tag, its ancestors and what precedes
// it, never by what follows it (no :last-child, :nth-last-*, :only-*,
// :empty, :has() or text pseudo-classes). Such a selector matches an
// element of the page in the prefix too, unless the parser rearranges the
// tree after the prefix (the adoption agency algorithm, foster parenting):
// the caller checks the rendered page against what it sent, as for any
// prediction (Template.FirstChange is the other), and falls back to the
// origin's page when they differ.

// forwardPseudo are the pseudo-classes, as cascadia writes them, that read
// only the element, its ancestors and what precedes it; :not() and :is()
// read what their arguments read, which the scan checks too.
var forwardPseudo = []string{
	"first-child", "first-of-type", "nth-child(", "nth-of-type(", "root",
	"not(", "is(", "where(", "link", "checked", "disabled", "enabled",
}

// Forward reports whether every one of sels is forward (see above). Like
// blindSelectors it reads the selectors' CSS text, and is conservative.
func Forward(sels []cascadia.Matcher) bool {
	return selectorTextsAllow(sels, "", forwardPseudo)
}

// PrefixSafe says how much of prefix, the start of a page still arriving,
// comes out of Render unchanged for edits that use selectors sels[i] with
// used[i] set, if those are forward (see Forward) and the parser does not
// rearrange the tree after the prefix: the offset of the first element one
// of them matches, found true, or, when none matches, the start of the
// last "<" before the tokenizer's end (a tag of the page may begin there
// and be matched once it is complete). Once found, more of the page cannot move it.
//
// Matching is budgeted as in Compile; past the budget, and for a prefix
// Compile would refuse, it returns an error.
func PrefixSafe(prefix []byte, sels []cascadia.Matcher, used []bool) (safe int, found bool, err error) {
	switch {
	case len(prefix) >= math.MaxInt32:
		return 0, false, fmt.Errorf("prefix of %d bytes: %w", len(prefix), ErrTooLarge)
	case !isText(prefix):
		return 0, false, fmt.Errorf("prefix: %w", ErrNotText)
	}
	base := 0
	if bytes.HasPrefix(prefix, bom) {
		base = len(bom)
	}
	tree, err := htmltree.Parse(prefix[base:])
	if err != nil {
		return 0, false, fmt.Errorf("prefix: %w: %v", ErrUnparsable, err)
	}
	defer tree.Release()
	c := compiler{tree: tree}
	run := selector.NewRun(matchBudget + perElement*len(tree.Elems))
	c.run = run
	for ri := range tree.Elems {
		e := &tree.Elems[ri]
		for si, m := range sels {
			if si < len(used) && used[si] && c.hit(m, e.Node) {
				// Elements come in creation order, so in the order of the
				// tokens that made them: the first hit is the earliest.
				at := e.Created
				if e.Start >= 0 && e.Start < at {
					at = e.Start
				}
				return base + int(at), true, nil
			}
		}
		if run.Exhausted() {
			return 0, false, fmt.Errorf("prefix: %w", ErrTooComplex)
		}
	}
	// A tag may begin at the last "<", or where the tokenizer stopped at a
	// tag the prefix cuts short (whose quoted values may hold a "<").
	safe = min(len(prefix), base+int(tree.EOF))
	if i := bytes.LastIndexByte(prefix[:safe], '<'); i >= 0 {
		safe = i
	}
	return safe, false, nil
}
