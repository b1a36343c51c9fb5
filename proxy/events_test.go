//go:build !nonats

package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/testkit"
	"github.com/tailor-edge/tailor/rules"
	natsync "github.com/tailor-edge/tailor/sync"
)

// startEventsProxy starts a proxy with the journey rules in front of a
// journey origin, publishing its events to the NATS server at url in
// batches of at most batch (0: the default).
func startEventsProxy(t *testing.T, url string, batch int, more func(*config.Config, *Options)) (*testProxy, *natsync.Publisher) {
	t.Helper()
	store, err := natsync.Open(context.Background(), natsync.Options{URL: url, Bucket: "tailor_profiles", Name: "events test"})
	if err != nil {
		t.Fatal(err)
	}
	var pub *natsync.Publisher
	_, p := startJourneyProxy(t, func(c *config.Config, opts *Options) {
		c.Identity.JWT = testJWT()
		if more != nil {
			more(c, opts)
		}
		pub, err = store.Events(natsync.PublisherOptions{Stream: c.NATS.EventsStream, Queue: c.NATS.EventsQueue, Batch: batch})
		if err != nil {
			t.Fatal(err)
		}
		opts.Events = pub
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pub.Close(ctx)
		store.Close()
	})
	return p, pub
}

// streamEvents returns every event in the TAILOR_EVENTS stream at url, in
// stream order, checking each message's subject and id header; an error
// when the stream is not there (yet: the publisher creates it in the
// background).
func streamEvents(t *testing.T, url string) ([]natsync.Event, error) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "TAILOR_EVENTS")
	if err != nil {
		return nil, fmt.Errorf("events stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []natsync.Event
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("event %d: %v", seq, err)
		}
		var e natsync.Event
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Fatalf("event %d: %v: %s", seq, err, m.Data)
		}
		if m.Subject != "tailor.events."+e.Type || m.Header.Get(jetstream.MsgIDHeader) != e.ID {
			t.Errorf("event %d: subject %q, id header %q, for %s event %s", seq, m.Subject, m.Header.Get(jetstream.MsgIDHeader), e.Type, e.ID)
		}
		out = append(out, e)
	}
	return out, nil
}

// eventsLanded waits until the stream holds n events.
func eventsLanded(t *testing.T, url string, n int) []natsync.Event {
	t.Helper()
	var events []natsync.Event
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		var err error
		if events, err = streamEvents(t, url); err != nil {
			return err
		}
		if len(events) < n {
			return fmt.Errorf("%d events in the stream, want %d", len(events), n)
		}
		return nil
	})
	if len(events) != n {
		t.Fatalf("%d events in the stream, want exactly %d", len(events), n)
	}
	return events
}

// summary is an event as the test expects it: type, path and the
// type's own fields.
func summary(e natsync.Event) string {
	s := e.Type + " " + e.Path + " " + e.Stage
	switch e.Type {
	case natsync.EventStage:
		s += " " + e.StageFrom + "→" + e.StageTo
	case natsync.EventGoal:
		s += fmt.Sprintf(" %s=%g", e.Goal, e.Value)
	case natsync.EventExposure:
		s += " " + e.Experiment + ":" + e.Variant
	case natsync.EventIdentify:
		s += " " + e.ProfileID
	}
	return s
}

func TestJourneyEventsReachTheStream(t *testing.T) {
	ns := testkit.JetStream(t, t.TempDir(), -1)
	url := ns.ClientURL()
	p, _ := startEventsProxy(t, url, 0, nil)

	b := newBrowser(t, p.url)
	b.header.Set("Referer", "https://www.example.org/trail")
	var variant, hero string
	home := func(cta string) {
		t.Helper()
		_, page := b.get("/")
		if got := text(page, "cta"); got != cta {
			t.Errorf("home page CTA = %q, want %q", got, cta)
		}
		h := between(page, "<h1>", "<")
		if hero != "" && h != hero {
			t.Errorf("the hero changed from %q to %q: the variant is not stable", hero, h)
		}
		hero = h
	}
	home("Shop now")
	b.get("/products/x")
	home("Read the guide")
	b.get("/cart")
	home("Finish your order")
	b.get("/checkout/done")
	home("Accessories")

	events := eventsLanded(t, url, 12)
	variant = events[1].Variant
	if want := map[string]string{"holdout": "Run", "a": "Run further", "b": "Run faster"}[variant]; want != hero {
		t.Errorf("exposure says variant %q, the page showed %q", variant, hero)
	}
	want := []string{
		"pageview / awareness",
		"exposure / awareness hero-copy-test:" + variant,
		"pageview /products/x interest",
		"stage /products/x interest awareness→interest",
		"pageview / interest", // exposed already in this visit: no exposure
		"pageview /cart intent",
		"stage /cart intent interest→intent",
		"pageview / intent",
		"pageview /checkout/done purchase",
		"stage /checkout/done purchase intent→purchase",
		"goal /checkout/done purchase purchase=100",
		"pageview / purchase",
	}
	anon := b.anonymousID()
	ids := map[string]bool{}
	for i, e := range events {
		if got := summary(e); got != want[i] {
			t.Errorf("event %d = %q, want %q", i, got, want[i])
		}
		if e.Visitor != anon || e.AnonymousID != anon || e.URL != p.url+e.Path || e.Referrer != "https://www.example.org/trail" {
			t.Errorf("event %d: visitor %q, anonymous id %q, url %q, referrer %q; want %q, %s%s", i, e.Visitor, e.AnonymousID, e.URL, e.Referrer, anon, p.url, e.Path)
		}
		if ids[e.ID] || e.ID == "" || time.Since(e.Time) > time.Minute {
			t.Errorf("event %d: id %q (seen before: %v), time %v", i, e.ID, ids[e.ID], e.Time)
		}
		ids[e.ID] = true
		if e.Segments == nil {
			t.Errorf("event %d has no segments list", i)
		}
	}

	// A visitor with GPC browses the same pages: no events. A known
	// visitor after them is linked to their anonymous id once.
	gpc := newBrowser(t, p.url)
	gpc.header.Set("Sec-GPC", "1")
	for _, path := range []string{"/", "/products/x", "/cart", "/checkout/done", "/"} {
		gpc.get(path)
	}
	known := newBrowser(t, p.url)
	known.get("/products/x") // anonymous first
	known.header.Set("Authorization", "Bearer "+token(t, "cust-7"))
	known.get("/")
	known.get("/")
	events = eventsLanded(t, url, 12+6)[12:]
	kanon := known.anonymousID()
	got := make([]string, len(events))
	for i, e := range events {
		got[i] = summary(e)
		if e.AnonymousID != kanon {
			t.Errorf("event %s from another visitor than the known one (GPC leaked?)", got[i])
		}
	}
	wantKnown := []string{
		"pageview /products/x interest",
		"stage /products/x interest awareness→interest",
		"identify / interest cust-7",
		"pageview / interest",
		"exposure / interest hero-copy-test:",
		"pageview / interest",
	}
	for i := range wantKnown {
		if !strings.HasPrefix(got[i], wantKnown[i]) {
			t.Errorf("known visitor's event %d = %q, want %q", i, got[i], wantKnown[i])
		}
	}
	if events[2].Visitor != "cust-7" || events[0].Visitor != kanon {
		t.Errorf("identify event's visitor = %q, first event's %q; want cust-7 after the login, the anonymous id before", events[2].Visitor, events[0].Visitor)
	}
	if v := counterValue(t, p.Registry(), "tailor_page_views_total", "tracking", "opted_out"); v != 5 {
		t.Errorf("tailor_page_views_total{tracking=opted_out} = %v, want 5", v)
	}
}

func TestNATSOutageDuringBrowsingLosesNoRequestAndPublishesNoDuplicate(t *testing.T) {
	dir, port := t.TempDir(), testkit.FreePort(t)
	ns := testkit.JetStream(t, dir, port)
	url := ns.ClientURL()
	// At most 40 queued and 10 in a batch being published: the outage
	// below cannot be taken without dropping.
	p, pub := startEventsProxy(t, url, 10, func(c *config.Config, _ *Options) { c.NATS.EventsQueue = 40 })

	b := newBrowser(t, p.url)
	browse := func(n int) {
		for i := range n {
			path := "/"
			if i%2 == 1 {
				path = fmt.Sprintf("/products/p%d", i)
			}
			if _, page := b.get(path); path == "/" && text(page, "visits") != "visit 1 new" {
				t.Fatalf("page %d was not personalized: %q", i, page)
			}
		}
	}
	browse(10)
	eventsLanded(t, url, 12) // 10 pageviews, the visit's exposure, 1 stage change

	ns.Shutdown()
	ns.WaitForShutdown()
	start := time.Now()
	browse(60) // 60 pageviews (no stage change, no new exposure) against room for 50
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("60 pages took %v with NATS down", d)
	}
	dropped := counterValue(t, p.Registry(), "tailor_events_total", "result", "dropped")
	if dropped == 0 {
		t.Error("no event counted dropped, though the queue was too small for the outage")
	}

	testkit.JetStream(t, dir, port)
	queued := counterValue(t, p.Registry(), "tailor_events_total", "result", "queued")
	checkFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		if s := pub.Stats(); s.Depth != 0 {
			return fmt.Errorf("%d events still queued", s.Depth)
		}
		return nil
	})
	events := eventsLanded(t, url, int(queued))
	seen := map[string]bool{}
	for _, e := range events {
		if seen[e.ID] {
			t.Errorf("event %s published twice", e.ID)
		}
		seen[e.ID] = true
	}
	t.Logf("outage: %v events queued, %v dropped (queue 40), %d in the stream, none twice", queued, dropped, len(events))

	text := metricsText(t, p.Registry())
	for _, want := range []string{`tailor_events_total{result="dropped",type="pageview"}`, "tailor_events_dropped_total", "tailor_events_queue_depth 0"} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestStageStaysWhileTheProfileIsUnknown: a customer the CDP has in
// purchase browses a product page while the store is too slow to answer
// within the budget. The edge, not knowing their stage, must not move it
// to interest: its newer stage would win over the profile's for good.
func TestStageStaysWhileTheProfileIsUnknown(t *testing.T) {
	ns := testkit.JetStream(t, t.TempDir(), -1)
	kv := testkit.Bucket(t, ns.ClientURL(), "tailor_profiles", 1)
	store, profiles := watchedStore(t, ns.ClientURL())
	_, p := startJourneyProxy(t, func(c *config.Config, opts *Options) {
		c.Identity.JWT = testJWT()
		c.Profiles.MissBudget = 20 * time.Millisecond
		opts.Profiles, opts.Source = profiles, slowSource{store, 300 * time.Millisecond}
	})
	doc := `{"id":"cust-9","stage":"purchase","updated_at":"` + time.Now().Add(-24*time.Hour).UTC().Format(time.RFC3339) + `"}`
	if _, err := kv.Put(context.Background(), "cust-9", []byte(doc)); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, p.url)
	b.header.Set("Authorization", "Bearer "+token(t, "cust-9"))
	b.get("/products/x") // the fetch starts; the page does not wait past the budget
	if st, _ := p.signer.DecodeState(b.anonymousID(), []byte(b.cookie("tailor_state"))); st.Stage != "" {
		t.Errorf("the edge moved an unknown customer to %q", st.Stage)
	}
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if prof, ok := profiles.Get("cust-9"); !ok || prof == nil {
			return fmt.Errorf("the profile has not reached the cache")
		}
		return nil
	})
	if _, page := b.get("/"); text(page, "cta") != "Accessories" {
		t.Errorf("home page CTA = %q, want the purchase stage's", text(page, "cta"))
	}
	// Once the profile is known, browsing a product does not move them
	// back either.
	b.get("/products/y")
	if _, page := b.get("/"); text(page, "cta") != "Accessories" {
		t.Errorf("after a product page: CTA = %q, want the purchase stage's", text(page, "cta"))
	}
}

// TestFailOpenPagesReportNoVariant: a page tailor could not rewrite went
// out as the origin sent it, so the visitor saw no variant: its view is
// reported, an exposure only for the holdout (who sees the origin's block
// anyway). A page the origin broke off (502) reports nothing.
func TestFailOpenPagesReportNoVariant(t *testing.T) {
	ns := testkit.JetStream(t, t.TempDir(), -1)
	url := ns.ClientURL()
	p, _ := startEventsProxy(t, url, 0, func(c *config.Config, _ *Options) {
		c.MaxRewriteBody = 64 // smaller than the page: every rewrite fails open
		c.Debug.DecisionHeader = true
	})
	var variants []string
	for range 6 {
		b := newBrowser(t, p.url)
		resp, page := b.get("/")
		if page != journeyPage {
			t.Fatalf("a page over max_rewrite_body was changed: %q", page)
		}
		variants = append(variants, between(resp.Header.Get("X-Tailor-Decision")+";", "hero-copy-test:", ";"))
	}
	want := 6
	for _, v := range variants {
		if v == rules.HoldoutVariant {
			want++
		}
	}
	events := eventsLanded(t, url, want)
	for _, e := range events {
		if e.Type == natsync.EventExposure && e.Variant != rules.HoldoutVariant {
			t.Errorf("exposure to %s reported for a page that showed the origin's block", e.Variant)
		}
	}
	t.Logf("variants %v: %d events", variants, len(events))
}
