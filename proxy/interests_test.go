//go:build !nonats

package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/identity"
	"github.com/tailor-edge/tailor/internal/testkit"
	natsync "github.com/tailor-edge/tailor/sync"
)

// interestRules score browsing by tag and match personas, as the SPEC's
// example does; the home page shows what the rules saw.
const interestRules = `stages: [awareness, interest, intent]
interests:
  half_life: 14d
  rules:
    - { path: "/products/running/**", add: { running: 5 } }
    - { path: "/products/camping/**", add: { camping: 5 } }
    - { path: "/blog/trail/**",       add: { trail: 3, running: 1 } }
personas:
  runner: { running: 1.0, trail: 0.3 }
  hiker:  { trail: 1.0, camping: 0.6 }
pages:
  - match: ["/"]
    rules:
      - id: hero-running
        when: { interest: running }
        select: "#hero"
        inner: "<h1>Ready for your next run?</h1>"
      - id: show-persona
        select: ".persona"
        text: "{{ or .Persona \"none\" }}"
      - id: show-running
        select: ".running"
        text: "{{ printf \"%.4g\" (index .Interests \"running\") }}"
  - match: ["/products/**"]
    rules:
      - id: show-top
        select: ".top"
        text: "{{ or .TopInterest \"none\" }}"
`

const interestPage = `<!doctype html><html><body><div id="hero"><h1>Gear for every trail</h1></div>` +
	`<p class="persona">-</p><p class="running">-</p><p class="top">-</p></body></html>`

// fakeClock is a clock a test moves forward.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// startInterestProxy starts a proxy with interestRules in front of
// interestPage, with profiles and events on the NATS server at url.
func startInterestProxy(t *testing.T, url string, clock *fakeClock) *syncedProxy {
	t.Helper()
	store, profiles := watchedStore(t, url)
	pub, err := store.Events(natsync.PublisherOptions{Stream: "TAILOR_EVENTS", Queue: 1024})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pub.Close(ctx)
	})
	_, rulesEdit := withRules(t, map[string]string{"i.yaml": interestRules})
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, interestPage)
	}))
	p := startProxy(t, origin.URL, func(c *config.Config, o *Options) {
		rulesEdit(c, o)
		c.Identity.Cookie.Keys = []string{"cookie-key-0123456789abcdef0123456789"}
		c.Identity.Cookie.Secure = false
		c.Identity.JWT = testJWT()
		c.Debug.DecisionHeader = true
		c.Profiles.MissBudget = time.Second
		o.Profiles, o.Source, o.Events = profiles, store, pub
		if clock != nil {
			o.Clock = clock.Now
		}
	})
	return &syncedProxy{testProxy: p, store: store, cache: profiles}
}

func TestBrowsingRunningPagesPicksTheRunningHeroAndTheRunnerPersona(t *testing.T) {
	ns := testkit.JetStream(t, t.TempDir(), -1)
	p := startInterestProxy(t, ns.ClientURL(), nil)
	b := newBrowser(t, p.url)

	_, page := b.get("/")
	if !strings.Contains(page, "Gear for every trail") || text(page, "persona") != "none" {
		t.Fatalf("a first visit: %q", page)
	}
	for i, slug := range []string{"road-racer", "trail-blazer", "tempo-socks"} {
		_, page := b.get("/products/running/" + slug)
		// The page view that adds the points already sees them.
		if text(page, "top") != "running" {
			t.Errorf("product page %d: top interest %q, want running", i+1, text(page, "top"))
		}
	}
	resp, page := b.get("/")
	if !strings.Contains(page, "<h1>Ready for your next run?</h1>") {
		t.Errorf("after three running pages the home page has no running hero: %q", page)
	}
	if text(page, "persona") != "runner" || text(page, "running") != "15" {
		t.Errorf("persona %q, running score %q; want runner, 15", text(page, "persona"), text(page, "running"))
	}
	if h := resp.Header.Get("X-Tailor-Decision"); !strings.Contains(h, "; persona=runner") {
		t.Errorf("X-Tailor-Decision = %q, want the persona in it", h)
	}
	st, ok := p.signer.DecodeState(b.anonymousID(), []byte(b.cookie("tailor_state")))
	if !ok || len(st.Interests) != 1 || st.Interests[0] != (identity.InterestScore{Tag: "running", Score: 15}) {
		t.Errorf("state = %+v (ok %v), want running 15", st, ok)
	}

	// Every event carries the persona the rules saw.
	events := eventsLanded(t, ns.ClientURL(), 5)
	var personas []string
	for _, e := range events {
		if e.Type == natsync.EventPageview {
			personas = append(personas, e.Path+"="+e.Persona)
		}
	}
	want := "/= /products/running/road-racer=runner /products/running/trail-blazer=runner /products/running/tempo-socks=runner /=runner"
	if got := strings.Join(personas, " "); got != want {
		t.Errorf("page views' personas:\n got %s\nwant %s", got, want)
	}
}

func TestInterestsHalveEveryHalfLife(t *testing.T) {
	ns := testkit.JetStream(t, t.TempDir(), -1)
	clock := &fakeClock{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	p := startInterestProxy(t, ns.ClientURL(), clock)
	b := newBrowser(t, p.url)

	b.get("/products/running/road-racer")
	b.get("/products/running/trail-blazer")
	score := func() string {
		t.Helper()
		_, page := b.get("/")
		return text(page, "running")
	}
	if got := score(); got != "10" {
		t.Fatalf("running after two pages = %s, want 10", got)
	}
	clock.advance(14 * 24 * time.Hour)
	if got := score(); got != "5" {
		t.Errorf("one half-life later running = %s, want 5", got)
	}
	clock.advance(7 * 24 * time.Hour)
	if got := score(); got != "3.536" {
		t.Errorf("half a half-life more, running = %s, want 3.536 (5/√2)", got)
	}
	// New points add to the decayed score, and the decay goes on from
	// there.
	b.get("/products/running/tempo-socks")
	clock.advance(14 * 24 * time.Hour)
	if got := score(); got != "4.268" {
		t.Errorf("after 5 more points and a half-life, running = %s, want 4.268 ((3.536+5)/2)", got)
	}
}

func TestTamperedStateResetsInterests(t *testing.T) {
	ns := testkit.JetStream(t, t.TempDir(), -1)
	p := startInterestProxy(t, ns.ClientURL(), nil)
	b, anon := newVisitor(t, p.url)
	now := time.Now().Unix()
	good := p.signer.EncodeState(anon, &identity.State{Visits: 2, LastSeen: now, Interests: []identity.InterestScore{{Tag: "running", Score: 15}}, InterestsAt: now})
	other := p.signer.EncodeState("x"+anon[1:], &identity.State{Visits: 1})
	tampered := map[string]string{
		"score raised":   strings.Replace(good, "running:15", "running:95", 1),
		"tag changed":    strings.Replace(good, "running:15", "camping:15", 1),
		"interests cut":  strings.Replace(good, "~running:15", "~", 1),
		"bad score":      strings.Replace(good, "running:15", "running:x", 1),
		"tags added":     strings.Replace(good, "running:15", "running:15|trail:9", 1),
		"not a name":     strings.Replace(good, "running:15", "run<ing:15", 1),
		"another's mac":  good[:strings.LastIndexByte(good, '.')] + other[strings.LastIndexByte(other, '.'):],
		"time backdated": strings.Replace(good, fmt.Sprintf("~%d~running", now), "~1~running", 1),
	}
	for name, value := range tampered {
		if value == good {
			t.Fatalf("%s: the tampering changed nothing", name)
		}
		b.setCookie("tailor_state", value)
		_, page := b.get("/")
		if text(page, "persona") != "none" || strings.Contains(page, "next run") {
			t.Errorf("%s: persona %q, page %q; want no interests", name, text(page, "persona"), page)
		}
		if st, ok := p.signer.DecodeState(anon, []byte(b.cookie("tailor_state"))); !ok || st.Visits != 1 || len(st.Interests) != 0 {
			t.Errorf("%s: the new state is %+v (ok %v), want a fresh one", name, st, ok)
		}
	}
	b.setCookie("tailor_state", good)
	if _, page := b.get("/"); text(page, "persona") != "runner" {
		t.Errorf("the good state: persona %q, want runner", text(page, "persona"))
	}
}

func TestProfileScoresJoinTheEdgesInterests(t *testing.T) {
	ns := testkit.JetStream(t, t.TempDir(), -1)
	p := startInterestProxy(t, ns.ClientURL(), nil)
	kv := testkit.Bucket(t, ns.ClientURL(), "tailor_profiles", 1)
	// The CDP knows Hana hikes; engagement and lifetime_value are no
	// interests (no rule adds them, no persona weighs them).
	doc, _ := json.Marshal(map[string]any{"id": "hana", "scores": map[string]float64{"trail": 10, "camping": 4, "engagement": 90, "lifetime_value": 900}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := kv.Put(ctx, natsync.Key("hana"), doc); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, p.url)
	b.header.Set("Authorization", "Bearer "+token(t, "hana"))
	_, page := b.get("/products/camping/stove")
	if text(page, "top") != "trail" {
		t.Errorf("top interest %q, want trail (10 from the profile over 5 from browsing)", text(page, "top"))
	}
	if _, page := b.get("/"); text(page, "persona") != "hiker" {
		t.Errorf("persona %q, want hiker", text(page, "persona"))
	}
	// Two more camping pages: 15 from browsing + 4 from the profile
	// overtake the profile's trail.
	b.get("/products/camping/tent")
	if _, page := b.get("/products/camping/mat"); text(page, "top") != "camping" {
		t.Errorf("top interest %q, want camping", text(page, "top"))
	}
}
