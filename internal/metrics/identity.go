package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailor-edge/tailor/cache"
	"github.com/tailor-edge/tailor/identity"
	natsync "github.com/tailor-edge/tailor/sync"
)

// Identity are the identity and profile counters.
type Identity struct {
	Visitors    Counters // by kind: Visitor*
	JWTRejected Counters // by reason: identity.RejectReasons
	Lookups     Counters // by result: Lookup*
	LookupTime  prometheus.Histogram
}

// Labels of tailor_visitors_total.
const (
	VisitorNew    = "new"    // no valid cookie: a fresh id was minted
	VisitorForged = "forged" // a cookie was sent but did not verify
	VisitorKnown  = "known"  // a verified token named the visitor
)

// Labels of tailor_profile_lookups_total.
const (
	LookupHit      = "hit"     // cached profile
	LookupMissing  = "missing" // cached "no such profile"
	LookupFetched  = "fetched" // miss, answered within the budget
	LookupNotFound = "not_found"
	LookupTimeout  = "timeout"  // miss, over budget: served without, filled in the background
	LookupError    = "error"    // miss, the store failed or is down
	LookupDisabled = "no_store" // no NATS configured: profiles come from tokens only
)

func newIdentity(reg prometheus.Registerer) Identity {
	m := Identity{
		Visitors: newCounters("tailor_visitors_total",
			"Visitors identified on HTML responses, by kind: new (fresh id minted), forged (a cookie that did not verify; a fresh id was minted), known (a verified token).",
			"kind", VisitorNew, VisitorForged, VisitorKnown),
		JWTRejected: newCounters("tailor_jwt_rejected_total",
			"Tokens that did not verify, by reason; the visitor was served as anonymous.",
			"reason", identity.RejectReasons()...),
		Lookups: newCounters("tailor_profile_lookups_total",
			"Profile lookups by result: hit, missing (cached absence), fetched (miss answered within miss_budget), not_found, timeout (over budget, served without; filled in the background), error (store down), no_store.",
			"result", LookupHit, LookupMissing, LookupFetched, LookupNotFound, LookupTimeout, LookupError, LookupDisabled),
		LookupTime: histogram("tailor_profile_fetch_duration_seconds",
			"Time a request waited for the central store on a profile cache miss.",
			[]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1}),
	}
	reg.MustRegister(m.Visitors.vec, m.JWTRejected.vec, m.Lookups.vec, m.LookupTime)
	return m
}

// ProfileCache exports the profile store's counters, read at scrape time.
func (m *Proxy) ProfileCache(c *cache.Profiles) {
	m.reg.MustRegister(
		gaugeFunc("tailor_profile_cache_entries", "Profiles (and cached absences) held by the edge.",
			func() float64 { return float64(c.Len()) }),
		counterFunc("tailor_profile_cache_hits_total", "Profile cache lookups that found an entry.",
			func() float64 { return float64(c.Stats().Hits) }),
		counterFunc("tailor_profile_cache_misses_total", "Profile cache lookups that found nothing (or an expired entry).",
			func() float64 { return float64(c.Stats().Misses) }),
		counterFunc("tailor_profile_cache_evictions_total", "Profiles evicted to keep the cache within cache_size.",
			func() float64 { return float64(c.Stats().Evictions) }),
		counterFunc("tailor_profile_cache_stale_total", "Stores refused because a newer revision was already cached.",
			func() float64 { return float64(c.Stats().Stale) }),
	)
}

// Sync exports the profile watch's counters, when the profile source is
// the sync package's Store.
func (m *Proxy) Sync(s interface {
	Stats() natsync.WatchStats
	Connected() bool
}) {
	m.reg.MustRegister(
		gaugeFunc("tailor_nats_connected", "1 while the connection to NATS is up.",
			func() float64 {
				if s.Connected() {
					return 1
				}
				return 0
			}),
		counterFunc("tailor_profile_updates_applied_total", "Changes from the central store applied to cached profiles.",
			func() float64 { return float64(s.Stats().Applied) }),
		counterFunc("tailor_profile_updates_ignored_total", "Changes from the central store to profiles this edge does not hold.",
			func() float64 { return float64(s.Stats().Ignored) }),
		counterFunc("tailor_profile_rejected_total", "Profile documents from the central store that are not valid profiles: an update keeps the profile cached before it, a lookup serves the visitor without one.",
			func() float64 { return float64(s.Stats().Rejected) }),
		counterFunc("tailor_profile_watch_restarts_total", "Times the profile watch was re-created after a reconnect or a stall, resuming from the next revision.",
			func() float64 { return float64(s.Stats().Restarts) }),
		gaugeFunc("tailor_profile_watch_revision", "The last revision of the profile bucket this edge applied.",
			func() float64 { return float64(s.Stats().Revision) }),
		gaugeFunc("tailor_profile_update_lag_seconds", "Time from the last change's put on the server to its arrival here (includes clock skew between hosts).",
			func() float64 { return s.Stats().LagSeconds }),
	)
}
