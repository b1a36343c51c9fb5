package proxy

import (
	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/internal/header"
	"github.com/tailor-edge/tailor/internal/listen"
	"github.com/tailor-edge/tailor/rules"
	natsync "github.com/tailor-edge/tailor/sync"
)

// EventSink takes the events the proxy reports (SPEC "Events"); the sync
// package's Publisher is one. Publish must never block: it returns false
// when it drops the event.
type EventSink interface {
	Publish(e *natsync.Event) bool
}

// report publishes the events of one tracked page view, in this order:
// identify, pageview, stage, goal, then one exposure per experiment the
// visitor meets for the first time in this visit. dec is the visitor as
// the rules saw them (its Segments and Stage). shown is false when the
// page went out as the origin sent it although rules fired (fail-open):
// the visitor then saw no variant, and only holdouts are exposures.
func (p *Proxy) report(ctx *fasthttp.RequestCtx, v *visit, dec *rules.Decision, shown bool) {
	view := v.view
	// A HEAD is not a page view: it gets the page's headers, no events.
	if p.events == nil || view == nil || !v.tracked || ctx.IsHead() {
		return
	}
	base := natsync.Event{
		Time:        p.now().UTC(),
		Visitor:     v.id.Key(),
		AnonymousID: v.id.AnonymousID,
		URL:         p.pageURL(ctx),
		Path:        string(ctx.Path()),
		Referrer:    string(rawHeader(ctx.Request.Header.RawHeaders(), fasthttp.HeaderReferer)),
		Segments:    dec.Segments,
		Stage:       dec.Stage,
		Persona:     dec.Persona,
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
	for _, x := range dec.Exposures {
		if !shown && x.Variant != rules.HoldoutVariant || !view.Expose(x) {
			continue
		}
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
