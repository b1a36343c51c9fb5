package proxy

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tailor-edge/tailor/config"
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

func TestConsoleNeedsTheAdminToken(t *testing.T) {
	origin := pageOrigin(t, `<p class="cta">Shop</p>`, nil)
	_, rulesEdit := withRules(t, map[string]string{"c.yaml": consoleRules})
	off := startProxy(t, origin, rulesEdit)
	if resp, _ := get(t, startAdmin(t, off.Proxy)+"/"); resp.StatusCode != 404 {
		t.Errorf("without admin.token the console answers %d, want 404", resp.StatusCode)
	}

	p := startProxy(t, origin, func(c *config.Config, o *Options) {
		rulesEdit(c, o)
		c.Admin.Token = "s3cret-token"
		c.Preview.Key = "preview-key-0123456789abcdef0123456789"
		c.Listen = "0.0.0.0:18999" // previews link to the listener, on the host the operator used
	})
	admin := startAdmin(t, p.Proxy)
	resp, body := get(t, admin+"/")
	if resp.StatusCode != 401 || !strings.Contains(string(body), `name="token"`) || strings.Contains(string(body), "Finish your order") {
		t.Errorf("no token: %d, a form %v", resp.StatusCode, strings.Contains(string(body), `name="token"`))
	}
	if resp, body := get(t, admin+"/", "Authorization", "Bearer s3cret-token"); resp.StatusCode != 200 || !strings.Contains(string(body), "Finish your order") {
		t.Errorf("bearer token: %d", resp.StatusCode)
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
	page := readAll(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(page, `data-key="intent"`) {
		t.Fatalf("after logging in: %d\n%s", resp.StatusCode, page)
	}
	u, _ := url.Parse(admin)
	cookies := jar.Cookies(u)
	if len(cookies) != 1 || cookies[0].Name != ConsoleCookie || strings.Contains(cookies[0].Value, "s3cret") {
		t.Errorf("console cookie: %+v", cookies)
	}
	for _, want := range []string{
		`<tr data-key="awareness"><th>awareness</th><td class="empty">`, // no case: the origin's block
		`data-by="segment"`, `data-key="vip"`,
		`class="persona-preview" data-persona="runner" href="http://127.0.0.1:18999/?tailor_preview=`,
		`Events are off`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the console lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") {
		t.Error("the console uses JavaScript")
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestConsoleCookieNeverReachesTheOrigin(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, strings.Join(r.Header.Values("Cookie"), "|"))
		mu.Unlock()
		w.Write([]byte("ok"))
	}))
	p := startProxy(t, origin.URL, nil)
	for cookie, want := range map[string]string{
		"a=1; tailor_console=123.abc; b=2": "a=1; b=2",
		"tailor_console=123.abc":           "",
		"tailor_console=1.x;theme=dark":    "theme=dark",
		"a=1;  b=2":                        "a=1;  b=2",                 // untouched without it
		"not_tailor_console=1; x=2":        "not_tailor_console=1; x=2", // another cookie, kept
	} {
		seen = nil
		get(t, p.url+"/x", "Cookie", cookie)
		mu.Lock()
		got := seen[0]
		mu.Unlock()
		if got != want {
			t.Errorf("Cookie %q reached the origin as %q, want %q", cookie, got, want)
		}
	}
}
