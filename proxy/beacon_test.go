//go:build !nonats

package proxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/testkit"
	"github.com/tailor-edge/tailor/internal/testkit/fixtures"
	natsync "github.com/tailor-edge/tailor/sync"
)

// beaconRules declare two goals the browser may report, one with click
// selectors for the goal script on the product, CSP and gzip pages; the
// home page runs an experiment and has no click goal.
const beaconRules = `stages: [browse, buy]
journey:
  - { path: /checkout/done, stage: buy, goal: purchase, value: 100 }
goals:
  add_to_cart: { value: 5, max_value: 500, click: [".add-to-cart"], path: ["/products/**", "/csp/**", "/nonce/**", "/gz/**", "/nobody/**"] }
  signup: { value: 2 }
pages:
  - match: ["/"]
    rules:
      - ` + fixtures.HeroExperiment + `
  - match: ["/products/**"]
    rules:
      - { id: price, select: ".price", text: "9 EUR" }
`

const (
	beaconHome    = `<!doctype html><html><body><div id="hero"><h1>Run</h1></div></body></html>`
	beaconProduct = `<!doctype html><html><head><title>Shoe</title></head><body><p class="price">10 EUR</p>` +
		`<button class="add-to-cart">Add</button></body></html>`
	// beaconNonced has a nonced script holding "</body>" in a string, and
	// upper-case tags.
	beaconNonced = `<HTML><BODY><p>Hi</p><script nonce="r4nd0m+/=">var s = "</body>";</script></BODY></HTML>` + "\n"
	beaconNoBody = `<p>no body tag</p>`
)

// goalTag is the goal script's tag for add_to_cart on pages of the
// default beacon_path, with nonce attr (` nonce="…"`) or "".
func goalTag(nonce string) string {
	return `<script src="/_tailor/goal.js" defer` + nonce + ` data-tailor-beacon="/_tailor/goal" data-tailor-goals="[{&#34;goal&#34;:&#34;add_to_cart&#34;,&#34;click&#34;:[&#34;.add-to-cart&#34;]}]"></script>`
}

// beaconOrigin serves the beacon test's pages; asked records the paths.
func beaconOrigin(t *testing.T) (string, *testkit.Lines) {
	return recordingOrigin(t, func(r *http.Request) string { return r.Method + " " + r.URL.Path }, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("ETag", `"origin-etag"`)
		h.Set("X-Origin", "yes")
		h.Add("Set-Cookie", "session=abc; Path=/")
		// A browser's cached copy: still fresh, as far as the origin knows.
		if r.Header.Get("If-None-Match") == `"origin-etag"` || r.Header.Get("If-Modified-Since") != "" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		switch p := r.URL.Path; {
		case p == "/":
			io.WriteString(w, beaconHome)
		case p == "/csp/nonced":
			// A nonce in the header and another on the page's script.
			h.Set("Content-Security-Policy", "default-src 'self'; script-src 'nonce-c5p+N0nce=' 'strict-dynamic'")
			io.WriteString(w, beaconNonced)
		case strings.HasPrefix(p, "/csp/"):
			h.Set("Content-Security-Policy", "default-src 'self'; script-src 'nonce-c5p+N0nce=' 'strict-dynamic'")
			io.WriteString(w, beaconProduct)
		case strings.HasPrefix(p, "/nonce/"):
			io.WriteString(w, beaconNonced)
		case strings.HasPrefix(p, "/nobody/"):
			io.WriteString(w, beaconNoBody)
		case strings.HasPrefix(p, "/gz/"):
			h.Set("Content-Encoding", "gzip")
			w.Write(gzipped(t, []byte(beaconProduct)))
		default:
			io.WriteString(w, beaconProduct)
		}
	})
}

// startBeaconProxy starts the beacon test's origin and a proxy with the
// beacon rules in front, publishing to a fresh NATS server, whose
// client URL it returns; clock is the proxy's.
func startBeaconProxy(t *testing.T, clock *atomic.Pointer[time.Time], more func(*config.Config)) (p *testProxy, url string, asked *testkit.Lines) {
	t.Helper()
	url = testkit.JetStream(t, t.TempDir(), -1).ClientURL()
	store, err := natsync.Open(context.Background(), natsync.Options{URL: url, Bucket: "tailor_profiles", Name: "beacon test"})
	if err != nil {
		t.Fatal(err)
	}
	var pub *natsync.Publisher
	origin, asked := beaconOrigin(t)
	_, rulesEdit := withRules(t, map[string]string{"b.yaml": beaconRules})
	p = startProxy(t, origin, func(c *config.Config, opts *Options) {
		rulesEdit(c, opts)
		c.Identity.Cookie.Keys = []string{"cookie-key-0123456789abcdef0123456789"}
		c.Identity.Cookie.Secure = false
		if more != nil {
			more(c)
		}
		if pub, err = store.Events(natsync.PublisherOptions{Stream: c.NATS.EventsStream, Queue: c.NATS.EventsQueue}); err != nil {
			t.Fatal(err)
		}
		opts.Events = pub
		if clock != nil {
			opts.Clock = func() time.Time { return *clock.Load() }
		}
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pub.Close(ctx)
		store.Close()
	})
	return p, url, asked
}

// visitorAt is a browser with an ordinary browser's User-Agent that has
// seen the home page (and got its cookies).
func visitorAt(t *testing.T, base string) *browser {
	t.Helper()
	b := newBrowser(t, base)
	b.header.Set("User-Agent", testkit.BrowserUA)
	b.get("/")
	return b
}

// report posts body to the beacon as b, with the headers a browser's
// sendBeacon sends from page (a path) plus hdr pairs (which replace
// them), and returns the status and the response.
func (b *browser) report(page, body string, hdr ...string) *http.Response {
	b.t.Helper()
	req, err := http.NewRequest("POST", b.base+"/_tailor/goal", strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range b.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	req.Header.Set("Origin", b.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Referer", b.base+page)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("POST beacon: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// goals returns the goal events among events.
func goals(events []natsync.Event) []natsync.Event {
	var out []natsync.Event
	for _, e := range events {
		if e.Type == natsync.EventGoal {
			out = append(out, e)
		}
	}
	return out
}

func TestBeaconRecordsADeclaredGoalOnce(t *testing.T) {
	p, url, asked := startBeaconProxy(t, nil, nil)
	b := visitorAt(t, p.url)
	anon := b.anonymousID()

	if r := b.report("/products/shoe?color=red&utm_source=mail&utm_campaign=spring#reviews", `{"goal":"add_to_cart","value":49.5,"id":"c1"}`); r.StatusCode != 204 {
		t.Fatalf("a declared goal: status %d, want 204", r.StatusCode)
	}
	// The same report again (a retry): counted once.
	if r := b.report("/products/shoe?color=red#reviews", `{"goal":"add_to_cart","value":49.5,"id":"c1"}`); r.StatusCode != 204 {
		t.Fatalf("a duplicate: status %d, want 204", r.StatusCode)
	}
	// JSON sent as such, no value (the declared one counts), no id.
	if r := b.report("/", `{"goal":"signup"}`, "Content-Type", "application/json"); r.StatusCode != 204 {
		t.Fatalf("signup: status %d, want 204", r.StatusCode)
	}
	// Without Origin nor Sec-Fetch-Site (an older browser): the cookie
	// is what lets it count.
	if r := b.report("/", `{"goal":"add_to_cart","value":100,"id":"c2"}`, "Origin", "", "Sec-Fetch-Site", ""); r.StatusCode != 204 {
		t.Fatalf("a report without Origin: status %d, want 204", r.StatusCode)
	}

	got := goalsLanded(t, url, 3)
	page := eventsLanded(t, url, 5)[0] // pageview, exposure, 3 goals
	e := got[0]
	if e.Goal != "add_to_cart" || e.Value != 49.5 || e.Visitor != anon || e.AnonymousID != anon ||
		e.URL != p.url+"/products/shoe?color=red&utm_source=mail&utm_campaign=spring" || e.Path != "/products/shoe" || e.ID == "" || e.Stage != page.Stage {
		t.Errorf("goal event = %+v; want add_to_cart=49.5 by %s on /products/shoe, stage %q", e, anon, page.Stage)
	}
	// The breakdowns' fields, as on page events: the campaign from the
	// page that reported.
	if e.Device != "desktop" || e.Bot || e.UTMSource != "mail" || e.UTMCampaign != "spring" {
		t.Errorf("goal event device %q, bot %v, utm %q/%q; want desktop, false, mail/spring", e.Device, e.Bot, e.UTMSource, e.UTMCampaign)
	}
	if e.Segments == nil {
		t.Error("the goal event's segments are null, want a list")
	}
	if g := got[1]; g.Goal != "signup" || g.Value != 2 || g.Path != "/" {
		t.Errorf("signup event = %+v, want the declared value 2 on /", g)
	}
	if g := got[2]; g.Goal != "add_to_cart" || g.Value != 100 {
		t.Errorf("third goal event = %+v, want add_to_cart=100", g)
	}
	for _, line := range asked.All() {
		if strings.Contains(line, "_tailor") {
			t.Errorf("the origin was asked %q: the beacon is tailor's own", line)
		}
	}
	text := metricsText(t, p.Registry())
	for _, want := range []string{`tailor_beacon_total{result="accepted"} 3`, `tailor_beacon_total{result="duplicate"} 1`,
		`tailor_events_total{result="queued",type="goal"} 3`} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestBeaconRefusesWhatItMustNotCount(t *testing.T) {
	p, url, asked := startBeaconProxy(t, nil, nil)
	b := visitorAt(t, p.url)
	ok := `{"goal":"add_to_cart","id":"x"}`
	for _, tt := range []struct {
		name   string
		body   string
		hdr    []string
		status int
	}{
		{"cross-site", ok, []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"another origin", ok, []string{"Origin", "https://evil.example"}, 403},
		{"another port", ok, []string{"Origin", strings.Replace(p.url, "127.0.0.1:", "127.0.0.1:1", 1)}, 403},
		{"origin null", ok, []string{"Origin", "null"}, 403},
		{"undeclared goal", `{"goal":"refund"}`, nil, 400},
		// The journey's goal is the server's to confirm, by the page view.
		{"a journey goal goals: does not declare", `{"goal":"purchase","value":100}`, nil, 400},
		{"value above max_value", `{"goal":"add_to_cart","value":501}`, nil, 400},
		{"negative value", `{"goal":"add_to_cart","value":-1}`, nil, 400},
		{"value of a goal without max_value", `{"goal":"signup","value":3}`, nil, 400},
		{"not JSON", `goal=add_to_cart`, nil, 400},
		{"bad id", `{"goal":"add_to_cart","id":"a b"}`, nil, 400},
		{"long id", `{"goal":"add_to_cart","id":"` + strings.Repeat("a", 65) + `"}`, nil, 400},
		{"a form", ok, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415},
		{"over 4 KiB", `{"goal":"add_to_cart","id":"` + strings.Repeat("a", 4100) + `"}`, nil, 413},
	} {
		if r := b.report("/", tt.body, tt.hdr...); r.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, r.StatusCode, tt.status)
		}
	}
	// Over 4 KiB without a length: read up to the limit, and refused.
	req, _ := http.NewRequest("POST", p.url+"/_tailor/goal", io.MultiReader(strings.NewReader(`{"goal":"`), strings.NewReader(strings.Repeat("a", 5000))))
	req.Header.Set("Content-Type", "text/plain")
	req.ContentLength = -1
	if resp, err := client().Do(req); err != nil || resp.StatusCode != 413 {
		t.Errorf("a chunked body over 4 KiB: %v %v, want 413", resp, err)
	}
	// Other methods.
	resp, _ := get(t, p.url+"/_tailor/goal")
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET beacon: %d, Allow %q; want 405, POST", resp.StatusCode, resp.Header.Get("Allow"))
	}

	// Then one good report: it is the only goal event.
	if r := b.report("/", ok); r.StatusCode != 204 {
		t.Fatalf("a good report: status %d", r.StatusCode)
	}
	if got := goalsLanded(t, url, 1); got[0].Goal != "add_to_cart" || got[0].Value != 5 {
		t.Errorf("goal events %+v, want the one add_to_cart=5", got)
	}
	for _, line := range asked.All() {
		if strings.Contains(line, "_tailor") {
			t.Errorf("the origin was asked %q", line)
		}
	}
	text := metricsText(t, p.Registry())
	for _, want := range []string{`tailor_beacon_total{result="forbidden"} 4`, `tailor_beacon_total{result="invalid"} 12`,
		`tailor_beacon_total{result="accepted"} 1`} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// Opted-out visitors, bots and requests without a valid visitor cookie
// are told 204, like anyone, and nothing is recorded.
func TestBeaconRecordsNothingForOptedOutBotsOrStrangers(t *testing.T) {
	p, url, _ := startBeaconProxy(t, nil, func(c *config.Config) { c.Privacy.ConsentCookie = "consent" })
	b := visitorAt(t, p.url)
	b.setCookie("consent", "granted")
	b.get("/") // tracked now
	ok := `{"goal":"add_to_cart","id":"y"}`

	for _, tt := range []struct {
		name string
		hdr  []string
	}{
		{"GPC", []string{"Sec-GPC", "1"}},
		{"DNT", []string{"DNT", "1"}},
		{"Googlebot", []string{"User-Agent", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}},
		{"curl", []string{"User-Agent", "curl/8.5.0"}},
		{"no cookie", []string{"Cookie", "consent=granted"}},
		{"a forged cookie", []string{"Cookie", "consent=granted; tailor_id=v1.AAAAAAAAAAAAAAAAAAAAAA.forged"}},
		{"no consent", []string{"Cookie", "tailor_id=" + b.cookie("tailor_id")}},
	} {
		req, _ := http.NewRequest("POST", p.url+"/_tailor/goal", strings.NewReader(ok))
		req.Header.Set("User-Agent", testkit.BrowserUA)
		req.Header.Set("Cookie", "consent=granted; tailor_id="+b.cookie("tailor_id"))
		req.Header.Set("Content-Type", "text/plain")
		for i := 0; i+1 < len(tt.hdr); i += 2 {
			req.Header.Set(tt.hdr[i], tt.hdr[i+1])
		}
		resp, err := client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 {
			t.Errorf("%s: status %d, want 204", tt.name, resp.StatusCode)
		}
	}
	// The same report, from the visitor as they are: recorded, alone.
	if r := b.report("/", ok); r.StatusCode != 204 {
		t.Fatalf("the tracked visitor: %d", r.StatusCode)
	}
	if got := goalsLanded(t, url, 1); got[0].Visitor != b.anonymousID() {
		t.Errorf("goal events %+v, want the tracked visitor's alone", got)
	}
	if text := metricsText(t, p.Registry()); !strings.Contains(text, `tailor_beacon_total{result="ignored"} 7`) {
		t.Errorf("/metrics lacks tailor_beacon_total{result=\"ignored\"} 7")
	}
}

func TestBeaconLimitsEachVisitorsRate(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	p, url, _ := startBeaconProxy(t, &clock, nil)
	b := visitorAt(t, p.url)
	other := visitorAt(t, p.url)
	send := func(who *browser, i int) int {
		return who.report("/", fmt.Sprintf(`{"goal":"signup","id":"r%d"}`, i)).StatusCode
	}
	for i := range beaconBurst {
		if s := send(b, i); s != 204 {
			t.Fatalf("report %d: %d, want 204 within the burst", i, s)
		}
	}
	// One too many: dropped, but answered as any report is, so that a
	// script cannot tell a tracked visitor (who has a limit) from an
	// opted-out one or a bot (whose reports are all dropped).
	r := b.report("/", `{"goal":"signup","id":"over"}`)
	if r.StatusCode != 204 || r.Header.Get("Retry-After") != "" {
		t.Fatalf("report %d: %d (Retry-After %q), want 204 as for anyone", beaconBurst, r.StatusCode, r.Header.Get("Retry-After"))
	}
	// Another visitor has their own allowance.
	if s := send(other, 0); s != 204 {
		t.Errorf("another visitor: %d, want 204", s)
	}
	// A second later, one more.
	later := now.Add(time.Second)
	clock.Store(&later)
	if s := send(b, 100); s != 204 {
		t.Errorf("a second later: %d, want 204", s)
	}
	if s := send(b, 101); s != 204 {
		t.Errorf("and then: %d, want 204", s)
	}
	// Only the reports within the allowance were recorded.
	mine := 0
	for _, e := range goalsLanded(t, url, beaconBurst+2) {
		if e.Visitor == b.anonymousID() {
			mine++
		}
	}
	if mine != beaconBurst+1 {
		t.Errorf("%d goal events of the limited visitor, want %d", mine, beaconBurst+1)
	}
	if text := metricsText(t, p.Registry()); !strings.Contains(text, `tailor_beacon_total{result="rate_limited"} 2`) {
		t.Error(`/metrics lacks tailor_beacon_total{result="rate_limited"} 2`)
	}
}

func TestGoalScriptIsAddedToPagesWithClickGoals(t *testing.T) {
	p, _, _ := startBeaconProxy(t, nil, nil)
	b := newBrowser(t, p.url)
	b.header.Set("User-Agent", testkit.BrowserUA)

	for _, tt := range []struct {
		path, want string
	}{
		// Rules and a click goal: the rules' change and the tag.
		{"/products/shoe", strings.Replace(strings.Replace(beaconProduct, "10 EUR", "9 EUR", 1), "</body>", goalTag("")+"</body>", 1)},
		// The nonce of the page's CSP.
		{"/csp/shoe", strings.Replace(beaconProduct, "</body>", goalTag(` nonce="c5p+N0nce="`)+"</body>", 1)},
		// The CSP's nonce over the one of the page's script: the policy is
		// what the browser enforces.
		{"/csp/nonced", strings.Replace(beaconNonced, "</BODY>", goalTag(` nonce="c5p+N0nce="`)+"</BODY>", 1)},
		// The nonce of the page's own script; the real </BODY>.
		{"/nonce/x", strings.Replace(beaconNonced, "</BODY>", goalTag(` nonce="r4nd0m+/="`)+"</BODY>", 1)},
		// No </body>: at the end.
		{"/nobody/x", beaconNoBody + goalTag("")},
	} {
		resp, body := b.get(tt.path)
		if body != tt.want {
			t.Errorf("GET %s:\n%s\nwant\n%s", tt.path, body, tt.want)
		}
		if resp.Header.Get("ETag") != "" {
			t.Errorf("GET %s: the origin's ETag %q went out with a changed page", tt.path, resp.Header.Get("ETag"))
		}
		if resp.Header.Get("X-Origin") != "yes" || !strings.Contains(strings.Join(resp.Header.Values("Set-Cookie"), "\n"), "session=abc; Path=/") {
			t.Errorf("GET %s: the origin's headers did not all go out: %v", tt.path, resp.Header)
		}
		if strings.HasPrefix(tt.path, "/csp/") && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "'nonce-c5p+N0nce='") {
			t.Errorf("GET %s: the CSP went missing: %v", tt.path, resp.Header)
		}
	}
	// gzip stays gzip.
	req, _ := http.NewRequest("GET", p.url+"/gz/x", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("User-Agent", testkit.BrowserUA)
	resp, err := client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("GET /gz/x: %v, Content-Encoding %q", err, resp.Header.Get("Content-Encoding"))
	}
	plain, _ := io.ReadAll(zr)
	resp.Body.Close()
	if want := strings.Replace(beaconProduct, "</body>", goalTag("")+"</body>", 1); string(plain) != want {
		t.Errorf("GET /gz/x, decoded:\n%s\nwant\n%s", plain, want)
	}

	// Pages without click goals are the origin's bytes: one without
	// rules, and the home page, whose experiment holds out some visitors.
	if _, body := b.get("/about"); body != beaconProduct {
		t.Errorf("GET /about (no click goal):\n%s\nwant the origin's\n%s", body, beaconProduct)
	}
	if _, body := b.get("/"); strings.Contains(body, "goal.js") || !strings.HasSuffix(body, "</div></body></html>") {
		t.Errorf("GET / (no click goal) = %s, want no goal script", body)
	}

	// The script: cacheable, revalidated by its ETag, no eval.
	resp, js := get(t, p.url+"/_tailor/goal.js")
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") || etag == "" ||
		!strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") || !bytes.Contains(js, []byte("sendBeacon")) ||
		!bytes.Contains(js, []byte("keepalive")) || bytes.Contains(js, []byte("eval(")) || bytes.Contains(js, []byte("new Function")) {
		t.Errorf("GET goal.js: %d %v\n%s", resp.StatusCode, resp.Header, js)
	}
	if resp, _ := get(t, p.url+"/_tailor/goal.js", "If-None-Match", etag); resp.StatusCode != 304 {
		t.Errorf("GET goal.js If-None-Match its ETag: %d, want 304", resp.StatusCode)
	}
	req, _ = http.NewRequest("POST", p.url+"/_tailor/goal.js", nil)
	if resp, err := client().Do(req); err != nil || resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST goal.js: %v %v, want 405 with Allow: GET, HEAD", resp, err)
	}
	text := metricsText(t, p.Registry())
	if !strings.Contains(text, `tailor_goal_script_total{result="added"} 6`) {
		t.Error(`/metrics lacks tailor_goal_script_total{result="added"} 6`)
	}
}

// The goal script goes only to visitors whose reports count, and a page
// that gets it is the same page on GET, HEAD and a revalidation.
func TestGoalScriptOnlyWhereItCountsAndConsistently(t *testing.T) {
	p, _, _ := startBeaconProxy(t, nil, nil)
	do := func(method, path string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, p.url+path, nil)
		req.Header.Set("User-Agent", testkit.BrowserUA)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	withTag := strings.Replace(beaconProduct, "</body>", goalTag(` nonce="c5p+N0nce="`)+"</body>", 1)

	// A crawler and an opted-out visitor report nothing: /csp/x (a click
	// goal, no rules) is the origin's, its ETag and length kept, and a
	// cached copy revalidates as the origin says.
	for _, who := range [][]string{
		{"User-Agent", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
		{"Sec-GPC", "1"},
	} {
		resp, body := do("GET", "/csp/x", who...)
		if body != beaconProduct || resp.Header.Get("ETag") != `"origin-etag"` || resp.ContentLength != int64(len(beaconProduct)) {
			t.Errorf("GET /csp/x as %q: ETag %q, length %d:\n%s\nwant the origin's page", who, resp.Header.Get("ETag"), resp.ContentLength, body)
		}
		if resp, _ := do("GET", "/csp/x", append(who, "If-None-Match", `"origin-etag"`)...); resp.StatusCode != 304 {
			t.Errorf("GET /csp/x as %q, If-None-Match the origin's ETag: %d, want the origin's 304", who, resp.StatusCode)
		}
	}

	// A visitor: the page with the tag, on GET and, by its length, HEAD.
	resp, body := do("GET", "/csp/x")
	if body != withTag {
		t.Fatalf("GET /csp/x:\n%s\nwant\n%s", body, withTag)
	}
	head, _ := do("HEAD", "/csp/x")
	if head.StatusCode != 200 || head.ContentLength != int64(len(body)) || head.Header.Get("ETag") != "" {
		t.Errorf("HEAD /csp/x: %d, length %d, ETag %q; want 200, %d as GET, no ETag", head.StatusCode, head.ContentLength, head.Header.Get("ETag"), len(body))
	}
	// A copy cached before the goal existed (with the origin's ETag or
	// date) is not revalidated into a page without the tag.
	for _, cond := range [][]string{{"If-None-Match", `"origin-etag"`}, {"If-Modified-Since", "Sat, 02 May 2026 10:00:00 GMT"}} {
		if resp, body := do("GET", "/csp/x", cond...); resp.StatusCode != 200 || body != withTag {
			t.Errorf("GET /csp/x with %s: %d\n%s\nwant 200 and the page with the tag", cond[0], resp.StatusCode, body)
		}
	}
	if resp.Header.Get("ETag") != "" {
		t.Errorf("GET /csp/x: ETag %q went out with a changed page", resp.Header.Get("ETag"))
	}
	if text := metricsText(t, p.Registry()); !strings.Contains(text, `tailor_goal_script_total{result="added"} 4`) {
		t.Error(`/metrics lacks tailor_goal_script_total{result="added"} 4: the visitor's GET, HEAD and 2 revalidations alone`)
	}
}

// With beacon_path "" the beacon is off: its path is the origin's, and
// no page gets the script.
func TestBeaconOffLeavesEverythingToTheOrigin(t *testing.T) {
	p, _, asked := startBeaconProxy(t, nil, func(c *config.Config) { c.BeaconPath = "" })
	b := visitorAt(t, p.url)
	if _, body := b.get("/csp/x"); body != beaconProduct {
		t.Errorf("GET /csp/x with the beacon off:\n%s\nwant the origin's", body)
	}
	b.report("/", `{"goal":"signup"}`)
	if !has(asked, "POST /_tailor/goal") {
		t.Errorf("the origin was not asked POST /_tailor/goal: %v", asked.All())
	}
}

// A beacon_path of the site's choosing.
func TestBeaconAtItsConfiguredPath(t *testing.T) {
	p, url, asked := startBeaconProxy(t, nil, func(c *config.Config) { c.BeaconPath = "/shop/_g" })
	b := visitorAt(t, p.url)
	_, body := b.get("/products/x")
	if !strings.Contains(body, `<script src="/shop/_g.js" defer data-tailor-beacon="/shop/_g" `) {
		t.Errorf("the tag does not name /shop/_g: %s", body)
	}
	req, _ := http.NewRequest("POST", p.url+"/shop/_g", strings.NewReader(`{"goal":"signup"}`))
	req.Header.Set("User-Agent", testkit.BrowserUA)
	req.Header.Set("Cookie", "tailor_id="+b.cookie("tailor_id"))
	if resp, err := client().Do(req); err != nil || resp.StatusCode != 204 {
		t.Fatalf("POST /shop/_g: %v %v", resp, err)
	}
	if resp, _ := get(t, p.url+"/shop/_g.js"); resp.StatusCode != 200 {
		t.Errorf("GET /shop/_g.js: %d", resp.StatusCode)
	}
	b.report("/", `{"goal":"signup"}`) // the default path is the origin's now
	if !has(asked, "POST /_tailor/goal") || has(asked, "POST /shop/_g") {
		t.Errorf("the origin was asked %v", asked.All())
	}
	goalsLanded(t, url, 1)
}

// goalsLanded waits until the stream at url holds n goal events, and
// returns them; more is an error.
func goalsLanded(t *testing.T, url string, n int) []natsync.Event {
	t.Helper()
	var got []natsync.Event
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		events, err := streamEvents(t, url)
		if err != nil {
			return err
		}
		if got = goals(events); len(got) < n {
			return fmt.Errorf("%d goal events in the stream, want %d", len(got), n)
		}
		return nil
	})
	if len(got) != n {
		t.Fatalf("%d goal events in the stream, want exactly %d: %+v", len(got), n, got)
	}
	return got
}

// has reports whether the origin was asked line.
func has(l *testkit.Lines, line string) bool {
	for _, x := range l.All() {
		if x == line {
			return true
		}
	}
	return false
}

func TestGoalScriptSpotIsTheRealEndOfBody(t *testing.T) {
	for _, tt := range []struct {
		page, before, nonce string
		present             bool
	}{
		{`<body><p>x</p></body></html>`, `<body><p>x</p>`, "", false},
		{`<body><!-- </body> --><p>x</p></body>`, `<body><!-- </body> --><p>x</p>`, "", false},
		{`<body><textarea></body></textarea></body>`, `<body><textarea></body></textarea>`, "", false},
		{`<body></body><p>late</p></body>`, `<body></body><p>late</p>`, "", false}, // the last one
		{`<script nonce='a"b'></script><script nonce=ok></script></body>`, `<script nonce='a"b'></script><script nonce=ok></script>`, "ok", false},
		{`<script src="/_tailor/goal.js"></script></body>`, `<script src="/_tailor/goal.js"></script>`, "", true},
		{`<p>x</html>`, `<p>x`, "", false},
		{`<p>x`, `<p>x`, "", false},
		{``, ``, "", false},
	} {
		at, nonce, present := goalScriptSpot([]byte(tt.page), "/_tailor/goal.js")
		if tt.page[:at] != tt.before || nonce != tt.nonce || present != tt.present {
			t.Errorf("goalScriptSpot(%q) = %q, %q, %v; want %q, %q, %v", tt.page, tt.page[:at], nonce, present, tt.before, tt.nonce, tt.present)
		}
	}
}

func TestCSPNonce(t *testing.T) {
	for csp, want := range map[string]string{
		"script-src 'nonce-abc123=' 'strict-dynamic'":            "abc123=",
		"default-src 'self'; script-src 'nonce-x_y-z' 'nonce-2'": "x_y-z",
		`script-src 'nonce-"><script>'; style-src 'nonce-good1'`: "",
		"default-src 'nonce-d1'; style-src 'nonce-s1'":           "d1",
		"default-src 'nonce-d1'; script-src-elem 'nonce-e1'":     "e1",
		"script-src 'self'": "",
	} {
		var h fasthttp.ResponseHeader
		h.Set("Content-Security-Policy", csp)
		if got := cspNonce(&h); got != want {
			t.Errorf("cspNonce(%q) = %q, want %q", csp, got, want)
		}
	}
}

// However many visitors and reports come, the beacon keeps at most
// beaconVisitors buckets and beaconSeen report ids (some 30 MB at most,
// measured); an evicted visitor gets a full bucket back.
func TestBeaconMemoryIsBounded(t *testing.T) {
	b, err := newBeacon(config.Default(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range beaconVisitors + 1000 {
		if !b.allow(fmt.Sprint(i), now) {
			t.Fatalf("visitor %d's first report refused", i)
		}
	}
	for i := range beaconSeen + 1000 {
		if !b.firstTime("v", fmt.Sprint(i)) {
			t.Fatalf("report id %d taken for a duplicate", i)
		}
	}
	if b.buckets.Len() != beaconVisitors || b.seen.Len() != beaconSeen {
		t.Errorf("%d buckets and %d report ids kept, want at most %d and %d", b.buckets.Len(), b.seen.Len(), beaconVisitors, beaconSeen)
	}
	if b.firstTime("v", fmt.Sprint(beaconSeen+999)) {
		t.Error("the latest report id is forgotten")
	}
}
