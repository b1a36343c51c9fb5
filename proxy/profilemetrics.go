package proxy

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailor-edge/tailor/cache"
	"github.com/tailor-edge/tailor/identity"
	natsync "github.com/tailor-edge/tailor/sync"
)

// Labels of tailor_visitors_total.
const (
	identityNew    = "new"    // no valid cookie: a fresh id was minted
	identityForged = "forged" // a cookie was sent but did not verify
	identityKnown  = "known"  // a verified token named the visitor
)

// Labels of tailor_profile_lookups_total.
const (
	lookupHit      = "hit"     // cached profile
	lookupMissing  = "missing" // cached "no such profile"
	lookupFetched  = "fetched" // miss, answered within the budget
	lookupNotFound = "not_found"
	lookupTimeout  = "timeout"  // miss, over budget: served without, filled in the background
	lookupError    = "error"    // miss, the store failed or is down
	lookupDisabled = "no_store" // no NATS configured: profiles come from tokens only
)

// identityMetrics are the identity and profile counters.
type identityMetrics struct {
	identity    *prometheus.CounterVec
	jwtRejected *prometheus.CounterVec
	lookups     *prometheus.CounterVec
	lookupTime  prometheus.Histogram
	// identityCount and lookupCount hold the counters of every label,
	// resolved once: the request path reads them from a map instead of
	// hashing the label into the vector on each page view.
	identityCount map[string]prometheus.Counter
	lookupCount   map[string]prometheus.Counter
}

func (m *metrics) registerIdentity(reg prometheus.Registerer) {
	m.identity = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_visitors_total",
		Help: "Visitors identified on HTML responses, by kind: new (fresh id minted), forged (a cookie that did not verify; a fresh id was minted), known (a verified token).",
	}, []string{"kind"})
	m.jwtRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_jwt_rejected_total",
		Help: "Tokens that did not verify, by reason; the visitor was served as anonymous.",
	}, []string{"reason"})
	m.lookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_profile_lookups_total",
		Help: "Profile lookups by result: hit, missing (cached absence), fetched (miss answered within miss_budget), not_found, timeout (over budget, served without; filled in the background), error (store down), no_store.",
	}, []string{"result"})
	m.lookupTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "tailor_profile_fetch_duration_seconds",
		Help:    "Time a request waited for the central store on a profile cache miss.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1},
	})
	m.identityCount = map[string]prometheus.Counter{}
	for _, k := range []string{identityNew, identityForged, identityKnown} {
		m.identityCount[k] = m.identity.WithLabelValues(k)
	}
	for _, r := range identity.RejectReasons() {
		m.jwtRejected.WithLabelValues(r)
	}
	m.lookupCount = map[string]prometheus.Counter{}
	for _, r := range []string{lookupHit, lookupMissing, lookupFetched, lookupNotFound, lookupTimeout, lookupError, lookupDisabled} {
		m.lookupCount[r] = m.lookups.WithLabelValues(r)
	}
	reg.MustRegister(m.identity, m.jwtRejected, m.lookups, m.lookupTime)
}

// profileCache exports the profile store's counters, read at scrape time.
func (m *metrics) profileCache(c *cache.Profiles) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tailor_profile_cache_entries",
			Help: "Profiles (and cached absences) held by the edge.",
		}, func() float64 { return float64(c.Len()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tailor_profile_cache_hits_total",
			Help: "Profile cache lookups that found an entry.",
		}, func() float64 { return float64(c.Stats().Hits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tailor_profile_cache_misses_total",
			Help: "Profile cache lookups that found nothing (or an expired entry).",
		}, func() float64 { return float64(c.Stats().Misses) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tailor_profile_cache_evictions_total",
			Help: "Profiles evicted to keep the cache within cache_size.",
		}, func() float64 { return float64(c.Stats().Evictions) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tailor_profile_cache_stale_total",
			Help: "Stores refused because a newer revision was already cached.",
		}, func() float64 { return float64(c.Stats().Stale) }),
	)
}

// syncStats exports the profile watch's counters, when the profile source
// is the sync package's Store.
func (m *metrics) syncStats(s interface {
	Stats() natsync.WatchStats
	Connected() bool
}) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tailor_nats_connected",
			Help: "1 while the connection to NATS is up.",
		}, func() float64 {
			if s.Connected() {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tailor_profile_updates_applied_total",
			Help: "Changes from the central store applied to cached profiles.",
		}, func() float64 { return float64(s.Stats().Applied) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tailor_profile_updates_ignored_total",
			Help: "Changes from the central store to profiles this edge does not hold.",
		}, func() float64 { return float64(s.Stats().Ignored) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tailor_profile_rejected_total",
			Help: "Profile documents from the central store that are not valid profiles: an update keeps the profile cached before it, a lookup serves the visitor without one.",
		}, func() float64 { return float64(s.Stats().Rejected) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tailor_profile_watch_restarts_total",
			Help: "Times the profile watch was re-created after a reconnect or a stall, resuming from the next revision.",
		}, func() float64 { return float64(s.Stats().Restarts) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tailor_profile_watch_revision",
			Help: "The last revision of the profile bucket this edge applied.",
		}, func() float64 { return float64(s.Stats().Revision) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tailor_profile_update_lag_seconds",
			Help: "Time from the last change's put on the server to its arrival here (includes clock skew between hosts).",
		}, func() float64 { return s.Stats().LagSeconds }),
	)
}
