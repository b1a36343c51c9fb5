// Command fill-events publishes synthetic tailor events to a NATS
// server's events stream, for bench/report.sh: visitors who view pages,
// meet an experiment (10% holdout, a and b) and some of whom buy. With
// -rich (bench/readout.sh), visitors also meet a second experiment
// (promo-banner: on, off), sign up, and one in twenty logs in (an identify
// event, their later events under their customer id); -span spreads the
// events' times over that long. Seeded: the same flags give the same
// events.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	natsync "github.com/tailor-edge/tailor/sync"
)

func main() {
	url := flag.String("url", "nats://127.0.0.1:4222", "NATS server")
	stream := flag.String("stream", "TAILOR_EVENTS", "events stream")
	n := flag.Int("n", 1_000_000, "events to publish")
	visitors := flag.Int("visitors", 200_000, "distinct visitors")
	rich := flag.Bool("rich", false, "two experiments, a sign-up goal and logins")
	span := flag.Duration("span", 0, "spread the events' times over this long, ending now (0: a microsecond apart)")
	flag.Parse()
	if err := fill(*url, *stream, *n, *visitors, *rich, *span); err != nil {
		fmt.Fprintln(os.Stderr, "fill-events:", err)
		os.Exit(1)
	}
}

func fill(url, stream string, n, visitors int, rich bool, span time.Duration) error {
	log := slog.New(slog.DiscardHandler)
	store, err := natsync.Open(context.Background(), natsync.Options{URL: url, Bucket: "tailor_profiles", Name: "fill-events", Logger: log})
	if err != nil {
		return err
	}
	defer store.Close()
	pub, err := store.Events(natsync.PublisherOptions{Stream: stream, Queue: 1 << 16, Logger: log})
	if err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(1, 2))
	segments := [][]string{{}, {"mobile"}, {"returning"}, {"mobile", "returning"}, {"vip", "returning"}}
	stages := []string{"awareness", "interest", "intent", "purchase"}
	personas := []string{"", "", "runner", "hiker", "camper"}
	start := time.Now()
	first, step := start, time.Microsecond
	if span > 0 {
		first, step = start.Add(-span), span/time.Duration(max(n, 1))
	}
	loggedIn := make([]bool, visitors)
	for i := 0; i < n; i++ {
		v := r.IntN(visitors)
		visitor := fmt.Sprintf("v-%07d", v)
		if loggedIn[v] {
			visitor = fmt.Sprintf("c-%07d", v)
		}
		e := natsync.Event{
			Time:        first.Add(time.Duration(i) * step),
			Visitor:     visitor,
			AnonymousID: fmt.Sprintf("a-%07d", v),
			URL:         fmt.Sprintf("https://shop.example/products/%d", i%500),
			Path:        fmt.Sprintf("/products/%d", i%500),
			Referrer:    "https://search.example/?q=trail+shoes",
			Segments:    segments[v%len(segments)],
			Stage:       stages[v%len(stages)],
			Persona:     personas[v%len(personas)],
			Type:        natsync.EventPageview,
		}
		switch k := r.IntN(10); {
		case k < 3:
			variant := "b" // 10% held out, a and b 45% each
			switch k := v % 20; {
			case k < 2:
				variant = "holdout"
			case k < 11:
				variant = "a"
			}
			e.Type, e.Experiment, e.Variant = natsync.EventExposure, "hero-copy-test", variant
			if rich && r.IntN(2) == 0 {
				e.Experiment, e.Variant = "promo-banner", []string{"on", "off"}[(v/7)%2]
			}
		case k == 3:
			e.Type, e.Goal, e.Value = natsync.EventGoal, "purchase", 100
		case rich && k == 4 && r.IntN(4) == 0:
			e.Type, e.Goal, e.Value = natsync.EventGoal, "signup", 0
		case rich && k == 5 && v%20 == 0 && !loggedIn[v]:
			e.Type, e.Visitor, e.AnonymousID = natsync.EventIdentify, fmt.Sprintf("c-%07d", v), visitor
			loggedIn[v] = true
		}
		for !pub.Publish(&e) {
			time.Sleep(time.Millisecond) // the queue is full: let it drain
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := pub.Close(ctx); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "published %d events in %v\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}
