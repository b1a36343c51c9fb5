//go:build browser

package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tailor-edge/tailor/internal/testkit/fixtures"
)

// TestBrowserConsoleDrawsTheGridWithHits is issue 17's console check: a
// 3 × 4 Digital Relevancy Map (segments vip, new and "*" down, four
// stages across) in one rule, through `tailor serve`. Visitors of each
// row reach each stage through the journey and see the home page, cell
// (row i, stage j) i+j+1 times; Chromium logs into the console and finds
// the grid with its 12 cells, each with its own hit count and a preview
// link.
func TestBrowserConsoleDrawsTheGridWithHits(t *testing.T) {
	chrome, out := browserSetup(t)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, `<html><body><h1 id="hero">Hello</h1></body></html>`)
	}))
	t.Cleanup(origin.Close)
	rules := t.TempDir()
	if err := os.WriteFile(filepath.Join(rules, "grid.yaml"), []byte(fixtures.Grid), 0o644); err != nil {
		t.Fatal(err)
	}
	listen, admin := freeAddr(t), freeAddr(t)
	cfg := writeFile(t, "tailor.yaml", fmt.Sprintf(`listen: %q
origin: %q
admin: { listen: %q, token: grid-token-0123456789 }
rules: { dir: %q }
identity: { cookie: { keys: ["cookie-key-0123456789abcdef0123456789"], secure: false } }
preview: { key: "preview-key-0123456789abcdef0123456789" }
`, listen, origin.URL, admin, rules))
	serveInBackground(t, cfg, admin)

	shown, err := fixtures.VisitGrid("http://" + listen)
	if err != nil {
		t.Fatal(err)
	}

	ctx := newBrowser(t, chrome)
	type cell struct {
		Cell, Hits string
		Preview    bool
	}
	grid := `table.drm.grid[data-rule="hero-drm"]`
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1100, 900),
		chromedp.Navigate("http://"+admin+"/"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="token"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="token"]`), "grid-token-0123456789"),
		chromedp.Submit(chromedp.CSS(`input[name="token"]`)),
		chromedp.WaitVisible(chromedp.CSS(grid)),
	); err != nil {
		t.Fatalf("logging into the console: %v", err)
	}
	cells, err := soon(ctx, chromedp.Evaluate[[]cell](`[...document.querySelectorAll('`+grid+` td[data-cell]')].map(td => ({
		Cell: td.dataset.cell,
		Hits: td.querySelector('.hits') ? td.querySelector('.hits').dataset.hits : '',
		Preview: !!td.querySelector('a.preview[href*="tailor_preview="]'),
	}))`))
	if err != nil {
		t.Fatalf("reading the grid: %v", err)
	}
	shot, err := soon(ctx, chromedp.Screenshot(chromedp.CSS(grid)))
	if err != nil {
		t.Fatalf("a screenshot of the grid: %v", err)
	}
	if len(cells) != 12 {
		t.Fatalf("the grid shows %d cells, want 12: %+v", len(cells), cells)
	}
	got := map[string]string{}
	for _, c := range cells {
		got[c.Cell] = c.Hits
		if !c.Preview {
			t.Errorf("cell %s has no preview link", c.Cell)
		}
	}
	for name, n := range shown {
		if want := strconv.Itoa(n); got[name] != want {
			t.Errorf("cell %s shows %q hits, want %s", name, got[name], want)
		}
	}
	if err := os.WriteFile(filepath.Join(out, "console-grid.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("the grid's 12 cells: %v", got)
}
