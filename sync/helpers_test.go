package sync

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tailor-edge/tailor/internal/testkit"
)

// startJetStream starts JetStream on loopback: one server, or a cluster of
// n routed to each other.
func startJetStream(tb testing.TB, n int) []*server.Server {
	tb.Helper()
	if n == 1 {
		return []*server.Server{testkit.JetStream(tb, "", -1)}
	}
	return testkit.Cluster(tb, n)
}

// openStore opens a Store at url on the bucket tailor_profiles, closed
// when the test ends. A benchmark's store logs nothing, to keep its
// output a table.
func openStore(tb testing.TB, url string) *Store {
	tb.Helper()
	var log *slog.Logger // the default, for tests
	if _, ok := tb.(*testing.B); ok {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := Open(context.Background(), Options{URL: url, Bucket: "tailor_profiles", Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// waitFor polls ok until it holds, failing the test after 5 s.
func waitFor(tb testing.TB, ok func() bool) {
	tb.Helper()
	waitWithin(tb, 5*time.Second, ok)
}

// waitWithin polls ok until it holds, failing the test after d.
func waitWithin(tb testing.TB, d time.Duration, ok func() bool) {
	tb.Helper()
	if !testkit.Within(d, time.Millisecond, ok) {
		tb.Fatalf("condition not met within %v", d)
	}
}
