package rules

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"html/template"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	texttemplate "text/template"
	"text/template/parse"
)

// contentMode says what a piece of content is and so how it is escaped.
type contentMode uint8

const (
	// modeHTML is markup written by the rule's author (replace, inner,
	// prepend, append, before, after): kept as written, with visitor
	// values escaped for the context html/template finds them in (text,
	// attribute, URL, <script> as JSON, <style>).
	modeHTML contentMode = iota
	// modeText is text (text:): the author's words and the visitor's
	// values are all escaped, so "<" shows as "<".
	modeText
	// modeAttr is an attribute's value (attr:), escaped as html/template
	// escapes a value in that attribute: URL filtering for href and src,
	// JavaScript for on*, CSS for style.
	modeAttr
	// modeClass is a class name (add_class, remove_class): anything but
	// letters, digits, - and _ in a rendered value becomes -.
	modeClass
	// modeRaw is content written into a <script> or <style> element,
	// which the browser reads as JavaScript or CSS, not markup: rendered
	// by html/template between the element's tags, so that visitor
	// values are escaped as JS (JSON, or in a string literal) or CSS.
	modeRaw
)

// rawElems are the elements whose content is another language, in the
// order of content.raw.
var rawElems = [2]string{"script", "style"}

// content is an action's compiled content: bytes ready to splice when it
// has no {{ (most content), else a template rendered per request.
type content struct {
	static []byte
	tmpl   *template.Template
	mode   contentMode
	// prefix and suffix wrap an attribute value while it renders, so that
	// html/template sees it in its attribute; they are cut off after.
	prefix, suffix string
	// keys, for a template that reads only scalar fields of the visitor
	// with no logic ("for the {{ .Stage }} stage"), read those fields:
	// the output is kept per distinct value (memo, up to maxMemo of them)
	// instead of executing the template on every request (about 2 µs
	// each, most of a Decide for such rules).
	keys  []func(*Visitor) string
	memo  sync.Map // key → []byte
	memoN atomic.Int32
	// attr is the attribute's name, for modeAttr.
	attr string
	// refresh: a content attribute whose source reads as a refresh
	// ("5; url={{ ... }}"), for warnings.
	refresh bool
	// raw, for markup or text with visitor values (inner, text, prepend,
	// append), is the content compiled for a <script> and a <style>
	// target (modeRaw), on first use (most rules never write into one);
	// nil where html/template refused it there (the edit then writes
	// nothing into such an element). rawSrc is the source.
	raw     [2]*content
	rawOnce sync.Once
	rawSrc  *[2]string // name, source
}

// maxMemo bounds the outputs kept per content: stages, personas and
// interests are few; a field with many values is executed past it.
const maxMemo = 256

// memoFields are the visitor's scalar fields a memoized template may read.
var memoFields = map[string]func(*Visitor) string{
	"Stage":       func(v *Visitor) string { return v.Stage },
	"Persona":     func(v *Visitor) string { return v.Persona },
	"TopInterest": func(v *Visitor) string { return v.TopInterest },
	"Visits":      func(v *Visitor) string { return strconv.Itoa(v.Visits) },
	"NewVisitor":  func(v *Visitor) string { return strconv.FormatBool(v.NewVisitor) },
	"Known":       func(v *Visitor) string { return strconv.FormatBool(v.Known) },
}

// memoKeys returns the field readers of a template made only of text and
// {{ .Field }} actions on memoFields, or nil.
func memoKeys(t *template.Template) []func(*Visitor) string {
	if len(t.Templates()) != 1 || t.Tree == nil || t.Tree.Root == nil {
		return nil
	}
	var keys []func(*Visitor) string
	for _, n := range t.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
		case *parse.ActionNode:
			if n.Pipe == nil || len(n.Pipe.Decl) > 0 || len(n.Pipe.Cmds) != 1 || len(n.Pipe.Cmds[0].Args) != 1 {
				return nil
			}
			f, ok := n.Pipe.Cmds[0].Args[0].(*parse.FieldNode)
			if !ok || len(f.Ident) != 1 || memoFields[f.Ident[0]] == nil {
				return nil
			}
			keys = append(keys, memoFields[f.Ident[0]])
		default:
			return nil
		}
	}
	return keys
}

// compileContent compiles src. name identifies the template in messages
// (the fragment's path, or the rule and action); attr is the attribute's
// name for modeAttr.
func compileContent(name, src string, mode contentMode, attr string) (*content, error) {
	ct := &content{mode: mode, attr: attr}
	if attr == "content" {
		ct.refresh = !bytes.Equal(filterRefresh([]byte(strings.ReplaceAll(src, "{{", "javascript:{{"))), []byte(strings.ReplaceAll(src, "{{", "javascript:{{")))
	}
	switch {
	case mode == modeAttr && attr == "srcdoc":
		// srcdoc is a whole HTML document inside an attribute, which the
		// browser decodes once before parsing it: the value is rendered
		// as markup (visitor values escaped once), then escaped again
		// as attribute text (see execute).
	case mode == modeAttr:
		ct.prefix, ct.suffix = "<x "+attr+`="`, `">`
	case mode == modeRaw:
		ct.prefix, ct.suffix = "<"+attr+">", "</"+attr+">"
	}
	if !strings.Contains(src, "{{") {
		switch mode {
		case modeHTML:
			ct.static = []byte(src)
			return ct, nil
		case modeText:
			ct.static = []byte(html.EscapeString(src))
			return ct, nil
		case modeClass:
			if !isClassToken(src) {
				return nil, fmt.Errorf("%q is not a class name (one name, without spaces)", truncate(src, 40))
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
	ct.keys = memoKeys(t) // before escaping adds the escapers to the tree
	// html/template escapes a template on its first execution. Doing it
	// now reports escaping errors (an action in an ambiguous context) at
	// load, and keeps the lock it takes for that off the request path.
	var zero Visitor
	if err := t.Execute(io.Discard, &zero); err != nil {
		var terr *template.Error
		if errors.As(err, &terr) || strings.Contains(err.Error(), "maximum template depth") {
			return nil, err
		}
		// Other execution errors depend on the visitor's data (a trait
		// that is not a map); they are a rule that does not fire.
	}
	if !strings.Contains(src, "{{") {
		b, err := ct.render(&zero)
		if err != nil {
			return nil, err
		}
		ct.static, ct.tmpl = b, nil
	}
	return ct, nil
}

// parseMode is how ct's source parses: markup (modeHTML), or text
// (modeText and modeAttr: the author's words are escaped too).
func (ct *content) parseMode() contentMode {
	switch {
	case ct.mode == modeAttr && ct.attr == "srcdoc":
		return modeHTML
	case ct.mode == modeRaw:
		return modeRaw
	}
	return ct.mode
}

// compileRaw compiles content src, written by an inner, text, prepend or
// append action, for a <script> or <style> target: raw[i] for each of
// rawElems, nil where html/template cannot escape it there.
func compileRaw(name, src string) (raw [2]*content) {
	for i, elem := range rawElems {
		if ct, err := compileContent(name+" in <"+elem+">", src, modeRaw, elem); err == nil {
			raw[i] = ct
		}
	}
	return raw
}

// renderRaw renders ct for a target element elem ("script" or "style"),
// or returns nil when it cannot be written there.
func (ct *content) renderRaw(elem string, data *Visitor) []byte {
	ct.rawOnce.Do(func() {
		if ct.rawSrc != nil {
			ct.raw = compileRaw(ct.rawSrc[0], ct.rawSrc[1])
		}
	})
	for i, e := range rawElems {
		if e == elem && ct.raw[i] != nil {
			if out, err := ct.raw[i].render(data); err == nil {
				return out
			}
		}
	}
	return nil
}

// parseContent parses src as a template for mode.
func parseContent(name, src string, mode contentMode, prefix, suffix string) (*template.Template, error) {
	if mode == modeRaw {
		// The author's words are JavaScript or CSS, kept as written.
		src = prefix + src + suffix
		mode = modeHTML
	}
	if mode == modeHTML {
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

func modeName(m contentMode) string {
	switch m {
	case modeText:
		return "text"
	case modeAttr:
		return "attribute values"
	case modeClass:
		return "class names"
	case modeRaw:
		return "script or style content"
	}
	return "markup"
}

// filterRefresh returns a content attribute's rendered value v, unless it
// reads as a refresh ("5; url=…", as <meta http-equiv=refresh> takes it)
// to a URL with a scheme other than http or https: that URL is replaced
// by #ZgotmplZ, as html/template replaces an unsafe href (a javascript:
// refresh runs script). As for an href, only the scheme is checked: a
// value that is a whole URL ("//elsewhere.example") still leads
// elsewhere, so a template should write the host itself. Any other
// content value is returned as it is.
func filterRefresh(v []byte) []byte {
	s := html.UnescapeString(string(v))
	i := skipSpace(s, 0)
	j := i
	for j < len(s) && ('0' <= s[j] && s[j] <= '9' || s[j] == '.') {
		j++
	}
	if j == i {
		return v // no delay: not a refresh
	}
	k := skipSpace(s, j)
	if k < len(s) && (s[k] == ';' || s[k] == ',') {
		k = skipSpace(s, k+1)
	}
	if len(s)-k >= 3 && strings.EqualFold(s[k:k+3], "url") {
		if m := skipSpace(s, k+3); m < len(s) && s[m] == '=' {
			k = skipSpace(s, m+1)
		}
	}
	u := s[k:]
	if len(u) > 0 && (u[0] == '\'' || u[0] == '"') {
		u = u[1:]
	}
	if safeURL(u) {
		return v
	}
	return []byte(html.EscapeString(s[:k]) + "#ZgotmplZ")
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\f' || s[i] == '\r') {
		i++
	}
	return i
}

// safeURL reports whether u is relative or http(s), read as a browser
// reads it: tabs and line breaks removed, leading controls and spaces
// skipped.
func safeURL(u string) bool {
	u = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, u)
	u = strings.TrimLeft(u, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")
	i := strings.IndexAny(u, ":/?#")
	if i < 0 || u[i] != ':' {
		return true
	}
	scheme := strings.ToLower(u[:i])
	return scheme == "http" || scheme == "https"
}

// escapeText HTML-escapes every literal text node under n.
func escapeText(n parse.Node) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			escapeText(c)
		}
	case *parse.TextNode:
		n.Text = []byte(html.EscapeString(string(n.Text)))
	case *parse.IfNode:
		escapeText(n.List)
		escapeText(n.ElseList)
	case *parse.RangeNode:
		escapeText(n.List)
		escapeText(n.ElseList)
	case *parse.WithNode:
		escapeText(n.List)
		escapeText(n.ElseList)
	}
}

// checkTree rejects {{range}} over a number: "{{range 1000000000}}" would
// spin on every request.
func checkTree(n parse.Node) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkTree(c); err != nil {
				return err
			}
		}
	case *parse.RangeNode:
		if p := n.Pipe; p != nil && len(p.Cmds) > 0 && len(p.Cmds[0].Args) > 0 {
			if _, isNum := p.Cmds[0].Args[0].(*parse.NumberNode); isNum {
				return fmt.Errorf("template: {{range}} over a number is not allowed; range over visitor data")
			}
		}
		return errors.Join(checkTree(n.List), checkTree(n.ElseList))
	case *parse.IfNode:
		return errors.Join(checkTree(n.List), checkTree(n.ElseList))
	case *parse.WithNode:
		return errors.Join(checkTree(n.List), checkTree(n.ElseList))
	}
	return nil
}

// render returns the content for the visitor data. Static content is
// returned as is: callers must not change it.
func (ct *content) render(data *Visitor) ([]byte, error) {
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

// execute runs the template for the visitor data.
func (ct *content) execute(data *Visitor) ([]byte, error) {
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
	case modeAttr:
		switch ct.attr {
		case "srcdoc":
			out = []byte(html.EscapeString(string(out)))
		case "content":
			out = filterRefresh(out)
		}
	case modeClass:
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
