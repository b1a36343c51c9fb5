package proxy

import (
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/identity"
	"github.com/tailor-edge/tailor/internal/metrics"
)

// visitorIdentity is who a request comes from.
type visitorIdentity struct {
	// AnonymousID is the id in the visitor's cookie, or a fresh one.
	AnonymousID string
	// SetCookie, when not empty, is the Set-Cookie value that gives the
	// visitor a fresh id (their cookie was missing, malformed or forged).
	SetCookie string
	// Fresh is true when AnonymousID was minted for this request: no
	// profile can exist for it yet.
	Fresh bool
	// Subject is the profile id from a verified token; "" without one.
	Subject string
	// TokenSegments are the segments the verified token carries.
	TokenSegments []string
}

// Key is the profile lookup key: the token's subject when there is one,
// else the anonymous id.
func (v *visitorIdentity) Key() string {
	if v.Subject != "" {
		return v.Subject
	}
	return v.AnonymousID
}

// Known reports whether a verified token identified the visitor.
func (v *visitorIdentity) Known() bool { return v.Subject != "" }

// identify reads the visitor's cookie and token. optOut (GPC/DNT, when
// respected) means no new tracking cookie: a visitor without a valid one
// gets an id for this request only.
func (p *Proxy) identify(req *fasthttp.Request, now time.Time, optOut bool) visitorIdentity {
	var id visitorIdentity
	if v := req.Header.Cookie(p.signer.Name()); len(v) > 0 {
		if anon, ok := p.signer.Verify(v); ok {
			id.AnonymousID = anon
		} else {
			p.m.Visitors.Inc(metrics.VisitorForged)
		}
	}
	if id.AnonymousID == "" {
		anon, value := p.signer.Mint()
		id.AnonymousID, id.Fresh = anon, true
		if !optOut {
			id.SetCookie = p.signer.SetCookie(value)
		}
		p.m.Visitors.Inc(metrics.VisitorNew)
	}
	if claims, reason, ok := p.login(req, now); ok {
		if reason != "" {
			p.m.JWTRejected.Inc(reason)
		} else {
			id.Subject, id.TokenSegments = claims.Subject, claims.Segments
			p.m.Visitors.Inc(metrics.VisitorKnown)
		}
	}
	return id
}

// login verifies the request's login token (identity.jwt): ok is false
// without one; reason says why one did not verify ("" when it did).
func (p *Proxy) login(req *fasthttp.Request, now time.Time) (claims identity.Claims, reason string, ok bool) {
	if p.jwt == nil {
		return claims, "", false
	}
	tok := p.jwt.Token(req)
	if len(tok) == 0 {
		return claims, "", false
	}
	claims, reason = p.jwt.Verify(tok, now)
	return claims, reason, true
}

// tracking reports whether the visitor may be tracked: not when they ask
// not to be (Sec-GPC: 1 or DNT: 1, when privacy.respect_gpc), nor, when
// privacy.consent_cookie is set, until that cookie says "granted". An
// untracked visitor gets no new cookie and no events; the rules still
// personalize from the request and from cookies they already hold.
func (p *Proxy) tracking(req *fasthttp.Request) bool {
	if p.cfg.Privacy.RespectGPC {
		raw := req.Header.RawHeaders()
		if string(rawHeader(raw, "Sec-GPC")) == "1" || string(rawHeader(raw, "DNT")) == "1" {
			return false
		}
	}
	if c := p.cfg.Privacy.ConsentCookie; c != "" {
		return string(req.Header.Cookie(c)) == "granted"
	}
	return true
}

// visitorFor identifies the visitor of a request made at now. A bot
// that experiments.exclude_bots keeps out is not tracked (bots.go).
func (p *Proxy) visitorFor(req *fasthttp.Request, now time.Time) *visit {
	device, excluded := p.deviceOf(req)
	tracked := !excluded && p.tracking(req)
	return &visit{now: now, id: p.identify(req, now, !tracked), tracked: tracked, device: device, excludedBot: excluded}
}
