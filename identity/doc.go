// Package identity says who a request comes from, as far as its cookies
// and tokens can be believed (SPEC "Visitor identity"). It reads, signs
// and verifies; it keeps no per-visitor memory, counts nothing and
// decides nothing about pages: the proxy calls it, counts the outcomes and
// carries on. Of tailor's packages it imports only config (and internal
// helpers); proxy imports it, never the other way.
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
//     last seen, journey stage, engagement, exposures, interests, and the
//     variant of each experiment fixed at the first exposure, Sticky), whose
//     MAC also covers the anonymous id, so a state copied from another
//     visitor does not verify. A state that does not verify, or that is
//     not well formed, is no state: the visitor starts afresh.
//
// Both run on every HTML page view, so the HMAC states are pooled rather
// than made per call.
//
// Verifier checks the site's login tokens (identity.jwt): the algorithm
// against the allow-list ("none" never) and against the key's type, so an
// RSA public key is never taken for an HMAC secret; then issuer, audience,
// exp (required) and nbf with leeway. A token that does not verify gives
// a reason (RejectReasons) and the visitor stays anonymous: it is never an
// error page. Keys come from PEM files, hmac: secrets and a JWKS file
// (its keys built by go-jose), re-read when it changes (Watch); a JWKS
// that does not load leaves the keys in force. RSA keys must have 2048
// bits or more; JWKs whose "use" is not "sig", or that go-jose does not
// support (RSA past 4096 bits among them), are left out with a warning. Tokens that verified are
// remembered until they expire, so a returning visitor's token costs a
// hash and a look-up, not a signature check.
//
// Preview tokens (SignPreview, VerifyPreview) are HS256 JWTs under
// preview.key with an issuer of their own: a preview link renders a page
// as the visitor its PreviewClaims describe, and a preview token is never
// accepted as a login, whatever keys the two share.
package identity
