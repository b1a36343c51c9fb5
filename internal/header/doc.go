// Package header is what tailor knows about HTTP/1.1 header blocks, apart
// from any request: which headers are hop-by-hop (RFC 9110 section 7.6.1)
// and are dropped both ways, what a request's headers become on their way
// to the origin (Forward: X-Forwarded-* and Forwarded added, a trusted
// proxy's kept), how an origin's response head is copied to the visitor
// (CopyResponse, the origin's Date kept), which requests are refused for
// ambiguous framing before anything reaches the origin (CheckFraming,
// against request smuggling), and the tokens of a protocol switch
// (UpgradeProtocols, Offered, AppendSwitchingHead).
//
// Header names keep the case they came in: the proxy turns fasthttp's
// normalizing off so that headers pass as they came. Every comparison of
// names here is therefore case-insensitive (EqualFold, Peek, Del, Set),
// where fasthttp's own Peek and Del compare exactly.
//
// What runs on every request does not allocate: CheckFraming,
// UpgradeProtocols on a request that is not a switch, and Forward.Copy
// once its buffer pool is warm (TestRequestPathDoesNotAllocate). The
// package knows no proxy, metric or configuration: it is given what it
// needs.
package header
