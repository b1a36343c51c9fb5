package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/tailor-edge/tailor/identity"
)

// The hostile-value fixture (issue 15): a page whose rules write one
// visitor value, the trait v, into every context a template can land in,
// and values that try to break out of each. The browser test loads it in
// Chromium once per value; the test below checks the served bytes.

// contextPage is the origin's page: each element is a target. pwn records
// script that an injected value ran; greet is the page's own handler.
const contextPage = `<!doctype html><html><head>
<meta http-equiv="refresh" content="3600" id="refresh">
<script>window.__pwned = []; function pwn(i) { __pwned.push(i) } function greet(s) { window.__greeted = s }</script>
<script id="str">var cfgUser = "";</script>
<script id="val">var cfgVal = 0;</script>
<script id="twice">var twiceA = "", twiceB = '';</script>
<script id="tmpl">var tmplLit = ` + "``" + `;</script>
<script id="pre">var preVal;</script>
<script id="hbs" type="text/x-handlebars-template"><p>Hi</p></script>
<script id="keep">var kept = 1;</script>
<style id="theme">p.hello { color: black }</style>
</head><body>
<p class="hello">Hello</p>
<p class="plain">Plain</p>
<a id="link" href="/">link</a>
<img id="img" src="/pixel.gif" alt="">
<img id="srcset" srcset="/pixel.gif 1x" alt="">
<form id="form" action="/f"><button id="fbtn" type="button" formaction="/g">go</button></form>
<button id="btn" type="button" onclick="greet('x')">hi</button>
<p id="styled" style="color: black">styled</p>
<iframe id="frame" srcdoc="Hi"></iframe>
</body></html>`

// contextRules writes the trait v into each context of contextPage.
const contextRules = `pages:
  - match: ["/"]
    rules:
      - { id: script-string, select: "#str", inner: 'var cfgUser = "{{ .Traits.v }}";' }
      - { id: script-value, select: "#val", text: 'var cfgVal = {{ .Traits.v }};' }
      - { id: script-twice, select: "#twice", inner: "var twiceA = \"{{ .Traits.v }}\", twiceB = '{{ .Traits.v }}';" }
      - { id: script-template-literal, select: "#tmpl", inner: "var tmplLit = ` + "`{{ .Traits.v }}`" + `;" }
      - { id: script-prepend, select: "#pre", prepend: "var preVal = {{ .Traits.v }};" }
      - { id: client-template, select: "#hbs", inner: "<p>Hi {{ .Traits.v }}</p>" }
      - { id: prose-in-a-script, select: "#keep", text: "it's {{ .Traits.v }}" }
      - { id: style-inner, select: "#theme", inner: "p.hello { color: {{ .Traits.v }} }" }
      - { id: markup, select: ".hello", inner: "<b>Hi {{ .Traits.v }}</b>" }
      - { id: text, select: ".plain", text: "Hi {{ .Traits.v }}" }
      - { id: href, select: "#link", attr: { href: "{{ .Traits.v }}" } }
      - { id: src, select: "#img", attr: { src: "{{ .Traits.v }}" } }
      - { id: srcset, select: "#srcset", attr: { srcset: "{{ .Traits.v }} 1x" } }
      - { id: action, select: "#form", attr: { action: "{{ .Traits.v }}" } }
      - { id: formaction, select: "#fbtn", attr: { formaction: "{{ .Traits.v }}" } }
      - { id: handler, select: "#btn", attr: { onclick: "greet('{{ .Traits.v }}')" } }
      - { id: style-attr, select: "#styled", attr: { style: "color: {{ .Traits.v }}" } }
      - { id: srcdoc, select: "#frame", attr: { srcdoc: "<p>Hi {{ .Traits.v }}</p>" } }
      - { id: refresh, select: "#refresh", attr: { content: "3600; url={{ .Traits.v }}" } }
`

// hostileValues try to leave each context and call top.pwn; the last ones
// are harmless values that must arrive unchanged.
var hostileValues = []string{
	`<script>top.pwn(1)</script>`,
	`"><img src=x onerror=top.pwn(2)>`,
	`';top.pwn(3);//`,
	`";top.pwn(4);//`,
	`\";top.pwn(5);//`,
	`</script><script>top.pwn(6)</script>`,
	`javascript:top.pwn(7)`,
	"java\tscript:top.pwn(8)",
	" JaVaScRiPt:top.pwn(9)",
	"`+top.pwn(10)+`",
	"${top.pwn(11)}",
	`1;top.pwn(12)`,
	`red;background:url(javascript:top.pwn(13))`,
	`</style><script>top.pwn(14)</script>`,
	`expression(top.pwn(15))`,
	`<svg onload=top.pwn(16)>`,
	`\`,
	`&lt;script&gt;top.pwn(18)&lt;/script&gt;`,
	`<iframe srcdoc="<script>top.pwn(19)</script>"></iframe>`,
	`0;url=javascript:top.pwn(20)`,
	`x' onmouseover='top.pwn(21)`,
	`--><script>top.pwn(22)</script><!--`,
	`O'Brien & "Sons" <ltd>`,
	`Zoë 🙂`,
}

// serveContexts starts tailor in front of an origin serving contextPage
// with contextRules and a preview key; preview(v) is the page's URL for a
// visitor whose trait v is v.
func serveContexts(t *testing.T) (preview func(v string) string) {
	t.Helper()
	origin := newRawOrigin(t, map[string]string{
		"/":            fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s", len(contextPage), contextPage),
		"/pixel.gif":   "HTTP/1.1 200 OK\r\nContent-Type: image/gif\r\nContent-Length: 0\r\n\r\n",
		"/favicon.ico": "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
	})
	const key = "contexts-preview-key"
	addr := serveTailor(t, origin.ln.Addr().String(), "preview: { key: "+key+" }\n", contextRules)
	return func(v string) string {
		tok, err := identity.SignPreview(key, identity.PreviewClaims{Traits: map[string]any{"v": v}}, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return "http://" + addr + "/?" + identity.PreviewParam + "=" + tok
	}
}

// TestHostileValuesAreEscapedForTheirContext (issue 15): templates were
// HTML-escaped wherever their target lay, so a profile value ran script
// inside an existing <script>, in a srcdoc, or redirected through a meta
// refresh. The served page is checked here byte-wise; the browser test
// checks that Chromium runs none of it.
func TestHostileValuesAreEscapedForTheirContext(t *testing.T) {
	preview := serveContexts(t)
	get := func(v string) string {
		resp, err := http.Get(preview(v))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(resp.Header.Get("X-Tailor-Decision"), "script-string") {
			t.Fatalf("the rules did not apply: %q", resp.Header.Get("X-Tailor-Decision"))
		}
		return string(b)
	}
	for _, tc := range []struct{ value, want string }{
		// In a <script> string: a JS string escape; < never appears raw.
		{`";top.pwn(4);//`, `var cfgUser = "\u0022;top.pwn(4);\/\/";`},
		{`</script><script>top.pwn(6)</script>`, `var cfgUser = "\u003c\/script\u003e\u003cscript\u003etop.pwn(6)\u003c\/script\u003e";`},
		// Outside a string: a JS value (JSON).
		{`1;top.pwn(12)`, `var cfgVal = "1;top.pwn(12)";`},
		// Twice, ending in a backslash.
		{`\`, `var twiceA = "\\", twiceB = '\\';`},
		// In a <style>: a value that is not a safe CSS value is replaced.
		{`red;background:url(javascript:top.pwn(13))`, `p.hello { color: ZgotmplZ }`},
		// srcdoc is HTML in an attribute: escaped twice.
		{`<script>top.pwn(1)</script>`, `srcdoc="&lt;p&gt;Hi &amp;lt;script&amp;gt;top.pwn(1)&amp;lt;/script&amp;gt;&lt;/p&gt;"`},
		// A refresh to javascript: goes nowhere.
		{`javascript:top.pwn(7)`, `content="3600; url=#ZgotmplZ"`},
		{`0;url=javascript:top.pwn(20)`, `href="#ZgotmplZ"`},
		// Handlers: JS in an attribute.
		{`';top.pwn(3);//`, `onclick="greet(&#39;\u0027;top.pwn(3);\/\/&#39;)"`},
	} {
		if page := get(tc.value); !strings.Contains(page, tc.want) {
			t.Errorf("value %q: the page does not contain %s\n%s", tc.value, tc.want, page)
		}
	}
	// No value changes the page's structure: the same elements and
	// attributes, in the same order, as for a harmless value.
	want := structure(get("harmless"))
	for _, v := range hostileValues {
		if got := structure(get(v)); got != want {
			t.Errorf("value %q changed the page's structure:\n%s\nwant\n%s", v, got, want)
		}
	}
	// A client-side template's <script> holds markup: HTML escaping. Text
	// that html/template cannot place in JavaScript (an apostrophe opens
	// a string that never ends) leaves the <script> as the origin sent it.
	page := get(`<b>`)
	for _, want := range []string{`<script id="hbs" type="text/x-handlebars-template"><p>Hi &lt;b&gt;</p></script>`, `<script id="keep">var kept = 1;</script>`} {
		if !strings.Contains(page, want) {
			t.Errorf("<b>: the page does not contain %s\n%s", want, page)
		}
	}
	// A harmless value reads as written in every context.
	page = get(`O'Brien`)
	for _, want := range []string{`<b>Hi O&#39;Brien</b>`, `var cfgUser = "O\u0027Brien";`, `href="O%27Brien"`, `content="3600; url=O&#39;Brien"`} {
		if !strings.Contains(page, want) {
			t.Errorf("O'Brien: the page does not contain %s\n%s", want, page)
		}
	}
}

// TestCheckFlagsVisitorValuesInScriptContexts (issue 15): `tailor check`
// warned about none of the rule shapes that wrote visitor values into a
// script, a style, a handler, a srcdoc or a refresh. Each is flagged at
// its file:line:col; text in markup is not.
func TestCheckFlagsVisitorValuesInScriptContexts(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "rules"), 0o755)
	rules := `pages:
  - match: ["/"]
    rules:
      - { id: a, select: "script#cfg", inner: 'var u = "{{ .Traits.v }}";' }
      - { id: b, select: "head > script", text: 'var n = {{ .Traits.v }};' }
      - { id: c, select: "#btn", attr: { onclick: "greet('{{ .Traits.v }}')" } }
      - { id: d, select: "#s", attr: { style: "color: {{ .Traits.v }}" } }
      - { id: e, select: "head > style", inner: "p { color: {{ .Traits.v }} }" }
      - { id: f, select: ".x", inner: "<script>var z = {{ .Traits.v }}</script>" }
      - { id: g, select: "#f", attr: { srcdoc: "<p>{{ .Traits.v }}</p>" } }
      - { id: h, select: "#r", attr: { content: "0; url={{ .Traits.v }}" } }
      - { id: safe1, select: ".y", text: "Hi {{ .Traits.v }}" }
      - { id: safe2, select: "#desc", attr: { content: "About {{ .Traits.v }}" } }
      - { id: safe3, select: "script#cfg2", inner: "var static = 1;" }
`
	os.WriteFile(filepath.Join(dir, "rules", "r.yaml"), []byte(rules), 0o644)
	cfg := filepath.Join(dir, "tailor.yaml")
	os.WriteFile(cfg, []byte("rules: { dir: rules }\n"), 0o644)
	code, out, errs := run(t, context.Background(), "check", "--config", cfg)
	if code != exitOK {
		t.Fatalf("check exit %d: %s %s", code, out, errs)
	}
	all := out + errs
	for _, want := range []string{
		"r.yaml:4:47: warning: inner: visitor values are written into a <script> element",
		"r.yaml:5:49: warning: text: visitor values are written into a <script> element",
		"r.yaml:6:51: warning: attr.onclick: visitor values are written into JavaScript",
		"r.yaml:7:47: warning: attr.style: visitor values are written into CSS",
		"r.yaml:8:49: warning: inner: visitor values are written into a <style> element",
		"r.yaml:9:39: warning: inner: visitor values are written into JavaScript",
		"r.yaml:10:48: warning: attr.srcdoc: visitor values are written into an iframe's document",
		"r.yaml:11:49: warning: attr.content: visitor values are written into a refresh URL",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("check did not say %q:\n%s", want, all)
		}
	}
	if n := strings.Count(all, "warning:"); n != 8 {
		t.Errorf("%d warnings, want 8 (none for the safe rules):\n%s", n, all)
	}
}

// structure lists the start and end tags of page and their attributes'
// names, as a browser's tokenizer reads them.
func structure(page string) string {
	var b strings.Builder
	z := html.NewTokenizer(strings.NewReader(page))
	for {
		switch tt := z.Next(); tt {
		case html.ErrorToken:
			return b.String()
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			tok := z.Token()
			b.WriteString(tt.String() + " " + tok.Data)
			for _, a := range tok.Attr {
				b.WriteString(" " + a.Key)
			}
			b.WriteString("\n")
		}
	}
}

// TestExplainWarnsOfVisitorValuesInAScript (issue 15): a selector that
// does not name its tag (#cfg) hides from tailor check that it targets a
// <script>; explain, which has the page, says so, and shows the value
// escaped as JavaScript.
func TestExplainWarnsOfVisitorValuesInAScript(t *testing.T) {
	origin := newRawOrigin(t, map[string]string{"/": htmlResponse(`<html><head><script id="cfg">var u = "";</script></head><body></body>`)})
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "rules"), 0o755)
	os.WriteFile(filepath.Join(dir, "rules", "r.yaml"), []byte("pages:\n  - match: [\"/\"]\n    rules:\n      - { id: cfg, select: \"#cfg\", inner: 'var u = \"{{ .Traits.v }}\";' }\n"), 0o644)
	cfg := filepath.Join(dir, "tailor.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("origin: \"http://%s\"\nrules: { dir: rules }\n", origin.ln.Addr())), 0o644)
	code, out, errs := run(t, context.Background(), "explain", "--config", cfg, "--url", "/", "--profile", `{"id":"x","traits":{"v":"\";top.pwn(1)//"}}`)
	if code != exitOK {
		t.Fatalf("explain exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"warning: rule cfg writes visitor values into a <script> (escaped as JavaScript there)",
		`+<html><head><script id="cfg">var u = "\u0022;top.pwn(1)\/\/";</script>`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain does not say %q:\n%s", want, out)
		}
	}
}
