package admin

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/testkit"
	natsync "github.com/tailor-edge/tailor/sync"
)

// TestConsoleBreaksAnExperimentDown publishes an experiment's events to
// a real stream and reads the console: each variant's always-valid
// interval and value per visitor, then ?by=segment's table per group.
func TestConsoleBreaksAnExperimentDown(t *testing.T) {
	url := testkit.JetStream(t, "", -1).ClientURL()
	store, err := natsync.Open(context.Background(), natsync.Options{URL: url, Bucket: "tailor_profiles", Name: "console-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	pub, err := store.Events(natsync.PublisherOptions{Stream: "TAILOR_EVENTS", Queue: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	// 200 visitors: a or b, vip or not; vips shown b buy for 50.
	for i := range 200 {
		v, seg, variant := fmt.Sprintf("v%d", i), "new", []string{"a", "b"}[i%2]
		if i%4 < 2 {
			seg = "vip"
		}
		e := natsync.Event{ID: natsync.NewEventID(), Type: natsync.EventExposure, Time: now, Visitor: v, Segments: []string{seg}, Experiment: "hero", Variant: variant}
		pub.Publish(&e)
		if seg == "vip" && variant == "b" || i%25 == 0 {
			g := natsync.Event{ID: natsync.NewEventID(), Type: natsync.EventGoal, Time: now, Visitor: v, Goal: "purchase", Value: 50}
			pub.Publish(&g)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The readout the console shows is the one the edges fold.
	f, err := NewFolder(store, FolderOptions{Stream: "TAILOR_EVENTS", Bucket: "tailor_readouts"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.CatchUp(ctx, nil); err != nil {
		t.Fatal(err)
	}
	admin := startAdmin(t, func(c *config.Config, o *Options) {
		withConsoleRules(t, c)
		c.Admin.Token = "s3cret-token"
		c.NATS.URL = url
		o.Events = store
	}).url
	get := func(path string) string {
		t.Helper()
		resp, body := call(t, "GET", admin+path, "", "Authorization", "Bearer s3cret-token")
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return body
	}
	page := get("/")
	for _, want := range []string{
		`<th>always valid</th>`, `<table class="values">`, `<a href="/?by=device">device</a>`,
		// b: 52 of 100 buy (a: 4): clear with both intervals.
		`<tr data-variant="b"><td>b</td><td class="num exposed">100</td><td class="num converted">52</td>`,
		`<td class="num seq clear">`,
		// from the readout the edges fold, not a read of the stream
		`events since`, `, folded `,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the console lacks %s", want)
		}
	}
	if strings.Contains(page, `<table class="breakdown`) {
		t.Error("a breakdown without ?by")
	}
	page = get("/?by=segment")
	for _, want := range []string{
		`<strong>segment</strong>`, `<a href="/?refresh&amp;by=segment">`, `<h4>Goal purchase by segment</h4>`, `<h4>Value per visitor by segment</h4>`,
		`<tr data-group="vip" data-variant="b"><td>vip</td><td>b</td><td class="num exposed">50</td><td class="num converted">50</td>`,
		`<tr data-group="new" data-variant="b"><td>new</td><td>b</td><td class="num exposed">50</td>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("?by=segment: the console lacks %s", want)
		}
	}
	if page := get("/?by=browser"); !strings.Contains(page, `No breakdown: unknown breakdown`) || strings.Contains(page, `<table class="breakdown`) {
		t.Error("?by=browser: want a note and no breakdown")
	}
}
