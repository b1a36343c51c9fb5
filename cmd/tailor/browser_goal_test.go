//go:build browser

package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tailor-edge/tailor/internal/testkit"
	"github.com/tailor-edge/tailor/internal/testkit/fixtures"
)

// goalPage is a shop page under a strict Content-Security-Policy (scripts
// only with the response's nonce): the heading an experiment rewrites, an
// add-to-cart button that reports through the goal script, and a script
// without the nonce, which must not run.
const goalPage = `<!doctype html><html><head><title>Shoe</title></head><body>
<div id="hero"><h1>Run</h1></div>
<button class="add-to-cart" data-tailor-value="42">Add to cart</button>
<script src="/blocked.js"></script>
</body></html>`

// TestBrowserClickGoalCountsInTheConsole: Chromium loads a page with an
// experiment and a click goal through tailor (which adds the goal script
// with the page's CSP nonce), clicks the button, and the console, logged
// into with its token, shows the goal's conversion for the visitor's
// variant.
func TestBrowserClickGoalCountsInTheConsole(t *testing.T) {
	chrome, out := browserSetup(t)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/blocked.js" {
			w.Header().Set("Content-Type", "text/javascript")
			io.WriteString(w, "window.__blocked = true;")
			return
		}
		b := make([]byte, 16)
		rand.Read(b)
		nonce := base64.StdEncoding.EncodeToString(b)
		w.Header().Set("Content-Security-Policy", "script-src 'nonce-"+nonce+"' 'strict-dynamic'; object-src 'none'; base-uri 'none'; connect-src 'self'")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, goalPage)
	}))
	t.Cleanup(origin.Close)
	rules := t.TempDir()
	if err := os.WriteFile(filepath.Join(rules, "shop.yaml"), []byte(`goals:
  add_to_cart: { value: 5, max_value: 500, click: ".add-to-cart" }
pages:
  - match: ["/"]
    rules:
      - `+fixtures.HeroExperiment+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	listen, admin := freeAddr(t), freeAddr(t)
	const token = "goal-token-0123456789"
	cfg := writeFile(t, "tailor.yaml", fmt.Sprintf(`listen: %q
origin: %q
admin: { listen: %q, token: %s }
rules: { dir: %q }
identity: { cookie: { keys: ["cookie-key-0123456789abcdef0123456789"], secure: false } }
nats: { embedded: true, url: "nats://%s", data_dir: %q }
`, listen, origin.URL, admin, token, rules, freeAddr(t), t.TempDir()))
	serveInBackground(t, cfg, admin)

	ctx := newBrowser(t, chrome)
	if err := chromedp.Do(ctx,
		chromedp.Navigate("http://"+listen+"/"),
		chromedp.WaitVisible(chromedp.CSS("button.add-to-cart")),
	); err != nil {
		t.Fatal(err)
	}
	// The script ran under the page's CSP (the tag carries its nonce);
	// the script without one did not.
	state, err := soon(ctx, chromedp.Evaluate[string](`(() => {
		const tag = document.querySelector('script[src="/_tailor/goal.js"]');
		return JSON.stringify({tag: !!tag, nonce: !!(tag && tag.nonce), ran: !!(window.tailor && window.tailor.goal), blocked: !!window.__blocked,
			hero: document.querySelector('#hero h1').textContent});
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(state, `"tag":true,"nonce":true,"ran":true,"blocked":false`) {
		t.Fatalf("the goal script under the page's CSP: %s; want its tag, with the nonce, run, and the unnonced script blocked", state)
	}
	variant := ""
	for v, h1 := range map[string]string{"a": `"hero":"Run further"`, "b": `"hero":"Run faster"`, "holdout": `"hero":"Run"`} {
		if strings.Contains(state, h1) {
			variant = v
		}
	}
	if variant == "" {
		t.Fatalf("the heading is no variant's: %s", state)
	}

	// Two clicks, each its own report: one conversion for the visitor.
	for range 2 {
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("button.add-to-cart"))); err != nil {
			t.Fatal(err)
		}
	}
	testkit.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if got := metricValue(admin, `tailor_beacon_total{result="accepted"}`); got != 2 {
			return fmt.Errorf("tailor_beacon_total{result=\"accepted\"} = %v, want 2", got)
		}
		return nil
	})

	// The console: log in with the token, and read the goal's table.
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1100, 900),
		chromedp.Navigate("http://"+admin+"/"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="token"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="token"]`), token),
		chromedp.Submit(chromedp.CSS(`input[name="token"]`)),
		// The readout shows once an edge has folded the events (within a
		// second or so): the loop below reads it again until it does.
		chromedp.WaitVisible(chromedp.CSS(`h2#experiments`)),
	); err != nil {
		t.Fatalf("logging into the console: %v", err)
	}
	row := fmt.Sprintf(`section.experiment[data-id="hero-copy-test"] table.readout[data-goal="add_to_cart"] tr[data-variant=%q]`, variant)
	testkit.CheckFor(t, 20*time.Second, 2100*time.Millisecond, func() error {
		// The console reads the folded readout on every view.
		if err := chromedp.Do(ctx, chromedp.Navigate("http://"+admin+"/?refresh"), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
			return err
		}
		got, err := soon(ctx, chromedp.Evaluate[string](`(() => {
			const row = document.querySelector('`+row+`');
			return row ? row.querySelector('td.exposed').textContent + "/" + row.querySelector('td.converted').textContent : "no row";
		})()`))
		if err != nil {
			return err
		}
		if got != "1/1" {
			return fmt.Errorf("the console's add_to_cart row for variant %s reads %s (exposed/converted), want 1/1", variant, got)
		}
		return nil
	})
	shot, err := soon(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "console-click-goal.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("variant %s: the click counted in the console (screenshot in %s)", variant, out)
}

// metricValue is metric without failing: -1 while the sample is missing.
func metricValue(admin, sample string) float64 {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return -1
}
