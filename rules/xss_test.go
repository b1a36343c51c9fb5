package rules

import (
	"strings"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// payloads a profile field might hold: a visitor's first name is whatever
// the visitor typed into a form.
var payloads = []string{
	`"><script>alert(1)</script>`,
	`'><script>alert(1)</script>`,
	`</div><script>alert(1)</script>`,
	`<img src=x onerror=alert(1)>`,
	`" onmouseover="alert(1)`,
	`' onmouseover='alert(1)`,
	`</script><script>alert(1)</script>`,
	`</textarea><script>alert(1)</script>`,
	`<!--<script>alert(1)</script>-->`,
	`javascript:alert(1)`,
	` JaVaScRiPt:alert(1)`,
	"java\tscript:alert(1)",
	`data:text/html,<script>alert(1)</script>`,
	`{{ .ID }}`,
}

func xssSet(t *testing.T) *Set {
	t.Helper()
	return mustLoad(t, map[string]string{"a.yaml": `
pages:
  - match: ["/text"]
    rules: [{id: text, select: "#x", text: "Hello {{ .Traits.name }}!"}]
  - match: ["/inner"]
    rules: [{id: inner, select: "#x", inner: "<p class=\"{{ .Traits.name }}\" title='{{ .Traits.name }}'>Hello <b>{{ .Traits.name }}</b></p>"}]
  - match: ["/attr"]
    rules: [{id: attr, select: "#x", attr: {title: "Hi {{ .Traits.name }}"}}]
  - match: ["/script"]
    rules: [{id: script, select: "#x", append: "<script>var name = {{ .Traits.name }}; var s = \"{{ .Traits.name }}\";</script>"}]
  - match: ["/href"]
    rules: [{id: href, select: "#x", attr: {href: "{{ .Traits.name }}"}}]
  - match: ["/src"]
    rules: [{id: src, select: "#x", attr: {src: "{{ .Traits.name }}"}}]
  - match: ["/inner-href"]
    rules: [{id: inner-href, select: "#x", inner: "<a href=\"{{ .Traits.name }}\">go</a><img src=\"{{ .Traits.name }}\">"}]
  - match: ["/onclick"]
    rules: [{id: onclick, select: "#x", attr: {onclick: "hello({{ .Traits.name }})"}}]
`})
}

// render decides path for a visitor named name and returns the one
// action's value.
func render(t *testing.T, s *Set, path, name string) string {
	t.Helper()
	d := s.Decide(s.Match(path), &Visitor{Traits: map[string]any{"name": name}}, &Request{Path: path})
	if len(d.Actions) != 1 {
		t.Fatalf("%s: Decide = %+v", path, d)
	}
	return string(d.Actions[0].Value)
}

// parseFragment parses markup as the content of a <div>, as a browser
// would when it is spliced into a page there.
func parseFragment(t *testing.T, markup string) []*html.Node {
	t.Helper()
	ctx := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}
	nodes, err := html.ParseFragment(strings.NewReader(markup), ctx)
	if err != nil {
		t.Fatalf("parse %q: %v", markup, err)
	}
	return nodes
}

// walk calls fn on every node under nodes.
func walk(nodes []*html.Node, fn func(*html.Node)) {
	for _, n := range nodes {
		fn(n)
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk([]*html.Node{c}, fn)
		}
	}
}

// checkNoInjection fails when markup holds a script element, an event
// handler attribute or a javascript: URL that the template did not write.
func checkNoInjection(t *testing.T, markup string, allowScripts int) {
	t.Helper()
	scripts := 0
	walk(parseFragment(t, markup), func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		if n.DataAtom == atom.Script {
			scripts++
		}
		if n.DataAtom == atom.Img && n.Data == "img" {
			for _, a := range n.Attr {
				if a.Key == "onerror" {
					t.Errorf("injected onerror in %q", markup)
				}
			}
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") {
				t.Errorf("injected %s attribute in %q", a.Key, markup)
			}
			if a.Key == "href" || a.Key == "src" {
				v := strings.ToLower(strings.Map(func(r rune) rune {
					if r <= ' ' {
						return -1
					}
					return r
				}, a.Val))
				if strings.HasPrefix(v, "javascript:") || strings.HasPrefix(v, "data:") {
					t.Errorf("dangerous URL %q in %q", a.Val, markup)
				}
			}
		}
	})
	if scripts != allowScripts {
		t.Errorf("%d script elements in %q, want %d", scripts, markup, allowScripts)
	}
}

func TestXSSText(t *testing.T) {
	s := xssSet(t)
	for _, p := range payloads {
		v := render(t, s, "/text", p)
		checkNoInjection(t, v, 0)
		// The text reads as the visitor wrote it.
		var text strings.Builder
		walk(parseFragment(t, v), func(n *html.Node) {
			if n.Type == html.TextNode {
				text.WriteString(n.Data)
			}
		})
		if want := "Hello " + p + "!"; text.String() != want {
			t.Errorf("text of %q = %q, want %q", v, text.String(), want)
		}
	}
}

func TestXSSInnerTemplate(t *testing.T) {
	s := xssSet(t)
	for _, p := range payloads {
		v := render(t, s, "/inner", p)
		checkNoInjection(t, v, 0)
		nodes := parseFragment(t, v)
		if len(nodes) != 1 || nodes[0].Data != "p" {
			t.Fatalf("%q parses to %d nodes, want one <p>", v, len(nodes))
		}
		attrs := map[string]string{}
		for _, a := range nodes[0].Attr {
			attrs[a.Key] = a.Val
		}
		if len(attrs) != 2 || attrs["class"] != p || attrs["title"] != p {
			t.Errorf("%q: attributes %v, want class and title holding %q intact", v, attrs, p)
		}
		var bold string
		walk(nodes, func(n *html.Node) {
			if n.Type == html.ElementNode && n.Data == "b" && n.FirstChild != nil {
				bold = n.FirstChild.Data
			}
		})
		if bold != p {
			t.Errorf("%q: <b> holds %q, want %q", v, bold, p)
		}
	}
}

func TestXSSAttr(t *testing.T) {
	s := xssSet(t)
	for _, p := range payloads {
		v := render(t, s, "/attr", p)
		// As the rewriter writes it: between double quotes.
		markup := `<a title="` + v + `">x</a>`
		checkNoInjection(t, markup, 0)
		nodes := parseFragment(t, markup)
		if len(nodes) != 1 || len(nodes[0].Attr) != 1 || nodes[0].Attr[0].Key != "title" || nodes[0].Attr[0].Val != "Hi "+p {
			t.Errorf("%q: attribute broken: %+v", markup, nodes[0].Attr)
		}
	}
}

func TestXSSScriptBlock(t *testing.T) {
	s := xssSet(t)
	for _, p := range payloads {
		v := render(t, s, "/script", p)
		checkNoInjection(t, v, 1)
		var script string
		walk(parseFragment(t, v), func(n *html.Node) {
			if n.DataAtom == atom.Script && n.FirstChild != nil {
				script = n.FirstChild.Data
			}
		})
		// Inside <script> the value is a JSON string: no markup, no
		// quote that ends the string.
		if strings.ContainsAny(script, "<>") {
			t.Errorf("script %q holds < or >", script)
		}
		// var name = "..."; var s = "...";
		end := jsStringEnd(script, len(`var name = `))
		if !strings.HasPrefix(script, `var name = "`) || end < 0 || !strings.HasPrefix(script[end:], `"; var s = "`) ||
			jsStringEnd(script, end+len(`"; var s = `)) != len(script)-2 {
			t.Errorf("script %q: the value is not one JS string per use", script)
		}
	}
}

func TestXSSURLs(t *testing.T) {
	s := xssSet(t)
	for _, p := range []string{"javascript:alert(1)", " JaVaScRiPt:alert(1)", "java\tscript:alert(1)", "vbscript:msgbox(1)", "data:text/html,<script>alert(1)</script>"} {
		for _, path := range []string{"/href", "/src"} {
			v := render(t, s, path, p)
			if v != "#ZgotmplZ" {
				t.Errorf("%s with %q = %q, want #ZgotmplZ", path, p, v)
			}
		}
		checkNoInjection(t, render(t, s, "/inner-href", p), 0)
	}
	// A safe URL passes, escaped for the attribute.
	if v := render(t, s, "/href", "/products?a=1&b=\"2\""); v != "/products?a=1&amp;b=%222%22" {
		t.Errorf("href = %q", v)
	}
}

func TestXSSEventHandler(t *testing.T) {
	s := xssSet(t)
	for _, p := range payloads {
		v := render(t, s, "/onclick", p)
		markup := `<a onclick="` + v + `">x</a>`
		nodes := parseFragment(t, markup)
		if len(nodes) != 1 || len(nodes[0].Attr) != 1 {
			t.Fatalf("%q: attribute broken", markup)
		}
		// The handler calls hello with one JS string argument.
		js := nodes[0].Attr[0].Val
		if !strings.HasPrefix(js, `hello("`) || jsStringEnd(js, len(`hello(`)) != len(js)-2 || strings.ContainsAny(js, "<>") {
			t.Errorf("onclick = %q, want hello with one string", js)
		}
	}
}

// jsStringEnd returns the index of the quote that ends the JS string
// starting with the quote at i, or -1.
func jsStringEnd(js string, i int) int {
	q := js[i]
	for j := i + 1; j < len(js); j++ {
		switch js[j] {
		case '\\':
			j++
		case q:
			return j
		}
	}
	return -1
}
