package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/admin"
	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/testkit"
	"github.com/tailor-edge/tailor/report"
	"github.com/tailor-edge/tailor/rules"
	natsync "github.com/tailor-edge/tailor/sync"
)

// simulatedEvents makes the events of n visitors from seed, in time
// order from start: page views with segments, stage and persona, an
// exposure to hero (configured) and to some to promo (not), goals before
// and after exposure, and logins (identify) after which the visitor's
// events carry their customer id.
func simulatedEvents(seed uint64, n int, start time.Time) []natsync.Event {
	rng := rand.New(rand.NewPCG(seed, 7))
	segments := [][]string{{"vip"}, {"new"}, {"returning", "runner"}, nil}
	stages := []string{"awareness", "interest", "intent", "purchase"}
	var out []natsync.Event
	at := start
	next := func(e natsync.Event) {
		at = at.Add(time.Duration(1+rng.IntN(5000)) * time.Microsecond)
		e.ID, e.Time = natsync.NewEventID(), at
		out = append(out, e)
	}
	for i := range n {
		v := fmt.Sprintf("anon-%d-%d", seed, i)
		seg, stage := segments[rng.IntN(len(segments))], stages[rng.IntN(len(stages))]
		persona := []string{"", "runner", "hiker"}[rng.IntN(3)]
		base := natsync.Event{Visitor: v, Segments: seg, Stage: stage, Persona: persona}
		pv := base
		pv.Type = natsync.EventPageview
		next(pv)
		if rng.IntN(10) == 0 { // a goal before any exposure: not the experiment's
			g := base
			g.Type, g.Goal, g.Value = natsync.EventGoal, "subscribe", 20
			next(g)
		}
		x := base
		x.Type, x.Experiment = natsync.EventExposure, "hero"
		x.Variant = []string{"holdout", "a", "b", "b"}[rng.IntN(4)]
		next(x)
		if rng.IntN(3) == 0 {
			y := base
			y.Type, y.Experiment, y.Variant = natsync.EventExposure, "promo", []string{"on", "off"}[rng.IntN(2)]
			next(y)
		}
		if rng.IntN(4) == 0 { // logs in: one visitor from now on
			id := natsync.Event{Type: natsync.EventIdentify, Visitor: fmt.Sprintf("cust-%d", i%(n/2+1)), AnonymousID: v}
			next(id)
			base.Visitor = id.Visitor
		}
		rate := 8
		if x.Variant == "b" {
			rate = 5
		}
		if rng.IntN(rate) == 0 {
			g := base
			g.Type, g.Goal, g.Value = natsync.EventGoal, "purchase", float64(10+rng.IntN(200))+0.25
			next(g)
		}
		if rng.IntN(6) == 0 {
			st := base
			st.Type, st.Stage = natsync.EventStage, "purchase"
			next(st)
		}
	}
	return out
}

// readoutFixture is reportFixture with the hero experiment: 25% held
// out, a and b split 34/66, and two journey goals.
func readoutFixture(t *testing.T) (cfgFile string, cfg *config.Config, set *rules.Set, store *natsync.Store) {
	t.Helper()
	return reportFixture(t, "journey:\n  - { path: /done, goal: purchase, value: 100 }\n  - { path: /news, goal: subscribe, value: 20 }\npages:\n  - match: [\"/\"]\n    rules:\n"+
		`      - { id: hero, select: h1, experiment: { holdout: 25, variants: { a: { weight: 34, text: A }, b: { weight: 66, text: B } } } }`+"\n")
}

// reportFixture is a rules directory holding one file of ruleText, a
// config naming a new JetStream server and the rules, and a store on it:
// what tailor report reads.
func reportFixture(t *testing.T, ruleText string) (cfgFile string, cfg *config.Config, set *rules.Set, store *natsync.Store) {
	t.Helper()
	url := testkit.JetStream(t, "", -1).ClientURL()
	dir := t.TempDir()
	rulesDir := filepath.Join(dir, "rules")
	if err := os.Mkdir(rulesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfgFile = filepath.Join(dir, "tailor.yaml")
	for name, text := range map[string]string{
		filepath.Join(rulesDir, "site.yaml"): ruleText,
		cfgFile:                              fmt.Sprintf("origin: http://127.0.0.1:1\nnats: { url: %q }\nrules: { dir: %q }\n", url, rulesDir),
	} {
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if cfg, err = config.Load(cfgFile); err != nil {
		t.Fatal(err)
	}
	if set, err = rules.Load(rulesDir); err != nil {
		t.Fatal(err)
	}
	store, err = natsync.Open(context.Background(), natsync.Options{URL: cfg.NATS.URL, Bucket: cfg.NATS.Bucket, Name: "report-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	return cfgFile, cfg, set, store
}

func publishAll(t *testing.T, store *natsync.Store, stream string, events []natsync.Event) {
	t.Helper()
	pub, err := store.Events(natsync.PublisherOptions{Stream: stream, Queue: len(events) + 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range events {
		if !pub.Publish(&events[i]) {
			t.Fatalf("event %d not queued", i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// reportJSON runs tailor report --json with args and returns the readout
// without its since (a full read's is --since, the fold's the first
// event's), and what it said on stderr.
func reportJSON(t *testing.T, cfgFile string, args ...string) (map[string]any, string) {
	t.Helper()
	code, out, stderr := run(t, context.Background(), append([]string{"report", "--config", cfgFile, "--json"}, args...)...)
	if code != exitOK {
		t.Fatalf("tailor report %v: exit %d: %s", args, code, stderr)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("tailor report %v: %v: %s", args, err, out)
	}
	delete(r, "since")
	return r, stderr
}

func sameReadout(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("%s differs from a full read:\n%s\nwant\n%s", what, g, w)
	}
}

// TestReportFromTheFoldEqualsAFullRead folds a simulated stream in two
// steps, first by tailor report itself (no edge folding), then by an
// edge's folder, and compares tailor report's readout from the fold, with
// every breakdown, to a full read of the same stream (--since): the same
// JSON.
func TestReportFromTheFoldEqualsAFullRead(t *testing.T) {
	cfgFile, cfg, set, store := readoutFixture(t)
	stream := cfg.NATS.EventsStream
	events := simulatedEvents(1, 3000, time.Now().Add(-time.Hour))
	half := len(events) / 2
	publishAll(t, store, stream, events[:half])

	// No edge folds: tailor report catches up itself, from nothing.
	r, stderr := reportJSON(t, cfgFile)
	if !strings.Contains(stderr, "folded here") {
		t.Errorf("tailor report with no folder: %q; want it to fold itself", stderr)
	}
	sameReadout(t, "the first half, folded by tailor report", r, func() map[string]any {
		full, _ := reportJSON(t, cfgFile, "--since", "2000-01-01T00:00:00Z")
		return full
	}())

	// An edge takes over and folds the rest, from tailor report's
	// snapshot.
	publishAll(t, store, stream, events[half:])
	f, err := admin.NewFolder(store, admin.FolderOptions{Stream: stream, Bucket: cfg.NATS.ReadoutsBucket, Holder: "edge-1",
		Rules: func() *rules.Set { return set }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	last, err := store.StreamLast(context.Background(), stream)
	if err != nil || last != uint64(len(events)) {
		t.Fatalf("stream last %d, %v; want %d", last, err, len(events))
	}
	if !testkit.Within(20*time.Second, 10*time.Millisecond, func() bool {
		ro, err := store.ReadReadout(context.Background(), cfg.NATS.ReadoutsBucket, stream)
		return err == nil && ro.Folded == last && strings.HasPrefix(ro.Holder, "edge-1")
	}) {
		t.Fatal("the edge did not fold the stream")
	}
	for _, by := range append([]report.Dimension{""}, report.Dimensions...) {
		var args []string
		if by != "" {
			args = []string{"--by", string(by)}
		}
		r, stderr := reportJSON(t, cfgFile, args...)
		if !strings.Contains(stderr, "folded by edge-1") || !strings.Contains(stderr, "up to date") {
			t.Errorf("tailor report %v: %q; want it read from edge-1's readout, up to date", args, stderr)
		}
		full, _ := reportJSON(t, cfgFile, append(args, "--since", "2000-01-01T00:00:00Z")...)
		sameReadout(t, fmt.Sprintf("the whole stream %v", args), r, full)
		if xs, _ := r["experiments"].([]any); r["events"] != float64(len(events)) || len(xs) != 2 {
			t.Errorf("the readout counts %v events, %d experiments; want %d, 2 (hero, promo)", r["events"], len(xs), len(events))
		}
	}

	// The edge stops: it gives the lease up.
	cancel()
	<-done
	done <- nil
	if h, err := store.LeaseHolder(context.Background(), cfg.NATS.ReadoutsBucket, stream); h != "" || err != nil {
		t.Errorf("lease held by %q (%v) after the edge stopped", h, err)
	}
}

// TestEdgesFoldOneAtATimeAndPassTheLease runs two edges on one NATS:
// one of them holds the readout lease and folds (tailor_readout_* on its
// /metrics), never both; when it stops, the other takes over and folds
// what comes next, and tailor report answers from its readout.
func TestEdgesFoldOneAtATimeAndPassTheLease(t *testing.T) {
	cfgFile, cfg, _, store := readoutFixture(t)
	type edge struct {
		admin string
		stop  func()
	}
	var edges []edge
	for range 2 {
		admin := freeAddr(t)
		path := writeFile(t, "edge.yaml", fmt.Sprintf("listen: %q\norigin: http://127.0.0.1:1\nadmin: { listen: %q }\nnats: { url: %q }\n",
			freeAddr(t), admin, cfg.NATS.URL))
		logs := &syncBuffer{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() { done <- NewMain(io.Discard, logs).Run(ctx, []string{"serve", "--config", path}) }()
		stopped := false
		stop := func() {
			if !stopped {
				stopped = true
				cancel()
				if code := <-done; code != exitOK {
					t.Errorf("serve exit code = %d, want 0\n%s", code, logs.String())
				}
			}
		}
		t.Cleanup(stop)
		waitReady(t, admin, 15*time.Second, logs.String)
		edges = append(edges, edge{admin, stop})
	}
	stream := cfg.NATS.EventsStream
	events := simulatedEvents(2, 400, time.Now().Add(-time.Hour))
	publishAll(t, store, stream, events[:600])
	caughtUp := func(n uint64) func() error {
		return func() error {
			ro, err := store.ReadReadout(context.Background(), cfg.NATS.ReadoutsBucket, stream)
			if err != nil {
				return err
			}
			if ro.Folded != n {
				return fmt.Errorf("folded to %d, want %d", ro.Folded, n)
			}
			return nil
		}
	}
	testkit.CheckFor(t, 20*time.Second, 10*time.Millisecond, caughtUp(600))
	holding := func() []int {
		var h []int
		for i, e := range edges {
			if metric(t, e.admin, "tailor_readout_lease_held") == 1 {
				h = append(h, i)
			}
		}
		return h
	}
	h := holding()
	if len(h) != 1 {
		t.Fatalf("edges holding the lease: %v; want one", h)
	}
	holder, other := edges[h[0]], edges[1-h[0]]
	if n := metric(t, holder.admin, "tailor_readout_folded_events_total"); n != 600 {
		t.Errorf("the holder folded %v events, want 600", n)
	}
	if n := metric(t, other.admin, "tailor_readout_folded_events_total"); n != 0 {
		t.Errorf("the other edge folded %v events, want 0", n)
	}
	if lag := metric(t, holder.admin, "tailor_readout_lag_events"); lag != 0 {
		t.Errorf("lag %v once caught up", lag)
	}

	// The holder stops: it stores its snapshot and gives the lease up;
	// the other takes it and folds the rest, and only the rest.
	holder.stop()
	publishAll(t, store, stream, events[600:])
	testkit.CheckFor(t, 20*time.Second, 10*time.Millisecond, caughtUp(uint64(len(events))))
	if metric(t, other.admin, "tailor_readout_lease_held") != 1 {
		t.Error("the remaining edge does not hold the lease")
	}
	if n := metric(t, other.admin, "tailor_readout_folded_events_total"); n != float64(len(events)-600) {
		t.Errorf("the remaining edge folded %v events, want %d", n, len(events)-600)
	}
	_, stderr := reportJSON(t, cfgFile)
	if !strings.Contains(stderr, "tailor serve") || !strings.Contains(stderr, "up to date") {
		t.Errorf("tailor report: %q; want the edge's readout, up to date", stderr)
	}
}
