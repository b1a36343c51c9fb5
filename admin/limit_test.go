package admin

import (
	"net/netip"
	"testing"
	"time"
)

func TestLoginLimiterWindow(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := newLoginLimiter(func() time.Time { return now })
	a := netip.MustParseAddr("192.0.2.7")
	other := netip.MustParseAddr("192.0.2.8")
	for i := range maxLoginFailures {
		if w := l.wait(a); w != 0 {
			t.Fatalf("wait after %d failures = %v, want 0", i, w)
		}
		l.failed(a)
		now = now.Add(time.Second)
	}
	if w := l.wait(a); w != loginWindow-maxLoginFailures*time.Second {
		t.Errorf("wait after %d failures = %v, want the rest of the window, %v", maxLoginFailures, w, loginWindow-maxLoginFailures*time.Second)
	}
	if w := l.wait(other); w != 0 {
		t.Errorf("wait for another address = %v, want 0", w)
	}
	now = now.Add(loginWindow)
	if w := l.wait(a); w != 0 {
		t.Errorf("wait once the window has passed = %v, want 0", w)
	}
	l.failed(a)
	if w := l.wait(a); w != 0 {
		t.Errorf("wait after one failure in a new window = %v, want 0", w)
	}
}

func TestLoginLimiterCountsAnIPv6HostByItsPrefix(t *testing.T) {
	l := newLoginLimiter(nil)
	for i := range maxLoginFailures {
		l.failed(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}))
	}
	if w := l.wait(netip.MustParseAddr("2001:db8::ffff")); w == 0 {
		t.Error("addresses of one /64 are not limited together")
	}
	if w := l.wait(netip.MustParseAddr("2001:db8:0:1::1")); w != 0 {
		t.Errorf("another /64 waits %v, want 0", w)
	}
}

func TestLoginLimiterIsBounded(t *testing.T) {
	l := newLoginLimiter(nil)
	for i := range 2 * loginClients {
		l.failed(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	if n := l.lru.Len(); n != loginClients {
		t.Errorf("addresses remembered = %d, want at most %d", n, loginClients)
	}
}
