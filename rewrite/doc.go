// Package rewrite rewrites HTML pages byte-exactly: the bytes of a page
// outside the elements being rewritten come out exactly as the origin sent
// them — no re-serialisation, no added <html>/<head>/<body>, attribute order,
// case and quoting untouched, byte-order mark and doctype kept.
//
// A page is compiled once into a Template: Compile parses it with the HTML5
// tree-construction algorithm, runs CSS selectors (cascadia matchers) on the
// tree and records the source byte span of every element they match. A
// request then only renders: Template.Render copies the page's bytes and
// splices in the edits the rules decided on, without parsing, in time close
// to a plain copy and with no allocation besides the output.
//
// # Selection
//
// Selectors see exactly the tree golang.org/x/net/html builds for the page —
// the tree goquery selects on — so a selector matches here what it matches
// with goquery. The parser is a copy of x/net/html's tree builder and
// tokenizer (in internal/htmltree) that also reports, for every element, the token that
// opened it and the token that closed it; a test checks that its tree is
// node for node the one html.Parse builds. One difference is deliberate: a
// leading UTF-8 byte-order mark is skipped before parsing, as browsers do
// (html.Parse would take it for text and move the whole head into the body).
//
// Matching cannot take exponential time. The rules package compiles
// selectors with internal/selector: each selector is split at its
// combinators into compound selectors that cascadia matches, and the
// combinators are matched here from the right, taking the nearest ancestor
// for runs of descendant combinators and memoising elsewhere, so that
// "span div div … div p" on a page nested 60 deep (issue 14) costs about
// the page's depth instead of every way of choosing 13 of 60 ancestors.
// The selected elements are the ones cascadia selects (a differential test
// and a fuzz target compare them). Compile also bounds the work of
// matching one page (4M steps of walking the tree, plus 64 per element):
// past it, it returns ErrTooComplex and the proxy serves the page unchanged.
//
// # What can be rewritten
//
// Start-tag edits (SetAttr, AddClass, RemoveClass) change only the
// element's own start tag, so they apply to every matched element that has
// one, whatever the parser did with its content: the elements rearranged by
// the adoption agency algorithm, a table with foster-parented content and
// what was foster-parented, a formatting element left open and re-opened
// after its end, and the like. A clone that the adoption agency algorithm or
// the reconstruction of active formatting elements made of such an element
// has the attributes of the original's tag, and the browser shows it with
// the change too. So an original's tag is edited for a selector only when
// the selector matches the original and all its clones; when it matches
// only some of them (the clone only, say: "body > b" on "<p><b>x</p>y"),
// none is edited and those it matched are skipped. Two kinds of tags are
// never edited, because the tag alone does not decide the element's
// attributes: that of <html> or <body> when a later <html> or <body> tag
// with attributes follows (the element takes those it lacks, and would take
// one an edit removed), and that of a formatting element whose attributes
// the Noah's Ark clause compared (three others of its name were in the list
// of active formatting elements), where changing them could change the
// tree. Elements the parser made without any start tag — implied
// html/head/body/tbody/tr/p — cannot take start-tag edits: Render adds no
// tags.
//
// Content edits (Replace, Inner, Prepend, Append, Before, After, Remove)
// apply to an element when its source bytes are exactly its content in the
// tree. Elements without a start tag of their own (implied ones, clones)
// cannot take them, and neither can elements whose span the parser broke
// up: a table with foster-parented content, the elements rearranged by the
// adoption agency algorithm, a formatting element whose unclosed start tag
// the parser re-opens after the element ends (and the elements that hold
// it), an element the parser cloned, a <head> re-opened after </head>, an
// element inside SVG or MathML that a token closes by rules an edit of its
// content would change, the first element of a <template> that sets how
// the rest of it is parsed.
//
// Elements an edit cannot apply to are skipped and counted, per selector,
// for content edits (Template.Matched, Template.Skipped) and for start-tag
// edits (Template.TagMatched, Template.TagSkipped): the page is never
// corrupted, nor an element marked that the selector did not match, to
// honour a rule. On the html5lib tree-construction documents, an AddClass
// rendered and parsed again marks exactly goquery's selection in 99.5% of
// (document, selector) pairs once implied elements are left out, 97.2% of
// the pairs where something is selected (TestAddClassMarksGoquerySelection
// lists the rest by cause).
//
// # Edits
//
// Each Edit applies to every element its selector matched. Several edits on
// one element compose: start-tag edits (SetAttr, AddClass, RemoveClass)
// rewrite only the attribute concerned; Inner replaces the content, Prepend
// and Append add to it; Before and After add outside the element; Replace
// and Remove override all other edits on the element. For one element and
// one Op (and one attribute name or class token), the edit earliest in the
// slice wins; content edits marked Sole exclude one another, so that of
// those the earliest alone applies to the element. RenderApplied says
// which edits applied to at least one element, and OverriddenBy which
// Sole edit took an element's content from another. Edits on elements inside an element whose content or whole
// self is replaced or removed are dropped. Void elements (<img>, <br>) have
// no content: Inner, Prepend and Append do nothing on them. The content of
// a <script> or <style> (any namespace) is JavaScript or CSS: there those
// three write the Edit's RawText, when it has one, instead of its Value.
//
// A Probe edit writes nothing: it reports, through RenderApplied (and
// Segmenter.Applied), whether an element its selector matched reached the
// output, where a change of its kind would apply (with Sole, as a Sole
// content edit: it holds the element's content as the origin's, and
// later Sole content edits are kept off; with Peek too, it only looks:
// it applies where no earlier Sole content edit does, and holds nothing).
// Rendered with probes alone, a page comes out byte for byte. The proxy
// probes an experiment's block for the visitor in whichever arm, so that
// every arm is counted by one test.
//
// Where the source leaves end tags implied, Render writes them when an edit
// needs them, so that added content lands where a reader expects it: After
// on the first item of "<li>a<li>b" renders "<li>a</li>X<li>b"; Append on
// "<div><span>x</div>" renders "<div><span>x</span>X</div>"; Before (and
// Replace, and Remove) of an element whose start tag closes an open
// paragraph or item first closes it: Before on the <div> of "<p>a<div>"
// renders "<p>a</p>X<div>". Append and After are dropped for an element
// left open by a page that ends inside a comment, a CDATA section or
// <plaintext>, where nothing written at the end would come out of it. A
// "<" of the page's text right before an edit is kept from joining what
// follows into a tag.
//
// Rendering then copies the page's bytes around the edits: it neither
// parses nor allocates, and takes about as long as copying the page.
//
// # Reuse
//
// Many origins change a page on every request: a CSRF token in a <meta> or
// a hidden <input>, a nonce on <script>, a token in an inline script's
// JSON, a request id in a comment, a session id or a date in the text.
// Template.Reuse takes a template for such a new body of the same URL
// without parsing it, in about the time of comparing the two bodies, when
// the bodies differ, in any number of places, only inside attribute values
// of start tags (not id, class, type or encoding, which the selectors or
// the tree builder read; not of a formatting element or of html or body), inside the text of inline <script> or <style> elements, inside
// comments, or inside text tokens the tree builder stores as they are, and
// the selectors cannot read what changed: they are cascadia.Sel values (as
// the rules package makes them) without attribute selectors and without
// pseudo-classes other than the structural ones. The template it returns
// is then the one Compile would make of the new body; otherwise it refuses
// and the caller compiles. reuse.go gives the argument.
//
// Template.FirstChange says where Render's first changed byte can be, so
// that a caller may send the page's bytes before it while the rest is
// still arriving; PrefixSafe says the same of a page never compiled, from
// the part that has arrived, for selectors that look only backwards
// (Forward). Both are predictions the caller checks against the rendered
// page.
//
// # Pages too large to hold
//
// A Segmenter rewrites a page in pieces, each parsed after start tags that
// re-open the elements open where the previous one ended, and cut only
// where the parser's state makes that exact (segment.go): the pieces render
// to Render's output for the whole page (a differential test over the
// html5lib documents and a fuzz target check it), in memory bounded by a
// piece. It needs local selectors (Local: an element and its ancestors).
package rewrite
