//go:build !nonats

// The tests in this file start an in-process NATS server; the tag
// nonats leaves them out of builds that need not link the server (the
// fuzz run of .ci/run, which instruments every package it links).

package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tailor-edge/tailor/cache"
	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/testkit"
	natsync "github.com/tailor-edge/tailor/sync"
)

// The tests here run the real thing: an in-process NATS server with
// JetStream in a temp dir, the sync package's Store watching it, a
// loopback origin, and HTTP requests through the proxy.

const profileRules = `stages: [awareness, interest, intent, purchase, retention]
pages:
  - match: ["/"]
    rules:
      - id: greet
        select: ".greeting"
        text: "Hello {{ .Traits.first_name }} ({{ .Stage }})"
      - id: vip
        when: { segment: [vip] }
        select: "#hero h1"
        text: "VIP"
`

const profilePage = `<!doctype html><html><head><title>Shop</title></head><body>
<p class="greeting">Hello there</p><div id="hero"><h1>Run</h1></div></body></html>`

// syncedProxy is a proxy whose profiles come from a NATS bucket.
type syncedProxy struct {
	*testProxy
	store *natsync.Store
	cache *cache.Profiles
}

// startSyncedProxy starts a proxy reading profiles from the bucket at url
// and watching it; wrap, when not nil, stands between the proxy and the
// store on a miss.
func startSyncedProxy(t *testing.T, url string, edit func(*config.Config, *Options), wrap func(ProfileSource) ProfileSource) *syncedProxy {
	t.Helper()
	store, c := watchedStore(t, url)
	_, rulesEdit := withRules(t, map[string]string{"p.yaml": profileRules})
	origin := pageOrigin(t, profilePage, nil)
	p := startProxy(t, origin, func(cfg *config.Config, o *Options) {
		rulesEdit(cfg, o)
		cfg.Identity.Cookie.Keys = []string{"cookie-key-0123456789abcdef0123456789"}
		cfg.Identity.JWT = testJWT()
		cfg.Profiles.MissBudget = time.Second // generous under -race; the budget test sets its own
		o.Profiles = c
		o.Source = store
		if wrap != nil {
			o.Source = wrap(store)
		}
		if edit != nil {
			edit(cfg, o)
		}
	})
	return &syncedProxy{testProxy: p, store: store, cache: c}
}

// watchedStore opens the profile store at url with a cache it keeps
// fresh, and returns once the watch runs; both stop when the test ends.
func watchedStore(t *testing.T, url string) (*natsync.Store, *cache.Profiles) {
	t.Helper()
	store, err := natsync.Open(context.Background(), natsync.Options{URL: url, Bucket: "tailor_profiles", Name: "test proxy"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.NewProfiles(10000, 10*time.Minute, 30*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Until the bucket is open, visitors are served without profiles:
	// the tests wait for it, as a load balancer would for /readyz.
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if _, err := store.KV(wctx); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() { defer close(watched); store.Watch(ctx, c) }()
	t.Cleanup(func() { cancel(); <-watched; store.Close() })
	checkFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if !store.Watching() {
			return fmt.Errorf("the profile watch has not started")
		}
		return nil
	})
	return store, c
}

func putProfile(t *testing.T, kv jetstream.KeyValue, id, stage, name string, segments ...string) uint64 {
	t.Helper()
	doc, _ := json.Marshal(map[string]any{"id": id, "stage": stage, "segments": segments,
		"traits": map[string]any{"first_name": name}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rev, err := kv.Put(ctx, natsync.Key(id), doc)
	if err != nil {
		t.Fatalf("put %s: %v", id, err)
	}
	return rev
}

// greeting fetches / as the visitor with tok and returns the greeting.
func greeting(t *testing.T, url, tok string) string {
	t.Helper()
	_, body := get(t, url+"/", "Authorization", "Bearer "+tok)
	s := string(body)
	i := strings.Index(s, `class="greeting">`)
	if i < 0 {
		t.Fatalf("no greeting in %q", s)
	}
	s = s[i+len(`class="greeting">`):]
	return s[:strings.Index(s, "<")]
}

func TestProfilesFromTheStoreReachThePage(t *testing.T) {
	ns := testkit.JetStream(t, t.TempDir(), -1)
	kv := testkit.Bucket(t, ns.ClientURL(), "tailor_profiles", 1)
	p := startSyncedProxy(t, ns.ClientURL(), nil, nil)
	tok := token(t, "cust-42")

	// Put, then the first request: a miss fetched within the budget.
	putProfile(t, kv, "cust-42", "interest", "Jane", "vip")
	if g := greeting(t, p.url, tok); g != "Hello Jane (interest)" {
		t.Fatalf("greeting = %q, want Hello Jane (interest)", g)
	}
	// Updates reach the cached profile through the watch.
	var lags []time.Duration
	for i := range 20 {
		name := fmt.Sprint("Jane", i)
		start := time.Now()
		putProfile(t, kv, "cust-42", "intent", name, "vip")
		checkFor(t, 2*time.Second, time.Millisecond, func() error {
			if g := greeting(t, p.url, tok); g != "Hello "+name+" (intent)" {
				return fmt.Errorf("greeting = %q after an update to %s", g, name)
			}
			return nil
		})
		lags = append(lags, time.Since(start))
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	t.Logf("update → visible through the proxy: median %v, max %v over 20", lags[10], lags[19])
	if lags[10] > 50*time.Millisecond {
		t.Errorf("median update → visible = %v, want ≤ 50ms", lags[10])
	}
	// Delete: the profile is gone.
	if err := kv.Delete(context.Background(), "cust-42"); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 2*time.Second, time.Millisecond, func() error {
		if g := greeting(t, p.url, tok); g != "Hello  (awareness)" {
			return fmt.Errorf("greeting after delete = %q, want no name", g)
		}
		return nil
	})
	// Ids that are not valid KV keys travel base64-encoded.
	odd := "jane@example.com"
	putProfile(t, kv, odd, "purchase", "Jane")
	if g := greeting(t, p.url, token(t, odd)); g != "Hello Jane (purchase)" {
		t.Errorf("greeting for %q = %q", odd, g)
	}
}

func TestAnonymousVisitorsProfileAndTokenSegments(t *testing.T) {
	ns := testkit.JetStream(t, t.TempDir(), -1)
	kv := testkit.Bucket(t, ns.ClientURL(), "tailor_profiles", 1)
	p := startSyncedProxy(t, ns.ClientURL(), nil, nil)
	// A first visit mints an id; the CDP then pushes a profile for it. A
	// minted id cannot have a profile yet: the store is not asked.
	resp, _ := get(t, p.url+"/")
	if n := p.cache.Len(); n != 0 {
		t.Errorf("a first visit left %d cache entries; want the store not asked", n)
	}
	cookie := strings.SplitN(resp.Header.Get("Set-Cookie"), ";", 2)[0]
	id := strings.Split(strings.TrimPrefix(cookie, "tailor_id="), ".")[1]
	putProfile(t, kv, id, "interest", "Anon", "vip")
	checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		_, body := get(t, p.url+"/", "Cookie", cookie)
		if !strings.Contains(string(body), "Hello Anon (interest)") || !strings.Contains(string(body), "<h1>VIP</h1>") {
			return fmt.Errorf("anonymous visitor's page: %s", body)
		}
		return nil
	})
	// A token's segments are merged into the profile's.
	putProfile(t, kv, "cust-7", "intent", "Sam")
	_, body := get(t, p.url+"/", "Authorization", "Bearer "+token(t, "cust-7", "vip"))
	if !strings.Contains(string(body), "<h1>VIP</h1>") || !strings.Contains(string(body), "Hello Sam (intent)") {
		t.Errorf("token segments not merged: %s", body)
	}
}

// slowSource delays the real store's answers, to take a miss past its
// budget.
type slowSource struct {
	ProfileSource
	delay time.Duration
}

func (s slowSource) Get(ctx context.Context, id string) (*cache.Profile, uint64, error) {
	time.Sleep(s.delay)
	return s.ProfileSource.Get(ctx, id)
}

func TestMissPastBudgetIsServedEmptyThenFilled(t *testing.T) {
	ns := testkit.JetStream(t, t.TempDir(), -1)
	kv := testkit.Bucket(t, ns.ClientURL(), "tailor_profiles", 1)
	p := startSyncedProxy(t, ns.ClientURL(), func(c *config.Config, _ *Options) {
		c.Profiles.MissBudget = 20 * time.Millisecond
	}, func(s ProfileSource) ProfileSource { return slowSource{s, 300 * time.Millisecond} })
	putProfile(t, kv, "cust-9", "intent", "Ada")
	tok := token(t, "cust-9")
	start := time.Now()
	g := greeting(t, p.url, tok)
	took := time.Since(start)
	if g != "Hello  (awareness)" {
		t.Errorf("over-budget miss served greeting %q, want the page without the profile", g)
	}
	if took > 250*time.Millisecond {
		t.Errorf("over-budget miss took %v: the request waited for the store", took)
	}
	// The fetch goes on in the background and fills the cache.
	checkFor(t, 3*time.Second, 10*time.Millisecond, func() error {
		if g := greeting(t, p.url, tok); g != "Hello Ada (intent)" {
			return fmt.Errorf("greeting = %q, want the filled profile", g)
		}
		return nil
	})
	// An unknown visitor is remembered as missing: no fetch per request.
	stranger := token(t, "nobody")
	greeting(t, p.url, stranger)
	checkFor(t, 3*time.Second, 10*time.Millisecond, func() error {
		if pr, ok := p.cache.Get("nobody"); !ok || pr != nil {
			return fmt.Errorf("Get(nobody) = %v, %v; want a cached absence", pr, ok)
		}
		return nil
	})
}

func TestNATSOutageKeepsServingAndResumesTheWatch(t *testing.T) {
	dir, port := t.TempDir(), testkit.FreePort(t)
	ns := testkit.JetStream(t, dir, port)
	url := ns.ClientURL()
	kv := testkit.Bucket(t, url, "tailor_profiles", 1)
	p := startSyncedProxy(t, url, nil, nil)
	tok := token(t, "cust-1")
	putProfile(t, kv, "cust-1", "interest", "Kim")
	if g := greeting(t, p.url, tok); g != "Hello Kim (interest)" {
		t.Fatalf("greeting = %q", g)
	}

	// NATS goes away: cached profiles keep being served, and a visitor
	// the edge has not seen is served at once, without a profile.
	ns.Shutdown()
	ns.WaitForShutdown()
	if g := greeting(t, p.url, tok); g != "Hello Kim (interest)" {
		t.Errorf("with NATS down, greeting = %q; want the cached profile", g)
	}
	start := time.Now()
	if g := greeting(t, p.url, token(t, "cust-new")); g != "Hello  (awareness)" {
		t.Errorf("with NATS down, a new visitor got %q", g)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("with NATS down, a miss took %v", took)
	}

	// NATS comes back on the same port and data: updates written right
	// away reach the proxy within a second, although the proxy's client
	// reconnects on its own schedule.
	ns2 := testkit.JetStream(t, dir, port)
	back := time.Now()
	kv2 := testkit.Bucket(t, ns2.ClientURL(), "tailor_profiles", 1)
	for i := range 5 {
		putProfile(t, kv2, "cust-1", "purchase", fmt.Sprint("Kim", i))
	}
	checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if g := greeting(t, p.url, tok); g != "Hello Kim4 (purchase)" {
			return fmt.Errorf("greeting = %q after the restart", g)
		}
		return nil
	})
	t.Logf("updates visible %v after the server was back", time.Since(back))
	if d := time.Since(back); d > time.Second {
		t.Errorf("updates visible %v after the server was back, want within 1s", d)
	}
}

func TestClusterWithANodeDownKeepsPropagating(t *testing.T) {
	nodes := testkit.Cluster(t, 3)
	all := nodes[0].ClientURL() + "," + nodes[1].ClientURL() + "," + nodes[2].ClientURL()
	// The central store's writer makes the bucket replicated on all three.
	kv := testkit.Bucket(t, all, "tailor_profiles", 3)
	// Two proxies, each connected to one node first.
	p0 := startSyncedProxy(t, nodes[0].ClientURL()+","+nodes[1].ClientURL(), nil, nil)
	p1 := startSyncedProxy(t, nodes[1].ClientURL()+","+nodes[2].ClientURL(), nil, nil)
	tok := token(t, "cust-c")
	putProfile(t, kv, "cust-c", "interest", "Cleo")
	for _, p := range []*syncedProxy{p0, p1} {
		checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			if g := greeting(t, p.url, tok); g != "Hello Cleo (interest)" {
				return fmt.Errorf("greeting = %q", g)
			}
			return nil
		})
	}
	// The node the first proxy was on goes down; updates keep reaching both.
	nodes[0].Shutdown()
	nodes[0].WaitForShutdown()
	down := time.Now()
	for i := range 10 {
		name := fmt.Sprint("Cleo", i)
		checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			doc := fmt.Sprintf(`{"id":"cust-c","stage":"intent","traits":{"first_name":%q}}`, name)
			_, err := kv.Put(ctx, "cust-c", []byte(doc))
			return err
		})
		for _, p := range []*syncedProxy{p0, p1} {
			checkFor(t, 10*time.Second, 5*time.Millisecond, func() error {
				if g := greeting(t, p.url, tok); g != "Hello "+name+" (intent)" {
					return fmt.Errorf("greeting = %q, want %s", g, name)
				}
				return nil
			})
		}
	}
	t.Logf("10 updates reached both proxies %v after a node went down", time.Since(down))
}

// TestTheProxyClockGovernsTokenExpiry: a visitor is identified with the
// one clock the rules and the journey read (Options.Clock), so a token
// that has expired by that clock is not honoured, even while the
// machine's clock still says it is valid.
func TestTheProxyClockGovernsTokenExpiry(t *testing.T) {
	ns := testkit.JetStream(t, t.TempDir(), -1)
	kv := testkit.Bucket(t, ns.ClientURL(), "tailor_profiles", 1)
	clock := &fakeClock{now: time.Now()}
	p := startSyncedProxy(t, ns.ClientURL(), func(_ *config.Config, o *Options) { o.Clock = clock.Now }, nil)
	putProfile(t, kv, "cust-42", "retention", "Jane", "vip")
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "cust-42",
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(jwtSecret))
	if err != nil {
		t.Fatal(err)
	}
	if g := greeting(t, p.url, tok); g != "Hello Jane (retention)" {
		t.Fatalf("a token valid for an hour got %q", g)
	}
	// A page without rules identifies the visitor too (its events and
	// journey are theirs), by the same clock.
	get(t, p.url+"/about", "Authorization", "Bearer "+tok)
	expired := func() float64 {
		return testkit.CounterValue(t, p.reg, "tailor_jwt_rejected_total", "reason", "expired")
	}
	if n := expired(); n != 0 {
		t.Fatalf("before the clock moved: %v tokens rejected as expired, want 0", n)
	}
	clock.advance(2 * time.Hour)
	if g := greeting(t, p.url, tok); g != "Hello  (awareness)" {
		t.Errorf("two hours on by the proxy's clock, the token expired an hour ago, yet got %q; want the anonymous greeting", g)
	}
	get(t, p.url+"/about", "Authorization", "Bearer "+tok)
	if n := expired(); n != 2 {
		t.Errorf("tailor_jwt_rejected_total{reason=expired} = %v after a page with rules and one without, want 2", n)
	}
}

func TestInvalidTokensAreServedAsAnonymous(t *testing.T) {
	ns := testkit.JetStream(t, t.TempDir(), -1)
	kv := testkit.Bucket(t, ns.ClientURL(), "tailor_profiles", 1)
	p := startSyncedProxy(t, ns.ClientURL(), func(c *config.Config, _ *Options) {
		c.Identity.JWT.Issuer = "https://login.example"
		c.Identity.JWT.Audience = "shop"
		c.Identity.JWT.Leeway = 30 * time.Second
	}, nil)
	putProfile(t, kv, "cust-42", "retention", "Jane", "vip")
	sign := func(m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "cust-42", "iss": "https://login.example", "aud": "shop", "exp": time.Now().Add(time.Hour).Unix()}
	}
	with := func(k string, v any) jwt.MapClaims { c := valid(); c[k] = v; return c }
	good := sign(jwt.SigningMethodHS256, []byte(jwtSecret), valid())
	if g := greeting(t, p.url, good); g != "Hello Jane (retention)" {
		t.Fatalf("a valid token got %q", g)
	}
	huge := valid()
	huge["pad"] = strings.Repeat("x", 9000)
	bad := map[string]string{
		"alg none":        sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid()),
		"wrong secret":    sign(jwt.SigningMethodHS256, []byte("another-secret-that-is-32-bytes-long"), valid()),
		"expired":         sign(jwt.SigningMethodHS256, []byte(jwtSecret), with("exp", time.Now().Add(-time.Minute).Unix())),
		"not yet valid":   sign(jwt.SigningMethodHS256, []byte(jwtSecret), with("nbf", time.Now().Add(time.Minute).Unix())),
		"wrong issuer":    sign(jwt.SigningMethodHS256, []byte(jwtSecret), with("iss", "https://evil.example")),
		"wrong audience":  sign(jwt.SigningMethodHS256, []byte(jwtSecret), with("aud", "blog")),
		"oversized":       sign(jwt.SigningMethodHS256, []byte(jwtSecret), huge),
		"truncated":       good[:len(good)-5],
		"algorithm HS512": sign(jwt.SigningMethodHS512, []byte(jwtSecret), valid()),
	}
	for name, tok := range bad {
		resp, body := get(t, p.url+"/", "Authorization", "Bearer "+tok)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d, want 200 (anonymous, never an error page)", name, resp.StatusCode)
			continue
		}
		if strings.Contains(string(body), "Jane") || !strings.Contains(string(body), "Hello  (awareness)") {
			t.Errorf("%s: served as the token's subject: %s", name, body)
		}
		if resp.Header.Get("Set-Cookie") == "" {
			t.Errorf("%s: no anonymous cookie issued", name)
		}
	}
	rejected := counterValue(t, p.Registry(), "tailor_jwt_rejected_total")
	if int(rejected) != len(bad) {
		t.Errorf("tailor_jwt_rejected_total = %v, want %d", rejected, len(bad))
	}
}

func TestProxyStartsWithNATSDownAndSyncsOnceItIsUp(t *testing.T) {
	port := testkit.FreePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	store, err := natsync.Open(context.Background(), natsync.Options{URL: url, Bucket: "tailor_profiles"})
	if err != nil {
		t.Fatalf("Open with NATS down = %v; want it to start and retry in the background", err)
	}
	c, _ := cache.NewProfiles(1000, time.Minute, time.Second, nil)
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() { defer close(watched); store.Watch(ctx, c) }()
	defer func() { cancel(); <-watched; store.Close() }()
	_, rulesEdit := withRules(t, map[string]string{"p.yaml": profileRules})
	p := startProxy(t, pageOrigin(t, profilePage, nil), func(cfg *config.Config, o *Options) {
		rulesEdit(cfg, o)
		cfg.Identity.JWT = testJWT()
		o.Profiles, o.Source = c, store
	})
	tok := token(t, "cust-late")
	start := time.Now()
	if g := greeting(t, p.url, tok); g != "Hello  (awareness)" {
		t.Errorf("with NATS never reached, greeting = %q", g)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("with NATS never reached, a request took %v", d)
	}
	// The server comes up: the store connects, creates the bucket and
	// the watch starts; profiles then flow. (Served without one so far,
	// cust-late was not cached: a miss before the watch runs is not.)
	ns := testkit.JetStream(t, t.TempDir(), port)
	kv := testkit.Bucket(t, ns.ClientURL(), "tailor_profiles", 1)
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !store.Watching() {
			return fmt.Errorf("the watch has not started")
		}
		return nil
	})
	putProfile(t, kv, "cust-late", "intent", "Lee")
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if g := greeting(t, p.url, tok); g != "Hello Lee (intent)" {
			return fmt.Errorf("greeting = %q once NATS is up", g)
		}
		return nil
	})
}
