//go:build !race

// The simulation is left out of race builds: 50,000 visitors take 70 s
// under the race detector, for no race the smaller tests would not show.
// CI runs it in its stage without -race (.ci/run).

package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/testkit"
	"github.com/tailor-edge/tailor/internal/testkit/fixtures"
	"github.com/tailor-edge/tailor/proxy"
	"github.com/tailor-edge/tailor/report"
	natsync "github.com/tailor-edge/tailor/sync"
)

// The rules of the simulation: SPEC.md's experiment (10% held out, a and
// b split evenly), and a rule-set experiment holding 20% of visitors out
// of the page's other personalization (a greeting for the logged-in and a
// promotion for everyone); add_to_cart is reported by the page's script.
const simRules = `stages: [awareness, interest, intent, purchase]
journey:
  - { path: "/checkout/done", stage: purchase, goal: purchase, value: 100 }
goals:
  add_to_cart: { value: 5, max_value: 50 }
experiments:
  personalization: { holdout: 20, rules: [greet-known, promo] }
pages:
  - match: ["/"]
    rules:
      - ` + fixtures.HeroExperiment + `
      - { id: greet-known, when: { known: true }, select: ".greeting", text: "Welcome back" }
      - { id: promo, select: ".promo", text: "Spring sale: 20% off" }
`

// simPage is the origin's home page, and simControl what a visitor who
// sees the control of both experiments gets: the same bytes.
const simPage = `<!doctype html><html><body><div id="hero"><h1>Gear</h1></div>` +
	`<p class="greeting">Hello</p><p class="promo">Free shipping</p></body></html>`

// simBots are the crawlers and tools among the simulated visitors.
var simBots = []string{
	"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
	"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
	"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
	"Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
	"curl/8.5.0",
	"Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
}

// simJWTKey signs the simulated logins.
const simJWTKey = "simulation-jwt-key-0123456789abcdef"

const simCookieKey = "simulation-cookie-key-0123456789abcdef"

// simVisitors is how many visitors the simulation sends; simSeed seeds
// everything random in it: who they are, and whether they convert.
const (
	simVisitors = 50_000
	simSeed     = 2026
)

// lossySink passes every event to its sink but drops a share of the
// exposures to variant b, seeded: what a broken tracking path does to an
// experiment's split.
type lossySink struct {
	sink    proxy.EventSink
	mu      sync.Mutex
	rng     *rand.Rand
	share   float64
	dropped atomic.Int64
}

func (l *lossySink) Publish(e *natsync.Event) bool {
	if e.Type == natsync.EventExposure && e.Variant == "b" {
		l.mu.Lock()
		drop := l.rng.Float64() < l.share
		l.mu.Unlock()
		if drop {
			l.dropped.Add(1)
			return true
		}
	}
	return l.sink.Publish(e)
}

// teeSink publishes every event to each of its sinks.
type teeSink []proxy.EventSink

func (t teeSink) Publish(e *natsync.Event) bool {
	ok := true
	for _, s := range t {
		ok = s.Publish(e) && ok
	}
	return ok
}

// simNATS starts a NATS server with JetStream in a temporary folder and
// writes a config naming it, the rules and origin; it returns the config
// file and the publisher of its events stream.
func simNATS(t *testing.T, rulesDir, origin string) (cfgFile string, cfg *config.Config, pub *natsync.Publisher) {
	t.Helper()
	url := testkit.JetStream(t, "", -1).ClientURL()
	cfgFile = filepath.Join(t.TempDir(), "tailor.yaml")
	text := fmt.Sprintf("listen: %q\norigin: %q\nadmin: { listen: %q }\n"+
		"identity: { cookie: { keys: [%q], secure: false }, jwt: { algorithms: [HS256], keys: [%q] } }\n"+
		"nats: { url: %q, events_queue: 1048576 }\nrules: { dir: %q }\ndebug: { decision_header: true }\n",
		freeAddr(t), origin, freeAddr(t), simCookieKey, "hmac:"+simJWTKey, url, rulesDir)
	if err := os.WriteFile(cfgFile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	store, err := natsync.Open(context.Background(), natsync.Options{URL: cfg.NATS.URL, Bucket: cfg.NATS.Bucket, Name: "simulation"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if pub, err = store.Events(natsync.PublisherOptions{Stream: cfg.NATS.EventsStream, Queue: cfg.NATS.EventsQueue}); err != nil {
		t.Fatal(err)
	}
	return cfgFile, cfg, pub
}

// simCookie is the signed tailor_id cookie of the visitor whose id is
// the 16 bytes id.
func simCookie(id []byte) string {
	v := base64.RawURLEncoding.EncodeToString(id)
	m := hmac.New(sha256.New, []byte(simCookieKey))
	m.Write([]byte("v1." + v))
	return "tailor_id=v1." + v + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// simDecision reads the arms a page view was shown from its
// X-Tailor-Decision header: experiment id -> variant.
func simDecision(h string) map[string]string {
	out := map[string]string{}
	_, list, ok := strings.Cut(h, "experiments=")
	if !ok {
		return out
	}
	list, _, _ = strings.Cut(list, ";")
	for item := range strings.SplitSeq(list, ",") {
		if id, v, ok := strings.Cut(item, ":"); ok {
			out[id] = v
		}
	}
	return out
}

// simTally is what the simulation knows of one arm of an experiment:
// distinct visitors exposed, and those of them who reached each goal.
type simTally struct{ exposed, purchase, cart int }

// TestReportReadsASimulatedExperiment sends 50,000 visitors through the
// real proxy onto two experiments: SPEC.md's, with a 10% holdout and
// variants a and b, and a rule-set experiment holding 20% out of the
// page's other personalization. Those shown b buy 13% of the time,
// everyone else 10%; a fifth report add_to_cart from the page (the
// beacon; some twice, as a retried beacon does); 30% log in after their
// first page view, and their variants must not move; 4% are crawlers,
// who must see the control, get no cookie and count nowhere. The events
// go to two NATS servers: all of them to one, and to the other all but
// 15% of b's exposures. tailor report, reading each, must count exactly
// what was simulated, both by a full read and by its incremental fold,
// find b's uplift and not a's, and flag the broken split only on the
// lossy copy.
func TestReportReadsASimulatedExperiment(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, simPage)
	}))
	defer origin.Close()
	rulesDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(rulesDir, "sim.yaml"), []byte(simRules), 0o644); err != nil {
		t.Fatal(err)
	}
	fullCfg, cfg, fullPub := simNATS(t, rulesDir, origin.URL)
	lossyCfg, _, lossyPub := simNATS(t, rulesDir, origin.URL)
	lossy := &lossySink{sink: lossyPub, rng: rand.New(rand.NewPCG(simSeed, 1)), share: 0.15}

	p, err := proxy.New(cfg, proxy.Options{Logger: slog.New(slog.DiscardHandler), Events: teeSink{fullPub, lossy}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(ln)
	defer p.Shutdown(context.Background())
	base := "http://" + ln.Addr().String()

	// The simulation: each visitor's id, kind and conversions come from
	// their own seeded stream, so the outcome does not depend on
	// scheduling.
	var mu sync.Mutex
	sim := map[string]map[string]*simTally{
		"hero-copy-test":  {"holdout": {}, "a": {}, "b": {}},
		"personalization": {"holdout": {}, "personalized": {}},
	}
	var bots, logins, beacons, retried int
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 30 * time.Second}
	do := func(method, path, ua string, body io.Reader, header ...string) (*http.Response, string, error) {
		req, _ := http.NewRequest(method, base+path, body)
		req.Header.Set("User-Agent", ua)
		for i := 0; i+1 < len(header); i += 2 {
			if header[i+1] != "" {
				req.Header.Set(header[i], header[i+1])
			}
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, "", err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b), err
	}
	visit := func(i int) error {
		r := rand.New(rand.NewPCG(simSeed, uint64(i)+2))
		if r.Float64() < 0.04 {
			// A crawler: the origin's page, no cookie, no event.
			ua := simBots[r.IntN(len(simBots))]
			resp, body, err := do("GET", "/", ua, nil)
			if err != nil {
				return err
			}
			if resp.StatusCode != 200 || body != simPage || len(resp.Cookies()) != 0 || len(simDecision(resp.Header.Get("X-Tailor-Decision"))) != 0 {
				return fmt.Errorf("bot %q: %d, %d cookies, decision %q, body %q; want the origin's page and nothing else",
					ua, resp.StatusCode, len(resp.Cookies()), resp.Header.Get("X-Tailor-Decision"), body)
			}
			mu.Lock()
			bots++
			mu.Unlock()
			return nil
		}
		var id [16]byte
		for j := range id {
			id[j] = byte(r.UintN(256))
		}
		cookie := simCookie(id[:])
		state := ""
		keepState := func(resp *http.Response) {
			for _, c := range resp.Cookies() {
				if c.Name == "tailor_state" {
					state = "; tailor_state=" + c.Value
				}
			}
		}
		auth := ""
		get := func(path string) (*http.Response, error) {
			resp, _, err := do("GET", path, testkit.BrowserUA, nil, "Cookie", cookie+state, "Authorization", auth)
			if err != nil {
				return nil, err
			}
			if resp.StatusCode != 200 {
				return nil, fmt.Errorf("GET %s: %d", path, resp.StatusCode)
			}
			keepState(resp)
			return resp, nil
		}
		resp, err := get("/")
		if err != nil {
			return err
		}
		arms := simDecision(resp.Header.Get("X-Tailor-Decision"))
		if len(arms) != 2 {
			return fmt.Errorf("arms %v from %q, want both experiments", arms, resp.Header.Get("X-Tailor-Decision"))
		}
		login := r.Float64() < 0.30
		if login {
			// Logging in changes the id experiments bucket by: the
			// variants must not move.
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
				"sub": fmt.Sprintf("cust-%d", i), "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(simJWTKey))
			if err != nil {
				return err
			}
			auth = "Bearer " + tok
			resp, err := get("/")
			if err != nil {
				return err
			}
			// The greeting is the rule set's: shown to the personalized,
			// held from the holdout.
			h := resp.Header.Get("X-Tailor-Decision")
			if greeted := strings.Contains(h, "greet-known"); greeted != (arms["personalization"] == "personalized") {
				return fmt.Errorf("logged in, %s: decision %q", arms["personalization"], h)
			}
			for id, v := range simDecision(resp.Header.Get("X-Tailor-Decision")) {
				if arms[id] != v {
					return fmt.Errorf("visitor %d moved from %s to %s in %s at login", i, arms[id], v, id)
				}
			}
		}
		rate := 0.10
		if arms["hero-copy-test"] == "b" {
			rate = 0.13
		}
		purchase := r.Float64() < rate
		if purchase {
			if _, err := get("/checkout/done"); err != nil {
				return err
			}
		}
		cart, retry := r.Float64() < 0.20, r.Float64() < 0.5
		if cart {
			report := fmt.Sprintf(`{"goal":"add_to_cart","value":%d,"id":"sim-%d"}`, 1+r.IntN(50), i)
			for range 1 + btoi(retry) {
				resp, _, err := do("POST", "/_tailor/goal", testkit.BrowserUA, strings.NewReader(report),
					"Cookie", cookie+state, "Authorization", auth, "Origin", base, "Content-Type", "text/plain;charset=UTF-8")
				if err != nil {
					return err
				}
				if resp.StatusCode != http.StatusNoContent {
					return fmt.Errorf("beacon: %d", resp.StatusCode)
				}
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for x, v := range arms {
			tl := sim[x][v]
			if tl == nil {
				return fmt.Errorf("unknown arm %s of %s", v, x)
			}
			tl.exposed++
			tl.purchase += btoi(purchase)
			tl.cart += btoi(cart)
		}
		logins += btoi(login)
		beacons += btoi(cart)
		retried += btoi(cart && retry)
		return nil
	}
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < simVisitors; i = int(next.Add(1)) - 1 {
				if err := visit(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d visitors through the proxy in %v: %d crawlers, %d logins, %d add_to_cart reports (%d sent twice)",
		simVisitors, time.Since(start).Round(time.Millisecond), bots, logins, beacons, retried)
	for _, pub := range []*natsync.Publisher{fullPub, lossyPub} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := pub.Close(ctx); err != nil {
			t.Fatalf("publishing the events: %v (dropped %d)", err, pub.Stats().Dropped)
		}
		cancel()
		if d := pub.Stats().Dropped; d != 0 {
			t.Fatalf("the publisher dropped %d events", d)
		}
	}

	readout := func(args ...string) *report.Report {
		t.Helper()
		start := time.Now()
		code, out, stderr := run(t, context.Background(), append([]string{"report", "--json"}, args...)...)
		if code != exitOK {
			t.Fatalf("tailor report %v exit %d: %s", args, code, stderr)
		}
		var r report.Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("tailor report %v --json: %v\n%s", args, err, out)
		}
		if len(r.Experiments) != 2 || r.Experiments[0].ID != "hero-copy-test" || r.Experiments[1].ID != "personalization" {
			t.Fatalf("tailor report %v: experiments %+v", args, r.Experiments)
		}
		t.Logf("tailor report %v: %d events in %v", args, r.Events, time.Since(start).Round(time.Millisecond))
		return &r
	}
	variants := func(x *report.ExperimentResult) map[string]report.VariantResult {
		m := map[string]report.VariantResult{}
		for _, v := range x.Variants {
			m[v.Name] = v
		}
		return m
	}
	exact := func(name string, r *report.Report) {
		t.Helper()
		for _, x := range r.Experiments {
			got := variants(&x)
			for arm, want := range sim[x.ID] {
				v := got[arm]
				if v.Exposed != want.exposed || v.Goals["purchase"].Converted != want.purchase || v.Goals["add_to_cart"].Converted != want.cart {
					t.Errorf("%s: %s %s: report counts %d exposed, %d purchase, %d add_to_cart; the simulation %+v",
						name, x.ID, arm, v.Exposed, v.Goals["purchase"].Converted, v.Goals["add_to_cart"].Converted, *want)
				}
			}
		}
	}

	full := readout("--config", fullCfg, "--since", "1h")
	exact("full read", full)
	for x, arms := range sim {
		for arm, tl := range arms {
			t.Logf("simulated %s %s: %+v", x, arm, *tl)
		}
	}
	if code, out, stderr := run(t, context.Background(), "report", "--config", fullCfg, "--since", "1h"); code != exitOK {
		t.Errorf("tailor report (text) exit %d: %s", code, stderr)
	} else {
		t.Logf("tailor report --since 1h:\n%s", out)
	}
	hero := variants(&full.Experiments[0])
	if u := hero["b"].Goals["purchase"].Uplift; u == nil || u.CI[0] <= 0 {
		t.Errorf("b's uplift over the holdout = %+v, want an interval above 0", u)
	}
	if u := hero["a"].Goals["purchase"].Uplift; u == nil || u.CI[0] > 0 || u.CI[1] < 0 {
		t.Errorf("a's uplift over the holdout = %+v, want an interval around 0", u)
	}
	for _, x := range full.Experiments {
		if srm := x.SRM; srm == nil || srm.Flag {
			t.Errorf("the full events: %s SRM %+v, want no flag", x.ID, srm)
		}
	}
	// Crawlers left no event: every exposure came from a desktop browser.
	byDevice := readout("--config", fullCfg, "--since", "1h", "--by", "device")
	for _, x := range byDevice.Experiments {
		if len(x.Groups) != 1 || x.Groups[0].Value != "desktop" {
			t.Errorf("%s by device: %+v, want desktop alone", x.ID, x.Groups)
		}
	}

	// The incremental fold counts the same as the full read.
	folded := readout("--config", fullCfg)
	exact("incremental fold", folded)
	if a, b := jsonOf(t, full.Experiments), jsonOf(t, folded.Experiments); a != b {
		t.Errorf("the fold and the full read differ:\n%s\n%s", a, b)
	}

	broken := readout("--config", lossyCfg, "--since", "1h")
	got := variants(&broken.Experiments[0])
	if want := sim["hero-copy-test"]["b"].exposed - int(lossy.dropped.Load()); got["b"].Exposed != want || got["a"].Exposed != sim["hero-copy-test"]["a"].exposed {
		t.Errorf("lossy events: b exposed %d, want %d; a %d, want %d", got["b"].Exposed, want, got["a"].Exposed, sim["hero-copy-test"]["a"].exposed)
	}
	if srm := broken.Experiments[0].SRM; srm == nil || !srm.Flag {
		t.Errorf("15%% of b's exposures lost: SRM %+v, want the flag", srm)
	} else {
		t.Logf("lossy split flagged: chi² %.1f, p %.3g (dropped %d of b's exposures)", srm.ChiSquare, srm.P, lossy.dropped.Load())
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
