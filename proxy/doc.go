// Package proxy is tailor's front: a fasthttp server that accepts visitors,
// forwards their requests to the origin with a fasthttp client, and streams
// the origin's responses back.
//
// A response passes through byte for byte — status, headers in order and
// case, the origin's Date (one is added when it has none), Set-Cookie
// untouched, body streamed in both directions — except for the hop-by-hop
// headers RFC 9110 section 7.6.1 says a proxy must drop and the
// X-Forwarded-* and Forwarded headers a proxy adds: internal/header's
// CopyResponse and Forward. Requests with ambiguous framing or header names
// that are not tokens are refused (header.CheckFraming); names with an
// underscore are dropped unless underscores_in_headers is on; country
// headers count only from trusted proxies. A HEAD on a page with rules is
// asked of the origin as a GET and answered the personalized page's
// headers. The one place where a response may be changed is
// Proxy.respond; everything else is plumbing.
//
// A page with rules takes one of three paths (personalize.go, stream.go):
// buffered whole, compiled or reused from the page cache, and rendered;
// streamed, with the bytes before its first change sent as they arrive
// (predicted from the cached template, or looked for in what has arrived
// when the origin pauses) and the rest rendered once the page ends; or,
// past max_rewrite_body, rewritten in pieces by a rewrite.Segmenter. Each
// falls back to the origin's bytes (fail open) and says why in
// tailor_rewrites_total. internal/flush writes what has arrived when the
// origin pauses, as nginx does.
//
// A request to switch protocols — a WebSocket opening, or any other
// Upgrade (RFC 9110 section 7.8) — is not HTTP for long: internal/tunnel
// sends it to the origin on a connection of its own and, on a 101, splices
// the visitor's connection to it (internal/splice), bytes copied both ways
// unread until either side closes or neither has sent anything for
// timeouts.idle; upgrade.go gives it the outbound headers and relays an
// answer that is not a switch. No identity, rules or events apply to it.
// HTTP/1.0, methods other than GET, requests with a body and h2c are not
// switched (header.UpgradeProtocols): they go on as ordinary requests,
// their Upgrade dropped.
//
// The visitor listener is internal/listen's: it rides out accept errors
// such as running out of file descriptors instead of ending Serve, gives
// every connection an inactivity timeout and a deadline for a whole
// request header (limits.header_timeout, against slowloris), and caps
// connections per client address and in all.
//
// ServeTLS serves the same site over TLS (listen_tls). TLS sits on top of
// the visitor listener, so its connections are under the same limits and
// header deadline, the handshake included; listen.Certificate keeps the
// certificate, re-read when its files change, the last good one serving
// while a new pair does not load.
//
// Who a page view comes from is the identity package's: the id and state
// cookies, login tokens and preview links. The proxy asks it once per
// page view (visitorFor, in identity.go), at one time by Options.Clock
// (visit.now, which token expiry, the journey, the rules and the events
// all read), counts what it says in tailor_visitors_total and
// tailor_jwt_rejected_total, and keeps what is about the request rather
// than the visitor: the privacy signals (tracking), the device and whether
// it is a bot kept out of experiments (bots.go), and reading the state
// cookie for the journey (journey.go). What a page view means is package
// journey's, pure: journey.Next when the page is asked for, and, once
// the page's fate is known, journey.View.Conclude, which gives the next
// state cookie and the exposures together; conclude (events.go) publishes
// the events and setVisitorCookies sends that same state. The exposures
// are those true on the page that went out (settle, exposuresShown in
// personalize.go): a rewrite.Probe edit of the exposure's experiment
// applied, in whichever arm (pageEdits places the decision's probes
// among its actions). A page with probes only is
// rendered for them, and the origin's bytes are served; pages with
// exposures are never streamed, as the state cookie that keeps the
// variant goes out with the headers. An opted-out visitor is decided as
// rules.Visitor.Control: every experiment's control, on every request.
//
// The beacon (beacon.go) is tailor's own: POST beacon_path records a goal
// the page reports (declared under goals:, same-site, from a visitor with
// a valid id cookie, rate-limited per visitor and deduplicated by the
// client's id, each in a bounded LRU; 204 whatever becomes of a valid
// report), never forwarded; GET beacon_path.js is the goal script, which
// respond adds before </body> of pages with click goals for visitors whose
// reports count (goalPage, withGoalScript: as if the origin had sent it,
// before any rule runs), with the CSP's nonce.
//
// The metrics are declared in internal/metrics (the beacon's, in
// beacon.go); the proxy counts into them. The admin listener (health, readiness, metrics, the profiles API
// and the console) is package admin, which imports this one; proxy offers
// it Ready, Registry (every metric, named tailor_*), Rules (the set serving
// and when it loaded), RuleHits and MapCaseHits (the console's counts),
// and never imports it. The console's login cookie, ConsoleCookie, is
// named here because the visitor path keeps it from the origin.
// CheckKeys loads the key files New loads, for tailor check.
package proxy
