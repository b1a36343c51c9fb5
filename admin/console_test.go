package admin

import (
	"bytes"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/proxy"
	"github.com/tailor-edge/tailor/report"
)

// consoleRules have a map by stage and one by segment, a persona and an
// experiment, on one page.
const consoleRules = `stages: [awareness, interest, intent]
personas:
  runner: { running: 1 }
pages:
  - match: ["/"]
    rules:
      - id: cta
        select: ".cta"
        map:
          by: stage
          interest: { text: "Read the guide" }
          intent:   { text: "Finish your order" }
      - id: picks
        select: ".picks"
        map:
          by: segment
          vip: { text: "For you" }
      - id: hero-runner
        when: { persona: runner }
        select: "#hero"
        text: "Ready for your next run?"
`

// withConsoleRules points the config at a rules directory holding
// consoleRules.
func withConsoleRules(t *testing.T, c *config.Config) {
	t.Helper()
	c.Rules.Dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(c.Rules.Dir, "c.yaml"), []byte(consoleRules), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestConsoleNeedsTheAdminToken(t *testing.T) {
	off := startAdmin(t, func(c *config.Config, _ *Options) { withConsoleRules(t, c) })
	if resp, _ := call(t, "GET", off.url+"/", ""); resp.StatusCode != 404 {
		t.Errorf("without admin.token the console answers %d, want 404", resp.StatusCode)
	}

	admin := startAdmin(t, func(c *config.Config, _ *Options) {
		withConsoleRules(t, c)
		c.Admin.Token = "s3cret-token"
		c.Preview.Key = "preview-key-0123456789abcdef0123456789"
		c.Listen = "0.0.0.0:18999" // previews link to the listener, on the host the operator used
	}).url
	resp, body := call(t, "GET", admin+"/", "")
	if resp.StatusCode != 401 || !strings.Contains(body, `name="token"`) || strings.Contains(body, "Finish your order") {
		t.Errorf("no token: %d, a form %v", resp.StatusCode, strings.Contains(body, `name="token"`))
	}
	for name, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
		"X-Frame-Options":         "DENY",
		"Cache-Control":           "no-store",
		"Referrer-Policy":         "no-referrer",
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("the console's %s = %q, want %q", name, got, want)
		}
	}
	if resp, body := call(t, "GET", admin+"/", "", "Authorization", "Bearer s3cret-token"); resp.StatusCode != 200 || !strings.Contains(body, "Finish your order") {
		t.Errorf("bearer token: %d", resp.StatusCode)
	}
	if resp, _ := call(t, "PUT", admin+"/", "", "Authorization", "Bearer s3cret-token"); resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("PUT /: %d, Allow %q; want 405 and GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"))
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(admin+"/login", url.Values{"token": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("a wrong token: %d, want 401", resp.StatusCode)
	}
	resp, err = c.PostForm(admin+"/login", url.Values{"token": {"s3cret-token"}})
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	page.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(page.String(), `data-key="intent"`) {
		t.Fatalf("after logging in: %d\n%s", resp.StatusCode, page.String())
	}
	u, _ := url.Parse(admin)
	cookies := jar.Cookies(u)
	if len(cookies) != 1 || cookies[0].Name != proxy.ConsoleCookie || strings.Contains(cookies[0].Value, "s3cret") {
		t.Errorf("console cookie: %+v", cookies)
	}
	for _, want := range []string{
		`<tr data-key="awareness"><th>awareness</th><td class="empty">`, // no case: the origin's block
		`data-by="segment"`, `data-key="vip"`,
		`class="persona-preview" data-persona="runner" href="http://127.0.0.1:18999/?tailor_preview=`,
		`Events are off`,
	} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("the console lacks %q", want)
		}
	}
	if strings.Contains(page.String(), "<script") {
		t.Error("the console uses JavaScript")
	}
}

func TestConsoleCookieIsHttpOnlyAndStrict(t *testing.T) {
	admin := startAdmin(t, func(c *config.Config, _ *Options) { c.Admin.Token = "s3cret-token" }).url
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(admin+"/login", url.Values{"token": {"s3cret-token"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" || len(cookies) != 1 {
		t.Fatalf("login: %d to %q, cookies %v; want 303 to / with one cookie", resp.StatusCode, resp.Header.Get("Location"), cookies)
	}
	if k := cookies[0]; !k.HttpOnly || k.SameSite != http.SameSiteStrictMode || k.Path != "/" || k.MaxAge != int(consoleSessionTTL.Seconds()) {
		t.Errorf("console cookie %+v: want HttpOnly, SameSite=Strict, Path=/, Max-Age %v", k, consoleSessionTTL)
	}
	// The cookie opens the console; an altered one does not.
	for value, want := range map[string]int{cookies[0].Value: 200, cookies[0].Value + "x": 401, "99999999999.x": 401} {
		if resp, _ := call(t, "GET", admin+"/", "", "Cookie", proxy.ConsoleCookie+"="+value); resp.StatusCode != want {
			t.Errorf("console with cookie %q: %d, want %d", value, resp.StatusCode, want)
		}
	}
}

// TestChartsEscapeNames: the plots' names come from rule files and
// events, and reach the page through html/template's escaping.
func TestChartsEscapeNames(t *testing.T) {
	hostile := `"><script>alert(1)</script>`
	var b bytes.Buffer
	if err := consoleTmpl.ExecuteTemplate(&b, "bar-chart", newBarChart(map[string]int{hostile: 2, "runner": 3}, nil)); err != nil {
		t.Fatal(err)
	}
	x := report.ExperimentResult{ID: "x", Variants: []report.VariantResult{
		{Name: hostile, Exposed: 10, Goals: map[string]report.GoalResult{"buy": {Converted: 1, Rate: 0.1, CI: [2]float64{0.02, 0.4}}}},
	}}
	if err := consoleTmpl.ExecuteTemplate(&b, "rate-plot", goalViews(x)[0].Plot); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(out, "<script") {
		t.Errorf("a name became markup:\n%s", out)
	}
	for _, want := range []string{
		`<rect class="bar" data-name="runner" data-count="3"`, // largest first
		`data-name="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" data-count="2"`,
		`<circle class="rate" data-variant="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" data-rate="0.1000"`,
		`>10.00%</text>`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the charts lack %s:\n%s", want, out)
		}
	}
}
