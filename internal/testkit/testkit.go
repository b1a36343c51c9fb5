// Package testkit holds the helpers that tests in several packages share,
// so that each is written once.
package testkit

import (
	"testing"
	"time"
)

// CheckFor polls fn every `every` until it returns nil, and fails the
// test with fn's last error once total has passed (nats-server's tests
// poll the same way, never sleeping a fixed time).
func CheckFor(t testing.TB, total, every time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after %v: %v", total, err)
		}
		time.Sleep(every)
	}
}
