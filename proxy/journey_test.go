package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/identity"
	"github.com/tailor-edge/tailor/internal/testkit"
	"github.com/tailor-edge/tailor/internal/testkit/fixtures"
	"github.com/tailor-edge/tailor/journey"
	"github.com/tailor-edge/tailor/rules"
)

// journeyRules move visitors along a journey and show, on the home page,
// the call to action for their stage, their visit number and whether
// this visit's goals made them engaged; its heading runs SPEC.md's
// experiment, whose variants the events and preview tests look for.
const journeyRules = `stages: [awareness, interest, intent, purchase, retention]
segments:
  returning: { visits: ">= 2" }
journey:
  - { path: "/products/*",    stage: interest }
  - { path: "/cart",          stage: intent }
  - { path: "/checkout/done", stage: purchase, goal: purchase, value: 100 }
  - { path: "/newsletter/ok", goal: subscribe, value: 20 }
pages:
  - match: ["/"]
    rules:
      - id: cta-by-stage
        select: ".cta"
        map:
          by: stage
          interest: { text: "Read the guide" }
          intent:   { text: "Finish your order" }
          purchase: { text: "Accessories" }
      - id: visits
        select: ".visits"
        text: "visit {{ .Visits }}{{ if .NewVisitor }} new{{ end }}"
      - id: engaged
        when: { engagement: ">= 20" }
        select: ".eng"
        text: "engaged"
      - ` + fixtures.HeroExperiment + `
  - match: ["/checkout/done"]
    rules:
      - id: thanks
        when: { stage: purchase }
        select: ".cta"
        text: "Thanks for your order"
`

const journeyPage = `<!doctype html><html><body><p class="cta">Shop now</p><p class="visits">-</p>` +
	`<p class="eng">-</p><div id="hero"><h1>Run</h1></div></body></html>`

// startJourneyProxy starts an origin serving journeyPage at every path
// (a stylesheet at *.css) and, in front of it, a proxy with the journey
// rules and what a browser over plain HTTP needs (cookies without
// Secure); more, when not nil, adjusts the config after. The lines are
// the request URIs the origin was asked for.
func startJourneyProxy(t *testing.T, more func(*config.Config, *Options)) (*testkit.Lines, *testProxy) {
	t.Helper()
	origin, asked := recordingOrigin(t, func(r *http.Request) string { return r.RequestURI }, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".css") {
			w.Header().Set("Content-Type", "text/css")
			io.WriteString(w, "body{}")
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, journeyPage)
	})
	_, rulesEdit := withRules(t, map[string]string{"j.yaml": journeyRules})
	p := startProxy(t, origin, func(c *config.Config, opts *Options) {
		rulesEdit(c, opts)
		c.Identity.Cookie.Keys = []string{"cookie-key-0123456789abcdef0123456789"}
		c.Identity.Cookie.Secure = false
		if more != nil {
			more(c, opts)
		}
	})
	return asked, p
}

// browser is a visitor with a cookie jar, as a browser keeps cookies.
type browser struct {
	t      *testing.T
	base   string
	c      *http.Client
	header http.Header
}

func newBrowser(t *testing.T, base string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := client()
	c.Jar = jar
	return &browser{t: t, base: base, c: c, header: http.Header{}}
}

// newVisitor is a browser back from its first view of the home page, and
// the anonymous id it was given there.
func newVisitor(t *testing.T, base string) (*browser, string) {
	t.Helper()
	b := newBrowser(t, base)
	b.get("/")
	return b, b.anonymousID()
}

// get fetches path and fails the test on anything but a 200.
func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest("GET", b.base+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range b.header {
		req.Header[k] = v
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != 200 {
		b.t.Fatalf("GET %s: status %d", path, resp.StatusCode)
	}
	return resp, string(body)
}

// cookie returns the value of the visitor's cookie name, "" for none.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.base)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) setCookie(name, value string) {
	u, _ := url.Parse(b.base)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// anonymousID returns the id in the visitor's tailor_id cookie.
func (b *browser) anonymousID() string {
	v := b.cookie("tailor_id")
	parts := strings.Split(v, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		b.t.Fatalf("tailor_id = %q, not a visitor cookie", v)
	}
	return parts[1]
}

// text returns the text of the element with class name in page.
func text(page, class string) string {
	return between(page, `class="`+class+`">`, "<")
}

func TestJourneyMovesTheStageForwardAndTheRulesSeeIt(t *testing.T) {
	_, p := startJourneyProxy(t, nil)
	b := newBrowser(t, p.url)

	home := func(cta, visits, eng string) {
		t.Helper()
		_, page := b.get("/")
		if got := text(page, "cta"); got != cta {
			t.Errorf("home page CTA = %q, want %q", got, cta)
		}
		if got := text(page, "visits"); got != visits {
			t.Errorf("visits = %q, want %q", got, visits)
		}
		if got := text(page, "eng"); got != eng {
			t.Errorf("engagement block = %q, want %q", got, eng)
		}
	}
	home("Shop now", "visit 1 new", "-")
	b.get("/products/boots")
	home("Read the guide", "visit 1 new", "-")
	b.get("/cart")
	home("Finish your order", "visit 1 new", "-")
	// The page that moves the visitor to purchase already shows it.
	if _, page := b.get("/checkout/done"); text(page, "cta") != "Thanks for your order" {
		t.Errorf("the purchase page's CTA = %q, want the purchase stage's", text(page, "cta"))
	}
	home("Accessories", "visit 1 new", "engaged")
	// Forward only: browsing a product after buying does not send the
	// customer back to interest.
	b.get("/products/socks")
	home("Accessories", "visit 1 new", "engaged")
	// Static assets are no page views.
	before := b.cookie("tailor_state")
	b.get("/site.css")
	if b.cookie("tailor_state") != before {
		t.Error("a stylesheet changed the visitor's state")
	}
}

func TestANewVisitStartsAfterThirtyMinutes(t *testing.T) {
	_, p := startJourneyProxy(t, nil)
	b := newBrowser(t, p.url)
	b.header.Set("User-Agent", testkit.BrowserUA) // exposures are tracked
	b.get("/")
	anon := b.anonymousID()
	now := time.Now().Unix()

	// Five minutes since the last page: the same visit, its engagement kept.
	b.setCookie("tailor_state", p.signer.EncodeState(anon, &identity.State{Visits: 3, LastSeen: now - 300, Engagement: 100, Stage: "intent", StageAt: now - 300}))
	_, page := b.get("/")
	if text(page, "visits") != "visit 3" || text(page, "eng") != "engaged" || text(page, "cta") != "Finish your order" {
		t.Errorf("5 minutes later: visits %q, engagement %q, CTA %q; want the same visit", text(page, "visits"), text(page, "eng"), text(page, "cta"))
	}
	// 31 minutes: the next visit, engagement starts again, the stage stays.
	b.setCookie("tailor_state", p.signer.EncodeState(anon, &identity.State{Visits: 3, LastSeen: now - 31*60, Engagement: 100, Stage: "intent", StageAt: now - 3600,
		Exposed: []string{identity.ExposureHash("last-visits-test", "a")}}))
	_, page = b.get("/")
	if text(page, "visits") != "visit 4" || text(page, "eng") != "-" || text(page, "cta") != "Finish your order" {
		t.Errorf("31 minutes later: visits %q, engagement %q, CTA %q; want visit 4, not engaged, intent", text(page, "visits"), text(page, "eng"), text(page, "cta"))
	}
	// The last visit's exposures are forgotten: the state holds this
	// view's only (the hero experiment's variant, kept for good too).
	variant := map[string]string{"Run further": "a", "Run faster": "b", "Run": rules.HoldoutVariant}[between(page, "<h1>", "</h1>")]
	st, ok := p.signer.DecodeState(anon, []byte(b.cookie("tailor_state")))
	if !ok || st.Visits != 4 || st.Engagement != 0 || st.LastSeen < now || variant == "" ||
		!slices.Equal(st.Exposed, []string{identity.ExposureHash("hero-copy-test", variant)}) || !st.Kept("hero-copy-test", variant) {
		t.Errorf("state after the new visit = %+v (ok %v), shown %q", st, ok, variant)
	}
	// A goal adds its value to the visit's engagement.
	b.get("/newsletter/ok")
	if _, page := b.get("/"); text(page, "eng") != "engaged" {
		t.Errorf("after a 20-point goal the visitor is not engaged: %q", text(page, "eng"))
	}
	// Within a minute of the last write, a page view changing nothing
	// sets no cookie.
	resp, _ := b.get("/")
	if sc := resp.Header.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("an unchanged state was written again: %q", sc)
	}
	// A state from an edge whose clock is an hour ahead counts as seen
	// now, and is written back with this edge's time.
	b.setCookie("tailor_state", p.signer.EncodeState(anon, &identity.State{Visits: 5, LastSeen: now + 3600, Stage: "intent", StageAt: now + 3600}))
	_, page = b.get("/")
	st, ok = p.signer.DecodeState(anon, []byte(b.cookie("tailor_state")))
	if text(page, "visits") != "visit 5" || !ok || st.LastSeen > time.Now().Unix() || st.StageAt > time.Now().Unix() {
		t.Errorf("state from a clock an hour ahead: visits %q, new state %+v (ok %v)", text(page, "visits"), st, ok)
	}
}

func TestTamperedStateStartsAfresh(t *testing.T) {
	_, p := startJourneyProxy(t, nil)
	b, anon := newVisitor(t, p.url)
	now := time.Now().Unix()
	good := p.signer.EncodeState(anon, &identity.State{Visits: 7, LastSeen: now, Stage: "intent", StageAt: now, Engagement: 50})
	_, otherAnon := newVisitor(t, p.url)
	tampered := map[string]string{
		"visits raised":         strings.Replace(good, "s1.7~", "s1.9~", 1),
		"stage changed":         strings.Replace(good, "~intent~", "~purchase~", 1),
		"another visitor's":     p.signer.EncodeState(otherAnon, &identity.State{Visits: 7, LastSeen: now, Stage: "intent", StageAt: now}),
		"mac cut":               good[:len(good)-3],
		"garbage":               "s1.~~~~~.AAAA",
		"wrong version":         "s2" + good[2:],
		"huge":                  "s1." + strings.Repeat("9", 3000),
		"unsigned, well formed": "s1.7~" + "1~intent~1~50~." + strings.Repeat("A", 43), // a MAC's length
	}
	resets := counterValue(t, p.Registry(), "tailor_state_resets_total")
	for name, value := range tampered {
		b.setCookie("tailor_state", value)
		_, page := b.get("/")
		if text(page, "visits") != "visit 1 new" || text(page, "cta") != "Shop now" {
			t.Errorf("%s state: visits %q, CTA %q; want a fresh start", name, text(page, "visits"), text(page, "cta"))
		}
		if st, ok := p.signer.DecodeState(anon, []byte(b.cookie("tailor_state"))); !ok || st.Visits != 1 {
			t.Errorf("%s state: the new cookie is %+v (ok %v), want a first visit", name, st, ok)
		}
	}
	if got := counterValue(t, p.Registry(), "tailor_state_resets_total") - resets; got != float64(len(tampered)) {
		t.Errorf("tailor_state_resets_total went up by %v, want %d", got, len(tampered))
	}
	// The untampered state reads back.
	b.setCookie("tailor_state", good)
	if _, page := b.get("/"); text(page, "visits") != "visit 7" || text(page, "cta") != "Finish your order" {
		t.Errorf("good state: visits %q, CTA %q", text(page, "visits"), text(page, "cta"))
	}
}

func TestOptedOutVisitorsGetNoCookiesButStillPersonalizedPages(t *testing.T) {
	_, p := startJourneyProxy(t, func(c *config.Config, _ *Options) {
		c.Privacy.ConsentCookie = "consent"
	})
	for _, tc := range []struct {
		name    string
		header  [2]string
		consent string
		cookies bool
	}{
		{"GPC", [2]string{"Sec-GPC", "1"}, "granted", false},
		{"DNT", [2]string{"DNT", "1"}, "granted", false},
		{"no consent", [2]string{}, "", false},
		{"consent denied", [2]string{}, "denied", false},
		{"consent granted", [2]string{}, "granted", true},
	} {
		b := newBrowser(t, p.url)
		if tc.header[0] != "" {
			b.header.Set(tc.header[0], tc.header[1])
		}
		if tc.consent != "" {
			b.setCookie("consent", tc.consent)
		}
		resp, _ := b.get("/products/x")
		if got := len(resp.Header.Values("Set-Cookie")) > 0; got != tc.cookies {
			t.Errorf("%s: Set-Cookie %q, want cookies %v", tc.name, resp.Header.Values("Set-Cookie"), tc.cookies)
		}
		// The rules still run on what the request says.
		if _, page := b.get("/"); text(page, "visits") != "visit 1 new" {
			t.Errorf("%s: the home page was not personalized: %q", tc.name, page)
		}
	}
}

func TestPreviewLinksRenderAsTheNamedVisitor(t *testing.T) {
	const key = "preview-key-0123456789abcdef01234567"
	asked, p := startJourneyProxy(t, func(c *config.Config, _ *Options) { c.Preview.Key = key })
	tok, err := identity.SignPreview(key, identity.PreviewClaims{Stage: "intent", Visits: 3}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, page := newBrowser(t, p.url).get("/?a=1&" + identity.PreviewParam + "=" + tok)
	if text(page, "cta") != "Finish your order" || text(page, "visits") != "visit 3" {
		t.Errorf("preview page: CTA %q, visits %q; want intent's, visit 3", text(page, "cta"), text(page, "visits"))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("preview Cache-Control = %q, want no-store", cc)
	}
	if sc := resp.Header.Values("Set-Cookie"); len(sc) > 0 {
		t.Errorf("a preview set cookies: %q", sc)
	}
	d := resp.Header.Get("X-Tailor-Decision")
	for _, want := range []string{"cta-by-stage", "maps=cta-by-stage:intent", "experiments=hero-copy-test:", "stage=intent", "preview"} {
		if !strings.Contains(d, want) {
			t.Errorf("X-Tailor-Decision = %q, want %q in it", d, want)
		}
	}
	if uri := asked.Last(); uri != "/?a=1" {
		t.Errorf("the origin was asked for %q, want the link without its token", uri)
	}
	// A preview of a page without rules is not stored either.
	if resp, _ := newBrowser(t, p.url).get("/products/x?" + identity.PreviewParam + "=" + tok); resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("preview of a page without rules: Cache-Control %q", resp.Header.Get("Cache-Control"))
	}

	// Forged, expired and foreign tokens are ignored: a normal page.
	expired, _ := identity.SignPreview(key, identity.PreviewClaims{Stage: "intent"}, time.Minute, time.Now().Add(-time.Hour))
	forged, _ := identity.SignPreview("another-key-0123456789abcdef0123456", identity.PreviewClaims{Stage: "intent"}, time.Hour, time.Now())
	for name, tok := range map[string]string{"expired": expired, "forged": forged, "garbage": "x.y.z", "login token": token(t, "cust-1")} {
		resp, page := newBrowser(t, p.url).get("/?" + identity.PreviewParam + "=" + tok)
		if text(page, "cta") != "Shop now" || resp.Header.Get("Cache-Control") == "no-store" {
			t.Errorf("%s preview token: CTA %q, Cache-Control %q; want a normal page", name, text(page, "cta"), resp.Header.Get("Cache-Control"))
		}
		if uri := asked.Last(); uri != "/" {
			t.Errorf("%s preview token: the origin was asked for %q", name, uri)
		}
	}
}

func TestCutQueryParamKeepsEveryOtherByte(t *testing.T) {
	for _, tc := range []struct{ in, out, value string }{
		{"/?tailor_preview=abc", "/", "abc"},
		{"/p?a=1&tailor_preview=x%2Ey&b=%7e+2", "/p?a=1&b=%7e+2", "x.y"},
		{"/public/..%2Fadmin/users?tailor_preview=", "/public/..%2Fadmin/users", ""},
		{"/a%2Fb/./c//d?q=a+b&tailor_preview=t&x=%7e&z", "/a%2Fb/./c//d?q=a+b&x=%7e&z", "t"},
		{"/?a&&tailor_preview=t&&b#frag", "/?a&&&b#frag", "t"},
		{"/?tailor_preview=1&tailor_preview=2", "/", "1"},
		{"/?tailor_previewx=1", "", ""},
		{"/?tailor%5Fpreview=1", "", ""},
		{"/no-query", "", ""},
	} {
		out, value, found := cutQueryParam([]byte(tc.in), identity.PreviewParam)
		if tc.out == "" {
			if found || string(out) != tc.in {
				t.Errorf("cut(%q) = %q, %v; want it untouched", tc.in, out, found)
			}
			continue
		}
		if !found || string(out) != tc.out || value != tc.value {
			t.Errorf("cut(%q) = %q, %q, %v; want %q, %q", tc.in, out, value, found, tc.out, tc.value)
		}
	}
}

func TestInterestsKeepTheStrongest(t *testing.T) {
	var scores []identity.InterestScore
	for i := range 12 {
		scores = journey.AddInterests(scores, map[string]float64{fmt.Sprintf("tag%02d", i): float64(i + 1)})
	}
	if len(scores) != identity.MaxInterests || scores[0] != (identity.InterestScore{Tag: "tag11", Score: 12}) || scores[identity.MaxInterests-1] != (identity.InterestScore{Tag: "tag04", Score: 5}) {
		t.Errorf("after 12 tags: %v; want the 8 strongest, strongest first", scores)
	}
}
