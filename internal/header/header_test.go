package header

import (
	"bufio"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// request parses raw, a request as a visitor sends it, the way the proxy's
// server does (names as they came).
func request(tb testing.TB, raw string) *fasthttp.RequestHeader {
	tb.Helper()
	var h fasthttp.RequestHeader
	h.DisableNormalizing()
	if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		tb.Fatalf("parse %q: %v", raw, err)
	}
	return &h
}

// response parses raw, an origin's response head, the way the proxy's
// origin client does.
func response(tb testing.TB, raw string) *fasthttp.ResponseHeader {
	tb.Helper()
	var h fasthttp.ResponseHeader
	h.DisableNormalizing()
	h.SetNoDefaultContentType(true)
	if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		tb.Fatalf("parse %q: %v", raw, err)
	}
	return &h
}

func TestCheckFraming(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"Host: x\r\nContent-Length: 5\r\n", ""},
		{"Host: x\r\nTransfer-Encoding: chunked\r\n", ""},
		{"Host: x\r\nX: a\r\n b\r\n", RejectObsFold},
		{"Host: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n", RejectLengthAndChunked},
		{"Host: x\r\nTransfer-Encoding: gzip, chunked\r\n", RejectTransferEncoding},
		{"Host: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", RejectTransferEncoding},
		{"Host: x\r\nTransfer-Encoding x: chunked\r\n", RejectHeaderName},
		{"Host: x\r\nno colon\r\n", RejectBadRequest},
	} {
		if got := CheckFraming([]byte(tc.raw)); got != tc.want {
			t.Errorf("CheckFraming(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

func TestUpgradeProtocols(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", "websocket"},
		{"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, upgrade\r\nUpgrade: a/1\r\nUpgrade: b\r\n\r\n", "a/1, b"},
		{"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", ""},                                     // no Connection: upgrade
		{"GET / HTTP/1.0\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", ""},              // HTTP/1.0
		{"POST / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", ""},             // not a GET
		{"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket, h2c\r\n\r\n", ""},         // h2c smuggling
		{"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: Upgrade\r\nUpgrade: a\r\n\r\n", ""}, // a body
	} {
		if got := string(UpgradeProtocols(request(t, tc.raw))); got != tc.want {
			t.Errorf("UpgradeProtocols(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

func TestOffered(t *testing.T) {
	for _, tc := range []struct {
		asked, switched string
		want            bool
	}{
		{"websocket", "WebSocket", true},
		{"a/1, b", "b", true},
		{"websocket", "tunnel", false},
		{"websocket", "", false},
		{"websocket", "websocket, tunnel", false},
	} {
		if got := Offered([]byte(tc.asked), []byte(tc.switched)); got != tc.want {
			t.Errorf("Offered(%q, %q) = %v, want %v", tc.asked, tc.switched, got, tc.want)
		}
	}
}

func TestSwitchingHeadKeepsUpgradeAndDropsTheOriginsHops(t *testing.T) {
	h := response(t, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade, X-Private\r\n"+
		"X-Private: 1\r\nKeep-Alive: timeout=5\r\nSec-WebSocket-Accept: abc=\r\nContent-Length: 0\r\n\r\n")
	got := string(AppendSwitchingHead(nil, h))
	want := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: abc=\r\n\r\n"
	if got != want {
		t.Errorf("AppendSwitchingHead = %q, want %q", got, want)
	}
}

func TestOriginForm(t *testing.T) {
	for _, tc := range []struct{ uri, want string }{
		{"/a?b", "/a?b"},
		{"http://shop.example/a/b?c=d", "/a/b?c=d"},
		{"https://shop.example?q", "/?q"},
		{"http://shop.example", "/"},
		{"/redirect?to=http://x/", "/redirect?to=http://x/"},
	} {
		if got := string(OriginForm([]byte(tc.uri))); got != tc.want {
			t.Errorf("OriginForm(%q) = %q, want %q", tc.uri, got, tc.want)
		}
	}
}

func TestForwardCopy(t *testing.T) {
	client := netip.MustParseAddr("192.0.2.7")
	const raw = "GET / HTTP/1.1\r\nHost: shop.example:8080\r\nX_Under: 1\r\nRange: bytes=0-9\r\n" +
		"Cookie: a=1; tailor_console=secret; b=2\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n" +
		"Connection: keep-alive, X-Private\r\nX-Private: 1\r\nExpect: 100-continue\r\nAccept: */*\r\n" +
		"if-none-match: \"e1\"\r\nIf-Modified-Since: Sat, 02 May 2026 10:00:00 GMT\r\n\r\n"
	for _, tc := range []struct {
		name    string
		fwd     Forward
		want    string
		dropped int
	}{
		{"untrusted", Forward{Client: client, PrivateCookie: "tailor_console"},
			"Host: shop.example:8080\r\nRange: bytes=0-9\r\nCookie: a=1; b=2\r\nAccept: */*\r\n" +
				"if-none-match: \"e1\"\r\nIf-Modified-Since: Sat, 02 May 2026 10:00:00 GMT\r\n" +
				"X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n" +
				"Forwarded: for=192.0.2.7;host=\"shop.example:8080\";proto=http\r\nX-Forwarded-Host: shop.example:8080\r\n", 1},
		{"trusted, tls, origin host, whole page, underscores", Forward{Client: client, Trusted: true, TLS: true,
			Host: []byte("internal"), WholePage: true, Underscores: true},
			"Host: internal\r\nX_Under: 1\r\nCookie: a=1; tailor_console=secret; b=2\r\nAccept: */*\r\n" +
				"X-Forwarded-For: 6.6.6.6, 192.0.2.7\r\nX-Forwarded-Proto: https\r\n" +
				"Forwarded: for=6.6.6.6, for=192.0.2.7;host=\"shop.example:8080\";proto=https\r\nX-Forwarded-Host: shop.example:8080\r\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out fasthttp.RequestHeader
			out.DisableSpecialHeader()
			out.DisableNormalizing()
			dropped := tc.fwd.Copy(&out, request(t, raw).RawHeaders())
			got := out.String()
			got = got[strings.Index(got, "\r\n")+2 : len(got)-2] // the headers only
			if got != tc.want || dropped != tc.dropped {
				t.Errorf("Copy gave, dropping %d:\n%s\nwant, dropping %d:\n%s", dropped, got, tc.dropped, tc.want)
			}
		})
	}
}

// TestCopyResponseKeepsOrderCaseAndDate serves an origin's head copied
// by CopyResponse from a fasthttp server set up as the proxy's is, and
// reads what goes on the wire.
func TestCopyResponseKeepsOrderCaseAndDate(t *testing.T) {
	src := response(t, "HTTP/1.1 203 Fine\r\nserver: o\r\nDate: Tue, 01 Dec 2026 10:00:00 GMT\r\netag: \"1\"\r\n"+
		"Connection: X-Private\r\nX-Private: 1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n")
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.Response.Header.Set("X-Tailor-Decision", "rules=")
			CopyResponse(&ctx.Response.Header, src, true)
			if v := string(Peek(&ctx.Response.Header, "ETag")); v != `"1"` {
				t.Errorf(`Peek(ETag) = %q, want "1"`, v)
			}
			Set(&ctx.Response.Header, "ETAG", `"2"`)
		},
		DisableHeaderNamesNormalizing: true,
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true,
		NoDefaultContentType:          true,
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	c, err := ln.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	got, _ := io.ReadAll(c)
	// fasthttp writes Server and Set-Cookie in places of its own.
	want := "HTTP/1.1 203 Fine\r\nServer: o\r\nContent-Length: 0\r\nDate: Tue, 01 Dec 2026 10:00:00 GMT\r\n" +
		"X-Tailor-Decision: rules=\r\nETAG: \"2\"\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nConnection: close\r\n\r\n"
	if string(got) != want {
		t.Errorf("CopyResponse served:\n%q\nwant:\n%q", got, want)
	}
}

// browserRequest is a request as a browser sends it, for the request
// path's costs.
const browserRequest = "GET /products/running/road-racer?utm_source=news HTTP/1.1\r\n" +
	"Host: shop.example\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Cookie: tailor_id=v1.abc.def; _ga=GA1.2.3.4\r\n" +
	"Connection: keep-alive\r\n\r\n"

func TestRequestPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	in := request(t, browserRequest)
	raw := in.RawHeaders()
	fwd := Forward{Client: netip.MustParseAddr("192.0.2.7"), PrivateCookie: "tailor_console"}
	var out fasthttp.RequestHeader
	fwd.Copy(&out, raw) // warm the buffer pool
	for name, f := range map[string]func(){
		"CheckFraming": func() {
			if CheckFraming(raw) != "" {
				t.Fatal("a browser's request refused")
			}
		},
		// Every GET is looked at for an upgrade.
		"UpgradeProtocols": func() {
			if UpgradeProtocols(in) != nil {
				t.Fatal("an ordinary GET taken for an upgrade")
			}
		},
		"Forward.Copy": func() {
			out.Reset()
			fwd.Copy(&out, raw)
		},
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %.1f times per request, want 0", name, n)
		}
	}
}

// BenchmarkCheckFraming measures the smuggling checks on every request.
func BenchmarkCheckFraming(b *testing.B) {
	raw := request(b, browserRequest).RawHeaders()
	b.ReportAllocs()
	for b.Loop() {
		if CheckFraming(raw) != "" {
			b.Fatal("rejected")
		}
	}
}

const originResponse = "HTTP/1.1 200 OK\r\n" +
	"Server: nginx\r\n" +
	"Date: Tue, 01 Dec 2026 10:00:00 GMT\r\n" +
	"Content-Type: text/html; charset=utf-8\r\n" +
	"Content-Length: 102400\r\n" +
	"Connection: keep-alive\r\n" +
	"Last-Modified: Mon, 30 Nov 2026 09:00:00 GMT\r\n" +
	"ETag: \"6751a3c0-19000\"\r\n" +
	"Cache-Control: max-age=60\r\n" +
	"Accept-Ranges: bytes\r\n\r\n"

// BenchmarkCopyResponse measures copying an nginx-like origin response
// head to the visitor's response, Date included: the other per-request
// header cost of pass-through.
func BenchmarkCopyResponse(b *testing.B) {
	src := response(b, originResponse)
	var dst fasthttp.Response
	b.ReportAllocs()
	for b.Loop() {
		dst.Reset()
		dst.Header.DisableNormalizing()
		CopyResponse(&dst.Header, src, false)
	}
}
