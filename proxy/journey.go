package proxy

import (
	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/cache"
	"github.com/tailor-edge/tailor/identity"
	"github.com/tailor-edge/tailor/journey"
	"github.com/tailor-edge/tailor/rules"
)

// track works out what a page view at v.now means for the visitor's journey
// (journey.Next), from the state cookie they sent; the result is in
// v.view. It reads the cookie but writes nothing: setVisitorCookies sends
// the new state, unless the visitor opted out (who still gets pages that
// see their visit and stage, from the cookie they hold).
func (p *Proxy) track(set *rules.Set, req *fasthttp.Request, v *visit, profile *cache.Profile, step rules.JourneyStep) {
	anon := v.id.AnonymousID
	prev, ok := identity.State{}, false
	if c := req.Header.Cookie(p.signer.StateName()); len(c) > 0 && !v.id.Fresh {
		prev, ok = p.signer.DecodeState(anon, c)
		if !ok {
			p.m.StateResets.Inc()
		}
	}
	v.view = journey.Next(set, prev, ok, journey.Input{Path: string(req.URI().Path()), Step: step, Profile: profile,
		Unsure: v.unsure, Subject: v.id.Subject, Now: v.now})
}
