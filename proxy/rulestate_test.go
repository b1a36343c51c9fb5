package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/tailor-edge/tailor/config"
)

// greetingRules is a rule set replacing the greeting with text, its
// fragment beside the rules directory as fragments often are.
func greetingRules(text string) fstest.MapFS {
	return fstest.MapFS{
		"rules/home.yaml":         {Data: []byte("pages:\n  - match: [\"/\"]\n    rules:\n      - id: greet\n        select: .greeting\n        replace: { file: ../fragments/greeting.html }\n")},
		"fragments/greeting.html": {Data: []byte(`<p class="greeting">` + text + `</p>`)},
	}
}

// With rules.bucket the rules come from published versions: the version
// serving shows in the decision header and the gauge, a bad version keeps
// the good one serving (counted), and an older one never replaces a newer.
func TestPublishedRuleVersionsSwapWhole(t *testing.T) {
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, `<p class="greeting">Welcome!</p>`)
	}))
	p := serveTest(t, newTestProxy(t, origin.URL, func(c *config.Config, _ *Options) {
		c.NATS.URL = "nats://127.0.0.1:1"
		c.Rules.Bucket = "tailor_rules"
		c.Rules.Dir = t.TempDir() // has no rules: must not be read
		c.Debug.DecisionHeader = true
	}))
	if v := p.RulesVersion(); v != 0 {
		t.Fatalf("RulesVersion() before any load = %d, want 0", v)
	}
	home := func() (string, string) {
		resp, body := get(t, p.url+"/")
		return string(body), resp.Header.Get("X-Tailor-Decision")
	}
	if body, _ := home(); !strings.Contains(body, "Welcome!") {
		t.Fatalf("before any version: %q, want the origin's page", body)
	}
	if err := p.LoadRulesFS(greetingRules("Hello v3"), "rules", 3); err != nil {
		t.Fatal(err)
	}
	body, dec := home()
	if !strings.Contains(body, "Hello v3") || !strings.HasSuffix(dec, "; version=3") {
		t.Fatalf("version 3: %q, decision %q; want its greeting and version=3", body, dec)
	}
	if got := counterValue(t, p.reg, "tailor_rules_version"); got != 3 {
		t.Errorf("tailor_rules_version = %v, want 3", got)
	}
	bad := greetingRules("x")
	bad["rules/home.yaml"] = &fstest.MapFile{Data: []byte("pages: [{match: ['/'], rules: [{id: a, select: '((', text: b}]}]\n")}
	if err := p.LoadRulesFS(bad, "rules", 4); err == nil || !strings.Contains(err.Error(), "rules/home.yaml:1:") {
		t.Errorf("LoadRulesFS(a bad version) = %v, want its problem at rules/home.yaml:line:col", err)
	}
	if err := p.LoadRulesFS(greetingRules("older"), "rules", 2); err == nil {
		t.Error("an older version replaced a newer one")
	}
	if err := p.LoadRules(); err != nil { // SIGHUP: the bucket decides, not rules.dir
		t.Fatal(err)
	}
	if body, _ := home(); !strings.Contains(body, "Hello v3") || p.RulesVersion() != 3 {
		t.Errorf("after a bad version, an older one and SIGHUP: %q, version %d; want version 3 serving", body, p.RulesVersion())
	}
	// The bad version counts; the older one was not loaded at all.
	if got := counterValue(t, p.reg, "tailor_rules_reloads_total", "result", "error"); got != 1 {
		t.Errorf("failed reloads = %v, want 1", got)
	}
}
