package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/testkit"
)

// testProxy is a running proxy in front of an origin, both on loopback.
type testProxy struct {
	*Proxy
	addr string // host:port of the proxy
	url  string // http://addr
}

// startProxy starts a proxy in front of origin (an http:// URL), after
// letting edit adjust the config.
func startProxy(t *testing.T, origin string, edit func(*config.Config, *Options)) *testProxy {
	t.Helper()
	return serveTest(t, newTestProxy(t, origin, edit))
}

// newTestProxy is the proxy startProxy starts, before it serves: for a
// test that must set what no config sets.
func newTestProxy(t testing.TB, origin string, edit func(*config.Config, *Options)) *Proxy {
	t.Helper()
	cfg := config.Default()
	cfg.Origin = origin
	cfg.Timeouts.Connect = time.Second
	cfg.Timeouts.Response = 5 * time.Second
	opts := Options{Version: "test"}
	if edit != nil {
		edit(cfg, &opts)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	p, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// serveTest serves p on a loopback port until the test (or benchmark)
// ends.
func serveTest(t testing.TB, p *Proxy) *testProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if p.Ready() { // a test may have shut it down itself
			if err := p.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testProxy{Proxy: p, addr: ln.Addr().String(), url: "http://" + ln.Addr().String()}
}

// shutdown shuts p down as SIGTERM does, allowing it 5 s, and returns how
// long it took.
func shutdown(t *testing.T, p *testProxy) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	return time.Since(start)
}

// checkFor polls fn until it returns nil, failing the test once total has
// passed.
var checkFor = testkit.CheckFor

// startOrigin starts a real HTTP origin on loopback.
func startOrigin(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// recordingOrigin starts an origin that, for every request r, adds
// line(r) to the lines it returns, then answers with h (nil: an empty 200).
func recordingOrigin(t *testing.T, line func(r *http.Request) string, h http.HandlerFunc) (string, *testkit.Lines) {
	t.Helper()
	sent := &testkit.Lines{}
	return startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent.Add(line(r))
		if h != nil {
			h(w, r)
		}
	})).URL, sent
}

// client is a plain HTTP client that does not decompress, so bodies are
// compared as they travelled.
// client is a browser's HTTP client: a request that names no User-Agent
// is sent with testkit.BrowserUA, since Go's own is a bot's, which
// exclude_bots keeps out of tracking and experiments.
func client() *http.Client {
	return &http.Client{Transport: testkit.Browser(&http.Transport{DisableCompression: true}), Timeout: 30 * time.Second}
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp, body
}

// rawRoundTrip writes raw bytes to addr and returns everything the server
// sends back until it closes the connection or a second passes in silence.
func rawRoundTrip(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			return out.String()
		}
	}
}

func statusOf(t *testing.T, raw string) int {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("parse response %q: %v", raw, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func testPage(n int) []byte {
	var b bytes.Buffer
	b.WriteString("<!DOCTYPE html>\n<html><head><title>t</title></head><body>\n")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "<p class=\"item-%d\">Paragraph %d with &amp; entities — and UTF-8 ✓</p>\n", i, i)
	}
	b.WriteString("</body></html>\n")
	return b.Bytes()
}

func binaryBlob(n int) []byte {
	b := make([]byte, n)
	var x uint32 = 2463534242
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPassThroughIsByteIdentical(t *testing.T) {
	page := testPage(100 << 10)
	blob := binaryBlob(1 << 20)
	gz := gzipped(t, page)
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/page.html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write(page)
		case "/blob.bin":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
			w.Write(blob)
		case "/gzip.html":
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Set("Content-Length", fmt.Sprint(len(gz)))
			w.Write(gz)
		case "/chunked.html":
			w.Header().Set("Content-Type", "text/html")
			for i := 0; i < len(page); i += 7000 {
				w.Write(page[i:min(i+7000, len(page))])
				w.(http.Flusher).Flush()
			}
		}
	}))
	p := startProxy(t, origin.URL, nil)
	for _, tc := range []struct {
		path string
		want []byte
	}{
		{"/page.html", page},
		{"/blob.bin", blob},
		{"/gzip.html", gz},
		{"/chunked.html", page},
	} {
		t.Run(tc.path, func(t *testing.T) {
			direct, directBody := get(t, origin.URL+tc.path, "Accept-Encoding", "gzip")
			resp, body := get(t, p.url+tc.path, "Accept-Encoding", "gzip")
			if resp.StatusCode != 200 {
				t.Fatalf("status = %d, want 200", resp.StatusCode)
			}
			if !bytes.Equal(body, tc.want) || !bytes.Equal(body, directBody) {
				t.Fatalf("body differs from the origin's: got %d bytes, want %d", len(body), len(tc.want))
			}
			for _, h := range []string{"Content-Type", "Content-Encoding", "Content-Length", "Date"} {
				if got, want := resp.Header.Values(h), direct.Header.Values(h); strings.Join(got, "|") != strings.Join(want, "|") {
					// Date may tick between the two requests.
					if h != "Date" {
						t.Errorf("%s = %q, want %q", h, got, want)
					}
				}
			}
			if tc.path == "/chunked.html" && len(resp.TransferEncoding) == 0 {
				t.Errorf("chunked origin response lost its chunked framing: Content-Length %d", resp.ContentLength)
			}
		})
	}
}

func TestResponseHeadersKeepOrderDuplicatesAndCookies(t *testing.T) {
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Multi"] = []string{"one", "two", "three"}
		h["Set-Cookie"] = []string{
			"a=1; Path=/; HttpOnly",
			"a=2; Path=/shop; Secure; SameSite=Strict",
			"b=x%20y; Expires=Wed, 21 Oct 2026 07:28:00 GMT",
		}
		h.Set("Server", "origin-server/1.0")
		h.Set("Cache-Control", "public, max-age=60")
		h.Set("ETag", `"v1"`)
		w.Write([]byte("ok"))
	}))
	p := startProxy(t, origin.URL, nil)
	resp, body := get(t, p.url+"/")
	if string(body) != "ok" {
		t.Fatalf("body = %q", body)
	}
	for h, want := range map[string][]string{
		"X-Multi":       {"one", "two", "three"},
		"Set-Cookie":    {"a=1; Path=/; HttpOnly", "a=2; Path=/shop; Secure; SameSite=Strict", "b=x%20y; Expires=Wed, 21 Oct 2026 07:28:00 GMT"},
		"Server":        {"origin-server/1.0"},
		"Cache-Control": {"public, max-age=60"},
		"Etag":          {`"v1"`},
	} {
		if got := resp.Header.Values(h); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
}

func TestNoHeadersInventedForTheOrigin(t *testing.T) {
	// An origin that sends no Server or Content-Type gets none added; a
	// response without Date gets tailor's (RFC 9110 section 6.6.1).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Only: yes\r\n\r\nhi")
			}()
		}
	}()
	p := startProxy(t, "http://"+ln.Addr().String(), nil)
	raw := rawRoundTrip(t, p.addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	for _, h := range []string{"Server:", "Content-Type:"} {
		if strings.Contains(raw, h) {
			t.Errorf("response has %s the origin never sent:\n%s", h, raw)
		}
	}
	if strings.Count(raw, "\r\nDate: ") != 1 {
		t.Errorf("a response without Date should get one:\n%s", raw)
	}
	if !strings.Contains(raw, "X-Only: yes") || !strings.HasSuffix(raw, "\r\n\r\nhi") {
		t.Errorf("response lost the origin's header or body:\n%s", raw)
	}
}

func TestHopByHopHeadersAreRemovedBothWays(t *testing.T) {
	var seen http.Header
	var mu sync.Mutex
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Clone()
		mu.Unlock()
		w.Header().Set("Connection", "X-Origin-Private")
		w.Header().Set("X-Origin-Private", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Proxy-Authenticate", "Basic")
		w.Header().Set("X-Kept", "1")
		w.Write([]byte("ok"))
	}))
	p := startProxy(t, origin.URL, nil)
	raw := rawRoundTrip(t, p.addr, "GET / HTTP/1.1\r\nHost: example.test\r\n"+
		"Connection: keep-alive, X-Client-Private\r\nX-Client-Private: 1\r\nKeep-Alive: 300\r\n"+
		"Proxy-Authorization: Basic Zm9vOmJhcg==\r\nTE: trailers\r\nUpgrade: websocket\r\nX-Kept: yes\r\n\r\n")
	mu.Lock()
	defer mu.Unlock()
	for _, h := range []string{"X-Client-Private", "Keep-Alive", "Proxy-Authorization", "Te", "Upgrade"} {
		if v := seen.Values(h); len(v) > 0 {
			t.Errorf("origin saw hop-by-hop %s: %q", h, v)
		}
	}
	if c := seen.Get("Connection"); c != "" && c != "keep-alive" {
		t.Errorf("origin saw client's Connection %q", c)
	}
	if seen.Get("X-Kept") != "yes" {
		t.Errorf("origin lost an end-to-end header: %v", seen)
	}
	for _, h := range []string{"X-Origin-Private:", "Keep-Alive:", "Proxy-Authenticate:", "Connection: X-Origin"} {
		if strings.Contains(raw, h) {
			t.Errorf("visitor got hop-by-hop %q:\n%s", h, raw)
		}
	}
	if !strings.Contains(raw, "X-Kept: 1") {
		t.Errorf("visitor lost an end-to-end header:\n%s", raw)
	}
}

// TestForwardedHeaders, and the Forwarded header an untrusted client sent
// (issue 15: "Forwarded: for=…;host=evil.example from an untrusted client
// reaches the origin"): X-Forwarded-* and Forwarded are replaced for an
// untrusted client and appended to for a trusted proxy.
func TestForwardedHeaders(t *testing.T) {
	type seenReq struct{ xff, proto, host, fwdHost, fwd string }
	seen := make(chan seenReq, 1)
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- seenReq{strings.Join(r.Header.Values("X-Forwarded-For"), ","), r.Header.Get("X-Forwarded-Proto"), r.Host, r.Header.Get("X-Forwarded-Host"),
			strings.Join(r.Header.Values("Forwarded"), "|")}
	}))
	spoof := "GET / HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n" +
		"Forwarded: for=6.6.6.6;host=evil.example;proto=https\r\nConnection: close\r\n\r\n"
	strip := "GET / HTTP/1.1\r\nHost: shop.example:8080\r\nConnection: close, X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto, Forwarded\r\n\r\n"

	t.Run("untrusted client is replaced", func(t *testing.T) {
		p := startProxy(t, origin.URL, nil)
		rawRoundTrip(t, p.addr, spoof)
		got := <-seen
		want := seenReq{"127.0.0.1", "http", "shop.example", "shop.example", "for=127.0.0.1;host=shop.example;proto=http"}
		if got != want {
			t.Errorf("origin saw %+v, want %+v", got, want)
		}
	})
	t.Run("connection header cannot strip ours", func(t *testing.T) {
		p := startProxy(t, origin.URL, nil)
		rawRoundTrip(t, p.addr, strip)
		got := <-seen
		want := seenReq{"127.0.0.1", "http", "shop.example:8080", "shop.example:8080", `for=127.0.0.1;host="shop.example:8080";proto=http`}
		if got != want {
			t.Errorf("origin saw %+v, want %+v", got, want)
		}
	})
	t.Run("trusted proxy is appended to", func(t *testing.T) {
		p := startProxy(t, origin.URL, func(c *config.Config, _ *Options) { c.TrustedProxies = []string{"127.0.0.0/8"} })
		rawRoundTrip(t, p.addr, spoof)
		got := <-seen
		want := seenReq{"6.6.6.6, 127.0.0.1", "https", "shop.example", "evil.example",
			"for=6.6.6.6;host=evil.example;proto=https, for=127.0.0.1;host=shop.example;proto=http"}
		if got != want {
			t.Errorf("origin saw %+v, want %+v", got, want)
		}
	})
	t.Run("origin_host overrides Host", func(t *testing.T) {
		p := startProxy(t, origin.URL, func(c *config.Config, _ *Options) { c.OriginHost = "internal.example" })
		rawRoundTrip(t, p.addr, spoof)
		got := <-seen
		if got.host != "internal.example" || got.fwdHost != "shop.example" {
			t.Errorf("origin saw Host %q, X-Forwarded-Host %q; want internal.example, shop.example", got.host, got.fwdHost)
		}
	})
}

func TestAbsoluteFormTargetIsSentInOriginForm(t *testing.T) {
	seen := make(chan string, 1)
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.RequestURI
	}))
	p := startProxy(t, origin.URL, nil)
	rawRoundTrip(t, p.addr, "GET http://shop.example/a/b?c=d HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n")
	if got := <-seen; got != "/a/b?c=d" {
		t.Errorf("origin saw request target %q, want /a/b?c=d", got)
	}
}

func TestHeadAndConditionalRequests(t *testing.T) {
	body := testPage(5000)
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"abc"`)
		w.Header().Set("Content-Type", "text/html")
		if r.Header.Get("If-None-Match") == `"abc"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	}))
	p := startProxy(t, origin.URL, nil)

	raw := rawRoundTrip(t, p.addr, "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if !strings.Contains(raw, fmt.Sprintf("Content-Length: %d\r\n", len(body))) || !strings.HasSuffix(raw, "\r\n\r\n") {
		t.Errorf("HEAD response should carry the GET's Content-Length and no body:\n%s", raw)
	}
	if statusOf(t, raw) != 200 {
		t.Errorf("HEAD status = %d", statusOf(t, raw))
	}

	resp, b := get(t, p.url+"/", "If-None-Match", `"abc"`)
	if resp.StatusCode != http.StatusNotModified || len(b) != 0 || resp.Header.Get("ETag") != `"abc"` {
		t.Errorf("conditional GET = %d, %d bytes, ETag %q; want 304, no body, \"abc\"", resp.StatusCode, len(b), resp.Header.Get("ETag"))
	}
	// The connection stays usable after a HEAD and a 304: a GET on it
	// gets the full body.
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"abc\"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	for i, method := range []string{"HEAD", "GET", "GET"} {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("response %d on one connection: %v", i, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if i == 2 && !bytes.Equal(got, body) {
			t.Errorf("GET after HEAD and 304 on one connection: %d bytes, want %d", len(got), len(body))
		}
	}
}

func TestOriginUnreachableIs502(t *testing.T) {
	p := startProxy(t, "http://127.0.0.1:"+strconv.Itoa(testkit.FreePort(t)), nil)
	resp, body := get(t, p.url+"/")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "unreachable") {
		t.Errorf("got %d %q, want 502 naming the unreachable origin", resp.StatusCode, body)
	}
}

func TestOriginTimeoutIs504(t *testing.T) {
	release := make(chan struct{})
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer close(release)
	p := startProxy(t, origin.URL, func(c *config.Config, _ *Options) { c.Timeouts.Response = 1500 * time.Millisecond })
	start := time.Now()
	resp, body := get(t, p.url+"/slow")
	took := time.Since(start)
	if resp.StatusCode != http.StatusGatewayTimeout || len(body) == 0 || len(body) > 200 {
		t.Errorf("got %d %q, want 504 with a short body", resp.StatusCode, body)
	}
	if took < 400*time.Millisecond || took > 5*time.Second {
		t.Errorf("504 after %v, want about the 1.5s response timeout", took)
	}
}

func TestSlowDownloadMakingProgressIsNotCut(t *testing.T) {
	// The response timeout bounds silences, not the whole transfer.
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 6; i++ {
			w.Write([]byte("tick\n"))
			w.(http.Flusher).Flush()
			time.Sleep(300 * time.Millisecond)
		}
	}))
	p := startProxy(t, origin.URL, func(c *config.Config, _ *Options) { c.Timeouts.Response = 1200 * time.Millisecond })
	resp, body := get(t, p.url+"/")
	if resp.StatusCode != 200 || string(body) != strings.Repeat("tick\n", 6) {
		t.Errorf("got %d %q, want the whole 1.8s trickle", resp.StatusCode, body)
	}
}

func TestKeepAliveToOrigin(t *testing.T) {
	var conns atomic.Int32
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	origin.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	origin.Start()
	t.Cleanup(origin.Close)
	p := startProxy(t, origin.URL, nil)
	for i := 0; i < 20; i++ {
		if resp, _ := get(t, p.url+"/"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("20 sequential requests opened %d origin connections, want 1", n)
	}
}

func TestPostIsNeverRetried(t *testing.T) {
	var posts, gets atomic.Int32
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		} else {
			gets.Add(1)
		}
		io.Copy(io.Discard, r.Body)
		// Die without answering, as a crashing origin would.
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close()
		}
	}))
	p := startProxy(t, origin.URL, nil)
	resp, err := client().Post(p.url+"/order", "text/plain", strings.NewReader("buy one"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("POST to a dying origin = %d, want 502", resp.StatusCode)
	}
	if n := posts.Load(); n != 1 {
		t.Errorf("origin received the POST %d times, want exactly 1", n)
	}
	get(t, p.url+"/")
	if n := gets.Load(); n > 2 {
		t.Errorf("origin received a GET %d times, want at most 2", n)
	}
}

func TestExhaustedOriginPoolIs502(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	p := startProxy(t, origin.URL, func(c *config.Config, o *Options) {
		o.MaxOriginConns = 1
		c.Timeouts.Connect = 300 * time.Millisecond
	})
	first := make(chan int, 1)
	go func() {
		resp, err := client().Get(p.url + "/hold")
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	<-entered
	resp, body := get(t, p.url+"/second")
	close(release)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "too many connections") {
		t.Errorf("request beyond the pool = %d %q, want 502 saying the pool is full", resp.StatusCode, body)
	}
	if s := <-first; s != 200 {
		t.Errorf("request holding the pool = %d, want 200", s)
	}
}

func TestLargeCookiesPass(t *testing.T) {
	seen := make(chan int, 1)
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- len(r.Header.Get("Cookie"))
	}))
	p := startProxy(t, origin.URL, nil)
	cookie := "big=" + strings.Repeat("c", 16<<10)
	resp, _ := get(t, p.url+"/", "Cookie", cookie)
	if resp.StatusCode != 200 {
		t.Fatalf("16 KB of cookies: status %d, want 200", resp.StatusCode)
	}
	if n := <-seen; n != len(cookie) {
		t.Errorf("origin saw %d bytes of cookie, want %d", n, len(cookie))
	}
}

func TestHeadersBeyondLimitAre431(t *testing.T) {
	var hits atomic.Int32
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	p := startProxy(t, origin.URL, func(c *config.Config, _ *Options) { c.MaxHeaderBytes = 16 << 10 })
	raw := rawRoundTrip(t, p.addr, "GET / HTTP/1.1\r\nHost: x\r\nCookie: big="+strings.Repeat("c", 20<<10)+"\r\n\r\n")
	if s := statusOf(t, raw); s != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status = %d, want 431", s)
	}
	if hits.Load() != 0 {
		t.Errorf("the oversized request reached the origin")
	}
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// counterValue is testkit.CounterValue, under the name this package's
// tests use.
var counterValue = testkit.CounterValue
