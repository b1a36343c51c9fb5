package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/tailor-edge/tailor/internal/header"
)

// Proxy are the proxy's metrics.
type Proxy struct {
	requests      [6]prometheus.Counter // by status class; [0] for anything outside 1xx-5xx
	Duration      prometheus.Histogram
	Upstream      prometheus.Histogram
	InFlight      prometheus.Gauge
	RequestBytes  prometheus.Counter
	ResponseBytes prometheus.Counter
	OriginErrors  Counters // by kind: Origin*
	Rejected      Counters // by reason: header.Reject*
	AcceptErrors  prometheus.Counter
	// DroppedHeaders counts request headers not forwarded because their
	// names hold an underscore (underscores_in_headers is off).
	DroppedHeaders prometheus.Counter

	Rewrites    Counters // by result, given to New
	RewriteTime prometheus.Histogram
	ruleHits    *prometheus.CounterVec
	caseHits    *prometheus.CounterVec
	// ruleHitCounts and caseHitCounts hold the counters of the rules and
	// map cases that have counted: rule id → counter, and [rule, case] →
	// counter.
	ruleHitCounts, caseHitCounts sync.Map

	PageCacheHit, PageCacheReuse, PageCacheMiss prometheus.Counter
	Reloads                                     Counters // by result: ok, error
	RulesLoaded                                 prometheus.Gauge
	RulesVersion                                prometheus.Gauge

	// Tunnel counts upgraded (WebSocket) connections, internal/tunnel.
	Tunnel Tunnel
	Identity
	Journey

	reg prometheus.Registerer
}

// Kinds of origin failure, labelling tailor_origin_errors_total.
const (
	OriginUnreachable = "unreachable"
	OriginTimeout     = "timeout"
	OriginPoolFull    = "pool_exhausted"
	OriginProtocol    = "protocol"
)

// latencyBuckets reach from a cached page (100µs) to the response timeout.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// New makes the proxy's metrics and registers them with reg. version
// labels tailor_build_info; rewriteResults are every result a rewrite may
// end with, the labels of tailor_rewrites_total.
func New(reg prometheus.Registerer, version string, rewriteResults []string) *Proxy {
	m := &Proxy{reg: reg}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_requests_total",
		Help: "Requests answered, by status class (1xx..5xx).",
	}, []string{"code"})
	for i, c := range []string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"} {
		m.requests[i] = requests.WithLabelValues(c)
	}
	m.Duration = histogram("tailor_request_duration_seconds",
		"Time from a request's headers to its response headers, origin time included.", latencyBuckets)
	m.Upstream = histogram("tailor_origin_duration_seconds",
		"Time the origin took to answer with response headers.", latencyBuckets)
	m.InFlight = gauge("tailor_in_flight_requests", "Requests being handled now.")
	m.RequestBytes = counter("tailor_request_body_bytes_total", "Request body bytes forwarded to the origin.")
	m.ResponseBytes = counter("tailor_response_body_bytes_total", "Response body bytes sent to visitors.")
	m.OriginErrors = newCounters("tailor_origin_errors_total",
		"Requests the origin could not answer, by kind (unreachable, timeout, pool_exhausted, protocol).",
		"kind", OriginUnreachable, OriginTimeout, OriginPoolFull, OriginProtocol)
	m.Rejected = newCounters("tailor_rejected_requests_total",
		"Requests refused before reaching the origin, by reason.", "reason", header.RejectReasons()...)
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "tailor_build_info",
		Help:        "Always 1; the version label says which build runs.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	info.Set(1)
	m.AcceptErrors = counter("tailor_accept_errors_total",
		"Errors accepting a visitor's connection that tailor waited out and retried (out of file descriptors, mostly).")
	m.DroppedHeaders = counter("tailor_dropped_request_headers_total",
		"Request headers not forwarded to the origin because their names hold an underscore (see underscores_in_headers).")

	m.Rewrites = newCounters("tailor_rewrites_total",
		"HTML responses on paths with rules, by result (rewritten, unchanged, too_large, encoding, too_complex, error, panic). Anything but rewritten/unchanged served the origin's bytes.",
		"result", rewriteResults...)
	m.RewriteTime = histogram("tailor_rewrite_duration_seconds",
		"Time to read, decode, decide, render and encode a personalized page.",
		[]float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1})
	m.ruleHits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_rule_hits_total",
		Help: "Actions applied, by rule id.",
	}, []string{"rule"})
	m.caseHits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_map_case_hits_total",
		Help: "Digital Relevancy Map cases chosen, by map (its rule id) and case (a stage, a segment, a persona, an interest, default, or a two-dimensional map's cell row/column).",
	}, []string{"rule", "case"})
	pageCache := newCounters("tailor_page_cache_requests_total",
		"Compiled-page cache lookups, by result: hit (same page), reuse (the page changed only where no selector looks, e.g. a nonce: adjusted without a parse), miss (compiled).",
		"result", "hit", "reuse", "miss")
	m.PageCacheHit, m.PageCacheReuse, m.PageCacheMiss = pageCache.of["hit"], pageCache.of["reuse"], pageCache.of["miss"]
	m.Reloads = newCounters("tailor_rules_reloads_total",
		"Rule loads, by result (ok, error). An error keeps the previous rules serving.", "result", "ok", "error")
	m.RulesLoaded = gauge("tailor_rules_loaded_timestamp_seconds", "When the rules serving now were loaded.")
	m.RulesVersion = gauge("tailor_rules_version", "The published rule version serving now (rules.bucket, tailor rules push); 0 for rules read from rules.dir.")

	reg.MustRegister(requests, m.Duration, m.Upstream, m.InFlight, m.RequestBytes,
		m.ResponseBytes, m.OriginErrors.vec, m.Rejected.vec, info, m.AcceptErrors, m.DroppedHeaders,
		m.Rewrites.vec, m.RewriteTime, m.ruleHits, m.caseHits, pageCache.vec, m.Reloads.vec, m.RulesLoaded, m.RulesVersion)
	m.Tunnel = newTunnel(reg, m.Upstream)
	m.Identity = newIdentity(reg)
	m.Journey = newJourney(reg)
	return m
}

// CountStatus counts a response by its status class.
func (m *Proxy) CountStatus(code int) {
	class := code / 100
	if class < 1 || class > 5 {
		class = 0
	}
	m.requests[class].Inc()
}

// RuleHit counts a hit of rule id, resolving its counter on the first.
func (m *Proxy) RuleHit(id string) {
	countOnce(&m.ruleHitCounts, id, func() prometheus.Counter { return m.ruleHits.WithLabelValues(id) })
}

// CaseHit counts map rule id choosing its case key, resolving the
// counter on the first.
func (m *Proxy) CaseHit(id, key string) {
	countOnce(&m.caseHitCounts, [2]string{id, key}, func() prometheus.Counter { return m.caseHits.WithLabelValues(id, key) })
}

// countOnce increments the counter seen holds for key, which resolve
// gives the first time.
func countOnce[K comparable](seen *sync.Map, key K, resolve func() prometheus.Counter) {
	c, ok := seen.Load(key)
	if !ok {
		c, _ = seen.LoadOrStore(key, resolve())
	}
	c.(prometheus.Counter).Inc()
}

// RuleHits is how often rule id's action has been applied
// (tailor_rule_hits_total).
func (m *Proxy) RuleHits(id string) float64 { return counterOf(m.ruleHits, id) }

// CaseHits is how often map rule id has chosen its case key
// (tailor_map_case_hits_total).
func (m *Proxy) CaseHits(id, key string) float64 { return counterOf(m.caseHits, id, key) }

// counterOf reads one counter of vec, 0 when it has not counted yet.
func counterOf(vec *prometheus.CounterVec, labels ...string) float64 {
	c, err := vec.GetMetricWithLabelValues(labels...)
	if err != nil {
		return 0
	}
	var m dto.Metric
	if c.Write(&m) != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// PageCache exports the page cache's size as gauges read at scrape time.
func (m *Proxy) PageCache(p interface {
	Stats() (int, int64, uint64)
}) {
	m.reg.MustRegister(
		gaugeFunc("tailor_page_cache_bytes", "Bytes retained by compiled pages.",
			func() float64 { _, b, _ := p.Stats(); return float64(b) }),
		gaugeFunc("tailor_page_cache_entries", "Compiled pages cached.",
			func() float64 { n, _, _ := p.Stats(); return float64(n) }),
		counterFunc("tailor_page_cache_evictions_total", "Compiled pages evicted to keep the cache within its byte bound.",
			func() float64 { _, _, e := p.Stats(); return float64(e) }),
	)
}

// NewRegistry returns a Prometheus registry with the Go runtime and process
// collectors, ready for New. Their metrics are prefixed too
// (tailor_go_goroutines, tailor_process_resident_memory_bytes), so that
// every metric tailor serves is named tailor_*.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	prometheus.WrapRegistererWithPrefix("tailor_", reg).MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
