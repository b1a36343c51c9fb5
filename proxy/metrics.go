package proxy

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
)

// metrics are what an operator watches on a proxy: traffic by status
// class, latency, load, bytes, and every way a request can fail.
// Counters with fixed labels are resolved once here, and a rule's hit
// counter on its first hit, so the request path mostly does atomic adds
// (the map-case, JWT-rejection and request-rejection counters still
// resolve their labels per call; they count the rarer events).
type metrics struct {
	requests      [6]prometheus.Counter // by status class; [0] for anything outside 1xx-5xx
	duration      prometheus.Histogram
	upstream      prometheus.Histogram
	inFlight      prometheus.Gauge
	requestBytes  prometheus.Counter
	responseBytes prometheus.Counter
	originErrors  *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	acceptErrors  prometheus.Counter
	// droppedHeaders counts request headers not forwarded because their
	// names hold an underscore (underscores_in_headers is off).
	droppedHeaders prometheus.Counter

	rewrites    *prometheus.CounterVec
	rewriteTime prometheus.Histogram
	ruleHits    *prometheus.CounterVec
	caseHits    *prometheus.CounterVec
	pageCache   *prometheus.CounterVec
	// The counters of fixed labels the request path bumps, resolved once
	// (WithLabelValues hashes the labels and takes a lock on every call).
	pageCacheHit, pageCacheReuse, pageCacheMiss prometheus.Counter
	rewriteCounts                               map[string]prometheus.Counter
	ruleHitCounts                               sync.Map // rule id → its tailor_rule_hits_total counter
	reloads                                     *prometheus.CounterVec
	rulesLoaded                                 prometheus.Gauge
	reg                                         prometheus.Registerer

	// Upgraded (WebSocket) connections, upgrade.go.
	upgrades      map[string]prometheus.Counter // tailor_upgrades_total by result
	upgradedConns prometheus.Gauge
	upgradedBytes [2]prometheus.Counter         // [0] to the origin, [1] to visitors
	upgradeCloses map[string]prometheus.Counter // tailor_upgraded_closes_total by reason

	identityMetrics
	journeyMetrics
}

func newMetrics(reg prometheus.Registerer, version string) *metrics {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_requests_total",
		Help: "Requests answered, by status class (1xx..5xx).",
	}, []string{"code"})
	m := &metrics{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tailor_request_duration_seconds",
			Help:    "Time from a request's headers to its response headers, origin time included.",
			Buckets: latencyBuckets,
		}),
		upstream: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tailor_origin_duration_seconds",
			Help:    "Time the origin took to answer with response headers.",
			Buckets: latencyBuckets,
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tailor_in_flight_requests",
			Help: "Requests being handled now.",
		}),
		requestBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tailor_request_body_bytes_total",
			Help: "Request body bytes forwarded to the origin.",
		}),
		responseBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tailor_response_body_bytes_total",
			Help: "Response body bytes sent to visitors.",
		}),
		originErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailor_origin_errors_total",
			Help: "Requests the origin could not answer, by kind (unreachable, timeout, pool_exhausted, protocol).",
		}, []string{"kind"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailor_rejected_requests_total",
			Help: "Requests refused before reaching the origin, by reason.",
		}, []string{"reason"}),
	}
	m.rewrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_rewrites_total",
		Help: "HTML responses on paths with rules, by result (rewritten, unchanged, too_large, encoding, too_complex, error, panic). Anything but rewritten/unchanged served the origin's bytes.",
	}, []string{"result"})
	m.rewriteTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "tailor_rewrite_duration_seconds",
		Help:    "Time to read, decode, decide, render and encode a personalized page.",
		Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1},
	})
	m.ruleHits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_rule_hits_total",
		Help: "Actions applied, by rule id.",
	}, []string{"rule"})
	m.caseHits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_map_case_hits_total",
		Help: "Digital Relevancy Map cases chosen, by map rule id and case (a stage, a segment, or default).",
	}, []string{"rule", "case"})
	m.pageCache = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_page_cache_requests_total",
		Help: "Compiled-page cache lookups, by result: hit (same page), reuse (the page changed only where no selector looks, e.g. a nonce: adjusted without a parse), miss (compiled).",
	}, []string{"result"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_rules_reloads_total",
		Help: "Rule loads, by result (ok, error). An error keeps the previous rules serving.",
	}, []string{"result"})
	m.rulesLoaded = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tailor_rules_loaded_timestamp_seconds",
		Help: "When the rules serving now were loaded.",
	})
	m.rewriteCounts = make(map[string]prometheus.Counter)
	for _, r := range []string{rewriteDone, rewriteNoChange, rewriteTooLarge, rewriteEncoding, rewriteComplex, rewriteConflict, rewriteError, rewritePanicked} {
		m.rewriteCounts[r] = m.rewrites.WithLabelValues(r)
	}
	m.pageCacheHit = m.pageCache.WithLabelValues("hit")
	m.pageCacheReuse = m.pageCache.WithLabelValues("reuse")
	m.pageCacheMiss = m.pageCache.WithLabelValues("miss")
	for _, r := range []string{"ok", "error"} {
		m.reloads.WithLabelValues(r)
	}
	m.reg = reg
	for i, c := range []string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"} {
		m.requests[i] = requests.WithLabelValues(c)
	}
	for _, k := range []string{originUnreachable, originTimeout, originPoolFull, originProtocol} {
		m.originErrors.WithLabelValues(k)
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "tailor_build_info",
		Help:        "Always 1; the version label says which build runs.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	info.Set(1)
	m.acceptErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tailor_accept_errors_total",
		Help: "Errors accepting a visitor's connection that tailor waited out and retried (out of file descriptors, mostly).",
	})
	m.droppedHeaders = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tailor_dropped_request_headers_total",
		Help: "Request headers not forwarded to the origin because their names hold an underscore (see underscores_in_headers).",
	})
	reg.MustRegister(requests, m.duration, m.upstream, m.inFlight, m.requestBytes,
		m.responseBytes, m.originErrors, m.rejected, info, m.acceptErrors, m.droppedHeaders,
		m.rewrites, m.rewriteTime, m.ruleHits, m.caseHits, m.pageCache, m.reloads, m.rulesLoaded)
	m.registerUpgrades(reg)
	m.registerIdentity(reg)
	m.registerJourney(reg)
	return m
}

// registerUpgrades makes the metrics of upgraded connections (upgrade.go),
// every label resolved up front.
func (m *metrics) registerUpgrades(reg prometheus.Registerer) {
	upgrades := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_upgrades_total",
		Help: "Requests to switch protocols (WebSocket), by result: upgraded (spliced to the origin), declined (the origin answered without switching; relayed), failed (the origin unreachable, silent or invalid: 502 or 504).",
	}, []string{"result"})
	m.upgradedConns = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tailor_upgraded_connections",
		Help: "Upgraded connections (WebSockets) open now, each a visitor's connection spliced to one of the origin's.",
	})
	upgradedBytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_upgraded_bytes_total",
		Help: "Bytes copied over upgraded connections, by direction (to_origin, to_visitor).",
	}, []string{"direction"})
	closes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_upgraded_closes_total",
		Help: "Upgraded connections ended, by what ended them first: visitor, origin, idle (no byte either way for timeouts.idle, or a side that stopped reading that long), shutdown.",
	}, []string{"reason"})
	m.upgrades = make(map[string]prometheus.Counter)
	for _, r := range []string{upgradeDone, upgradeDeclined, upgradeFailed} {
		m.upgrades[r] = upgrades.WithLabelValues(r)
	}
	m.upgradedBytes = [2]prometheus.Counter{upgradedBytes.WithLabelValues("to_origin"), upgradedBytes.WithLabelValues("to_visitor")}
	m.upgradeCloses = make(map[string]prometheus.Counter)
	for _, r := range []string{closedByVisitor, closedByOrigin, closedIdle, closedByShutdown} {
		m.upgradeCloses[r] = closes.WithLabelValues(r)
	}
	reg.MustRegister(upgrades, m.upgradedConns, upgradedBytes, closes)
}

// upgradeClosed counts an upgraded connection that ended for reason.
func (m *metrics) upgradeClosed(reason string) {
	if c, ok := m.upgradeCloses[reason]; ok {
		c.Inc()
	}
}

// latencyBuckets reach from a cached page (100µs) to the response timeout.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// pageCacheBytes exports the page cache's size as gauges read at scrape time.
func (m *metrics) pageCacheBytes(p interface {
	Stats() (int, int64, uint64)
}) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tailor_page_cache_bytes",
			Help: "Bytes retained by compiled pages.",
		}, func() float64 { _, b, _ := p.Stats(); return float64(b) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tailor_page_cache_entries",
			Help: "Compiled pages cached.",
		}, func() float64 { n, _, _ := p.Stats(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tailor_page_cache_evictions_total",
			Help: "Compiled pages evicted to keep the cache within its byte bound.",
		}, func() float64 { _, _, e := p.Stats(); return float64(e) }),
	)
}

func (m *metrics) countStatus(code int) {
	class := code / 100
	if class < 1 || class > 5 {
		class = 0
	}
	m.requests[class].Inc()
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

// ruleHit counts a hit of rule id, resolving its counter once.
func (m *metrics) ruleHit(id string) {
	if c, ok := m.ruleHitCounts.Load(id); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c := m.ruleHits.WithLabelValues(id)
	m.ruleHitCounts.Store(id, c)
	c.Inc()
}

// RuleHits is how often rule id's action has been applied since the proxy
// started (tailor_rule_hits_total), for the console.
func (p *Proxy) RuleHits(id string) float64 { return counterOf(p.m.ruleHits, id) }

// MapCaseHits is how often map rule id has chosen its case key (a stage,
// a segment or default) since the proxy started
// (tailor_map_case_hits_total), for the console.
func (p *Proxy) MapCaseHits(id, key string) float64 { return counterOf(p.m.caseHits, id, key) }

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
