package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const explainPage = "<!DOCTYPE html>\n<html><body>\n<p class=\"greeting\">Welcome!</p>\n<div class=\"cta\"><a href=\"/shop\">Shop</a></div>\n</body></html>\n"

const explainRules = `stages: [awareness, interest, intent]
pages:
  - match: ["/"]
    rules:
      - id: greet-known
        when: { known: true }
        select: ".greeting"
        text: "Welcome back, {{ .Traits.first_name }}!"
      - id: cta-by-stage
        select: ".cta"
        map:
          by: stage
          intent: { inner: '<a href="/cart">Finish your order</a>' }
`

func explainSetup(t *testing.T) string {
	t.Helper()
	return explainSetupWith(t, explainRules)
}

// explainSetupWith writes a config and the rule file src, in front of an
// origin serving explainPage, and returns the config's path.
func explainSetupWith(t *testing.T, src string) string {
	t.Helper()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, explainPage)
	}))
	t.Cleanup(origin.Close)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "rules"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules", "home.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "tailor.yaml")
	text := fmt.Sprintf("listen: %q\norigin: %q\nadmin: { listen: %q }\nrules: { dir: rules }\n", freeAddr(t), origin.URL, freeAddr(t))
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestExplainShowsTraceAndDiff(t *testing.T) {
	cfg := explainSetup(t)
	code, out, stderr := run(t, context.Background(), "explain", "--config", cfg, "--url", "/",
		"--profile", `{"id":"cust-1","stage":"intent","traits":{"first_name":"<b>Jane</b>"}}`)
	if code != exitOK {
		t.Fatalf("explain exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"greet-known", "cta-by-stage", "stage: intent",
		"-<p class=\"greeting\">Welcome!</p>",
		"+<p class=\"greeting\">Welcome back, &lt;b&gt;Jane&lt;/b&gt;!</p>",
		"+<div class=\"cta\"><a href=\"/cart\">Finish your order</a></div>",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain output lacks %q:\n%s", want, out)
		}
	}
}

func TestExplainNamesTheCellOfAGrid(t *testing.T) {
	cfg := explainSetupWith(t, `stages: [awareness, interest, intent]
pages:
  - match: ["/"]
    rules:
      - id: cta-drm
        select: ".cta"
        map:
          by: [segment, stage]
          vip: { intent: { inner: '<a href="/cart">Your VIP cart</a>' } }
          "*": { intent: { inner: '<a href="/cart">Your cart</a>' } }
`)
	code, out, stderr := run(t, context.Background(), "explain", "--config", cfg, "--url", "/",
		"--profile", `{"id":"cust-1","stage":"intent","segments":["vip"]}`)
	if code != exitOK {
		t.Fatalf("explain exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"✓ cta-drm (.cta): map cell segment vip × stage intent",
		"map cta-drm: vip/intent",
		`+<div class="cta"><a href="/cart">Your VIP cart</a></div>`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain output lacks %q:\n%s", want, out)
		}
	}
}

func TestExplainAnonymousVisitorChangesNothing(t *testing.T) {
	cfg := explainSetup(t)
	code, out, stderr := run(t, context.Background(), "explain", "--config", cfg, "--url", "/")
	if code != exitOK {
		t.Fatalf("explain exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "no change to the page") {
		t.Errorf("an anonymous visitor in the first stage should see the origin's page:\n%s", out)
	}
}

// checkSelector runs tailor check on explainSetup's files with sel as the
// call to action's selector.
func checkSelector(t *testing.T, sel string) (code int, stdout, stderr string) {
	t.Helper()
	cfg := explainSetup(t)
	rules := strings.Replace(explainRules, `select: ".cta"`, `select: "`+sel+`"`, 1)
	if err := os.WriteFile(filepath.Join(filepath.Dir(cfg), "rules", "home.yaml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	return run(t, context.Background(), "check", "--config", cfg)
}

func TestCheckReportsRuleErrors(t *testing.T) {
	code, _, stderr := checkSelector(t, "div[")
	if code != exitInvalid {
		t.Errorf("check with a bad selector exit %d, want 1", code)
	}
	if !strings.Contains(stderr, "home.yaml:10:17:") {
		t.Errorf("check should point at home.yaml line 10, column 17:\n%s", stderr)
	}
}

func TestCheckWarnsOfSelectorsCostlyOnDeepPagesButPasses(t *testing.T) {
	// Issue 14's selector: its cost grows with the depth of the page.
	code, stdout, stderr := checkSelector(t, "span div div div div div div div div div div div div div p")
	if code != exitOK {
		t.Errorf("check with a costly selector exit %d, want 0:\n%s", code, stderr)
	}
	want := `home.yaml:10:17: warning: select: "span div div div div div div div div div div div div div p" has 14 descendant or sibling combinators in a row`
	if !strings.Contains(stderr, want) {
		t.Errorf("check should warn %q:\n%s", want, stderr)
	}
	if !strings.Contains(stdout, "(1 page, 2 rules, 1 warning)") {
		t.Errorf("check should count the warning:\n%s", stdout)
	}
}

func TestExplainPrintsAPreviewLinkForTheProfile(t *testing.T) {
	cfg := explainSetup(t)
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("preview: { key: preview-key-0123456789abcdef0123456789 }\n")
	f.Close()
	code, out, stderr := run(t, context.Background(), "explain", "--config", cfg, "--url", "/?a=1",
		"--profile", `{"id":"cust-1","stage":"intent","segments":["vip"]}`)
	if code != exitOK {
		t.Fatalf("explain exit %d: %s", code, stderr)
	}
	_, link, ok := strings.Cut(out, "preview link (valid 24h0m0s): ")
	if !ok || !strings.HasPrefix(link, "/?a=1&tailor_preview=") {
		t.Fatalf("no preview link in:\n%s", out)
	}
	tok := strings.TrimSpace(strings.TrimPrefix(link, "/?a=1&tailor_preview="))
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("preview token %q is not a JWT", tok)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	if claims["stage"] != "intent" || fmt.Sprint(claims["segments"]) != "[vip]" || claims["sub"] != "cust-1" || claims["iss"] != "tailor-preview" {
		t.Errorf("preview claims = %v", claims)
	}
}

// composeRules adds, on the call to action, a rule of another kind (it
// composes) and one of the same kind as cta-by-stage's (overridden when
// the map has a case for the visitor).
const composeRules = `
      - id: cta-track
        select: ".cta"
        attr: { data-track: cta, data-stage: "{{ .Stage }}", data-old: "" }
      - id: cta-plain
        select: ".cta"
        text: "Shop now"
`

// TestExplainShowsWhichRuleOverrodeAChange: per element, explain names
// the rule behind each kind of change and the rules overridden by it.
func TestExplainShowsWhichRuleOverrodeAChange(t *testing.T) {
	cfg := explainSetup(t)
	if err := os.WriteFile(filepath.Join(filepath.Dir(cfg), "rules", "home.yaml"), []byte(explainRules+composeRules), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := run(t, context.Background(), "explain", "--config", cfg, "--url", "/",
		"--profile", `{"id":"cust-1","stage":"intent"}`)
	if code != exitOK {
		t.Fatalf("explain exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"  ✓ cta-track (.cta): matched\n",
		"  - cta-plain (.cta): content overridden by rule cta-by-stage\n",
		"changes (per element, the first matching rule makes each kind of change):\n",
		"  .cta\n" +
			"    content                  cta-by-stage\n" +
			"    attribute data-track     cta-track\n" +
			"    attribute data-stage     cta-track\n" +
			"    attribute data-old       cta-track\n" +
			"    content                  cta-plain: overridden by cta-by-stage\n",
		`+<div class="cta" data-track="cta" data-stage="intent"><a href="/cart">Finish your order</a></div>`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain output lacks %q:\n%s", want, out)
		}
	}
}

// TestCheckWarnsOfAShadowedRuleOnly: a rule whose every change an earlier
// unconditional rule makes is a warning (check passes); rules that
// compose are not.
func TestCheckWarnsOfAShadowedRuleOnly(t *testing.T) {
	cfg := explainSetup(t)
	rulesDir := filepath.Join(filepath.Dir(cfg), "rules")
	if err := os.WriteFile(filepath.Join(rulesDir, "home.yaml"), []byte(explainRules+composeRules), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, context.Background(), "check", "--config", cfg)
	if code != exitOK || strings.Contains(stderr, "warning") {
		t.Errorf("check of rules that compose: exit %d, %s%s; want 0 and no warning", code, stdout, stderr)
	}
	shadowed := composeRules + `      - id: cta-plain-again
        select: ".cta"
        inner: "<b>Shop</b>"
`
	if err := os.WriteFile(filepath.Join(rulesDir, "home.yaml"), []byte(explainRules+shadowed), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = run(t, context.Background(), "check", "--config", cfg)
	want := `home.yaml:23:9: warning: inner: rule cta-plain-again never fires: what it changes on ".cta" (content) is changed first by rule cta-plain (line 20), which has no conditions`
	if code != exitOK || !strings.Contains(stderr, want) || !strings.Contains(stdout, "1 warning") {
		t.Errorf("check of a shadowed rule: exit %d,\n%s%s\nwant 0 and %q", code, stdout, stderr, want)
	}
}
