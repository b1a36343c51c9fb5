package rewrite

import (
	"html"
	"strconv"
)

// Op is what an Edit does to the elements its selector matched.
type Op uint8

// The edits, as in the rule files' actions.
const (
	Replace     Op = iota + 1 // the element, tags and content, is replaced by Value
	Inner                     // the content between start and end tag is replaced by Value
	Prepend                   // Value is inserted right after the start tag
	Append                    // Value is inserted right before the end tag
	Before                    // Value is inserted before the start tag
	After                     // Value is inserted after the end tag
	Remove                    // the element, tags and content, is removed
	SetAttr                   // attribute Name is set to Value; an empty Value removes it
	AddClass                  // class token Value is added to the class attribute, unless present
	RemoveClass               // class token Value is removed from the class attribute
	// Probe changes nothing: it reports (RenderApplied, Segmenter.Applied)
	// whether an element its selector matched reached the output, and,
	// with Sole, whether it took the element's content as a Sole content
	// edit would (see Edit).
	Probe
)

var opNames = [...]string{
	Replace: "replace", Inner: "inner", Prepend: "prepend", Append: "append",
	Before: "before", After: "after", Remove: "remove", SetAttr: "attr",
	AddClass: "add_class", RemoveClass: "remove_class", Probe: "probe",
}

// String returns the op's name in rule files ("replace", "add_class", …).
func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// Edit is one change, applied to every element that selector Sel (an index
// into the selectors given to Compile) matched.
//
// Value is written as is: the caller has done all escaping. For SetAttr it
// is attribute text written verbatim inside double quotes (so it must not
// contain a raw '"'); for AddClass and RemoveClass it is one class token.
//
// Content written into a <script> or <style> element (Inner, Prepend,
// Append on one) is JavaScript or CSS, not markup: there RawText, when
// set, gives the value escaped for that language ("script" or "style"),
// and Value is not used. RawText is nil when Value is right there too (no
// visitor value in it); it returns nil when the value cannot be written
// there, and the edit then writes nothing.
//
// Sole, on a content edit (Replace, Inner, Prepend, Append, Before, After,
// Remove), makes it exclude the other Sole content edits: of those that
// apply to one element, only the earliest in the slice does, whatever
// their selectors. The rules package's decisions need it: for one
// element the first rule makes the content, though rules with different
// selectors match it. Edits without Sole compose as Render says.
//
// A Probe writes nothing, ever: a page rendered with probes alone is the
// page byte for byte. It applies where a change of its kind would: with
// Sole, as a Sole content edit (to an element whose content edits apply,
// where no earlier Sole content edit applies, and it then keeps later
// Sole content edits off the element, whose content it holds as the
// origin's); without, as a start-tag edit. Either way only to an element
// not inside content another edit replaced or removed. It lets a caller
// learn whether an experiment's block reached the page for a visitor who
// sees the origin's, by the test the variant's change passes.
//
// Peek, on a Sole Probe, makes it only look: it applies where the Sole
// probe would, but holds nothing, so later Sole content edits apply as if
// it were not there. It tells, for a visitor whose arm may change the
// block or leave it to later edits, whether an earlier content edit took
// the element, without changing what they get.
type Edit struct {
	Sel     int
	Op      Op
	Name    string // attribute name, for SetAttr
	Value   []byte
	RawText func(elem string) []byte
	Sole    bool
	Peek    bool
}

// valueIn returns what e writes into the content of an element with
// flags; ok is false when it cannot be written there (RawText gave
// nothing), and the element's content is then left as it is.
func (e *Edit) valueIn(flags uint16) (v []byte, ok bool) {
	if e.RawText == nil || flags&(fScript|fStyle) == 0 {
		return e.Value, true
	}
	if flags&fScript != 0 {
		v = e.RawText("script")
	} else {
		v = e.RawText("style")
	}
	if v == nil {
		return nil, false
	}
	if flags&fForeign != 0 {
		// In SVG or MathML the parser decodes character references in
		// a script or style too: escaped once more, the text reads as
		// JavaScript or CSS escaped it (CSS lets & and # through).
		v = []byte(html.EscapeString(string(v)))
	}
	return v, true
}
