package proxy

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/testkit"
)

// benchBlogRules are bench/dynamic.sh's five always-on rewrites of the
// blog page.
const benchBlogRules = `pages:
  - match: ["/blog", "/blog-static"]
    rules:
      - id: blog-text
        select: "h1.entry-title"
        text: "These weeks, picked for you"
      - id: blog-attr
        select: ".nav-global-fxdownload a"
        attr: { href: "/download?from=tailor" }
      - id: blog-add-class
        select: "body"
        add_class: tailored
      - id: blog-inner
        select: "#related-posts .in-category"
        inner: '<li><a href="/picked">Picked for you</a></li>'
      - id: blog-append
        select: "footer.fx-footer"
        append: '<p class="tailored">Personalized</p>'
`

// BenchmarkPersonalizeDynamicPage: a whole request through the proxy, for
// the real-world page of bench/pages as a CMS sends it — a request id in a
// CSRF <meta>, a script nonce, an inline script, the text and a comment,
// and a notice on every other request — with five rewrites; "pass" is the
// same page on a path without rules, "blog-static" one of its variants
// every time. The origin and the client run in the
// same process (on loopback): compare the two, not the absolute times.
func BenchmarkPersonalizeDynamicPage(b *testing.B) {
	raw, err := os.ReadFile("../bench/pages/nightly-blog.html")
	if err != nil {
		b.Fatal(err)
	}
	page := string(raw)
	// Variants made up front: the origin only copies one out.
	var variants [64][]byte
	for i := range variants {
		variants[i] = []byte(dynamicBlog(page, uint64(i)))
	}
	var n atomic.Uint64
	dynamic := func() []byte { return variants[n.Add(1)%uint64(len(variants))] }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	origin := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/html; charset=utf-8")
		if string(ctx.Path()) == "/blog-static" {
			ctx.SetBody(variants[0])
			return
		}
		ctx.SetBody(dynamic())
	}}
	go origin.Serve(ln)
	b.Cleanup(func() { origin.Shutdown() })
	dir := b.TempDir()
	writeRules(b, dir, map[string]string{"blog.yaml": benchBlogRules})
	p := startBenchProxy(b, "http://"+ln.Addr().String(), func(c *config.Config) { c.Rules.Dir = dir })
	for _, path := range []string{"/pass", "/blog", "/blog-static"} {
		b.Run(strings.TrimPrefix(path, "/"), func(b *testing.B) {
			c := &fasthttp.HostClient{Addr: p}
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			req.SetRequestURI("http://" + p + path)
			req.Header.SetUserAgent(testkit.BrowserUA) // a person: a bot's page view is another path
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 || len(resp.Body()) < 70000 {
					b.Fatalf("%s: %v, status %d, %d bytes", path, err, resp.StatusCode(), len(resp.Body()))
				}
			}
		})
	}
}

// startBenchProxy starts the proxy on loopback for a benchmark and
// returns its address.
func startBenchProxy(b *testing.B, origin string, edit func(*config.Config)) string {
	b.Helper()
	return serveTest(b, newTestProxy(b, origin, func(c *config.Config, o *Options) {
		c.Identity.Cookie.Keys = []string{"0123456789abcdef0123456789abcdef"}
		o.Version = "bench"
		if edit != nil {
			edit(c)
		}
	})).addr
}

// dynamicBlog is the blog page as the CMS sends it on request i.
func dynamicBlog(page string, i uint64) string {
	id := fmt.Sprintf("%032x", i*0x9e3779b97f4a7c15)
	p := strings.Replace(page, "</title>", `</title><meta name="csrf-token" content="`+id+`">`+
		`<script nonce="`+id+`">window.requestId = "`+id+`";</script>`, 1)
	p = strings.Replace(p, "Required fields are marked", "Your session: "+id+". Required fields are marked", 1)
	if i%2 == 0 {
		p = strings.Replace(p, `<main id="content">`, `<main id="content"><div class="notice">Maintenance tonight</div>`, 1)
	}
	return p + "<!-- request " + id + " -->\n"
}
