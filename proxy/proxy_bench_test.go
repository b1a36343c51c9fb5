package proxy

import (
	"bufio"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/config"
)

const benchRequest = "GET /products/running/road-racer?utm_source=news HTTP/1.1\r\n" +
	"Host: shop.example\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
	"Accept-Language: en-GB,en;q=0.9\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Cookie: tailor_id=v1.abc.def; _ga=GA1.2.3.4; session=0123456789abcdef\r\n" +
	"Connection: keep-alive\r\n" +
	"X-Forwarded-For: 10.0.0.1\r\n\r\n"

// BenchmarkOutboundHeaders measures building the origin request's headers
// from a browser-like request: the per-request cost of pass-through besides
// the network.
func BenchmarkOutboundHeaders(b *testing.B) {
	p, err := New(config.Default(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	var in fasthttp.Request
	if err := in.Read(bufio.NewReader(strings.NewReader(benchRequest))); err != nil {
		b.Fatal(err)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&in, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 4000}, nil)
	out := fasthttp.AcquireRequest()
	b.ReportAllocs()
	for b.Loop() {
		out.Reset()
		p.outboundHeaders(&ctx, out, false)
	}
}

// BenchmarkCheckFraming measures the smuggling checks on every request.
func BenchmarkCheckFraming(b *testing.B) {
	raw := []byte(benchRequest[strings.Index(benchRequest, "\r\n")+2:])
	b.ReportAllocs()
	for b.Loop() {
		if checkFraming(raw) != "" {
			b.Fatal("rejected")
		}
	}
}

func TestOutboundHeadersDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	p, err := New(config.Default(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var in fasthttp.Request
	if err := in.Read(bufio.NewReader(strings.NewReader(benchRequest))); err != nil {
		t.Fatal(err)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&in, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 4000}, nil)
	out := fasthttp.AcquireRequest()
	p.outboundHeaders(&ctx, out, false) // warm the buffers
	if n := testing.AllocsPerRun(100, func() {
		out.Reset()
		p.outboundHeaders(&ctx, out, false)
	}); n != 0 {
		t.Errorf("outboundHeaders allocates %.1f times per request, want 0", n)
	}
	got := out.Header.String()
	for _, want := range []string{"Host: shop.example\r\n", "Cookie: tailor_id=v1.abc.def; _ga=GA1.2.3.4; session=0123456789abcdef\r\n",
		"X-Forwarded-For: 192.0.2.7\r\n", "X-Forwarded-Proto: http\r\n", "X-Forwarded-Host: shop.example\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("outbound headers lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Connection: keep-alive") || strings.Contains(got, "10.0.0.1") {
		t.Errorf("outbound headers kept a hop-by-hop or untrusted header:\n%s", got)
	}
	// Every GET is looked at for an upgrade too (upgrade.go).
	if n := testing.AllocsPerRun(100, func() {
		if upgradeProtocols(&in.Header) != nil {
			t.Fatal("an ordinary GET taken for an upgrade")
		}
	}); n != 0 {
		t.Errorf("upgradeProtocols allocates %.1f times per request, want 0", n)
	}
}

const benchResponse = "HTTP/1.1 200 OK\r\n" +
	"Server: nginx\r\n" +
	"Date: Tue, 01 Dec 2026 10:00:00 GMT\r\n" +
	"Content-Type: text/html; charset=utf-8\r\n" +
	"Content-Length: 102400\r\n" +
	"Connection: keep-alive\r\n" +
	"Last-Modified: Mon, 30 Nov 2026 09:00:00 GMT\r\n" +
	"ETag: \"6751a3c0-19000\"\r\n" +
	"Cache-Control: max-age=60\r\n" +
	"Accept-Ranges: bytes\r\n\r\n"

// BenchmarkCopyResponseHeaders measures copying an nginx-like origin
// response head to the visitor's response, Date included: the other
// per-request header cost of pass-through.
func BenchmarkCopyResponseHeaders(b *testing.B) {
	var src fasthttp.ResponseHeader
	src.DisableNormalizing()
	if err := src.Read(bufio.NewReader(strings.NewReader(benchResponse))); err != nil {
		b.Fatal(err)
	}
	var dst fasthttp.Response
	b.ReportAllocs()
	for b.Loop() {
		dst.Reset()
		dst.Header.DisableNormalizing()
		copyResponseHeaders(&dst.Header, &src, false)
	}
}
