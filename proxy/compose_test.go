package proxy

import (
	"strings"
	"testing"

	"github.com/tailor-edge/tailor/config"
)

const bookPage = `<!DOCTYPE html>
<html><body>
<div id="hero"><a class="cta" href="/book" data-old="1">Book a table</a></div>
<footer><p class="promo">Old promo</p></footer>
</body></html>
`

// bookRules has a specific page first and a site-wide page after it, and
// rules of different kinds on one element (issue 17).
var bookRules = map[string]string{
	"10-book.yaml": `
pages:
  - match: ["/book/index.html"]
    rules:
      - id: cta-text
        select: ".cta"
        text: "Book tonight"
      - id: cta-link
        select: ".cta"
        attr: { href: /book/tonight, data-old: "", data-stage: "{{ .Stage }}" }
      - id: cta-text-again
        select: ".cta"
        text: "never shown"
`,
	"20-site.yaml": `
stages: [awareness, interest]
pages:
  - match: ["/**"]
    rules:
      - id: footer-promo
        select: "footer .promo"
        inner: "<b>Free dessert</b>"
      - id: site-cta-class
        select: ".cta"
        add_class: tracked
`,
}

// TestPagesAndRulesComposeThroughTheProxy: on a specific path both the
// specific page and the site-wide page apply; on the text and the
// attributes of one link, rules of different kinds all apply, and the
// bytes around them are the origin's.
func TestPagesAndRulesComposeThroughTheProxy(t *testing.T) {
	_, edit := withRules(t, bookRules)
	origin := pageOrigin(t, bookPage, nil)
	p := startProxy(t, origin, func(c *config.Config, o *Options) {
		edit(c, o)
		c.Debug.DecisionHeader = true
	})

	resp, body := get(t, p.url+"/book/index.html")
	want := strings.NewReplacer(
		`<a class="cta" href="/book" data-old="1">Book a table</a>`, `<a class="cta tracked" href="/book/tonight" data-stage="awareness">Book tonight</a>`,
		`<p class="promo">Old promo</p>`, `<p class="promo"><b>Free dessert</b></p>`,
	).Replace(bookPage)
	if string(body) != want {
		t.Errorf("GET /book/index.html:\n%s\nwant\n%s", body, want)
	}
	if d := resp.Header.Get("X-Tailor-Decision"); !strings.HasPrefix(d, "rules=cta-text,cta-link,footer-promo,site-cta-class;") {
		t.Errorf("X-Tailor-Decision = %q, want the rules of both pages, not cta-text-again", d)
	}
	if h := counterValue(t, p.Registry(), "tailor_rule_hits_total", "rule", "cta-link"); h != 1 {
		t.Errorf("tailor_rule_hits_total{rule=cta-link} = %v, want 1 for a rule of three pairs", h)
	}

	// Elsewhere only the site-wide page applies.
	_, body = get(t, p.url+"/book/other.html")
	want = strings.NewReplacer(
		`<a class="cta" href`, `<a class="cta tracked" href`,
		`<p class="promo">Old promo</p>`, `<p class="promo"><b>Free dessert</b></p>`,
	).Replace(bookPage)
	if string(body) != want {
		t.Errorf("GET /book/other.html:\n%s\nwant\n%s", body, want)
	}
	// And the specific path again, from the page cache.
	if _, body = get(t, p.url+"/book/index.html"); !strings.Contains(string(body), "Book tonight") || !strings.Contains(string(body), "Free dessert") {
		t.Errorf("GET /book/index.html again:\n%s", body)
	}
}

// TestExplainNamesTheOverridingRule: explain's decision says which rule
// made a change another rule would have made.
func TestExplainNamesTheOverridingRule(t *testing.T) {
	_, edit := withRules(t, bookRules)
	p := newTestProxy(t, pageOrigin(t, bookPage, nil), edit)
	ex, err := p.Explain(ExplainRequest{URL: "/book/index.html"})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, tr := range ex.Decision.Trace {
		if tr.Rule == "cta-text-again" {
			found = true
			if tr.Fired || len(tr.Overridden) != 1 || tr.Overridden[0].By != "cta-text" || tr.Overridden[0].Change != "content" {
				t.Errorf("trace of cta-text-again = %+v, want its content overridden by cta-text", tr)
			}
		}
	}
	if !found {
		t.Errorf("no trace of cta-text-again in %+v", ex.Decision.Trace)
	}
	if !strings.Contains(string(ex.Personalized), `<a class="cta tracked" href="/book/tonight" data-stage="awareness">Book tonight</a>`) {
		t.Errorf("explain's page:\n%s", ex.Personalized)
	}
}
