package proxy

import (
	"bufio"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/metrics"
	"github.com/tailor-edge/tailor/internal/splice"
	"github.com/tailor-edge/tailor/internal/testkit"
)

// The WebSocket itself, through the real binary, is tested in
// cmd/tailor (TestWebSocketAndUpgradeAreNotCut) and in Chromium; these
// tests take the edges, over raw connections.

// switchHead is an origin's 101 to a tunnel protocol of the tests.
const switchHead = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: tunnel/1\r\nConnection: Upgrade\r\n\r\n"

// upgradeRequest asks tailor to switch to the tests' tunnel protocol.
const upgradeRequest = "GET /t HTTP/1.1\r\nHost: shop.test\r\nConnection: Upgrade\r\nUpgrade: tunnel/1\r\n\r\n"

// startTunnelOrigin starts an origin that hands every connection, once
// it has read the request head, to serve.
func startTunnelOrigin(t *testing.T, serve func(c net.Conn, br *bufio.Reader, req *http.Request)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				serve(c, br, req)
			})
		}
	})
	return "http://" + ln.Addr().String()
}

// openTunnel sends upgradeRequest to addr and returns the connection
// once the 101 has come, with a reader positioned after it.
func openTunnel(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, upgradeRequest)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the 101: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("got %d, want 101", resp.StatusCode)
	}
	return c, br
}

// askOnce sends raw to addr and reads one response, body included.
func askOnce(t *testing.T, addr, raw string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, raw)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return resp, string(body)
}

func TestUpgradesTailorDoesNotTunnelAreOrdinaryRequests(t *testing.T) {
	origin, sawUpgrade := recordingOrigin(t, func(r *http.Request) string { return r.Header.Get("Upgrade") }, func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "plain")
	})
	p := startProxy(t, origin, nil)
	for _, tc := range []struct{ name, req string }{
		{"h2c", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"},
		{"h2c among others", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket, h2c\r\n\r\n"},
		{"POST", "POST / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\nhi"},
		{"GET with a body", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\nhi"},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"},
		{"no upgrade in Connection", "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nUpgrade: websocket\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := askOnce(t, p.addr, tc.req)
			if resp.StatusCode != 200 || body != "plain" {
				t.Errorf("got %d %q, want the origin's ordinary 200", resp.StatusCode, body)
			}
		})
	}
	for i, u := range sawUpgrade.All() {
		if u != "" {
			t.Errorf("request %d reached the origin with Upgrade: %s", i, u)
		}
	}
	if got := counterValue(t, p.reg, "tailor_upgrades_total"); got != 0 {
		t.Errorf("tailor_upgrades_total = %v, want 0", got)
	}
}

func TestDeclinedUpgradeIsRelayedAsAResponse(t *testing.T) {
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Why", "no tunnels here")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "forbidden, and a body to go with it")
	}))
	p := startProxy(t, origin.URL, nil)
	resp, body := askOnce(t, p.addr, upgradeRequest)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Why") != "no tunnels here" ||
		body != "forbidden, and a body to go with it" {
		t.Errorf("got %d %v %q, want the origin's 403 with its header and body", resp.StatusCode, resp.Header, body)
	}
	if got := counterValue(t, p.reg, "tailor_upgrades_total", "result", metrics.Declined); got != 1 {
		t.Errorf("tailor_upgrades_total{result=declined} = %v, want 1", got)
	}
}

func TestUpgradeOriginFailures(t *testing.T) {
	closed := "127.0.0.1:" + strconv.Itoa(testkit.FreePort(t)) // nothing listens there
	otherProtocol := startTunnelOrigin(t, func(c net.Conn, _ *bufio.Reader, _ *http.Request) {
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: something-else\r\nConnection: Upgrade\r\n\r\n")
	})
	hangUp := startTunnelOrigin(t, func(net.Conn, *bufio.Reader, *http.Request) {})
	for _, tc := range []struct {
		name, origin, want string
		status             int
	}{
		{"unreachable", "http://" + closed, "unreachable", 502},
		{"switch to another protocol", otherProtocol, "invalid response", 502},
		{"closed without an answer", hangUp, "closed the connection", 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, tc.origin, nil)
			resp, body := askOnce(t, p.addr, upgradeRequest)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) {
				t.Errorf("got %d %q, want %d saying %q", resp.StatusCode, body, tc.status, tc.want)
			}
			if got := counterValue(t, p.reg, "tailor_upgrades_total", "result", metrics.UpgradeFailed); got != 1 {
				t.Errorf("tailor_upgrades_total{result=failed} = %v, want 1", got)
			}
		})
	}
}

// TestUpgradedConnectionIsIdleOnlyWhenBothSidesAre: one side talking
// keeps the tunnel open however long the other is quiet (the visitor's
// connection has its own read timeout, which must not cut it); once
// both are quiet for timeouts.idle, it is closed.
func TestUpgradedConnectionIsIdleOnlyWhenBothSidesAre(t *testing.T) {
	const idle = 400 * time.Millisecond
	const talk = 1200 * time.Millisecond // three idle timeouts
	origin := startTunnelOrigin(t, func(c net.Conn, br *bufio.Reader, req *http.Request) {
		io.WriteString(c, switchHead)
		if req.URL.Path == "/origin-talks" {
			for end := time.Now().Add(talk); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
				io.WriteString(c, "tick\n")
			}
			io.WriteString(c, "end\n")
		} else {
			// The visitor talks: count its ticks, answer at its end.
			n := 0
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if line == "end\n" {
					break
				}
				n++
			}
			fmt.Fprintf(c, "got %d\n", n)
		}
		io.Copy(io.Discard, c) // quiet until tailor closes
	})
	p := startProxy(t, origin, func(c *config.Config, _ *Options) { c.Timeouts.Idle = idle })

	for _, talker := range []string{"origin", "visitor"} {
		t.Run(talker+" talks", func(t *testing.T) {
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, strings.Replace(upgradeRequest, "/t ", "/"+talker+"-talks ", 1))
			br := bufio.NewReader(c)
			if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
				t.Fatalf("no 101: %v", err)
			}
			want := "end\n"
			if talker == "visitor" {
				for end := time.Now().Add(talk); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
					if _, err := io.WriteString(c, "tick\n"); err != nil {
						t.Fatalf("tailor cut the tunnel while the visitor talked: %v", err)
					}
				}
				io.WriteString(c, "end\n")
				want = "got "
			}
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("tailor cut the tunnel while the %s talked: %v", talker, err)
				}
				if strings.HasPrefix(line, want) {
					break
				}
			}
			quiet := time.Now()
			if _, err := br.ReadByte(); err != io.EOF {
				t.Fatalf("read on a quiet tunnel: %v, want EOF", err)
			}
			if took := time.Since(quiet); took < idle/2 || took > idle+time.Second {
				t.Errorf("a quiet tunnel closed after %v, want after about %v", took, idle)
			}
		})
	}
	// Counted once both directions have ended, just after the visitor saw
	// the end.
	checkFor(t, 2*time.Second, 10*time.Millisecond, func() error {
		if got := counterValue(t, p.reg, "tailor_upgraded_closes_total", "reason", splice.Idle); got != 2 {
			return fmt.Errorf("tailor_upgraded_closes_total{reason=idle} = %v, want 2", got)
		}
		return nil
	})
}

func TestShutdownClosesUpgradedConnections(t *testing.T) {
	origin := startTunnelOrigin(t, func(c net.Conn, _ *bufio.Reader, _ *http.Request) {
		io.WriteString(c, switchHead)
		io.Copy(c, c) // an echo, until tailor closes
	})
	p := startProxy(t, origin, nil)
	c, br := openTunnel(t, p.addr)
	io.WriteString(c, "ping\n")
	if line, err := br.ReadString('\n'); line != "ping\n" {
		t.Fatalf("echo = %q, %v", line, err)
	}
	if got := counterValue(t, p.reg, "tailor_upgraded_connections"); got != 1 {
		t.Errorf("tailor_upgraded_connections = %v, want 1", got)
	}
	if took := shutdown(t, p); took > 2*time.Second {
		t.Errorf("Shutdown took %v with a tunnel open", took)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("the tunnel is still open after Shutdown")
	}
	// Shutdown waited for the pair to end.
	if got := counterValue(t, p.reg, "tailor_upgraded_closes_total", "reason", splice.ByShutdown); got != 1 {
		t.Errorf("tailor_upgraded_closes_total{reason=shutdown} = %v, want 1", got)
	}
	if got := counterValue(t, p.reg, "tailor_upgraded_connections"); got != 0 {
		t.Errorf("tailor_upgraded_connections = %v after Shutdown, want 0", got)
	}
}

// TestWebSocketToAnHTTPSOrigin: the origin's own connection for a
// tunnel is dialed with the origin client's TLS settings.
func TestWebSocketToAnHTTPSOrigin(t *testing.T) {
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		typ, b, err := c.Read(r.Context())
		if err != nil {
			return
		}
		c.Write(r.Context(), typ, append([]byte("over tls: "), b...))
		c.Close(websocket.StatusNormalClosure, "")
	}))
	t.Cleanup(origin.Close)
	p := newTestProxy(t, origin.URL, nil)
	roots := x509.NewCertPool()
	roots.AddCert(origin.Certificate())
	p.origin.TLSConfig.RootCAs = roots // the test origin's certificate is its own
	tp := serveTest(t, p)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+tp.addr+"/", nil)
	if err != nil {
		t.Fatalf("dial through tailor: %v", err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(ctx); err != nil || string(b) != "over tls: hello" {
		t.Fatalf("echo = %q, %v; want %q", b, err, "over tls: hello")
	}
}
