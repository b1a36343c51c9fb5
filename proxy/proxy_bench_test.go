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
	p, ctx := outboundFixture(b)
	out := fasthttp.AcquireRequest()
	b.ReportAllocs()
	for b.Loop() {
		out.Reset()
		p.outboundHeaders(ctx, out, false)
	}
}

// outboundFixture is a proxy with the default config and benchRequest as
// it came from 192.0.2.7.
func outboundFixture(tb testing.TB) (*Proxy, *fasthttp.RequestCtx) {
	tb.Helper()
	p, err := New(config.Default(), Options{})
	if err != nil {
		tb.Fatal(err)
	}
	var in fasthttp.Request
	if err := in.Read(bufio.NewReader(strings.NewReader(benchRequest))); err != nil {
		tb.Fatal(err)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&in, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 4000}, nil)
	return p, &ctx
}

func TestOutboundHeadersDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	p, ctx := outboundFixture(t)
	out := fasthttp.AcquireRequest()
	p.outboundHeaders(ctx, out, false) // warm the buffers
	if n := testing.AllocsPerRun(100, func() {
		out.Reset()
		p.outboundHeaders(ctx, out, false)
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
}
