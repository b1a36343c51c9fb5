package proxy

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/identity"
	"github.com/tailor-edge/tailor/internal/testkit"
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
			p := benchVisitorProxy(b, tc.rules, Options{Events: nopSink{}})
			anon, id := p.signer.Mint()
			now := time.Now().Unix()
			state := p.signer.EncodeState(anon, &identity.State{Visits: 2, LastSeen: now + 240,
				Interests: []identity.InterestScore{{Tag: "running", Score: 12}, {Tag: "trail", Score: 3}, {Tag: "camping", Score: 1}}, InterestsAt: now})
			ctx := benchPageView("/plain.html", id, state)
			st := p.rules.Load()
			b.ReportAllocs()
			for b.Loop() {
				v := p.visitorFor(&ctx.Request, time.Now())
				p.pageView(ctx, st, v)
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
	p := benchVisitorProxy(b, "", Options{})
	anon, id := p.signer.Mint()
	state := p.signer.EncodeState(anon, &identity.State{Visits: 1, LastSeen: time.Now().Unix()})
	for _, tc := range []struct{ name, id, state string }{{"new", "", ""}, {"returning", id, state}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := benchPageView("/small.html", tc.id, tc.state)
			st := p.rules.Load()
			b.ReportAllocs()
			for b.Loop() {
				ctx.Response.Header.Reset()
				v := p.visitorFor(&ctx.Request, time.Now())
				out := p.pageView(ctx, st, v)
				p.setVisitorCookies(&ctx.Response.Header, v, &out)
			}
		})
	}
}

// benchVisitorProxy is a proxy that signs visitor cookies, with the rules
// of one file (none for "") and o; it serves nothing: the benchmarks call
// the steps of a request themselves.
func benchVisitorProxy(b *testing.B, rules string, o Options) *Proxy {
	b.Helper()
	cfg := config.Default()
	if rules != "" {
		cfg.Rules.Dir = b.TempDir()
		writeRules(b, cfg.Rules.Dir, map[string]string{"r.yaml": rules})
	}
	cfg.Identity.Cookie.Keys = []string{"cookie-key-0123456789abcdef0123456789"}
	p, err := New(cfg, o)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// benchPageView is a GET of path on shop.example from loopback, sending
// the visitor's tailor_id and tailor_state cookies when id is not "".
func benchPageView(path, id, state string) *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.SetRequestURI(path)
	req.Header.SetHost("shop.example")
	req.Header.SetUserAgent(testkit.BrowserUA) // a person: a bot is not tracked
	if id != "" {
		req.Header.SetCookie("tailor_id", id)
		req.Header.SetCookie("tailor_state", state)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil)
	return &ctx
}
