package proxy

import (
	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/internal/header"
	"github.com/tailor-edge/tailor/internal/listen"
	"github.com/tailor-edge/tailor/journey"
	"github.com/tailor-edge/tailor/rules"
	natsync "github.com/tailor-edge/tailor/sync"
)

// EventSink takes the events the proxy reports (SPEC "Events"); the sync
// package's Publisher is one. Publish must never block: it returns false
// when it drops the event.
type EventSink interface {
	Publish(e *natsync.Event) bool
}

// conclude settles what a page view leaves behind once its page's fate
// is known: the visitor's next state and the events, computed together
// from the view and the decision (journey.View.Conclude). It publishes
// the events and returns the outcome, whose state setVisitorCookies
// sends. dec is the visitor as the rules saw them; shown are its
// exposures that were true on the page that went out (settle): none when
// it went out as the origin sent it although rules fired (fail open).
// Each is kept as the visitor's variant from then on (with an event sink
// or without). A HEAD is no page view: it gets the page's headers, no new
// state and no events.
func (p *Proxy) conclude(ctx *fasthttp.RequestCtx, v *visit, dec *rules.Decision, shown []rules.Exposure) journey.Outcome {
	if v.view == nil || ctx.IsHead() {
		return journey.Outcome{}
	}
	if !v.tracked {
		return v.view.Conclude(nil)
	}
	// The variants shown are kept with or without an event sink: the
	// visitor sees the same one on their next page either way.
	out := v.view.Conclude(shown)
	if p.events != nil {
		p.report(ctx, v, dec, &out)
	}
	return out
}

// report publishes the events of one tracked page view, in this order:
// identify, pageview, stage, goal, then one exposure per experiment the
// visitor meets for the first time in this visit (out.Exposures).
func (p *Proxy) report(ctx *fasthttp.RequestCtx, v *visit, dec *rules.Decision, out *journey.Outcome) {
	view := v.view
	base := natsync.Event{
		Time:        v.now.UTC(),
		Visitor:     v.id.Key(),
		AnonymousID: v.id.AnonymousID,
		URL:         p.pageURL(ctx),
		Path:        string(ctx.Path()),
		Referrer:    string(rawHeader(ctx.Request.Header.RawHeaders(), fasthttp.HeaderReferer)),
		Segments:    dec.Segments,
		Stage:       dec.Stage,
		Persona:     dec.Persona,
		Device:      v.device,
		Country:     countryOf(ctx.Request.Header.RawHeaders(), p.trustsClient(ctx)),
		UTMSource:   string(ctx.QueryArgs().Peek("utm_source")),
		UTMCampaign: string(ctx.QueryArgs().Peek("utm_campaign")),
		Bot:         v.device == "bot",
	}
	if base.Segments == nil {
		base.Segments = []string{}
	}
	if view.Identify {
		e := base
		e.Type, e.ProfileID = natsync.EventIdentify, v.id.Subject
		p.publish(&e)
	}
	e := base
	e.Type = natsync.EventPageview
	p.publish(&e)
	if view.StageTo != "" {
		e := base
		e.Type, e.StageFrom, e.StageTo = natsync.EventStage, view.StageFrom, view.StageTo
		p.publish(&e)
	}
	if view.Goal != "" {
		e := base
		e.Type, e.Goal, e.Value = natsync.EventGoal, view.Goal, view.Value
		p.publish(&e)
	}
	for _, x := range out.Exposures {
		e := base
		e.Type, e.Experiment, e.Variant = natsync.EventExposure, x.Experiment, x.Variant
		p.publish(&e)
	}
}

func (p *Proxy) publish(e *natsync.Event) {
	e.ID = natsync.NewEventID()
	c := p.m.EventCounts[e.Type]
	if p.events.Publish(e) {
		c[0].Inc()
	} else {
		c[1].Inc()
	}
}

// pageURL is the URL the visitor asked for: https when tailor terminated
// TLS or a trusted proxy in front says so.
func (p *Proxy) pageURL(ctx *fasthttp.RequestCtx) string {
	scheme := "http"
	if ctx.IsTLS() {
		scheme = "https"
	} else if listen.IsTrusted(p.trusted, remoteAddr(ctx)) {
		if proto := rawHeader(ctx.Request.Header.RawHeaders(), fasthttp.HeaderXForwardedProto); header.EqualFold(proto, "https") {
			scheme = "https"
		}
	}
	b := make([]byte, 0, len(scheme)+3+len(ctx.Host())+len(ctx.RequestURI()))
	b = append(b, scheme...)
	b = append(b, "://"...)
	b = append(b, ctx.Host()...)
	b = append(b, header.OriginForm(ctx.RequestURI())...)
	return string(b)
}
