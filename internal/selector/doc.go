// Package selector matches CSS selectors in time polynomial in the size of
// the page, with the results of cascadia (github.com/andybalholm/cascadia),
// which tailor's rules are written for.
//
// Cascadia matches a descendant combinator by trying every ancestor, and
// the rest of the selector from each: "span div div … div p" (13 div) on a
// page nested 60 deep takes exponential time (issue 14). Compile splits
// each selector of a group at its combinators into compound selectors
// (each compiled by cascadia, so that every simple selector means what it
// means there), and Match works right to left: a run of descendant
// combinators takes the nearest ancestor that fits, which is enough;
// elsewhere what has been worked out about a node is memoised, so that no
// node is examined twice for one step. Matching an element then costs at
// most the page's depth (or its siblings' count) times the selector's
// steps. The arguments of :not(), :has() and :haschild() are split and
// matched the same way, and :has() is memoised per node, so that it costs
// once the subtree, not once per ancestor. So is any compound with a
// pseudo-class, which may read a node's siblings, text or ancestors: in
// ":contains(x) p" each ancestor's text is read once, not once per p.
//
// A Run matches on one tree: it keeps the memo across the elements of a
// page and counts the work beyond the first compound of each selector
// against a budget, so that a page that would still take long (a huge page
// with a selector of many mixed steps) is given up on: Exhausted reports
// it, and the caller serves the page unchanged.
package selector
