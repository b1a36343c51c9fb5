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

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/testkit"
	"github.com/tailor-edge/tailor/internal/testkit/fixtures"
	"github.com/tailor-edge/tailor/proxy"
	"github.com/tailor-edge/tailor/report"
	natsync "github.com/tailor-edge/tailor/sync"
)

// The experiment of the simulation, SPEC.md's: 10% held out, a and b
// split evenly.
const simRules = `stages: [awareness, interest, intent, purchase]
journey:
  - { path: "/checkout/done", stage: purchase, goal: purchase, value: 100 }
pages:
  - match: ["/"]
    rules:
      - ` + fixtures.HeroExperiment + `
`

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
		"identity: { cookie: { keys: [%q], secure: false } }\n"+
		"nats: { url: %q, events_queue: 1048576 }\nrules: { dir: %q }\ndebug: { decision_header: true }\n",
		freeAddr(t), origin, freeAddr(t), simCookieKey, url, rulesDir)
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

// TestReportReadsASimulatedExperiment sends 50,000 visitors through the
// real proxy onto an experiment with a 10% holdout and variants a and b:
// those shown b buy 13% of the time, everyone else 10%. The events go to
// two NATS servers: all of them to one, and to the other all but 15% of
// b's exposures. tailor report, reading each, must count exactly what was
// simulated, find b's uplift and not a's, and flag the broken split only
// on the lossy copy.
func TestReportReadsASimulatedExperiment(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, `<!doctype html><html><body><div id="hero"><h1>Gear</h1></div></body></html>`)
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

	// The simulation: each visitor's id and conversion come from their
	// own seeded stream, so the outcome does not depend on scheduling.
	type tally struct{ exposed, converted int }
	var mu sync.Mutex
	sim := map[string]*tally{"holdout": {}, "a": {}, "b": {}}
	client := &http.Client{Transport: testkit.Browser(&http.Transport{MaxIdleConnsPerHost: 16}), Timeout: 30 * time.Second}
	visit := func(i int) error {
		r := rand.New(rand.NewPCG(simSeed, uint64(i)+2))
		var id [16]byte
		for j := range id {
			id[j] = byte(r.UintN(256))
		}
		cookie := simCookie(id[:])
		get := func(path, cookies string) (*http.Response, error) {
			req, _ := http.NewRequest("GET", base+path, nil)
			req.Header.Set("Cookie", cookies)
			resp, err := client.Do(req)
			if err != nil {
				return nil, err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return nil, fmt.Errorf("GET %s: %d", path, resp.StatusCode)
			}
			return resp, nil
		}
		resp, err := get("/", cookie)
		if err != nil {
			return err
		}
		_, variant, ok := strings.Cut(resp.Header.Get("X-Tailor-Decision"), "experiments=hero-copy-test:")
		if !ok {
			return fmt.Errorf("no variant in %q", resp.Header.Get("X-Tailor-Decision"))
		}
		variant, _, _ = strings.Cut(variant, ";")
		rate := 0.10
		if variant == "b" {
			rate = 0.13
		}
		converted := r.Float64() < rate
		if converted {
			state := ""
			for _, c := range resp.Cookies() {
				if c.Name == "tailor_state" {
					state = "; tailor_state=" + c.Value
				}
			}
			if _, err := get("/checkout/done", cookie+state); err != nil {
				return err
			}
		}
		mu.Lock()
		defer mu.Unlock()
		tl := sim[variant]
		if tl == nil {
			return fmt.Errorf("unknown variant %q", variant)
		}
		tl.exposed++
		if converted {
			tl.converted++
		}
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
	t.Logf("%d visitors through the proxy in %v", simVisitors, time.Since(start).Round(time.Millisecond))
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

	readout := func(cfgFile string) *report.Report {
		t.Helper()
		start := time.Now()
		code, out, stderr := run(t, context.Background(), "report", "--config", cfgFile, "--since", "1h", "--json")
		if code != exitOK {
			t.Fatalf("tailor report exit %d: %s", code, stderr)
		}
		var r report.Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("tailor report --json: %v\n%s", err, out)
		}
		if len(r.Experiments) != 1 || r.Experiments[0].ID != "hero-copy-test" {
			t.Fatalf("experiments: %+v", r.Experiments)
		}
		t.Logf("report read %d events in %v", r.Events, time.Since(start).Round(time.Millisecond))
		return &r
	}
	variants := func(r *report.Report) map[string]report.VariantResult {
		m := map[string]report.VariantResult{}
		for _, v := range r.Experiments[0].Variants {
			m[v.Name] = v
		}
		return m
	}

	full := readout(fullCfg)
	if code, out, stderr := run(t, context.Background(), "report", "--config", fullCfg, "--since", "1h"); code != exitOK {
		t.Errorf("tailor report (text) exit %d: %s", code, stderr)
	} else {
		t.Logf("tailor report --since 1h:\n%s", out)
	}
	got := variants(full)
	for name, want := range sim {
		v := got[name]
		if v.Exposed != want.exposed || v.Goals["purchase"].Converted != want.converted {
			t.Errorf("%s: report counts %d exposed, %d converted; the simulation %d, %d",
				name, v.Exposed, v.Goals["purchase"].Converted, want.exposed, want.converted)
		}
	}
	t.Logf("simulated: holdout %+v, a %+v, b %+v", *sim["holdout"], *sim["a"], *sim["b"])
	if u := got["b"].Goals["purchase"].Uplift; u == nil || u.CI[0] <= 0 {
		t.Errorf("b's uplift over the holdout = %+v, want an interval above 0", u)
	}
	if u := got["a"].Goals["purchase"].Uplift; u == nil || u.CI[0] > 0 || u.CI[1] < 0 {
		t.Errorf("a's uplift over the holdout = %+v, want an interval around 0", u)
	}
	if srm := full.Experiments[0].SRM; srm == nil || srm.Flag {
		t.Errorf("the full events: SRM %+v, want no flag", srm)
	}

	broken := readout(lossyCfg)
	got = variants(broken)
	if want := sim["b"].exposed - int(lossy.dropped.Load()); got["b"].Exposed != want || got["a"].Exposed != sim["a"].exposed {
		t.Errorf("lossy events: b exposed %d, want %d; a %d, want %d", got["b"].Exposed, want, got["a"].Exposed, sim["a"].exposed)
	}
	if srm := broken.Experiments[0].SRM; srm == nil || !srm.Flag {
		t.Errorf("15%% of b's exposures lost: SRM %+v, want the flag", srm)
	} else {
		t.Logf("lossy split flagged: chi² %.1f, p %.3g (dropped %d of b's exposures)", srm.ChiSquare, srm.P, lossy.dropped.Load())
	}
}
