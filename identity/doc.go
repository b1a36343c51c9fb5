// Package identity says who a request comes from, as far as its cookies
// and tokens can be believed (SPEC "Visitor identity"). It reads and
// signs; it keeps no per-visitor memory, counts nothing and decides
// nothing about pages: the proxy calls it and records the outcome.
//
// Signer signs and verifies the visitor's two cookies with HMAC-SHA256
// under identity.cookie.keys (the first key signs, all verify, so keys
// rotate):
//
//   - the id cookie, "v1.<id>.<mac>", 128 random bits of anonymous id.
//     A cookie that is malformed, non-canonical or does not verify is no
//     cookie: Verify says so and the proxy mints a fresh id. A forged
//     cookie never selects another visitor.
//   - the state cookie, "s1.<payload>.<mac>" (State: visit number,
//     last seen, journey stage, engagement, exposures, interests), whose
//     MAC also covers the anonymous id, so a state copied from another
//     visitor does not verify. A state that does not verify, or that is
//     not well formed, is no state: the visitor starts afresh.
//
// Both run on every HTML page view, so the HMAC states are pooled rather
// than made per call.
package identity
