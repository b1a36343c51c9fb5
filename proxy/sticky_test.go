//go:build !nonats

package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/cache"
	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/testkit"
	"github.com/tailor-edge/tailor/rules"
	natsync "github.com/tailor-edge/tailor/sync"
)

// Issue 18's experiments a team can trust: a visitor's variant is fixed
// at their first exposure (a login or new weights move no one), opted-out
// visitors see the control and add nothing, an exposure is sent only when
// its change (or its holdout's block) reached the page, and a rule-set
// experiment's holdout sees the origin for all its rules.

// stickyRules is the home page's hero experiment (weights a and b, a 10%
// holdout) under a VIP rule that replaces the whole hero, and a shop page
// whose two rules are one rule-set experiment with a 30% holdout.
func stickyRules(a, b int) string {
	return fmt.Sprintf(`segments:
  vip: { cookie: { tier: vip } }
pages:
  - match: ["/"]
    rules:
      - id: vip-hero
        when: { segment: [vip] }
        select: "#hero"
        replace: '<div id="hero"><p>VIP hero</p></div>'
      - id: hero-copy-test
        select: "#hero h1"
        experiment: { holdout: 10, variants: { a: { weight: %d, text: "Run further" }, b: { weight: %d, text: "Run faster" } } }
  - match: ["/shop"]
    rules:
      - { id: shop-greet, select: ".greet", text: "Hello again" }
      - id: shop-cta
        select: ".cta"
        map: { by: segment, vip: { text: "VIP offer" }, default: { text: "Our picks" } }
experiments:
  shop-personalization: { holdout: 30, rules: [shop-greet, shop-cta] }
`, a, b)
}

const stickyPage = `<!doctype html><html><body><div id="hero"><h1>Run</h1></div>` +
	`<p class="greet">Hi</p><p class="cta">Shop</p></body></html>`

// heroVariant is the variant the home page shows: "a", "b", "holdout"
// (the origin's heading), "hidden" (the VIP hero replaced the block).
func heroVariant(page string) string {
	switch between(page, "<h1>", "</h1>") {
	case "Run further":
		return "a"
	case "Run faster":
		return "b"
	case "Run":
		return rules.HoldoutVariant
	}
	if strings.Contains(page, "VIP hero") {
		return "hidden"
	}
	return "?" + page
}

type stickyProxy struct {
	*testProxy
	dir   string
	url   string // NATS
	clock *atomic.Int64
}

// startStickyProxy starts an origin serving stickyPage, a NATS server and
// a proxy with stickyRules(a, b) whose clock the test moves.
func startStickyProxy(t *testing.T, a, b int) *stickyProxy {
	t.Helper()
	return startRulesProxy(t, stickyRules(a, b), stickyPage)
}

// startRulesProxy is startStickyProxy with rule file src (exp.yaml) and
// an origin serving page.
func startRulesProxy(t *testing.T, src, page string) *stickyProxy {
	t.Helper()
	ns := testkit.JetStream(t, t.TempDir(), -1)
	url := ns.ClientURL()
	store, err := natsync.Open(context.Background(), natsync.Options{URL: url, Bucket: "tailor_profiles", Name: "sticky test"})
	if err != nil {
		t.Fatal(err)
	}
	dir, edit := withRules(t, map[string]string{"exp.yaml": src})
	clock := &atomic.Int64{}
	clock.Store(time.Now().UnixNano())
	var pub *natsync.Publisher
	p := startProxy(t, pageOrigin(t, page, nil), func(c *config.Config, opts *Options) {
		edit(c, opts)
		c.Rules.Watch = false
		c.Identity.Cookie.Keys = []string{"cookie-key-0123456789abcdef0123456789"}
		c.Identity.Cookie.Secure = false
		c.Identity.JWT = testJWT()
		pub, err = store.Events(natsync.PublisherOptions{Stream: c.NATS.EventsStream, Queue: c.NATS.EventsQueue})
		if err != nil {
			t.Fatal(err)
		}
		opts.Events = pub
		opts.Clock = func() time.Time { return time.Unix(0, clock.Load()) }
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pub.Close(ctx)
		store.Close()
	})
	return &stickyProxy{testProxy: p, dir: dir, url: url, clock: clock}
}

// visitor is a browser with an ordinary browser's User-Agent.
func (sp *stickyProxy) visitor(t *testing.T) *browser {
	b := newBrowser(t, sp.testProxy.url)
	b.header.Set("User-Agent", testkit.BrowserUA)
	return b
}

// exposures returns, per anonymous id, the variants of experiment its
// exposure events name, once the stream holds n events.
func exposures(t *testing.T, url string, n int, experiment string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, e := range eventsLanded(t, url, n) {
		if e.Type == natsync.EventExposure && e.Experiment == experiment {
			out[e.AnonymousID] = append(out[e.AnonymousID], e.Variant)
		}
	}
	return out
}

// (a) 200 visitors browse anonymously, then log in: the variant shown
// and reported never changes, though the lookup key (and so the hash)
// does.
func TestLoginNeverMovesAVisitor(t *testing.T) {
	sp := startStickyProxy(t, 50, 50)
	set, err := rules.Load(sp.dir)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	shown := map[string]string{}
	wouldMove := 0
	for i := range n {
		b := sp.visitor(t)
		_, page := b.get("/")
		first := heroVariant(page)
		if _, page = b.get("/"); heroVariant(page) != first {
			t.Fatalf("visitor %d: %s, then %s before logging in", i, first, heroVariant(page))
		}
		sub := fmt.Sprintf("cust-%d", i)
		b.header.Set("Authorization", "Bearer "+token(t, sub))
		for range 2 {
			if _, page = b.get("/"); heroVariant(page) != first {
				t.Fatalf("visitor %d: %s before logging in, %s after", i, first, heroVariant(page))
			}
		}
		shown[b.anonymousID()] = first
		// What the rules would show the customer id without the kept
		// variant: the test means something only if some would move.
		d := set.Decide(set.Match("/"), &rules.Visitor{ID: sub}, nil)
		if d.Exposures[0].Variant != first {
			wouldMove++
		}
	}
	if wouldMove == 0 {
		t.Fatal("no visitor's bucket changes at login: the test proves nothing")
	}
	// Per visitor: 4 page views, 1 identify, 1 exposure (one visit).
	got := exposures(t, sp.url, 6*n, "hero-copy-test")
	for anon, variant := range shown {
		if vs := got[anon]; len(vs) != 1 || vs[0] != variant {
			t.Errorf("visitor %s was shown %s, reported %v", anon, variant, vs)
		}
	}
	t.Logf("%d of %d visitors would have moved at login without sticky variants", wouldMove, n)
}

// (b) The weights change from 50/50 to 0/100: visitors already exposed
// keep theirs, in this visit and the next; new visitors follow the new
// weights.
func TestNewWeightsMoveOnlyNewVisitors(t *testing.T) {
	sp := startStickyProxy(t, 50, 50)
	type seen struct {
		b       *browser
		variant string
	}
	var old []seen
	count := map[string]int{}
	for range 100 {
		b := sp.visitor(t)
		_, page := b.get("/")
		old = append(old, seen{b, heroVariant(page)})
		count[heroVariant(page)]++
	}
	if count["a"] == 0 || count["b"] == 0 {
		t.Fatalf("50/50 split: %v", count)
	}
	writeRules(t, sp.dir, map[string]string{"exp.yaml": stickyRules(0, 100)})
	if err := sp.LoadRules(); err != nil {
		t.Fatal(err)
	}
	for i, o := range old {
		if _, page := o.b.get("/"); heroVariant(page) != o.variant {
			t.Fatalf("visitor %d: %s before the new weights, %s after", i, o.variant, heroVariant(page))
		}
	}
	newCount := map[string]int{}
	for range 100 {
		_, page := sp.visitor(t).get("/")
		newCount[heroVariant(page)]++
	}
	if newCount["a"] != 0 || newCount["b"] < 80 {
		t.Errorf("new visitors after 0/100: %v, want none in a", newCount)
	}
	// The next visit reports the kept variant again.
	sp.clock.Add(int64(31 * time.Minute))
	for i, o := range old {
		if _, page := o.b.get("/"); heroVariant(page) != o.variant {
			t.Fatalf("visitor %d, next visit: %s, was %s", i, heroVariant(page), o.variant)
		}
	}
	// 100 × 3 page views + 100 new, and their exposures: 2 visits each
	// for the old, 1 for the new (holdouts included).
	got := exposures(t, sp.url, 300+100+200+100, "hero-copy-test")
	for i, o := range old {
		anon := o.b.anonymousID()
		if vs := got[anon]; len(vs) != 2 || vs[0] != o.variant || vs[1] != o.variant {
			t.Errorf("visitor %d shown %s, reported %v", i, o.variant, vs)
		}
	}
	t.Logf("before: %v; new visitors after 0/100: %v", count, newCount)
}

// (c) A visitor with GPC, 20 times: always the control, no cookie, no
// event; and the same for a visitor without consent.
func TestOptedOutVisitorsSeeTheControlAndAddNothing(t *testing.T) {
	sp := startStickyProxy(t, 50, 50)
	b := sp.visitor(t)
	b.header.Set("Sec-GPC", "1")
	for i := range 20 {
		resp, page := b.get("/")
		if v := heroVariant(page); v != rules.HoldoutVariant {
			t.Fatalf("request %d: GPC visitor shown %s, want the origin's heading", i, v)
		}
		if sc := resp.Header.Values("Set-Cookie"); len(sc) > 0 {
			t.Fatalf("request %d: GPC visitor got cookies %q", i, sc)
		}
		if _, page = b.get("/shop"); text(page, "greet") != "Hi" || text(page, "cta") != "Shop" {
			t.Fatalf("request %d: GPC visitor was shown the rule set's treatment: %s", i, page)
		}
	}
	// An ordinary visitor after them: their events are the first.
	o := sp.visitor(t)
	o.get("/")
	events := eventsLanded(t, sp.url, 2)
	for _, e := range events {
		if e.AnonymousID != o.anonymousID() {
			t.Errorf("an event from the GPC visitor: %+v", e)
		}
	}
	if v := counterValue(t, sp.Registry(), "tailor_page_views_total", "tracking", "opted_out"); v != 40 {
		t.Errorf("opted-out page views = %v, want 40", v)
	}
}

// (d) Jane: her VIP hero replaces the block the experiment targets, so
// she saw no variant, and no exposure is sent; holdout visitors alike.
func TestNoExposureWhenAnOuterChangeHidesTheBlock(t *testing.T) {
	sp := startStickyProxy(t, 50, 50)
	set, err := rules.Load(sp.dir)
	if err != nil {
		t.Fatal(err)
	}
	arms := map[string]int{}
	var janes []*browser
	for len(janes) < 60 || arms[rules.HoldoutVariant] < 3 {
		b := sp.visitor(t)
		b.setCookie("tier", "vip")
		_, page := b.get("/")
		if heroVariant(page) != "hidden" {
			t.Fatalf("a VIP was not shown the VIP hero: %s", page)
		}
		janes = append(janes, b)
		// The arm the rules put her in, had the block been there.
		arms[set.Decide(set.Match("/"), &rules.Visitor{ID: b.anonymousID()}, nil).Exposures[0].Variant]++
		if len(janes) > 400 {
			t.Fatal("no VIP in the holdout after 400")
		}
	}
	// The same visitors without the VIP cookie see their variant, and
	// are exposed then: the only exposure events.
	for _, b := range janes {
		b.setCookie("tier", "none")
		b.get("/")
	}
	n := len(janes)
	got := exposures(t, sp.url, 3*n, "hero-copy-test")
	for _, b := range janes {
		if vs := got[b.anonymousID()]; len(vs) != 1 {
			t.Errorf("visitor %s: exposures %v, want one, after the block was shown", b.anonymousID(), vs)
		}
	}
	hidden := counterValue(t, sp.Registry(), "tailor_exposures_total", "result", "hidden")
	shownN := counterValue(t, sp.Registry(), "tailor_exposures_total", "result", "shown")
	if hidden != float64(n) || shownN != float64(n) {
		t.Errorf("tailor_exposures_total: hidden %v, shown %v; want %d each", hidden, shownN, n)
	}
	t.Logf("%d VIPs hidden from the experiment (arms %v): no exposure until the block was on their page", n, arms)
}

// (e) A rule-set experiment: holdout visitors get the origin's bytes for
// every rule of the set, exactly; the others get the rules; each is
// exposed once, by the criterion (a block of the set reached the page).
func TestRuleSetHoldoutSeesTheOrigin(t *testing.T) {
	sp := startStickyProxy(t, 50, 50)
	arms := map[string]int{}
	var anons []string
	armOf := map[string]string{}
	for i := range 100 {
		b := sp.visitor(t)
		if i%2 == 0 {
			b.setCookie("tier", "vip")
		}
		resp, page := b.get("/shop")
		arm := rules.TreatedVariant
		switch {
		case page == stickyPage:
			arm = rules.HoldoutVariant
			if cc := resp.Header.Get("Cache-Control"); !strings.HasPrefix(cc, "private") {
				t.Errorf("holdout page: Cache-Control %q, want private: another visitor may be treated", cc)
			}
		case text(page, "greet") != "Hello again":
			t.Fatalf("visitor %d: neither the origin nor the treatment: %s", i, page)
		case i%2 == 0 && text(page, "cta") != "VIP offer", i%2 == 1 && text(page, "cta") != "Our picks":
			t.Fatalf("visitor %d: the map's case is wrong: %s", i, page)
		}
		if arm == rules.HoldoutVariant && arms[arm] == 0 {
			// The origin's bytes exactly, gzip included: the page was
			// decoded and rendered for the probes only.
			req, _ := http.NewRequest("GET", sp.testProxy.url+"/shop?enc=gzip", nil)
			req.Header.Set("User-Agent", testkit.BrowserUA)
			req.Header.Set("Accept-Encoding", "gzip")
			resp, err := b.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := encodeWith(t, "gzip", []byte(stickyPage)); !bytes.Equal(body, want) || resp.Header.Get("Content-Encoding") != "gzip" {
				t.Errorf("holdout visitor, gzip: %d bytes (%q), want the origin's %d", len(body), resp.Header.Get("Content-Encoding"), len(want))
			}
		}
		arms[arm]++
		// Sticky too.
		if _, again := b.get("/shop"); (again == stickyPage) != (arm == rules.HoldoutVariant) {
			t.Fatalf("visitor %d changed arm", i)
		}
		anons = append(anons, b.anonymousID())
		armOf[b.anonymousID()] = arm
	}
	if arms[rules.HoldoutVariant] < 15 || arms[rules.HoldoutVariant] > 45 {
		t.Errorf("30%% holdout: %v", arms)
	}
	got := exposures(t, sp.url, 300+1, "shop-personalization") // and the gzip page view (exposed already)
	for _, anon := range anons {
		if vs := got[anon]; len(vs) != 1 || vs[0] != armOf[anon] {
			t.Errorf("visitor %s in %s: exposures %v", anon, armOf[anon], vs)
		}
	}
	t.Logf("rule-set arms over 100 visitors: %v", arms)
}

// The decision header shows the exposures that were true: none for Jane.
func TestDecisionHeaderShowsOnlyTrueExposures(t *testing.T) {
	_, edit := withRules(t, map[string]string{"exp.yaml": stickyRules(50, 50)})
	p := startProxy(t, pageOrigin(t, stickyPage, nil), func(c *config.Config, opts *Options) {
		edit(c, opts)
		c.Debug.DecisionHeader = true
	})
	req := func(vip bool) string {
		r, _ := http.NewRequest("GET", p.url+"/", nil)
		r.Header.Set("User-Agent", testkit.BrowserUA)
		if vip {
			r.Header.Set("Cookie", "tier=vip")
		}
		resp, err := client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("X-Tailor-Decision")
	}
	if h := req(true); strings.Contains(h, "experiments=") || !strings.Contains(h, "rules=vip-hero") {
		t.Errorf("Jane's decision header: %q", h)
	}
	if h := req(false); !strings.Contains(h, "experiments=hero-copy-test:") {
		t.Errorf("an ordinary visitor's decision header: %q", h)
	}
}

// Explain says what the proxy would report: no exposure for Jane, whose
// VIP hero hides the experiment's block; the held-out rules of a rule set
// traced as such, the page the origin's.
func TestExplainShowsOnlyTrueExposures(t *testing.T) {
	_, edit := withRules(t, map[string]string{"exp.yaml": stickyRules(50, 50)})
	p := startProxy(t, pageOrigin(t, stickyPage, nil), edit)
	ex, err := p.Explain(ExplainRequest{URL: "/", Cookies: []string{"tier=vip"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ex.Decision.Exposures) != 0 || !strings.Contains(string(ex.Personalized), "VIP hero") {
		t.Errorf("Jane's explanation: exposures %v", ex.Decision.Exposures)
	}
	ex, err = p.Explain(ExplainRequest{URL: "/"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ex.Decision.Exposures) != 1 || ex.Decision.Exposures[0].Experiment != "hero-copy-test" {
		t.Errorf("an ordinary visitor's explanation: exposures %v", ex.Decision.Exposures)
	}
	// Some visitor id in the rule set's holdout.
	for i := range 100 {
		ex, err = p.Explain(ExplainRequest{URL: "/shop", Profile: &cache.Profile{ID: fmt.Sprintf("cust-%d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		if string(ex.Personalized) != stickyPage {
			continue
		}
		if r := ex.Decision.Trace[0].Reason; !strings.HasPrefix(r, "held out by experiment shop-personalization") {
			t.Errorf("held-out rule's trace: %q", r)
		}
		if xs := ex.Decision.Exposures; len(xs) != 1 || xs[0].Variant != rules.HoldoutVariant {
			t.Errorf("held-out visitor's exposures: %v", xs)
		}
		return
	}
	t.Error("no visitor in the rule set's 30% holdout among 100")
}

// Example B through the proxy: an earlier rule sets the heading, the
// experiment's a adds a class to it and b sets its text. Each visitor is
// exposed, in their arm, as the experiment is live for them (a's class
// is a change no earlier rule made) and its block is on their page: the
// arms are counted in proportion to the split, none left out. (Counted
// by different tests, a was 990 of 990, b 0 of 1031, the holdout 0 of
// 979.)
func TestEveryArmCountedThroughTheProxy(t *testing.T) {
	sp := startRulesProxy(t, exampleB, stickyPage)
	ref := armOfSet(loadArmsRules(t, exampleBArms))
	const n = 1500
	in := map[string]int{}
	armOf := map[string]string{}
	for i := range n {
		b := sp.visitor(t)
		_, page := b.get("/")
		arm := ref(b.anonymousID())
		// The arm's page: the earlier rule's heading, with a's class
		// for a; b's text was the earlier rule's to make.
		want := `<h1>Welcome back</h1>`
		if arm == "a" {
			want = `<h1 class="bold">Welcome back</h1>`
		}
		if !strings.Contains(page, want) {
			t.Fatalf("visitor %d in %s: %s, want %s", i, arm, page, want)
		}
		in[arm]++
		armOf[b.anonymousID()] = arm
	}
	shown := counterValue(t, sp.Registry(), "tailor_exposures_total", "result", "shown")
	hidden := counterValue(t, sp.Registry(), "tailor_exposures_total", "result", "hidden")
	// A page view per visitor, and an exposure per exposed visitor.
	got := exposures(t, sp.url, n+int(shown), "hero-test")
	exposed := map[string]int{}
	for anon, vs := range got {
		if len(vs) != 1 || vs[0] != armOf[anon] {
			t.Errorf("visitor %s in %s: exposures %v", anon, armOf[anon], vs)
		}
		exposed[armOf[anon]]++
	}
	t.Logf("in the arms: %v; exposed: %v; tailor_exposures_total shown %v, hidden %v", in, exposed, shown, hidden)
	for arm, share := range map[string]float64{rules.HoldoutVariant: 34, "a": 33, "b": 33} {
		if exposed[arm] != in[arm] {
			t.Errorf("arm %s: %d of %d visitors exposed, want all", arm, exposed[arm], in[arm])
		}
		if pct := 100 * float64(exposed[arm]) / n; pct < share-5 || pct > share+5 {
			t.Errorf("arm %s: %.1f%% of the visitors exposed, want its share %.0f%% ± 5", arm, pct, share)
		}
	}
	if shown != n || hidden != 0 {
		t.Errorf("tailor_exposures_total: shown %v, hidden %v; want %d and 0", shown, hidden, n)
	}
}
