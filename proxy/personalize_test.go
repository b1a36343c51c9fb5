package proxy

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/testkit"
	"github.com/tailor-edge/tailor/internal/testkit/fixtures"
)

const shopPage = "\ufeff<!DOCTYPE html>\n<HTML lang=en><head><title>Shop</title>\n" +
	"<meta charset=utf-8></head>\n<body>\n<p class='greeting' data-x=1>Welcome!</p>\n" +
	"<section id=hero><h1>Gear for every trail</h1><p>Tested on real mountains.\n</section>\n" +
	"<div class=\"cta\"><a href=\"/products/\">Browse</a></div>\n<footer><p class=promo>Free returns</footer>\n"

const shopRules = `stages: [awareness, interest, intent, purchase, retention]
pages:
  - match: ["/", "/index.html"]
    rules:
      - id: greet
        select: ".greeting"
        text: "Hello & welcome"
      - id: hero-title
        select: "#hero h1"
        inner: "<em>Run further</em>"
`

// writeRules writes files (name → content) into a fresh rules directory.
func writeRules(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
}

func withRules(t *testing.T, files map[string]string) (dir string, edit func(*config.Config, *Options)) {
	t.Helper()
	dir = t.TempDir()
	writeRules(t, dir, files)
	return dir, func(c *config.Config, _ *Options) { c.Rules.Dir = dir }
}

func encodeWith(t *testing.T, enc string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch enc {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "deflate":
		w = zlib.NewWriter(&buf)
	case "br":
		w = brotli.NewWriter(&buf)
	case "zstd":
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	default:
		return b
	}
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decodeWith(t *testing.T, enc string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	var err error
	switch enc {
	case "gzip":
		r, err = gzip.NewReader(bytes.NewReader(b))
	case "deflate":
		r, err = zlib.NewReader(bytes.NewReader(b))
	case "br":
		r = brotli.NewReader(bytes.NewReader(b))
	case "zstd":
		var d *zstd.Decoder
		d, err = zstd.NewReader(bytes.NewReader(b))
		r = d
	default:
		return b
	}
	if err != nil {
		t.Fatalf("decode %s: %v", enc, err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decode %s: %v", enc, err)
	}
	return out
}

// pageOrigin serves page at every path, encoded as the request's
// ?enc= says, with the given extra headers.
func pageOrigin(t *testing.T, page string, hdr map[string]string) string {
	t.Helper()
	return startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		enc := r.URL.Query().Get("enc")
		body := encodeWith(t, enc, []byte(page))
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if enc != "" {
			w.Header().Set("Content-Encoding", enc)
		}
		for k, v := range hdr {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body)
	})).URL
}

var wantShop = strings.Replace(strings.Replace(shopPage,
	"<p class='greeting' data-x=1>Welcome!</p>", "<p class='greeting' data-x=1>Hello &amp; welcome</p>", 1),
	"<h1>Gear for every trail</h1>", "<h1><em>Run further</em></h1>", 1)

func TestPersonalizedPageKeepsEveryOtherByte(t *testing.T) {
	_, edit := withRules(t, map[string]string{"shop.yaml": shopRules})
	origin := pageOrigin(t, shopPage, map[string]string{"ETag": `"v1"`, "Content-MD5": "Q2hlY2sgSW50ZWdyaXR5IQ==", "Cache-Control": "public, max-age=60, s-maxage=600", "Vary": "Accept-Encoding"})
	p := startProxy(t, origin, edit)
	resp, body := get(t, p.url+"/")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if string(body) != wantShop {
		t.Errorf("personalized page:\n%q\nwant:\n%q", body, wantShop)
	}
	if got := resp.Header.Get("Content-Length"); got != fmt.Sprint(len(wantShop)) {
		t.Errorf("Content-Length = %s, want %d", got, len(wantShop))
	}
	if resp.Header.Get("ETag") != "" || resp.Header.Get("Content-MD5") != "" {
		t.Errorf("ETag %q or Content-MD5 %q of the origin's bytes kept on a rewritten page", resp.Header.Get("ETag"), resp.Header.Get("Content-MD5"))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "private, max-age=60" {
		t.Errorf("Cache-Control = %q, want private, max-age=60", cc)
	}
	if v := resp.Header.Get("Vary"); v != "Accept-Encoding, Cookie" {
		t.Errorf("Vary = %q, want Accept-Encoding, Cookie", v)
	}
}

func TestRangeRequestsOnPagesWithRulesGetTheWholePersonalizedPage(t *testing.T) {
	_, edit := withRules(t, map[string]string{"shop.yaml": shopRules})
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Last-Modified", "Wed, 21 Oct 2026 07:28:00 GMT")
		http.ServeContent(w, r, "page.html", time.Date(2026, 10, 21, 7, 28, 0, 0, time.UTC), strings.NewReader(shopPage))
	}))
	p := startProxy(t, origin.URL, edit)
	resp, body := get(t, p.url+"/", "Range", "bytes=0-9")
	if resp.StatusCode != 200 || string(body) != wantShop {
		t.Errorf("Range on a page with rules: %d, %q; want 200 and the whole personalized page", resp.StatusCode, body)
	}
	if resp.Header.Get("Last-Modified") != "" || resp.Header.Get("Accept-Ranges") != "" {
		t.Errorf("a rewritten page kept the origin's validators or ranges: %v", resp.Header)
	}
	// Elsewhere ranges pass through.
	resp, body = get(t, p.url+"/other", "Range", "bytes=0-9")
	if resp.StatusCode != http.StatusPartialContent || len(body) != 10 {
		t.Errorf("Range on a path without rules: %d, %d bytes; want 206 and 10 bytes", resp.StatusCode, len(body))
	}
}

func TestPagesWithoutRulesPassThroughUntouched(t *testing.T) {
	_, edit := withRules(t, map[string]string{"shop.yaml": shopRules})
	origin := pageOrigin(t, shopPage, map[string]string{"ETag": `"v1"`, "Cache-Control": "public, max-age=60"})
	p := startProxy(t, origin, edit)
	// A first visit gets its identity cookie, and so the response is
	// marked private: a shared cache must not hand that id to others.
	resp, body := get(t, p.url+"/about")
	if string(body) != shopPage {
		t.Errorf("a path without rules was changed:\n%q", body)
	}
	cookies := resp.Header.Values("Set-Cookie")
	if len(cookies) != 2 || !strings.HasPrefix(cookies[0], "tailor_id=v1.") || !strings.HasPrefix(cookies[1], "tailor_state=s1.") ||
		resp.Header.Get("Cache-Control") != "private, max-age=60" {
		t.Errorf("a first visit got Set-Cookie %q, Cache-Control %q; want an id, a state and private", cookies, resp.Header.Get("Cache-Control"))
	}
	// A visitor who has their cookies, and whose state is current, gets
	// the origin's headers untouched.
	resp, body = get(t, p.url+"/about", "Cookie", strings.SplitN(cookies[0], ";", 2)[0]+"; "+strings.SplitN(cookies[1], ";", 2)[0])
	if string(body) != shopPage {
		t.Errorf("a path without rules was changed:\n%q", body)
	}
	if resp.Header.Get("ETag") != `"v1"` || resp.Header.Get("Cache-Control") != "public, max-age=60" || resp.Header.Get("Vary") != "" || resp.Header.Get("Set-Cookie") != "" {
		t.Errorf("a path without rules had its headers changed: %v", resp.Header)
	}
}

func TestEncodedPagesAreDecodedRewrittenAndReencoded(t *testing.T) {
	_, edit := withRules(t, map[string]string{"shop.yaml": shopRules})
	origin := pageOrigin(t, shopPage, nil)
	p := startProxy(t, origin, edit)
	for _, enc := range []string{"gzip", "deflate", "br", "zstd"} {
		t.Run(enc, func(t *testing.T) {
			// The visitor accepts what the origin sent: it stays.
			resp, body := get(t, p.url+"/?enc="+enc, "Accept-Encoding", enc)
			if got := resp.Header.Get("Content-Encoding"); got != enc {
				t.Fatalf("Content-Encoding = %q, want %q", got, enc)
			}
			if got := decodeWith(t, enc, body); string(got) != wantShop {
				t.Errorf("decoded personalized page:\n%q\nwant:\n%q", got, wantShop)
			}
			// A visitor who does not accept it gets identity.
			resp, body = get(t, p.url+"/?enc="+enc, "Accept-Encoding", "identity")
			if got := resp.Header.Get("Content-Encoding"); got != "" {
				t.Errorf("visitor without %s got Content-Encoding %q", enc, got)
			}
			if string(body) != wantShop {
				t.Errorf("identity personalized page:\n%q", body)
			}
		})
	}
}

func TestRewriteFailuresServeTheOrigin(t *testing.T) {
	// Larger than max_rewrite_body and nowhere to cut it in pieces (a
	// table from its first tag): served as the origin sent it.
	big := "<!DOCTYPE html><table><tr><td><p class='greeting'>Welcome!</p>" + strings.Repeat("<!-- padding -->\n", 200) + "</table>"
	_, edit := withRules(t, map[string]string{"shop.yaml": shopRules})
	bad := []byte("\x1f\x8b\x08\x00not really gzip")
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		switch r.URL.Query().Get("case") {
		case "big":
			w.Write([]byte(big)) // chunked, larger than max_rewrite_body
		case "corrupt":
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(bad)
		case "unknown":
			w.Header().Set("Content-Encoding", "compress")
			w.Write([]byte(shopPage))
		}
	}))
	p := startProxy(t, origin.URL, func(c *config.Config, o *Options) {
		edit(c, o)
		c.MaxRewriteBody = 2048
	})
	for _, tc := range []struct {
		name string
		want []byte
	}{{"big", []byte(big)}, {"corrupt", bad}, {"unknown", []byte(shopPage)}} {
		resp, body := get(t, p.url+"/?case="+tc.name, "Accept-Encoding", "gzip, compress")
		if resp.StatusCode != 200 || !bytes.Equal(body, tc.want) {
			t.Errorf("%s: got %d, %d bytes; want 200 and the origin's %d bytes", tc.name, resp.StatusCode, len(body), len(tc.want))
		}
	}
}

func TestDecisionHeader(t *testing.T) {
	_, edit := withRules(t, map[string]string{"shop.yaml": shopRules})
	origin := pageOrigin(t, shopPage, nil)
	p := startProxy(t, origin, func(c *config.Config, o *Options) {
		edit(c, o)
		c.Debug.DecisionHeader = true
	})
	resp, _ := get(t, p.url+"/")
	if d := resp.Header.Get("X-Tailor-Decision"); !strings.Contains(d, "greet") || !strings.Contains(d, "hero-title") {
		t.Errorf("X-Tailor-Decision = %q, want both rules named", d)
	}
}

// TestReloadStormNeverMixesRuleSets reloads the rules 50 times, half of
// them with a broken file, while requests keep coming: every response is a
// 200 rendered by exactly one rule set.
func TestReloadStormNeverMixesRuleSets(t *testing.T) {
	version := func(n int) string {
		return fmt.Sprintf(`pages:
  - match: ["/"]
    rules:
      - id: greet
        select: ".greeting"
        text: "version %d"
      - id: hero-title
        select: "#hero h1"
        text: "version %d"
`, n, n)
	}
	dir, edit := withRules(t, map[string]string{"shop.yaml": version(0)})
	origin := pageOrigin(t, shopPage, nil)
	p := startProxy(t, origin, func(c *config.Config, o *Options) {
		edit(c, o)
		c.Rules.Watch = false
	})

	var stop atomic.Bool
	var requests, failures atomic.Int64
	var mu sync.Mutex
	var problems []string
	var wg sync.WaitGroup
	const clients = 4
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client()
			for !stop.Load() {
				resp, err := c.Get(p.url + "/")
				if err != nil {
					failures.Add(1)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				requests.Add(1)
				greet := between(string(body), "data-x=1>", "</p>")
				hero := between(string(body), "<h1>", "</h1>")
				if resp.StatusCode != 200 || greet != hero || !strings.HasPrefix(greet, "version ") {
					mu.Lock()
					problems = append(problems, fmt.Sprintf("status %d, greeting %q, hero %q", resp.StatusCode, greet, hero))
					mu.Unlock()
				}
			}
		}()
	}
	okLoads := 0
	for i := 1; i <= 50; i++ {
		if i%2 == 0 {
			writeRules(t, dir, map[string]string{"shop.yaml": "pages:\n  - match: [\"/\"]\n    rules:\n      - id: greet\n        select: \"p[\"\n        text: broken\n"})
			if err := p.LoadRules(); err == nil {
				t.Errorf("reload %d: a broken rule file was accepted", i)
			}
		} else {
			writeRules(t, dir, map[string]string{"shop.yaml": version(i)})
			if err := p.LoadRules(); err != nil {
				t.Errorf("reload %d: %v", i, err)
			}
			okLoads++
		}
		// About one request a client on these rules before the next load.
		n := requests.Load()
		if !testkit.Within(5*time.Second, time.Millisecond, func() bool { return requests.Load() >= n+clients }) {
			t.Errorf("reload %d: fewer than %d requests ran within 5s", i, clients)
			break
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d requests during %d reloads (%d valid)", requests.Load(), 50, okLoads)
	if failures.Load() > 0 {
		t.Errorf("%d requests failed during reloads", failures.Load())
	}
	if len(problems) > 0 {
		t.Errorf("%d responses were wrong or mixed, first: %s", len(problems), problems[0])
	}
	if requests.Load() < 50 {
		t.Errorf("only %d requests ran during the storm", requests.Load())
	}
	_, body := get(t, p.url+"/")
	if !strings.Contains(string(body), "version 49") {
		t.Errorf("after the storm the last good rules (version 49) should serve: %q", between(string(body), "data-x=1>", "</p>"))
	}
}

func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i+len(from):]
	if j := strings.Index(s, to); j >= 0 {
		return s[:j]
	}
	return s
}

func TestRuleFileChangesAreWatched(t *testing.T) {
	dir, edit := withRules(t, map[string]string{"shop.yaml": shopRules})
	origin := pageOrigin(t, shopPage, nil)
	p := startProxy(t, origin, edit)
	ctx, cancel := contextWithCancel()
	defer cancel()
	started := make(chan struct{})
	go p.WatchRules(ctx, func() { close(started) })
	<-started
	writeRules(t, dir, map[string]string{"shop.yaml": strings.Replace(shopRules, "Hello & welcome", "Bonjour", 1)})
	checkFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if _, body := get(t, p.url+"/"); !strings.Contains(string(body), ">Bonjour</p>") {
			return fmt.Errorf("the edited rule file was not picked up: %q", between(string(body), "data-x=1>", "</p>"))
		}
		return nil
	})
	// A broken edit keeps the last good rules: once the watcher has
	// tried it (a failed reload counted), Bonjour still serves.
	failed := func() float64 { return counterValue(t, p.Registry(), "tailor_rules_reloads_total", "result", "error") }
	before := failed()
	writeRules(t, dir, map[string]string{"shop.yaml": "pages: [\n"})
	checkFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if n := failed(); n == before {
			return fmt.Errorf("the broken edit was not tried (tailor_rules_reloads_total{result=error} still %v)", n)
		}
		return nil
	})
	if _, body := get(t, p.url+"/"); !strings.Contains(string(body), ">Bonjour</p>") {
		t.Errorf("a broken edit replaced the last good rules")
	}
}

// TestNoncePagesReuseTheirTemplate serves a page that carries a new CSRF
// token on every request: after the first compile, tailor adjusts the
// cached template instead of parsing again, and every response is the
// personalized page with its own token.
func TestNoncePagesReuseTheirTemplate(t *testing.T) {
	_, edit := withRules(t, map[string]string{"shop.yaml": shopRules})
	nonced := func(page string, i int64) string {
		return strings.Replace(page, "<title>Shop</title>", fmt.Sprintf(`<title>Shop</title><meta name="csrf-token" content="tok-%d">`, i*7919), 1)
	}
	p := startProxy(t, sequenceOrigin(t, func(i int64) string { return nonced(shopPage, i) }), edit)
	getEach(t, p.url+"/", 20, func(i int64) string { return nonced(wantShop, i) })
	hits := pageCacheResults(t, p, "miss", "reuse")
	if hits["miss"] != 1 || hits["reuse"] != 19 {
		t.Errorf("page cache: %v; want 1 miss then 19 reuses", hits)
	}
}

// TestDynamicPagesReuseTheirTemplates: a page as a CMS sends it — a CSRF
// token, a script nonce, a request id in an inline script and in a
// comment, a session id in the text, and a notice on every other request —
// is compiled once per shape and then reused, and every response is the
// page with the rules applied.
func TestDynamicPagesReuseTheirTemplates(t *testing.T) {
	_, edit := withRules(t, map[string]string{"shop.yaml": shopRules})
	dynamic := func(i int64) string {
		id := fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15)
		page := strings.Replace(shopPage, "<title>Shop</title>", fmt.Sprintf(
			`<title>Shop</title><meta name="csrf-token" content="%s"><script nonce="n%d">window.rid = "%s";</script>`, id, i, id), 1)
		page = strings.Replace(page, "Tested on real mountains.", fmt.Sprintf("Tested on real mountains. Session %s.", id[:int(i%7)+4]), 1)
		page += fmt.Sprintf("<!-- request %s served in %dms -->\n", id, i%300)
		if i%2 == 0 {
			page = strings.Replace(page, "<section id=hero>", `<div class="notice">Maintenance tonight</div><section id=hero>`, 1)
		}
		return page
	}
	p := startProxy(t, sequenceOrigin(t, dynamic), edit)
	getEach(t, p.url+"/", 40, func(i int64) string {
		want := strings.Replace(dynamic(i), "Welcome!", "Hello &amp; welcome", 1)
		return strings.Replace(want, "<h1>Gear for every trail</h1>", "<h1><em>Run further</em></h1>", 1)
	})
	hits := pageCacheResults(t, p, "miss", "reuse", "hit")
	if hits["miss"] != 2 || hits["reuse"] != 38 {
		t.Errorf("page cache: %v; want 2 misses (one per shape) then 38 reuses", hits)
	}
}

// sequenceOrigin serves page(i) as HTML for the i-th request (from 1): a
// page that changes on every request, as a CMS sends one.
func sequenceOrigin(t *testing.T, page func(i int64) string) string {
	t.Helper()
	var n atomic.Int64
	return startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, page(n.Add(1)))
	})).URL
}

// getEach fetches url n times and fails the test unless the i-th body
// (from 1) is want(i).
func getEach(t *testing.T, url string, n int64, want func(i int64) string) {
	t.Helper()
	for i := int64(1); i <= n; i++ {
		if _, body := get(t, url); string(body) != want(i) {
			t.Fatalf("request %d:\n%q\nwant\n%q", i, body, want(i))
		}
	}
}

// pageCacheResults is tailor_page_cache_requests_total for each of
// results (miss, hit, reuse).
func pageCacheResults(t *testing.T, p *testProxy, results ...string) map[string]float64 {
	t.Helper()
	hits := map[string]float64{}
	for _, r := range results {
		hits[r] = counterValue(t, p.Registry(), "tailor_page_cache_requests_total", "result", r)
	}
	return hits
}

// TestPagesLeftUnchangedReportNoRuleFired: when the page is served as the
// origin sent it (too large to rewrite), the decision header names no
// rule, says why, and no rule hit is counted; a rule whose selector
// matches nothing is not named either.
func TestPagesLeftUnchangedReportNoRuleFired(t *testing.T) {
	rulesYAML := shopRules + `      - id: missing
        select: ".not-on-this-page"
        text: "x"
`
	big := shopPage + strings.Repeat("<!-- padding -->\n", 200)
	_, edit := withRules(t, map[string]string{"shop.yaml": rulesYAML})
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		if r.URL.Query().Get("case") == "big" {
			io.WriteString(w, big)
			return
		}
		io.WriteString(w, shopPage)
	}))
	p := startProxy(t, origin.URL, func(c *config.Config, o *Options) {
		edit(c, o)
		c.MaxRewriteBody = 2048
		c.Debug.DecisionHeader = true
	})
	resp, body := get(t, p.url+"/?case=big")
	d := resp.Header.Get("X-Tailor-Decision")
	if string(body) != big || !strings.HasPrefix(d, "rules=;") || !strings.Contains(d, "unchanged=too_large") {
		t.Errorf("too large: %d bytes, X-Tailor-Decision = %q; want the origin's page, no rule, unchanged=too_large", len(body), d)
	}
	if h := counterValue(t, p.Registry(), "tailor_rule_hits_total", "rule", "greet"); h != 0 {
		t.Errorf("tailor_rule_hits_total{rule=greet} = %v after a page left unchanged, want 0", h)
	}
	resp, _ = get(t, p.url+"/")
	d = resp.Header.Get("X-Tailor-Decision")
	if !strings.HasPrefix(d, "rules=greet,hero-title;") || strings.Contains(d, "unchanged") {
		t.Errorf("X-Tailor-Decision = %q, want greet and hero-title, not the rule whose selector matched nothing", d)
	}
	if h := counterValue(t, p.Registry(), "tailor_rule_hits_total", "rule", "greet"); h != 1 {
		t.Errorf("tailor_rule_hits_total{rule=greet} = %v, want 1", h)
	}
}

// Issue 16: SIGHUP and the file watcher may reload at once. Every load
// gets a generation of its own (page cache keys hold it): after n
// concurrent loads the generation has moved by n.
func TestConcurrentReloadsNeverShareAGeneration(t *testing.T) {
	_, edit := withRules(t, map[string]string{"shop.yaml": shopRules})
	p := startProxy(t, pageOrigin(t, shopPage, nil), edit)
	before := p.rules.Load().gen
	const goroutines, loads = 8, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[*ruleState]bool{}
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range loads {
				if err := p.LoadRules(); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[p.rules.Load()] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if got, want := p.rules.Load().gen, before+goroutines*loads; got != want {
		t.Errorf("generation after %d concurrent loads = %d, want %d", goroutines*loads, got, want)
	}
	gens := map[uint64]bool{}
	for st := range seen {
		if gens[st.gen] {
			t.Errorf("two rule sets share generation %d", st.gen)
		}
		gens[st.gen] = true
	}
}

// Issue 16: a rule file edited after the first load but before the watch
// was in place is not lost: the watch reloads it as it starts.
func TestEditBeforeTheWatchStartsIsNotLost(t *testing.T) {
	dir, edit := withRules(t, map[string]string{"shop.yaml": shopRules})
	origin := pageOrigin(t, shopPage, nil)
	p := startProxy(t, origin, edit)
	writeRules(t, dir, map[string]string{"shop.yaml": strings.Replace(shopRules, "Hello & welcome", "Before the watch", 1)})
	ctx, cancel := contextWithCancel()
	defer cancel()
	started := make(chan struct{})
	go p.WatchRules(ctx, func() { close(started) })
	<-started
	if _, body := get(t, p.url+"/"); !strings.Contains(string(body), ">Before the watch</p>") {
		t.Errorf("an edit made before the watch started was lost: %q", between(string(body), "data-x=1>", "</p>"))
	}
}

// A page with rules that went out unchanged keeps the origin's ETag, so
// the browser revalidates with it. When the rules would now change the
// page (the visitor became a VIP), the origin's 304 must not answer for
// it: the visitor's validators are not sent to the origin on a path with
// rules.
func TestValidatorsOfAnUnchangedPageDoNotHideItsPersonalization(t *testing.T) {
	const page = `<html><body><h1>Hello</h1></body></html>`
	var conditional atomic.Int64
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", "Sat, 02 May 2026 10:00:00 GMT")
		w.Header().Set("Content-Type", "text/html")
		if r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Modified-Since") != "" {
			conditional.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		io.WriteString(w, page)
	}))
	_, edit := withRules(t, map[string]string{"r.yaml": `pages:
  - match: ["/"]
    rules:
      - { id: vip, when: { cookie: { tier: vip } }, select: h1, text: "Welcome back, VIP" }
`})
	p := startProxy(t, origin.URL, edit)

	resp, body := get(t, p.url+"/", "User-Agent", fixtures.BrowserUA)
	if resp.StatusCode != 200 || string(body) != page || resp.Header.Get("ETag") != `"v1"` {
		t.Fatalf("first view: %d %q, ETag %q; want the origin's page and ETag", resp.StatusCode, body, resp.Header.Get("ETag"))
	}
	for _, cond := range [][]string{{"If-None-Match", `"v1"`}, {"If-Modified-Since", "Sat, 02 May 2026 10:00:00 GMT"}} {
		resp, body = get(t, p.url+"/", "User-Agent", fixtures.BrowserUA, "Cookie", "tier=vip", cond[0], cond[1])
		if resp.StatusCode != 200 || !strings.Contains(string(body), "Welcome back, VIP") {
			t.Errorf("revalidated with %s as a VIP: %d %q; want 200 with the VIP's heading", cond[0], resp.StatusCode, body)
		}
	}
	if n := conditional.Load(); n != 0 {
		t.Errorf("the origin was asked conditionally %d times on a path with rules", n)
	}
}
