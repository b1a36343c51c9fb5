// Package metrics declares what an operator watches on a proxy, every
// metric named tailor_*: traffic by status class, latency, load, bytes,
// every way a request can fail, rewrites, rule hits, the page and profile
// caches, visitors, events, and tunneled (WebSocket) connections.
//
// New registers them all and resolves every label value known then, so
// that the request path only does atomic adds: a Counters counts a value
// by a map read, and the hit counters of rules, whose ids come with the
// rules, are resolved on a rule's first hit and kept. The proxy
// increments the exported fields; the scrape-time gauges of the caches,
// the profile watch and the event publisher are registered once those
// exist (PageCache, ProfileCache, Sync, Publisher).
//
// Names, labels and help texts are what operators' dashboards and alerts
// (README "Metrics") are written against: change none without saying so.
package metrics
