// Package htmltree is golang.org/x/net/html's HTML5 tree builder (parse.go,
// foreign.go, const.go, doctype.go and the stacks of node.go, from
// golang.org/x/net v0.62.0, under the BSD license in LICENSE) with hooks
// that report where in the input each element starts and ends, and its
// tokenizer (token.go, escape.go, entity.go), changed to tokenize the page
// in place: x/net/html's copies the page into a buffer of its own, and
// copies every tag name, attribute name and value once more before making
// strings of them (bytes.ReplaceAll of NUL), which took 40% of compiling
// a 100 KB page. The fork copies only what it has to change (lower-case,
// newlines, entities, NUL); its tokens are x/net/html's
// (TestTokenizerMatchesHTMLTokenizer, FuzzTokenizer).
//
// The tree it builds is node for node the one html.Parse builds (tests and
// the rewrite package's fuzz target check it), so selectors match the same
// elements on both. Changes to the copied files are marked "tailor:";
// besides those, calls that change the stack of open elements go through
// the hooks in positions.go (popOE, popTo, removeOE, replaceOE, insertOE)
// and ParseFragment and the options are left out. To move to a newer
// golang.org/x/net, copy its files again and re-apply the marked changes.
package htmltree
