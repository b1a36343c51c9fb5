package rules

import (
	"strings"
	"testing"
)

// actionSet is a rule set with one rule on #x whose action is the test's.
func actionSet(t *testing.T, action string) *Set {
	t.Helper()
	return mustLoad(t, map[string]string{
		"a.yaml": `
pages:
  - match: ["/"]
    rules:
      - id: r
        select: "#x"
        ` + action + "\n",
		"rules/fragments/f.html":    `<div class="f">Hi {{ .Traits.first_name }}</div>`,
		"shared/g.html":             `<p>shared</p>`,
		"rules/fragments/nl.html":   "<p>one line</p>\n",
		"rules/fragments/crlf.html": "<p>two</p>\r\n<p>lines</p>\r\n\r\n",
	})
}

func TestActions(t *testing.T) {
	v := &Visitor{
		ID: "v1", Known: true, Segments: []string{"vip", "runner"}, Stage: "intent",
		Traits: map[string]any{"first_name": "Jane", "url": "javascript:alert(1)", "page": "/p?a=1&b=2"}, Visits: 3,
		Interests: map[string]float64{"running": 5}, TopInterest: "running", Persona: "runner",
	}
	tests := []struct {
		action string
		op     Op
		name   string
		value  string
	}{
		{`replace: "<b>new</b>"`, Replace, "", "<b>new</b>"},
		{`inner: "<i>x</i>"`, Inner, "", "<i>x</i>"},
		{`prepend: "<span>a</span>"`, Prepend, "", "<span>a</span>"},
		{`append: "<span>z</span>"`, Append, "", "<span>z</span>"},
		{`before: "<hr>"`, Before, "", "<hr>"},
		{`after: "<hr>"`, After, "", "<hr>"},
		{`remove: true`, Remove, "", ""},
		{`text: "Tom & Jerry <3"`, Inner, "", "Tom &amp; Jerry &lt;3"},
		{`text: "Hi {{ .Traits.first_name }} & co"`, Inner, "", "Hi Jane &amp; co"},
		{`text: "{{ .Traits.missing }}!"`, Inner, "", "!"},
		{`text: "{{ range .Segments }}[{{ . }}]{{ end }}"`, Inner, "", "[vip][runner]"},
		{`text: "{{ .Stage }} {{ .Visits }} {{ .TopInterest }} {{ .Persona }} {{ .ID }} {{ .Known }} {{ .Interests.running }}"`, Inner, "", "intent 3 running runner v1 true 5"},
		{`inner: "<p title=\"{{ .Traits.first_name }}\">{{ .Traits.first_name }}</p>"`, Inner, "", `<p title="Jane">Jane</p>`},
		{`replace: {file: fragments/f.html}`, Replace, "", `<div class="f">Hi Jane</div>`},
		{`append: {file: ../shared/g.html}`, Append, "", `<p>shared</p>`},
		{`replace: {file: fragments/nl.html}`, Replace, "", "<p>one line</p>"},
		{`replace: {file: fragments/crlf.html}`, Replace, "", "<p>two</p>\r\n<p>lines</p>\r\n"},
		{`attr: {title: "plain"}`, SetAttr, "title", "plain"},
		{`attr: {title: 'say "hi" & <bye>'}`, SetAttr, "title", "say &#34;hi&#34; &amp; &lt;bye&gt;"},
		{`attr: {Data-Name: "{{ .Traits.first_name }}"}`, SetAttr, "data-name", "Jane"},
		{`attr: {title: ""}`, SetAttr, "title", ""},
		{`attr: {title: }`, SetAttr, "title", ""},
		{`attr: {href: "/search?q={{ .TopInterest }}&from=home"}`, SetAttr, "href", "/search?q=running&amp;from=home"},
		{`attr: {href: "{{ .Traits.page }}"}`, SetAttr, "href", "/p?a=1&amp;b=2"},
		{`attr: {href: "{{ .Traits.url }}"}`, SetAttr, "href", "#ZgotmplZ"},
		{`attr: {onclick: "track({{ .ID }})"}`, SetAttr, "onclick", "track(&#34;v1&#34;)"},
		{`add_class: hero--vip`, AddClass, "", "hero--vip"},
		{`add_class: "persona-{{ .Persona }}"`, AddClass, "", "persona-runner"},
		{`add_class: "x-{{ .Traits.first_name }} {{ .Stage }}"`, AddClass, "", "x-Jane-intent"},
		{`remove_class: promo`, RemoveClass, "", "promo"},
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			s := actionSet(t, tt.action)
			p := s.Match("/")
			d := s.Decide(p, v, &Request{Path: "/"})
			if len(d.Actions) != 1 {
				t.Fatalf("Decide actions = %+v, trace %+v, want one", d.Actions, d.Trace)
			}
			a := d.Actions[0]
			if a.Op != tt.op || a.Name != tt.name || string(a.Value) != tt.value || a.Rule != "r" || a.Sel != 0 {
				t.Errorf("Decide action = {%v %q %q %s}, want {%v %q %q r}", a.Op, a.Name, a.Value, a.Rule, tt.op, tt.name, tt.value)
			}
			if got := p.SelectorText(a.Sel); got != "#x" {
				t.Errorf("SelectorText = %q, want #x", got)
			}
		})
	}
}

func TestStaticContentIsPrecomputed(t *testing.T) {
	for _, action := range []string{`inner: "<b>x</b>"`, `text: "a & b"`, `attr: {href: "/x?a&b"}`, `add_class: c`} {
		s := actionSet(t, action)
		r := s.Match("/").rules[0]
		if r.act.content.Templated() || r.act.content.Static() == nil {
			t.Errorf("%s: content is a template, want precomputed bytes", action)
		}
	}
}

func TestTemplateErrorDoesNotFire(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": `
pages:
  - match: ["/"]
    rules:
      - id: bad
        select: "#x"
        text: "{{ .Traits.name.first }}"
      - id: fallback
        select: "#x"
        text: "hello"
`})
	d := s.Decide(s.Match("/"), &Visitor{Traits: map[string]any{"name": "Jane"}}, nil)
	if d.Trace[0].Fired || !strings.HasPrefix(d.Trace[0].Reason, "render: ") {
		t.Errorf("trace[0] = %+v, want not fired with a render reason", d.Trace[0])
	}
	if len(d.Actions) != 1 || d.Actions[0].Rule != "fallback" {
		t.Errorf("actions = %+v, want the fallback's", d.Actions)
	}
}

func TestOpString(t *testing.T) {
	want := []string{"replace", "inner", "prepend", "append", "before", "after", "remove", "attr", "add_class", "remove_class"}
	for i, w := range want {
		if got := Op(i + 1).String(); got != w {
			t.Errorf("Op(%d) = %q, want %q", i+1, got, w)
		}
	}
	if Replace != 1 || RemoveClass != 10 {
		t.Errorf("Replace = %d, RemoveClass = %d: the values must match the rewrite package's", Replace, RemoveClass)
	}
}
