// Package match holds the small matchers rule conditions are written in,
// each parsed once when rules load and then tested per request:
//
//   - Glob, a request path glob ("/products/**", "/**/*.html"): * and ?
//     within a segment, ** across segments. The common shapes (a literal, a
//     tree, one level of children) match without a regular expression; the
//     rest compile to RE2, linear in the path, so a crafted URL cannot make
//     matching slow.
//   - Wildcard, a value (host, query parameter, header, cookie) with * for
//     any run of characters, optionally case-insensitive.
//   - Window, a weekly time window ("Mon-Fri 09:00-17:00 Europe/Paris") in
//     an IANA zone, read from the embedded zone database so that a rule
//     means the same on every machine; "Local" is refused.
//   - Comparison, a number test (">= 2", "< 10", "3").
//
// Errors are plain messages without a position: the caller (package
// rules) knows the file, line and column and prefixes them. The package
// knows nothing of rules and must not import it.
package match
