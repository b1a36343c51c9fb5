package proxy

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/testkit/fixtures"
	"github.com/tailor-edge/tailor/rules"
)

// TestGridShowsEachCellToItsVisitors visits each of the 12 cells of a
// segment × stage map through the proxy: the segment from the login
// token, the stage from the journey the visitor browsed first (kept in
// the state cookie). Each sees their cell's hero; the decision header and
// Explain name the cell; the cell's hit counter counts the one view.
func TestGridShowsEachCellToItsVisitors(t *testing.T) {
	origin, _ := recordingOrigin(t, func(r *http.Request) string { return r.RequestURI }, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><html><body><div id="hero"><h1>Welcome</h1></div></body></html>`)
	})
	_, rulesEdit := withRules(t, map[string]string{"grid.yaml": fixtures.Grid})
	p := startProxy(t, origin, func(c *config.Config, o *Options) {
		rulesEdit(c, o)
		c.Identity.Cookie.Keys = []string{"cookie-key-0123456789abcdef0123456789"}
		c.Identity.Cookie.Secure = false
		c.Identity.JWT = testJWT()
		c.Debug.DecisionHeader = true
	})
	for _, row := range fixtures.GridRows {
		for _, st := range fixtures.GridStages {
			cell := row + rules.CellSep + st.Stage
			t.Run(cell, func(t *testing.T) {
				b := newBrowser(t, p.url)
				if row != "*" {
					b.header.Set("Authorization", "Bearer "+token(t, "cust-"+row+"-"+st.Stage, row))
				}
				if st.Path != "" {
					b.get(st.Path)
				}
				resp, page := b.get("/")
				if want := fmt.Sprintf(`<div id="hero"><h1>%s %s</h1></div>`, row, st.Stage); !strings.Contains(page, want) {
					t.Errorf("GET / as %s: page\n%s\nwant %s", cell, page, want)
				}
				if maps := headerField(resp.Header.Get("X-Tailor-Decision"), "maps"); !slices.Equal(maps, []string{"hero-drm:" + cell}) {
					t.Errorf("X-Tailor-Decision = %q, want maps=hero-drm:%s", resp.Header.Get("X-Tailor-Decision"), cell)
				}
				if got := p.MapCaseHits("hero-drm", cell); got != 1 {
					t.Errorf("MapCaseHits(hero-drm, %s) = %v, want 1", cell, got)
				}

				er := ExplainRequest{URL: "/", Cookies: []string{
					p.signer.Name() + "=" + b.cookie(p.signer.Name()),
					p.signer.StateName() + "=" + b.cookie(p.signer.StateName()),
				}}
				if a := b.header.Get("Authorization"); a != "" {
					er.Headers = [][2]string{{"Authorization", a}}
				}
				ex, err := p.Explain(er)
				if err != nil {
					t.Fatal(err)
				}
				want := rules.MapChoice{Rule: "hero-drm", Map: "hero-drm", Case: cell}
				if !slices.Equal(ex.Decision.Cases, []rules.MapChoice{want}) {
					t.Errorf("Explain cases = %v, want %v", ex.Decision.Cases, want)
				}
				if tr := ex.Decision.Trace[0]; !tr.Fired || !strings.Contains(tr.Reason, "segment "+row+" × stage "+st.Stage) {
					t.Errorf("Explain trace = %+v, want the cell segment %s × stage %s", tr, row, st.Stage)
				}
			})
		}
	}
}

// emptyCaseRules have a map whose awareness case is empty ({}: the
// origin's block), beside a plain rule.
const emptyCaseRules = `
stages: [awareness, interest, intent]
pages:
  - match: ["/"]
    rules:
      - id: cta
        select: ".cta"
        map:
          by: stage
          awareness: {}
          intent: {text: "Finish your order"}
      - id: greet
        select: "h1"
        text: "Hello"
`

// TestEmptyMapCaseCountsItsViews: an empty case shows the origin's
// block; the map chose it, so each page view served with it counts as a
// hit of the case and the decision header names it — with or without
// another rule changing the page.
func TestEmptyMapCaseCountsItsViews(t *testing.T) {
	for _, tc := range []struct {
		name, rules string
	}{
		{"with another rule", emptyCaseRules},
		{"alone", strings.Replace(emptyCaseRules, "      - id: greet\n        select: \"h1\"\n        text: \"Hello\"\n", "", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			origin, _ := recordingOrigin(t, func(r *http.Request) string { return r.RequestURI }, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				io.WriteString(w, `<html><body><h1>Hi</h1><p class="cta">Shop</p></body></html>`)
			})
			_, rulesEdit := withRules(t, map[string]string{"a.yaml": tc.rules})
			p := startProxy(t, origin, func(c *config.Config, o *Options) {
				rulesEdit(c, o)
				c.Debug.DecisionHeader = true
			})
			for i := 1; i <= 2; i++ {
				resp, page := newBrowser(t, p.url).get("/")
				if !strings.Contains(page, `<p class="cta">Shop</p>`) {
					t.Errorf("GET /: page %s, want the origin's cta", page)
				}
				if maps := headerField(resp.Header.Get("X-Tailor-Decision"), "maps"); !slices.Equal(maps, []string{"cta:awareness"}) {
					t.Errorf("X-Tailor-Decision = %q, want maps=cta:awareness", resp.Header.Get("X-Tailor-Decision"))
				}
				if got := p.MapCaseHits("cta", "awareness"); got != float64(i) {
					t.Errorf("after %d views: MapCaseHits(cta, awareness) = %v, want %d", i, got, i)
				}
			}
		})
	}
}

// TestHeadCountsNoHits: a HEAD is decided as its GET would be, but is no
// page view: it adds to no rule's or map case's hits.
func TestHeadCountsNoHits(t *testing.T) {
	origin, _ := recordingOrigin(t, func(r *http.Request) string { return r.RequestURI }, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<html><body><h1>Hi</h1><p class="cta">Shop</p></body></html>`)
	})
	_, rulesEdit := withRules(t, map[string]string{"a.yaml": emptyCaseRules})
	p := startProxy(t, origin, rulesEdit)
	get(t, p.url+"/")
	for range 3 {
		resp, err := http.Head(p.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("HEAD / = %d, want 200", resp.StatusCode)
		}
	}
	if got := p.RuleHits("greet"); got != 1 {
		t.Errorf("RuleHits(greet) = %v after a GET and 3 HEADs, want 1", got)
	}
	if got := p.MapCaseHits("cta", "awareness"); got != 1 {
		t.Errorf("MapCaseHits(cta, awareness) = %v after a GET and 3 HEADs, want 1", got)
	}
}

// TestFirstRuleMakesTheContentPerElement: three rules with different
// selectors on one element's content, and an attr rule and a map on it
// too: the page shows the first rule's content and the attribute; the
// decision header, the hit counters and Explain count only the rules
// whose change is on the page, and Explain says which rule overrode the
// others on that element.
func TestFirstRuleMakesTheContentPerElement(t *testing.T) {
	pad := "<p>" + strings.Repeat("a page long enough to stream ahead of its first change. ", 100) + "</p>"
	origin, _ := recordingOrigin(t, func(r *http.Request) string { return r.RequestURI }, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<html><body>`+pad+`<div id="hero" class="hero">origin</div></body></html>`)
	})
	_, rulesEdit := withRules(t, map[string]string{"a.yaml": `
stages: [awareness, interest]
pages:
  - match: ["/"]
    rules:
      - {id: first, select: "#hero", text: "first"}
      - {id: second, select: ".hero", append: "<i>second</i>"}
      - {id: third, select: "div.hero", replace: "<p>third</p>"}
      - {id: track, select: ".hero", attr: {data-track: hero}}
      - id: staged
        select: "body > .hero"
        map:
          by: stage
          awareness: {prepend: "<b>new here</b>"}
`})
	p := startProxy(t, origin, func(c *config.Config, o *Options) {
		rulesEdit(c, o)
		c.Debug.DecisionHeader = true
	})
	var page string
	for range 2 {
		var resp *http.Response
		resp, page = newBrowser(t, p.url).get("/")
		if want := `<html><body>` + pad + `<div id="hero" class="hero" data-track="hero">first</div></body></html>`; page != want {
			t.Errorf("GET / = %s, want %s", page, want)
		}
		d := resp.Header.Get("X-Tailor-Decision")
		if got := headerField(d, "rules"); !slices.Equal(got, []string{"first", "track"}) {
			t.Errorf("X-Tailor-Decision = %q, want rules=first,track", d)
		}
		if got := headerField(d, "maps"); got != nil {
			t.Errorf("X-Tailor-Decision = %q, want no maps: the staged case's content was overridden", d)
		}
	}
	for rule, want := range map[string]float64{"first": 2, "second": 0, "third": 0, "track": 2, "staged": 0} {
		if got := p.RuleHits(rule); got != want {
			t.Errorf("RuleHits(%s) = %v, want %v", rule, got, want)
		}
	}
	if got := p.MapCaseHits("staged", "awareness"); got != 0 {
		t.Errorf("MapCaseHits(staged, awareness) = %v, want 0", got)
	}

	ex, err := p.Explain(ExplainRequest{URL: "/"})
	if err != nil {
		t.Fatal(err)
	}
	if string(ex.Personalized) != string(page) {
		t.Errorf("Explain shows %s, the proxy served %s", ex.Personalized, page)
	}
	fired := map[string]bool{}
	for _, tr := range ex.Decision.Trace {
		fired[tr.Rule] = tr.Fired
		switch tr.Rule {
		case "second", "third", "staged":
			if want := []rules.Override{{Change: "content", By: "first"}}; !slices.Equal(tr.Overridden, want) {
				t.Errorf("Explain: rule %s overridden %+v, want %+v (reason %q)", tr.Rule, tr.Overridden, want, tr.Reason)
			}
		}
	}
	if want := map[string]bool{"first": true, "second": false, "third": false, "track": true, "staged": false}; !maps.Equal(fired, want) {
		t.Errorf("Explain: fired %v, want %v", fired, want)
	}

	// Without the decision header, the second view renders the cached
	// page as it streams: the same counts.
	q := startProxy(t, origin, rulesEdit)
	for range 2 {
		newBrowser(t, q.url).get("/")
	}
	for rule, want := range map[string]float64{"first": 2, "second": 0, "third": 0, "track": 2, "staged": 0} {
		if got := q.RuleHits(rule); got != want {
			t.Errorf("streamed: RuleHits(%s) = %v, want %v", rule, got, want)
		}
	}
}
