// Package admin is tailor's operator listener (admin.listen), apart from
// the visitors' and on loopback by default. It serves:
//
//   - GET /healthz: 200 "ok" while the process runs.
//   - GET /readyz: 200 "ready" while the proxy serves (with rules.bucket,
//     a second line "rules version N": the version it serves), 503 "not ready"
//     once it drains (container health checks, tailor health).
//   - GET /metrics: the proxy's Prometheus registry, every metric named
//     tailor_*, this listener's tailor_admin_auth_failures_total among
//     them.
//   - GET, PUT, DELETE /v1/profiles/{id}: a profile in the central store
//     (profiles.go), the id one URL-encoded path segment. PUT stores the
//     document as sent, and only when it is a profile (cache.ParseProfile:
//     an "id" equal to the path's, finite numbers) and JSON as
//     encoding/json reads it, at most cache.MaxProfileBytes (413 beyond);
//     GET serves it back with its revision in X-Tailor-Revision. Errors are
//     {"error": "..."} with the status that says what went wrong: 503 when
//     there is no store or it cannot be reached, 502 when it failed.
//   - GET / and POST /login: the console (console.go), the marketer's view
//     of the running proxy: each page's Digital Relevancy Maps with live
//     hit counts and signed preview links, the experiment readout the
//     edges fold from the events stream (readout.go: read from its KV key
//     on every view) with plots, and audience sizes.
//     Server-rendered with html/template, the SVG plots included
//     (charts.go, charts.html), no JavaScript, under a strict
//     Content-Security-Policy.
//
// /v1/* and the console exist only when admin.token is set (404
// otherwise). /v1/* wants it as a bearer token (401 with
// WWW-Authenticate without it); the console takes the bearer token too, or
// the token typed once into its form, which sets an HttpOnly, SameSite=Strict
// cookie (proxy.ConsoleCookie) holding an expiry and a MAC under a key made
// at start: a restart or a new token logs everyone out, and the token itself
// is never in the cookie. Tokens are compared in constant time, hashed
// first so their length does not show. Wrong tokens are limited per client
// address, an IPv6 /64 counting as one (limit.go): after 10 in a minute,
// every token from it gets 429 with Retry-After until that minute ends.
// /healthz, /readyz and /metrics need no token: keep the listener off the
// public interface (tailor check warns when it is not on loopback and has
// no token).
//
// The listener is a net/http server routed by a ServeMux: fasthttp is for
// the visitors' path, where its allocations matter, and nothing here is
// hot. Its timeouts are the proxy's: timeouts.response to read a request
// and to write an answer, timeouts.idle between requests,
// limits.header_timeout for a request's header. Shutdown stops accepting
// and lets the requests under way finish.
//
// Package admin imports proxy and reads it through its exported methods
// (Ready, Registry, Rules, RuleHits, MapCaseHits); proxy knows nothing of
// it. What the proxy does not hold, serve fills into Options: the profile
// store, the readout reader and the version. readout.go also makes the
// readout folder (NewFolder: a report.Builder folded by a natsync.Folder)
// that tailor serve runs and tailor report catches up with.
package admin
