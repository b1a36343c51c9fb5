package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
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

// journeyMetrics count page views, journey steps and events.
type journeyMetrics struct {
	pageViews   *prometheus.CounterVec
	tracked     prometheus.Counter // pageViews{tracking="tracked"}
	optedOut    prometheus.Counter // pageViews{tracking="opted_out"}
	stateResets prometheus.Counter
	events      *prometheus.CounterVec
	// eventCounts are events{type, result}, resolved once: [0] queued,
	// [1] dropped.
	eventCounts map[string][2]prometheus.Counter
	previews    *prometheus.CounterVec
}

var eventTypes = []string{natsync.EventPageview, natsync.EventGoal, natsync.EventStage, natsync.EventExposure, natsync.EventIdentify}

// Labels of tailor_page_views_total.
const (
	viewTracked  = "tracked"   // the visitor's state advanced; events reported
	viewOptedOut = "opted_out" // GPC, DNT or no consent: nothing kept or reported
)

func (m *metrics) registerJourney(reg prometheus.Registerer) {
	m.pageViews = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_page_views_total",
		Help: "HTML page views (2xx GET), by tracking: tracked, or opted_out (GPC, DNT or no consent: no events, no new cookies).",
	}, []string{"tracking"})
	m.stateResets = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tailor_state_resets_total",
		Help: "Visitor state cookies that did not verify (tampered, another visitor's, or signed with a retired key) and were started afresh.",
	})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_events_total",
		Help: "Events reported by the proxy, by type and result: queued for publishing, or dropped (the queue was full).",
	}, []string{"type", "result"})
	m.previews = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_previews_total",
		Help: "Requests with a tailor_preview link, by result: rendered, or rejected (bad signature, expired, or previews disabled).",
	}, []string{"result"})
	m.tracked = m.pageViews.WithLabelValues(viewTracked)
	m.optedOut = m.pageViews.WithLabelValues(viewOptedOut)
	m.eventCounts = make(map[string][2]prometheus.Counter, len(eventTypes))
	for _, t := range eventTypes {
		m.eventCounts[t] = [2]prometheus.Counter{m.events.WithLabelValues(t, "queued"), m.events.WithLabelValues(t, "dropped")}
	}
	m.previews.WithLabelValues("rendered")
	m.previews.WithLabelValues("rejected")
	reg.MustRegister(m.pageViews, m.stateResets, m.events, m.previews)
}

// publisherStats exports the event publisher's counters, when the sink is
// the sync package's Publisher.
func (m *metrics) publisherStats(s interface{ Stats() natsync.PublisherStats }) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tailor_events_published_total",
			Help: "Events the events stream acknowledged.",
		}, func() float64 { return float64(s.Stats().Published) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tailor_events_dropped_total",
			Help: "Events lost: the queue was full (NATS slow or down) or tailor stopped before they were published.",
		}, func() float64 { return float64(s.Stats().Dropped) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tailor_events_retried_total",
			Help: "Publishes repeated after a failure; the stream de-duplicates by event id.",
		}, func() float64 { return float64(s.Stats().Retried) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tailor_events_queue_depth",
			Help: "Events waiting to be published.",
		}, func() float64 { return float64(s.Stats().Depth) }),
	)
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
	c := p.m.eventCounts[e.Type]
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
