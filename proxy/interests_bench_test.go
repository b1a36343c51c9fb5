package proxy

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/identity"
	natsync "github.com/tailor-edge/tailor/sync"
)

// nopSink takes events and drops them: the benchmark measures the page
// view, not NATS.
type nopSink struct{}

func (nopSink) Publish(*natsync.Event) bool { return true }

const benchJourney = `stages: [awareness, interest]
journey:
  - { path: "/products/**", stage: interest }
pages:
  - match: ["/page.html"]
    rules:
      - { id: r, select: p, text: hi }
`

const benchInterests = `interests:
  half_life: 14d
  rules:
    - { path: "/page.html", add: { running: 5 } }
    - { path: "/blog/**", add: { trail: 3, running: 1 } }
    - { path: "/products/camping/**", add: { camping: 5 } }
personas:
  runner: { running: 1.0, trail: 0.3 }
  hiker:  { trail: 1.0, camping: 0.6 }
  camper: { camping: 1.0 }
`

// BenchmarkPageView is the tracking of a page view without rules (the
// journey, the state cookie, the events), with and without interests
// and personas, for a returning visitor whose state holds three scores.
func BenchmarkPageView(b *testing.B) {
	for _, tc := range []struct {
		name, rules string
	}{{"interests=off", benchJourney}, {"interests=on", benchJourney + benchInterests}} {
		b.Run(tc.name, func(b *testing.B) {
			dir := b.TempDir()
			writeRules(b, dir, map[string]string{"r.yaml": tc.rules})
			cfg := config.Default()
			cfg.Rules.Dir = dir
			cfg.Identity.Cookie.Keys = []string{"cookie-key-0123456789abcdef0123456789"}
			p, err := New(cfg, Options{Events: nopSink{}})
			if err != nil {
				b.Fatal(err)
			}
			anon, id := p.signer.Mint()
			now := time.Now().Unix()
			state := p.signer.EncodeState(anon, &identity.State{Visits: 2, LastSeen: now + 240,
				Interests: []identity.InterestScore{{Tag: "running", Score: 12}, {Tag: "trail", Score: 3}, {Tag: "camping", Score: 1}}, InterestsAt: now})
			var req fasthttp.Request
			req.SetRequestURI("/plain.html")
			req.Header.SetHost("shop.example")
			req.Header.SetCookie("tailor_id", id)
			req.Header.SetCookie("tailor_state", state)
			var ctx fasthttp.RequestCtx
			ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil)
			st := p.rules.Load()
			b.ReportAllocs()
			for b.Loop() {
				v := p.visitorFor(&ctx.Request, time.Now())
				p.pageView(&ctx, st, v)
			}
		})
	}
}

// BenchmarkHTMLVisitor is what a 2xx HTML response without rules costs
// on top of pass-through, as bench/passthrough.sh's small.html runs it:
// identify the visitor, track the page view, set their cookies. A new
// visitor gets a fresh id and state; a returning one within a minute
// of their last view sends both and gets neither back.
func BenchmarkHTMLVisitor(b *testing.B) {
	cfg := config.Default()
	cfg.Identity.Cookie.Keys = []string{"cookie-key-0123456789abcdef0123456789"}
	p, err := New(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	anon, id := p.signer.Mint()
	state := p.signer.EncodeState(anon, &identity.State{Visits: 1, LastSeen: time.Now().Unix()})
	for _, tc := range []struct {
		name    string
		cookies bool
	}{{"new", false}, {"returning", true}} {
		b.Run(tc.name, func(b *testing.B) {
			var req fasthttp.Request
			req.SetRequestURI("/small.html")
			req.Header.SetHost("shop.example")
			if tc.cookies {
				req.Header.SetCookie("tailor_id", id)
				req.Header.SetCookie("tailor_state", state)
			}
			var ctx fasthttp.RequestCtx
			ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil)
			st := p.rules.Load()
			b.ReportAllocs()
			for b.Loop() {
				ctx.Response.Header.Reset()
				v := p.visitorFor(&ctx.Request, time.Now())
				out := p.pageView(&ctx, st, v)
				p.setVisitorCookies(&ctx.Response.Header, v, &out)
			}
		})
	}
}
