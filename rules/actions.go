package rules

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/tailor-edge/tailor/internal/content"
	"gopkg.in/yaml.v3"
)

// Op is what an action does to each element its selector matches. The
// values are the rewrite package's, in the same order.
type Op uint8

// The operations. Text content (text:) is Inner with escaped text.
const (
	Replace     Op = iota + 1 // replace the element, tags included (outer HTML)
	Inner                     // replace the element's content
	Prepend                   // insert at the start of the element's content
	Append                    // insert at the end of the element's content
	Before                    // insert before the element
	After                     // insert after the element
	Remove                    // remove the element
	SetAttr                   // set attribute Name to Value; an empty Value removes it
	AddClass                  // add class Value
	RemoveClass               // remove class Value
)

var opNames = [...]string{"", "replace", "inner", "prepend", "append", "before", "after", "remove", "attr", "add_class", "remove_class"}

// MarshalText writes the op as String does, for JSON traces.
func (o Op) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// String returns the op's rule-file key ("replace", "attr").
func (o Op) String() string {
	if int(o) < len(opNames) && o != 0 {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", o)
}

// Action is one change to a page: do Op to every element matched by the
// page's selector Sel (an index into Page.Selectors).
type Action struct {
	// Sel indexes Page.Selectors of the page the decision is for.
	Sel int
	// Op is the change.
	Op Op
	// Name is the attribute for SetAttr, in lower case; else "".
	Name string
	// Value is final: markup for Replace…After, escaped for where it
	// goes (visitor values escaped for their context); for SetAttr the
	// escaped attribute text to write between double quotes (empty
	// removes the attribute); for AddClass and RemoveClass one class name.
	// Value may be shared between decisions: never change it.
	Value []byte
	// RawText, for Inner, Prepend and Append content with visitor
	// values, renders it for a <script> or <style> target ("script",
	// "style"; see rewrite.Edit): JavaScript or CSS escaping instead of
	// HTML's. nil when Value fits there too.
	RawText func(elem string) []byte `json:"-"`
	// Rule is the id of the rule the action comes from.
	Rule string
}

// actionKeys are the keys that name an action, in a rule, a map case or a
// variant.
var actionKeys = []string{"replace", "inner", "text", "attr", "add_class", "remove_class", "prepend", "append", "before", "after", "remove"}

func isActionKey(k string) bool {
	for _, a := range actionKeys {
		if a == k {
			return true
		}
	}
	return false
}

// action is a compiled action: its op and the content to render.
type action struct {
	op      Op
	name    string
	content *content.Content[Visitor] // nil for Remove and for removing an attribute
	// summary is the action as written, shortened: what the console
	// shows of it.
	summary string
	// also are the further pairs of an attr: with several, each a
	// SetAttr of its own.
	also []*action
}

// render appends the actions a makes for the visitor (one per pair of an
// attr:) to dst; on an error it returns dst as it was.
func (a *action) render(dst []Action, sel int, rule string, data *Visitor) ([]Action, error) {
	n := len(dst)
	var err error
	a.each(func(m *action) bool {
		var act Action
		if act, err = m.do(sel, rule, data); err != nil {
			return false
		}
		dst = append(dst, act)
		return true
	})
	if err != nil {
		return dst[:n], err
	}
	return dst, nil
}

// do renders the action, without its further attr: pairs, for the
// visitor.
func (a *action) do(sel int, rule string, data *Visitor) (Action, error) {
	act := Action{Sel: sel, Op: a.op, Name: a.name, Rule: rule}
	if a.content != nil {
		v, err := a.content.Render(data)
		if err != nil {
			return Action{}, err
		}
		if a.op == AddClass || a.op == RemoveClass {
			if len(v) == 0 {
				return Action{}, fmt.Errorf("class name rendered empty")
			}
		}
		act.Value = v
		if ct := a.content; ct.Templated() && (a.op == Inner || a.op == Prepend || a.op == Append) {
			act.RawText = func(elem string) []byte { return ct.RenderRaw(elem, data) }
		}
	}
	return act, nil
}

// contentOps are the actions that take content, by key.
var contentOps = map[string]Op{"replace": Replace, "inner": Inner, "text": Inner, "prepend": Prepend, "append": Append, "before": Before, "after": After}

var attrName = regexp.MustCompile(`^[A-Za-z_:][-A-Za-z0-9_:.]*$`)

// oneAction gathers the one action a rule, a map case or a variant holds,
// reporting any other.
type oneAction struct {
	first *entry
	extra bool
}

// add records the action e of what, or reports it when one is already
// given.
func (o *oneAction) add(f *fileReader, e entry, what string) {
	if o.first != nil {
		f.invalid(e.key, what, "one action only: %q is already given at line %d (write another rule for another change)", o.first.name, o.first.key.Line)
		o.extra = true
		return
	}
	o.first = &e
}

// ok reports whether exactly one action was given, reporting none at n.
// want lists the keys that would have been one.
func (o *oneAction) ok(f *fileReader, n *yaml.Node, what string, want []string) bool {
	if o.first == nil {
		f.invalid(n, what, "no action: want one of %s", strings.Join(want, ", "))
		return false
	}
	return !o.extra
}

func (l *loader) compileAction(f *fileReader, e entry, what string) *action {
	a := l.compileActionOnly(f, e, what)
	if a != nil {
		a.summary = summarize(e)
	}
	return a
}

// summarize writes an action as its rule file says it, at most
// summaryLen characters: "text: Welcome back, {{ .Traits.first_name }}!",
// "replace: file ../fragments/hero-vip.html", "attr: href=/vip".
func summarize(e entry) string {
	var b strings.Builder
	b.WriteString(e.name)
	b.WriteString(": ")
	d := deref(e.value)
	switch {
	case d == nil:
	case d.Kind == yaml.ScalarNode:
		b.WriteString(strings.Join(strings.Fields(d.Value), " "))
	case d.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(d.Content); i += 2 {
			if i > 0 {
				b.WriteString(", ")
			}
			k, v := d.Content[i].Value, deref(d.Content[i+1])
			if k == "file" {
				b.WriteString("file ")
			} else {
				b.WriteString(k + "=")
			}
			if v != nil {
				b.WriteString(v.Value)
			}
		}
	}
	return truncate(b.String(), summaryLen)
}

const summaryLen = 90

func (l *loader) compileActionOnly(f *fileReader, e entry, what string) *action {
	key := e.name
	switch key {
	case "remove":
		b, ok := f.boolean(e.value, key)
		if !ok {
			return nil
		}
		if !b {
			f.invalid(e.value, key, "remove takes true; to keep the element, leave the rule out")
			return nil
		}
		return &action{op: Remove}
	case "attr":
		entries, ok := f.mapping(e.value, key)
		if !ok {
			return nil
		}
		if len(entries) == 0 {
			f.invalid(e.value, key, "want at least one name: value pair")
			return nil
		}
		// Each pair is a change of its own kind ("attribute NAME"): the
		// first action, with the others in also.
		var first *action
		seen := map[string]int{}
		good := true
		for _, p := range entries {
			a := l.attrPair(f, p, key, what)
			if a == nil {
				good = false
				continue
			}
			if line, dup := seen[a.name]; dup {
				f.invalid(p.key, key, "attribute %q is already set at line %d", a.name, line)
				good = false
				continue
			}
			seen[a.name] = p.key.Line
			if first == nil {
				first = a
			} else {
				first.also = append(first.also, a)
			}
		}
		if !good {
			return nil
		}
		return first
	case "add_class", "remove_class":
		v, ok := f.str(e.value, key)
		if !ok {
			return nil
		}
		ct, err := content.Compile(what+" "+key, v, content.Class, "", memoFields)
		if err != nil {
			f.errorAt(e.value, ErrTemplate, "%s: %s", key, templateMessage(err))
			return nil
		}
		op := AddClass
		if key == "remove_class" {
			op = RemoveClass
		}
		return &action{op: op, content: ct}
	}
	op, ok := contentOps[key]
	if !ok {
		return nil // not an action key; callers only pass action keys
	}
	mode := content.HTML
	if key == "text" {
		mode = content.Text
	}
	src, name, ok := l.contentSource(f, e.value, key, what)
	if !ok {
		return nil
	}
	ct, err := content.Compile(name, src, mode, "", memoFields)
	if err != nil {
		f.errorAt(e.value, ErrTemplate, "%s: %s", key, templateMessage(err))
		return nil
	}
	into := ""
	if ct.Templated() && (op == Inner || op == Prepend || op == Append) {
		ct.EnableRaw(name, src)
		into = subjectTag(l.target)
	}
	warnContexts(f, e.value, key, ct, into)
	return &action{op: op, content: ct}
}

// attrPair compiles one name: value pair of an attr: action.
func (l *loader) attrPair(f *fileReader, p entry, key, what string) *action {
	if !attrName.MatchString(p.name) {
		f.invalid(p.key, key, "%q is not an attribute name", truncate(p.name, 40))
		return nil
	}
	name := strings.ToLower(p.name)
	d := deref(p.value)
	if d != nil && d.Kind == yaml.ScalarNode && d.ShortTag() == "!!null" {
		return &action{op: SetAttr, name: name}
	}
	v, ok := f.str(p.value, key+"."+p.name)
	if !ok {
		return nil
	}
	if v == "" {
		return &action{op: SetAttr, name: name}
	}
	ct, err := content.Compile(what+" attr "+name, v, content.Attr, name, memoFields)
	if err != nil {
		f.errorAt(p.value, ErrTemplate, "%s.%s: %s", key, p.name, templateMessage(err))
		return nil
	}
	warnContexts(f, p.value, key+"."+p.name, ct, "")
	return &action{op: SetAttr, name: name, content: ct}
}

// contentSource returns the content written inline or in a {file: ...}
// fragment, relative to the rule file, and a name for its template.
func (l *loader) contentSource(f *fileReader, n *yaml.Node, key, what string) (src, name string, ok bool) {
	d := deref(n)
	if d != nil && d.Kind == yaml.ScalarNode && d.ShortTag() != "!!null" {
		return d.Value, what + " " + key, true
	}
	if d == nil || d.Kind != yaml.MappingNode {
		f.invalid(n, key, "want content (a string, or {file: path}), not %s", describe(d))
		return "", "", false
	}
	entries, ok := f.mapping(n, key)
	if !ok {
		return "", "", false
	}
	var file *yaml.Node
	for _, e := range entries {
		if e.name != "file" {
			f.unknownKey(e, key, []string{"file"})
			continue
		}
		file = e.value
	}
	if file == nil {
		if len(entries) == 0 {
			f.invalid(n, key, "want content (a string, or {file: path})")
		}
		return "", "", false
	}
	p, ok := f.str(file, key+".file")
	if !ok {
		return "", "", false
	}
	b, shown, err := l.fragment(f.file, p)
	if err != nil {
		f.errorAt(file, ErrFragment, "%s.file: %v", key, err)
		return "", "", false
	}
	return trimFinalNewline(string(b)), shown, true
}

// trimFinalNewline drops the line break that editors end a file with: a
// fragment that replaces a block must not leave a stray newline beside it.
func trimFinalNewline(s string) string {
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		return strings.TrimSuffix(t, "\r")
	}
	return s
}

// errNotFragment is a fragment path given as something other than a file.
var errNotFragment = fmt.Errorf("want a path relative to the rule file")

// fragment reads a fragment named relative to the rule file ruleFile; shown
// is its path as messages name it.
func (l *loader) fragment(ruleFile, p string) (b []byte, shown string, err error) {
	if p == "" {
		return nil, "", errNotFragment
	}
	shown = l.src.join(l.src.dir(ruleFile), p)
	if b, ok := l.fragments[shown]; ok {
		return b, shown, nil
	}
	b, err = l.src.read(shown, MaxFragmentBytes)
	if err != nil {
		return nil, shown, fmt.Errorf("read fragment %s: %w", shown, unwrapPathError(err))
	}
	l.fragments[shown] = b
	return b, shown, nil
}

// templateMessage is a template error without html/template's dump of its
// internal state.
func templateMessage(err error) string {
	msg := err.Error()
	if before, _, ok := strings.Cut(msg, "non-text context: {"); ok {
		msg = before + "non-text context (an unclosed tag, attribute, quote or comment)"
	}
	return msg
}

// warnContexts warns, at n, when content ct writes visitor values into
// JavaScript or CSS (Content.CodeContext; into is the target's tag when
// the selector names one). Such values are escaped for the language, but
// the page's code that reads them may still misuse them (eval,
// innerHTML).
func warnContexts(f *fileReader, n *yaml.Node, key string, ct *content.Content[Visitor], into string) {
	where := ct.CodeContext(into)
	if where == "" {
		return
	}
	f.warnAt(f.file, n, ErrScriptContext, "%s: visitor values are written into %s; they are escaped for it, but check that the page's code does not run or insert them as markup", key, where)
}

// subjectTag returns the tag name the selector's subject requires, when
// every selector of the group names the same one ("script#cfg", "head >
// style"), else "".
func subjectTag(sel string) string {
	tag := ""
	for i, part := range strings.Split(sel, ",") {
		fields := strings.FieldsFunc(part, func(r rune) bool { return r == ' ' || r == '>' || r == '+' || r == '~' || r == '\t' || r == '\n' })
		if len(fields) == 0 {
			return ""
		}
		last := fields[len(fields)-1]
		end := strings.IndexFunc(last, func(r rune) bool {
			return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-')
		})
		if end < 0 {
			end = len(last)
		}
		t := strings.ToLower(last[:end])
		if i > 0 && t != tag {
			return ""
		}
		tag = t
	}
	return tag
}
