// Package testkit holds the helpers that tests in several packages share,
// so that each is written once.
package testkit

import (
	"bytes"
	"os"
	"sync"
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

// Buffer is a bytes.Buffer that a server or watcher goroutine may write,
// as its log, while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what has been written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ReplaceFile puts data at path as editors and certificate managers do:
// written beside it, then renamed over it, so that no reader sees half a
// file and a watcher sees the rename.
func ReplaceFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
