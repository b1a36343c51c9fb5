// Command fill-events publishes synthetic tailor events to a NATS
// server's events stream, for bench/report.sh: visitors who view pages,
// meet an experiment (10% holdout, a and b) and some of whom buy. Seeded:
// the same flags give the same events.
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
	flag.Parse()
	if err := fill(*url, *stream, *n, *visitors); err != nil {
		fmt.Fprintln(os.Stderr, "fill-events:", err)
		os.Exit(1)
	}
}

func fill(url, stream string, n, visitors int) error {
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
	for i := 0; i < n; i++ {
		v := r.IntN(visitors)
		e := natsync.Event{
			Time:        start.Add(time.Duration(i) * time.Microsecond),
			Visitor:     fmt.Sprintf("v-%07d", v),
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
		case k == 3:
			e.Type, e.Goal, e.Value = natsync.EventGoal, "purchase", 100
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
