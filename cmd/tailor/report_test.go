package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/report"
	natsync "github.com/tailor-edge/tailor/sync"
)

// TestReportBreaksDownBySegment publishes a small experiment to a real
// events stream: mobile visitors shown b buy, desktop ones do not; the
// readout by segment shows it with both intervals, in text and JSON, and
// an unknown breakdown is a usage error.
func TestReportBreaksDownBySegment(t *testing.T) {
	cfgFile, cfg, _, store := reportFixture(t, "journey:\n  - { path: /done, goal: purchase, value: 100 }\npages:\n  - match: [\"/\"]\n    rules:\n"+
		`      - { id: hero, select: h1, experiment: { variants: { a: { weight: 50, text: A }, b: { weight: 50, text: B } } } }`+"\n")
	pub, err := store.Events(natsync.PublisherOptions{Stream: cfg.NATS.EventsStream, Queue: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 400 {
		v, seg, variant := fmt.Sprintf("v%d", i), "desktop", []string{"a", "b"}[i%2]
		if i%4 < 2 {
			seg = "mobile"
		}
		e := natsync.Event{ID: natsync.NewEventID(), Type: natsync.EventExposure, Time: now, Visitor: v, Segments: []string{seg}, Experiment: "hero", Variant: variant}
		pub.Publish(&e)
		if seg == "mobile" && (variant == "b" || i%20 == 0) {
			g := natsync.Event{ID: natsync.NewEventID(), Type: natsync.EventGoal, Time: now, Visitor: v, Segments: []string{seg}, Goal: "purchase", Value: 100}
			pub.Publish(&g)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}

	code, out, stderr := run(t, context.Background(), "report", "--config", cfgFile, "--by", "segment", "--json")
	if code != exitOK {
		t.Fatalf("tailor report --by segment --json: exit %d: %s", code, stderr)
	}
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	x := r.Experiments[0]
	if x.By != report.BySegment || len(x.Groups) != 2 {
		t.Fatalf("breakdown: by %q, %d groups: %s", x.By, len(x.Groups), out)
	}
	for _, g := range x.Groups {
		b := g.Variants[1]
		u := b.Goals["purchase"].Uplift
		if b.Name != "b" || b.Exposed != 100 || u == nil || u.SeqCI == nil || b.ValueUplift == nil {
			t.Fatalf("group %s: variant %+v", g.Value, b)
		}
		// mobile: b converts 100%, a 10%: clear even always-valid; desktop: nothing.
		if clear := report.Excludes0(*u.SeqCI); clear != (g.Value == "mobile") {
			t.Errorf("group %s: b's uplift %+v: always-valid interval excludes 0 = %v", g.Value, u, clear)
		}
	}
	if !strings.Contains(out, `"seq_ci":[`) || !strings.Contains(out, `"value_uplift":{`) {
		t.Errorf("the JSON lacks the always-valid interval or the value uplift: %s", out)
	}

	code, out, stderr = run(t, context.Background(), "report", "--config", cfgFile, "--by", "segment")
	if code != exitOK {
		t.Fatalf("tailor report --by segment: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"goal purchase by segment", "value per visitor by segment", "always valid", "mobile"} {
		if !strings.Contains(out, want) {
			t.Errorf("the text readout lacks %q:\n%s", want, out)
		}
	}
	t.Logf("tailor report --by segment:\n%s", out)

	code, _, stderr = run(t, context.Background(), "report", "--config", cfgFile, "--by", "browser")
	if code != exitUsage || !strings.Contains(stderr, "segment, device, stage, persona, country") {
		t.Errorf("--by browser: exit %d, %q; want %d and the breakdowns there are", code, stderr, exitUsage)
	}
}
