package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/tailor-edge/tailor/internal/testkit"
)

// wsEchoOrigin is an origin with a WebSocket echo at /echo (every message
// sent back as it came, text or binary, up to 2 MiB), a protocol of its
// own at /raw (rawUpgrade) and, at /, the page of the browser test. It
// records the WebSocket handshakes' headers.
type wsEchoOrigin struct {
	*httptest.Server
	mu   sync.Mutex
	seen []http.Header // the headers of each handshake
}

func startWSEchoOrigin(t *testing.T, page string) *wsEchoOrigin {
	t.Helper()
	o := &wsEchoOrigin{}
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.seen = append(o.seen, r.Header.Clone())
		o.mu.Unlock()
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(2 << 20)
		ctx := r.Context()
		for {
			typ, msg, err := c.Reader(ctx)
			if err != nil {
				return
			}
			w, err := c.Writer(ctx, typ)
			if err != nil {
				return
			}
			if _, err := io.Copy(w, msg); err != nil {
				return
			}
			if err := w.Close(); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/raw", rawUpgrade)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	})
	o.Server = httptest.NewServer(mux)
	t.Cleanup(o.Close)
	return o
}

// handshakes returns the headers of the handshakes the origin saw.
func (o *wsEchoOrigin) handshakes() []http.Header {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]http.Header(nil), o.seen...)
}

// startServe runs `tailor serve` on config text (listen, origin and admin
// filled in) until the test ends, and returns its listen and admin
// addresses once it is ready.
func startServe(t *testing.T, origin, extra string) (listen, admin string) {
	t.Helper()
	listen, admin = freeAddr(t), freeAddr(t)
	path := writeFile(t, "tailor.yaml", fmt.Sprintf("listen: %q\norigin: %q\nadmin: { listen: %q }\n%s", listen, origin, admin, extra))
	serveInBackground(t, path, admin)
	return listen, admin
}

// metric returns the value of the sample of name with exactly the labels
// given (`name{k="v"}`, or name alone), read from the admin listener.
func metric(t *testing.T, admin, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s in /metrics", sample)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestWebSocketAndUpgradeAreNotCut is issue 15: tailor dropped Upgrade as
// a hop-by-hop header, so WebSockets (chat widgets, live carts,
// Socket.IO) and any other protocol switch failed behind it. Through the
// real binary: 10,000 WebSocket messages each way, text and binary, some
// of 1 MiB, come back whole and in order; a protocol other than
// WebSocket is spliced too, half-close included; and none of it gets a
// cookie.
func TestWebSocketAndUpgradeAreNotCut(t *testing.T) {
	origin := startWSEchoOrigin(t, "")
	listen, admin := startServe(t, origin.URL, "")

	t.Run("websocket", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c, resp, err := websocket.Dial(ctx, "ws://"+listen+"/echo", &websocket.DialOptions{
			HTTPHeader: http.Header{"Cookie": {"session=abc"}},
		})
		if err != nil {
			t.Fatalf("dial through tailor: %v", err)
		}
		defer c.CloseNow()
		c.SetReadLimit(2 << 20)
		if sc := resp.Header.Values("Set-Cookie"); len(sc) > 0 {
			t.Errorf("the 101 sets cookies %q; an upgraded connection gets no identity", sc)
		}
		hs := origin.handshakes()
		if len(hs) != 1 {
			t.Fatalf("origin saw %d handshakes, want 1", len(hs))
		}
		h := hs[0]
		for name, want := range map[string]string{
			"Connection": "Upgrade", "Upgrade": "websocket", "Cookie": "session=abc",
			"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http",
		} {
			if got := h.Get(name); got != want {
				t.Errorf("origin's handshake %s = %q, want %q", name, got, want)
			}
		}
		if h.Get("Sec-WebSocket-Key") == "" || h.Get("Forwarded") == "" {
			t.Errorf("origin's handshake lacks Sec-WebSocket-Key or Forwarded: %v", h)
		}

		const n = 10000
		message := func(i int) (websocket.MessageType, []byte) {
			switch {
			case i%2500 == 1249: // four of 1 MiB, binary
				b := bytes.Repeat([]byte{byte(i), byte(i >> 8), 0, 0xff}, 1<<18)
				return websocket.MessageBinary, b
			case i%2 == 0:
				return websocket.MessageText, fmt.Appendf(nil, "message %d: héllo ✓", i)
			default:
				return websocket.MessageBinary, fmt.Appendf(nil, "\x00\x01%d\xfe\xff", i)
			}
		}
		start := time.Now()
		werr := make(chan error, 1)
		go func() {
			for i := range n {
				typ, b := message(i)
				if err := c.Write(ctx, typ, b); err != nil {
					werr <- fmt.Errorf("write %d: %w", i, err)
					return
				}
			}
			werr <- nil
		}()
		for i := range n {
			typ, got, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("read echo %d of %d: %v", i, n, err)
			}
			wantTyp, want := message(i)
			if typ != wantTyp || !bytes.Equal(got, want) {
				t.Fatalf("echo %d is a %v of %d bytes, want the %v of %d bytes sent (lost, reordered or changed)",
					i, typ, len(got), wantTyp, len(want))
			}
		}
		if err := <-werr; err != nil {
			t.Fatal(err)
		}
		t.Logf("%d messages each way, 4 of 1 MiB, in %v", n, time.Since(start).Round(time.Millisecond))
		if got := metric(t, admin, "tailor_upgraded_connections"); got != 1 {
			t.Errorf("tailor_upgraded_connections = %v with one WebSocket open, want 1", got)
		}
		if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
			t.Errorf("closing handshake through tailor: %v", err)
		}
	})

	t.Run("other protocol", func(t *testing.T) {
		c, err := net.Dial("tcp", listen)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		// The first bytes of the new protocol go with the handshake, before
		// the 101: they must not be lost in tailor's read buffer.
		io.WriteString(c, "GET /raw HTTP/1.1\r\nHost: shop.test\r\nConnection: Upgrade\r\nUpgrade: tailor-echo/1\r\n\r\nfirst ")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the 101: %v", err)
		}
		if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "tailor-echo/1" || resp.Header.Get("Connection") != "Upgrade" {
			t.Fatalf("got %d %v, want 101 switching to tailor-echo/1", resp.StatusCode, resp.Header)
		}
		if resp.Header.Get("X-Origin-Private") != "" {
			t.Errorf("a header the origin's Connection named reached the visitor: %v", resp.Header)
		}
		io.WriteString(c, "second")
		// Half-close: the origin answers the end of the visitor's stream.
		c.(*net.TCPConn).CloseWrite()
		rest, err := io.ReadAll(br)
		if err != nil {
			t.Fatalf("reading the tunnel: %v", err)
		}
		if want := "hello\nfirst second\nbye\n"; string(rest) != want {
			t.Errorf("through the tunnel came %q, want %q", rest, want)
		}
	})

	if got := metric(t, admin, `tailor_upgrades_total{result="upgraded"}`); got != 2 {
		t.Errorf(`tailor_upgrades_total{result="upgraded"} = %v, want 2`, got)
	}
	if !testkit.Within(5*time.Second, 10*time.Millisecond, func() bool { return metric(t, admin, "tailor_upgraded_connections") == 0 }) {
		t.Fatal("tailor_upgraded_connections did not go back to 0 once both tunnels closed")
	}
}

// rawUpgrade serves a protocol of its own, "tailor-echo/1": it answers
// the switch with a 101 and a greeting in one write, then, once the client
// has half-closed, sends back the whole of what the client sent, and bye.
func rawUpgrade(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") != "tailor-echo/1" || r.Header.Get("Connection") != "Upgrade" {
		http.Error(w, "want an upgrade to tailor-echo/1", http.StatusBadRequest)
		return
	}
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: tailor-echo/1\r\n"+
		"Connection: Upgrade, X-Origin-Private\r\nX-Origin-Private: 1\r\n\r\nhello\n")
	got, err := io.ReadAll(brw)
	if err != nil {
		return
	}
	io.WriteString(c, strings.TrimSpace(string(got))+"\nbye\n")
}
