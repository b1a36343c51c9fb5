// Package proxy is tailor's front: a fasthttp server that accepts visitors,
// forwards their requests to the origin with a fasthttp client, and streams
// the origin's responses back.
//
// A response passes through byte for byte — status, headers in order,
// Set-Cookie untouched, body streamed in both directions — except for the
// hop-by-hop headers RFC 9110 section 7.6.1 says a proxy must drop and the
// X-Forwarded-* headers a proxy adds. The one place where a response may be
// changed is Proxy.respond; everything else is plumbing.
//
// The package also runs the admin listener: health, readiness and
// Prometheus metrics.
package proxy
