package content

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"html/template"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	texttemplate "text/template"
	"text/template/parse"

	"github.com/tailor-edge/tailor/config"
)

// Mode says what a piece of content is and so how it is escaped.
type Mode uint8

const (
	// HTML is markup written by the rule's author (replace, inner,
	// prepend, append, before, after): kept as written, with visitor
	// values escaped for the context html/template finds them in (text,
	// attribute, URL, <script> as JSON, <style>).
	HTML Mode = iota
	// Text is text (text:): the author's words and the visitor's
	// values are all escaped, so "<" shows as "<".
	Text
	// Attr is an attribute's value (attr:), escaped as html/template
	// escapes a value in that attribute: URL filtering for href and src,
	// JavaScript for on*, CSS for style.
	Attr
	// Class is a class name (add_class, remove_class): anything but
	// letters, digits, - and _ in a rendered value becomes -.
	Class
	// raw is content written into a <script> or <style> element,
	// which the browser reads as JavaScript or CSS, not markup: rendered
	// by html/template between the element's tags, so that visitor
	// values are escaped as JS (JSON, or in a string literal) or CSS.
	raw
)

// rawElems are the elements whose content is another language, in the
// order of content.raw.
var rawElems = [2]string{"script", "style"}

// Content is an action's compiled content: bytes ready to splice when it
// has no {{ (most content), else a template rendered per request with a
// *T as its data. A Content is safe for concurrent use once EnableRaw, if
// called, has returned.
type Content[T any] struct {
	static []byte
	tmpl   *template.Template
	mode   Mode
	// prefix and suffix wrap an attribute value while it renders, so that
	// html/template sees it in its attribute; they are cut off after.
	prefix, suffix string
	// keys, for a template that reads only scalar fields of the visitor
	// with no logic ("for the {{ .Stage }} stage"), read those fields:
	// the output is kept per distinct value (memo, up to maxMemo of them)
	// instead of executing the template on every request (about 2 µs
	// each, most of a Decide for such rules).
	keys  []func(*T) string
	memo  sync.Map // key → []byte
	memoN atomic.Int32
	// attr is the attribute's name, for Attr.
	attr string
	// refresh: a content attribute whose source reads as a refresh
	// ("5; url={{ ... }}"), for warnings.
	refresh bool
	// raw, for markup or text with visitor values (inner, text, prepend,
	// append), is the content compiled for a <script> and a <style>
	// target (raw), on first use (most rules never write into one);
	// nil where html/template refused it there (the edit then writes
	// nothing into such an element). rawSrc is the source.
	raw     [2]*Content[T]
	rawOnce sync.Once
	rawSrc  *[2]string // name, source
	// fields are the data's scalar fields a memoized template may read.
	fields map[string]func(*T) string
}

// maxMemo bounds the outputs kept per content: stages, personas and
// interests are few; a field with many values is executed past it.
const maxMemo = 256

// memoKeys returns the field readers of a template made only of text and
// {{ .Field }} actions on fields, or nil.
func memoKeys[T any](t *template.Template, fields map[string]func(*T) string) []func(*T) string {
	if len(t.Templates()) != 1 || t.Tree == nil || t.Tree.Root == nil {
		return nil
	}
	var keys []func(*T) string
	for _, n := range t.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
		case *parse.ActionNode:
			if n.Pipe == nil || len(n.Pipe.Decl) > 0 || len(n.Pipe.Cmds) != 1 || len(n.Pipe.Cmds[0].Args) != 1 {
				return nil
			}
			f, ok := n.Pipe.Cmds[0].Args[0].(*parse.FieldNode)
			if !ok || len(f.Ident) != 1 || fields[f.Ident[0]] == nil {
				return nil
			}
			keys = append(keys, fields[f.Ident[0]])
		default:
			return nil
		}
	}
	return keys
}

// Compile compiles src. name identifies the template in messages (the
// fragment's path, or the rule and action); attr is the attribute's name
// for Attr. fields are the scalar fields of T, by name, whose values a
// template that reads nothing else is memoized by (nil: none is).
func Compile[T any](name, src string, mode Mode, attr string, fields map[string]func(*T) string) (*Content[T], error) {
	ct := &Content[T]{mode: mode, attr: attr, fields: fields}
	if attr == "content" {
		ct.refresh = !bytes.Equal(filterRefresh([]byte(strings.ReplaceAll(src, "{{", "javascript:{{"))), []byte(strings.ReplaceAll(src, "{{", "javascript:{{")))
	}
	switch {
	case mode == Attr && attr == "srcdoc":
		// srcdoc is a whole HTML document inside an attribute, which the
		// browser decodes once before parsing it: the value is rendered
		// as markup (visitor values escaped once), then escaped again
		// as attribute text (see execute).
	case mode == Attr:
		ct.prefix, ct.suffix = "<x "+attr+`="`, `">`
	case mode == raw:
		ct.prefix, ct.suffix = "<"+attr+">", "</"+attr+">"
	}
	if !strings.Contains(src, "{{") {
		switch mode {
		case HTML:
			ct.static = []byte(src)
			return ct, nil
		case Text:
			ct.static = []byte(html.EscapeString(src))
			return ct, nil
		case Class:
			if !isClassToken(src) {
				return nil, fmt.Errorf("%q is not a class name (one name, without spaces)", config.Truncate(src, 40))
			}
			ct.static = []byte(src)
			return ct, nil
		}
		// An attribute is rendered once here, for html/template's URL
		// filtering of the author's own value as well.
	}
	t, err := parseContent(name, src, ct.parseMode(), ct.prefix, ct.suffix)
	if err != nil {
		return nil, err
	}
	ct.tmpl = t
	ct.keys = memoKeys(t, fields) // before escaping adds the escapers to the tree
	// html/template escapes a template on its first execution. Doing it
	// now reports escaping errors (an action in an ambiguous context) at
	// load, and keeps the lock it takes for that off the request path.
	var zero T
	if err := t.Execute(io.Discard, &zero); err != nil {
		var terr *template.Error
		if errors.As(err, &terr) || strings.Contains(err.Error(), "maximum template depth") {
			return nil, err
		}
		// Other execution errors depend on the visitor's data (a trait
		// that is not a map); they are a rule that does not fire.
	}
	if !strings.Contains(src, "{{") {
		b, err := ct.Render(&zero)
		if err != nil {
			return nil, err
		}
		ct.static, ct.tmpl = b, nil
	}
	return ct, nil
}

// EnableRaw records that ct, markup or text written into an element
// (inner, text, prepend, append), may find the element to be a <script>
// or a <style>: RenderRaw then compiles src, named name, for it on first
// use. It must be called before ct is used concurrently.
func (ct *Content[T]) EnableRaw(name, src string) {
	ct.rawSrc = &[2]string{name, src}
}

// Templated reports whether ct renders per request (its source has {{).
func (ct *Content[T]) Templated() bool { return ct.tmpl != nil }

// Static returns the bytes of content that does not render per request
// (Templated is false), or nil. Callers must not change them.
func (ct *Content[T]) Static() []byte {
	if ct.tmpl != nil {
		return nil
	}
	return ct.static
}

// CodeContext says, for a warning, where ct writes data into JavaScript
// or CSS: in its own markup or attribute (html/template chose a JS or CSS
// escaper for an action), or into the element into, the target's tag
// when the selector names one ("script", "style"); "" where it does not.
func (ct *Content[T]) CodeContext(into string) string {
	if ct.tmpl == nil {
		return ""
	}
	switch js, css := escaperContexts(ct.tmpl); {
	case ct.mode == Attr && ct.attr == "srcdoc":
		return "an iframe's document (srcdoc: markup escaped twice)"
	case ct.mode == Attr && ct.attr == "content" && ct.refresh:
		return "a refresh URL (only http(s) and relative URLs are kept)"
	case into == "script" || into == "style":
		return "a <" + into + "> element"
	case js:
		return "JavaScript (a <script> or an on* handler)"
	case css:
		return "CSS (a <style> or a style attribute)"
	}
	return ""
}

// parseMode is how ct's source parses: markup (HTML), or text
// (Text and Attr: the author's words are escaped too).
func (ct *Content[T]) parseMode() Mode {
	switch {
	case ct.mode == Attr && ct.attr == "srcdoc":
		return HTML
	case ct.mode == raw:
		return raw
	}
	return ct.mode
}

// compileRaw compiles content src, written by an inner, text, prepend or
// append action, for a <script> or <style> target: raw[i] for each of
// rawElems, nil where html/template cannot escape it there.
func compileRaw[T any](name, src string, fields map[string]func(*T) string) (out [2]*Content[T]) {
	for i, elem := range rawElems {
		if ct, err := Compile(name+" in <"+elem+">", src, raw, elem, fields); err == nil {
			out[i] = ct
		}
	}
	return out
}

// RenderRaw renders ct for a target element elem ("script" or "style"),
// or returns nil when it cannot be written there (or EnableRaw was not
// called).
func (ct *Content[T]) RenderRaw(elem string, data *T) []byte {
	ct.rawOnce.Do(func() {
		if ct.rawSrc != nil {
			ct.raw = compileRaw(ct.rawSrc[0], ct.rawSrc[1], ct.fields)
		}
	})
	for i, e := range rawElems {
		if e == elem && ct.raw[i] != nil {
			if out, err := ct.raw[i].Render(data); err == nil {
				return out
			}
		}
	}
	return nil
}

// parseContent parses src as a template for mode.
func parseContent(name, src string, mode Mode, prefix, suffix string) (*template.Template, error) {
	if mode == raw {
		// The author's words are JavaScript or CSS, kept as written.
		src = prefix + src + suffix
		mode = HTML
	}
	if mode == HTML {
		t, err := template.New(name).Parse(src)
		if err != nil {
			return nil, err
		}
		for _, tt := range t.Templates() {
			if tt.Tree != nil {
				if err := checkTree(tt.Tree.Root); err != nil {
					return nil, err
				}
			}
		}
		return t, nil
	}
	// Text and attribute values are text, not markup: the author's
	// literal words are escaped like the visitor's values. So the template
	// is parsed as text, its text nodes escaped, and the tree handed to
	// html/template, which escapes the actions in their context.
	tt, err := texttemplate.New(name).Parse(src)
	if err != nil {
		return nil, err
	}
	if len(tt.Templates()) > 1 {
		return nil, fmt.Errorf("template: %s: {{define}} is only for markup content, not for %s", name, modeName(mode))
	}
	tree := tt.Tree
	if err := checkTree(tree.Root); err != nil {
		return nil, err
	}
	escapeText(tree.Root)
	if prefix != "" {
		nodes := make([]parse.Node, 0, len(tree.Root.Nodes)+2)
		nodes = append(nodes, &parse.TextNode{NodeType: parse.NodeText, Text: []byte(prefix)})
		nodes = append(nodes, tree.Root.Nodes...)
		nodes = append(nodes, &parse.TextNode{NodeType: parse.NodeText, Text: []byte(suffix)})
		tree.Root.Nodes = nodes
	}
	return template.New(name).AddParseTree(name, tree)
}

func modeName(m Mode) string {
	switch m {
	case Text:
		return "text"
	case Attr:
		return "attribute values"
	case Class:
		return "class names"
	case raw:
		return "script or style content"
	}
	return "markup"
}

// Render returns the content for data. Static content is returned as is:
// callers must not change it.
func (ct *Content[T]) Render(data *T) ([]byte, error) {
	if ct.tmpl == nil {
		return ct.static, nil
	}
	if ct.keys == nil {
		return ct.execute(data)
	}
	var key string
	if len(ct.keys) == 1 {
		key = ct.keys[0](data)
	} else {
		parts := make([]string, len(ct.keys))
		for i, k := range ct.keys {
			parts[i] = k(data)
		}
		key = strings.Join(parts, "\x00")
	}
	if out, ok := ct.memo.Load(key); ok {
		return out.([]byte), nil
	}
	out, err := ct.execute(data)
	if err == nil && ct.memoN.Load() < maxMemo && ct.memoN.Add(1) <= maxMemo {
		ct.memo.Store(key, out)
	}
	return out, err
}

// execute runs the template for data.
func (ct *Content[T]) execute(data *T) ([]byte, error) {
	var buf bytes.Buffer
	if err := ct.tmpl.Execute(&buf, data); err != nil {
		return nil, err
	}
	out := buf.Bytes()
	if ct.prefix != "" {
		if !bytes.HasPrefix(out, []byte(ct.prefix)) || !bytes.HasSuffix(out, []byte(ct.suffix)) || len(out) < len(ct.prefix)+len(ct.suffix) {
			// html/template never rewrites literal text, so this is
			// unreachable; refuse rather than write a broken value.
			return nil, fmt.Errorf("value did not render inside its %s", modeName(ct.mode))
		}
		out = out[len(ct.prefix) : len(out)-len(ct.suffix)]
	}
	switch ct.mode {
	case Attr:
		switch ct.attr {
		case "srcdoc":
			out = []byte(html.EscapeString(string(out)))
		case "content":
			out = filterRefresh(out)
		}
	case Class:
		out = bytes.Map(func(r rune) rune {
			if isClassRune(r) {
				return r
			}
			return '-'
		}, out)
	}
	return out, nil
}

func isClassRune(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_'
}

// isClassToken reports whether s is safe to write as one class name: no
// space (it would be two classes) and nothing that needs escaping.
func isClassToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == '"' || r == '\'' || r == '<' || r == '>' || r == '&' || r == '`' || r == '=' || r == 0x7f {
			return false
		}
	}
	return true
}
