package listen

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailor-edge/tailor/config"
)

// limitsConn returns a connection admitted by l from a client at ip, and
// the client's end.
func limitsConn(t *testing.T, l *Limits, ip string) (*Conn, net.Conn) {
	t.Helper()
	server, client := net.Pipe()
	t.Cleanup(func() { server.Close(); client.Close() })
	release := l.admit(&net.TCPAddr{IP: net.ParseIP(ip), Port: 1234})
	if release == nil {
		t.Fatalf("%s was refused", ip)
	}
	c := NewConn(server, time.Minute, time.Minute)
	c.release, c.limits, c.headerTimeout = release, l, time.Minute
	c.armHeader(time.Now())
	return c, client
}

func testLimits(maxConns, perIP int) *Limits {
	cfg := config.Default()
	cfg.Limits.MaxConns, cfg.Limits.MaxConnsPerIP = maxConns, perIP
	return NewLimits(cfg, nil, 1024, prometheus.NewRegistry())
}

// A connection closed from two goroutines at once (fasthttp's own, and
// Shutdown's for idle connections) frees its slot once.
func TestConnectionClosedTwiceFreesItsSlotOnce(t *testing.T) {
	l := testLimits(10, 10)
	a, _ := limitsConn(t, l, "192.0.2.1")
	limitsConn(t, l, "192.0.2.1")
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); a.Close() }()
	}
	wg.Wait()
	if n := l.open.Load(); n != 1 {
		t.Errorf("open = %d after one of two connections closed twice, want 1", n)
	}
	l.mu.Lock()
	n := l.byIP[netip.MustParseAddr("192.0.2.1")]
	l.mu.Unlock()
	if n != 1 {
		t.Errorf("the address holds %d slots, want 1", n)
	}
}

// A switched protocol (a WebSocket) is never listed for eviction again,
// even when its splice sets read deadlines and reads after a quiet spell.
func TestSplicedConnectionIsNeverEvicted(t *testing.T) {
	l := testLimits(10, 10)
	c, client := limitsConn(t, l, "192.0.2.1")
	c.headerDone()
	KeepOpen(c)
	c.SetReadDeadline(time.Now().Add(time.Second)) // the splice's idle check
	go client.Write([]byte("x"))
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	l.waitMu.Lock()
	listed := l.head != nil
	l.waitMu.Unlock()
	if listed || !c.headerUntil.IsZero() {
		t.Errorf("a spliced connection is listed for eviction (%v) or under a header deadline (%v)", listed, c.headerUntil)
	}
}

// A client over its address's cap is refused before it can make another
// connection give way at max_conns.
func TestPerIPCapComesBeforeEviction(t *testing.T) {
	l := testLimits(2, 1)
	a, _ := limitsConn(t, l, "192.0.2.1")
	limitsConn(t, l, "192.0.2.2")
	a.waitSince = time.Now().Add(-time.Hour) // long idle: evictable
	if l.admit(&net.TCPAddr{IP: net.ParseIP("192.0.2.2"), Port: 2}) != nil {
		t.Fatal("a second connection from 192.0.2.2 was admitted over max_conns_per_ip 1")
	}
	if a.state.Load() != connOpen {
		t.Error("a client over its own cap made another connection give way")
	}
	if l.admit(&net.TCPAddr{IP: net.ParseIP("192.0.2.3"), Port: 3}) == nil || a.state.Load() != connEvicted {
		t.Error("a newcomer under its cap did not take the idle connection's place")
	}
}

// IPv6 clients are capped per /64: one host picks addresses from one.
func TestPerIPCapCountsAnIPv6SlashSixtyFour(t *testing.T) {
	l := testLimits(10, 2)
	limitsConn(t, l, "2001:db8::1")
	limitsConn(t, l, "2001:db8::ffff:2")
	if l.admit(&net.TCPAddr{IP: net.ParseIP("2001:db8::3:3"), Port: 3}) != nil {
		t.Error("a third address of the same /64 was admitted over max_conns_per_ip 2")
	}
	if l.admit(&net.TCPAddr{IP: net.ParseIP("2001:db8:0:1::1"), Port: 4}) == nil {
		t.Error("another /64 was refused")
	}
}

func TestConnLimitsSizedFromOpenFiles(t *testing.T) {
	for _, tc := range []struct {
		l          config.Limits
		nofile     uint64
		max, perIP int
	}{
		{config.Limits{}, 1 << 20, 1<<20 - 1280, (1<<20 - 1280) / 10},
		{config.Limits{}, 20000, 18720, 1872},
		{config.Limits{}, 1024, 512, 51},
		{config.Limits{}, 64, 32, 32},
		{config.Limits{MaxConns: 100}, 64, 100, 32},
		{config.Limits{MaxConns: 1000, MaxConnsPerIP: 7}, 64, 1000, 7},
	} {
		if max, perIP := ConnLimits(tc.l, tc.nofile, 1024); max != tc.max || perIP != tc.perIP {
			t.Errorf("ConnLimits(%+v, %d) = %d, %d; want %d, %d", tc.l, tc.nofile, max, perIP, tc.max, tc.perIP)
		}
	}
}
