package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	natsync "github.com/tailor-edge/tailor/sync"
)

// Journey counts page views, journey steps and events.
type Journey struct {
	Tracked     prometheus.Counter // tailor_page_views_total{tracking="tracked"}
	OptedOut    prometheus.Counter // tailor_page_views_total{tracking="opted_out"}
	Bots        prometheus.Counter // tailor_page_views_total{tracking="bot"}
	StateResets prometheus.Counter
	// EventCounts are tailor_events_total{type, result} by event type: [0]
	// queued, [1] dropped.
	EventCounts map[string][2]prometheus.Counter
	Previews    Counters // by result: rendered, rejected
	// Exposures are tailor_exposures_total{result}: the experiment arms
	// decided on page views, shown (the arm's change, or the holdout's
	// block, on the page: reported) or hidden (not: an outer change hid
	// the block, or the page went out as the origin sent it).
	Exposures Counters
}

// Labels of tailor_page_views_total.
const (
	viewTracked  = "tracked"   // the visitor's state advanced; events reported
	viewOptedOut = "opted_out" // GPC, DNT or no consent: nothing kept or reported
	viewBot      = "bot"       // a bot, with experiments.exclude_bots: control, nothing kept or reported
)

var eventTypes = []string{natsync.EventPageview, natsync.EventGoal, natsync.EventStage, natsync.EventExposure, natsync.EventIdentify}

func newJourney(reg prometheus.Registerer) Journey {
	pageViews := newCounters("tailor_page_views_total",
		"HTML page views (2xx GET), by tracking: tracked, opted_out (GPC, DNT or no consent: no events, no new cookies), or bot (a crawler's User-Agent, with experiments.exclude_bots: every experiment's control, no events, no cookies).",
		"tracking", viewTracked, viewOptedOut, viewBot)
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_events_total",
		Help: "Events reported by the proxy, by type and result: queued for publishing, or dropped (the queue was full).",
	}, []string{"type", "result"})
	m := Journey{
		Tracked:  pageViews.of[viewTracked],
		OptedOut: pageViews.of[viewOptedOut],
		Bots:     pageViews.of[viewBot],
		StateResets: counter("tailor_state_resets_total",
			"Visitor state cookies that did not verify (tampered, another visitor's, or signed with a retired key) and were started afresh."),
		EventCounts: make(map[string][2]prometheus.Counter, len(eventTypes)),
		Previews: newCounters("tailor_previews_total",
			"Requests with a tailor_preview link, by result: rendered, or rejected (bad signature, expired, or previews disabled).",
			"result", "rendered", "rejected"),
		Exposures: newCounters("tailor_exposures_total",
			"Experiment arms decided on page views, by result: shown (on the page the visitor got; reported, once a visit) or hidden (an outer change hid the block, or the page was served as the origin sent it; not reported).",
			"result", "shown", "hidden"),
	}
	for _, t := range eventTypes {
		m.EventCounts[t] = [2]prometheus.Counter{events.WithLabelValues(t, "queued"), events.WithLabelValues(t, "dropped")}
	}
	reg.MustRegister(pageViews.vec, m.StateResets, events, m.Previews.vec, m.Exposures.vec)
	return m
}

// Publisher exports the event publisher's counters, when the sink is the
// sync package's Publisher.
func (m *Proxy) Publisher(s interface{ Stats() natsync.PublisherStats }) {
	m.reg.MustRegister(
		counterFunc("tailor_events_published_total", "Events the events stream acknowledged.",
			func() float64 { return float64(s.Stats().Published) }),
		counterFunc("tailor_events_dropped_total", "Events lost: the queue was full (NATS slow or down) or tailor stopped before they were published.",
			func() float64 { return float64(s.Stats().Dropped) }),
		counterFunc("tailor_events_retried_total", "Publishes repeated after a failure; the stream de-duplicates by event id.",
			func() float64 { return float64(s.Stats().Retried) }),
		gaugeFunc("tailor_events_queue_depth", "Events waiting to be published.",
			func() float64 { return float64(s.Stats().Depth) }),
	)
}
