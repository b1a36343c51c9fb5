package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailor-edge/tailor/internal/splice"
)

// Tunnel counts requests to switch protocols and the connections spliced
// after a switch (internal/tunnel).
type Tunnel struct {
	Upgrades Counters // by result: Upgraded, Declined, UpgradeFailed
	// Upstream is the proxy's tailor_origin_duration_seconds: a switch
	// waits for the origin's answer as any request does.
	Upstream  prometheus.Histogram
	Open      prometheus.Gauge   // upgraded connections open now
	ToOrigin  prometheus.Counter // bytes spliced to the origin
	ToVisitor prometheus.Counter // bytes spliced to visitors
	Closes    Counters           // by reason: splice.ByVisitor, ByOrigin, Idle, ByShutdown
}

// Results of an upgrade request, labelling tailor_upgrades_total.
const (
	Upgraded      = "upgraded" // the origin switched; the connections are spliced
	Declined      = "declined" // the origin answered without switching; relayed
	UpgradeFailed = "failed"   // no answer from the origin: 502 or 504
)

// newTunnel makes the metrics of upgraded connections, every label
// resolved up front.
func newTunnel(reg prometheus.Registerer, upstream prometheus.Histogram) Tunnel {
	t := Tunnel{
		Upgrades: newCounters("tailor_upgrades_total",
			"Requests to switch protocols (WebSocket), by result: upgraded (spliced to the origin), declined (the origin answered without switching; relayed), failed (the origin unreachable, silent or invalid: 502 or 504).",
			"result", Upgraded, Declined, UpgradeFailed),
		Upstream: upstream,
		Open: gauge("tailor_upgraded_connections",
			"Upgraded connections (WebSockets) open now, each a visitor's connection spliced to one of the origin's."),
		Closes: newCounters("tailor_upgraded_closes_total",
			"Upgraded connections ended, by what ended them first: visitor, origin, idle (no byte either way for timeouts.idle, or a side that stopped reading that long), shutdown.",
			"reason", splice.ByVisitor, splice.ByOrigin, splice.Idle, splice.ByShutdown),
	}
	spliced := newCounters("tailor_upgraded_bytes_total",
		"Bytes copied over upgraded connections, by direction (to_origin, to_visitor).",
		"direction", "to_origin", "to_visitor")
	t.ToOrigin, t.ToVisitor = spliced.of["to_origin"], spliced.of["to_visitor"]
	reg.MustRegister(t.Upgrades.vec, t.Open, spliced.vec, t.Closes.vec)
	return t
}
