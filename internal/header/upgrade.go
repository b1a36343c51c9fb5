package header

import (
	"bytes"
	"iter"

	"github.com/valyala/fasthttp"
)

// UpgradeProtocols returns the protocols a request asks to switch to
// (its Upgrade header), or nil when tailor handles it as an ordinary
// request, its Upgrade header then dropped as hop-by-hop (which RFC 9110
// section 7.8 allows: a server may ignore Upgrade). Tunneled are GET
// requests over HTTP/1.1 without a body, with an Upgrade header and the
// token "upgrade" in Connection: how every WebSocket opens. Left out:
//   - HTTP/1.0, whose Upgrade a server must ignore (RFC 9110 section 7.8);
//   - other methods and requests with a body, which no browser sends and
//     which would need the body relayed before the switch;
//   - h2c (RFC 7540 section 3.2): an HTTP/2 tunnel would carry requests
//     past tailor's framing checks and personalization, which is how "h2c
//     smuggling" reaches what a front proxy is meant to guard.
func UpgradeProtocols(h *fasthttp.RequestHeader) []byte {
	if !h.IsGet() || !h.IsHTTP11() {
		return nil
	}
	if cl := h.ContentLength(); cl > 0 || cl == -1 {
		return nil
	}
	var connUpgrade bool
	var protocols []byte
	ForEach(h.RawHeaders(), func(name, value []byte) {
		switch {
		case isConnection(name):
			connUpgrade = connUpgrade || hasToken(value, "upgrade")
		case EqualFold(name, "Upgrade") && len(value) > 0:
			if len(protocols) > 0 {
				protocols = append(protocols, ", "...)
			}
			protocols = append(protocols, value...)
		}
	})
	if !connUpgrade || len(protocols) == 0 {
		return nil
	}
	for p := range tokens(protocols) {
		name, _, _ := bytes.Cut(p, []byte("/"))
		if EqualFold(name, "h2c") {
			return nil
		}
	}
	return protocols
}

// tokens yields the comma-separated elements of a header value, trimmed,
// without empty ones.
func tokens(v []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for part := range bytes.SplitSeq(v, []byte(",")) {
			if part = bytes.TrimSpace(part); len(part) > 0 && !yield(part) {
				return
			}
		}
	}
}

// Offered reports whether the protocols a 101 switched to are among
// those the client asked for; a 101 without any is not. RFC 9110 section
// 7.8: a 101 names the protocol switched to, which must be one the client
// asked for (net/http's ReverseProxy checks the same).
func Offered(asked, switched []byte) bool {
	n := 0
	for p := range tokens(switched) {
		if !hasToken(asked, string(p)) {
			return false
		}
		n++
	}
	return n > 0
}

// hasToken reports whether the list v holds token, in any case.
func hasToken(v []byte, token string) bool {
	for t := range tokens(v) {
		if EqualFold(t, token) {
			return true
		}
	}
	return false
}

// AppendSwitchingHead appends the 101 response head for the visitor: the
// origin's status line and headers, in order and case, minus the
// hop-by-hop ones but Upgrade, and with Connection saying Upgrade only
// (any other connection option was the origin's hop). Sec-WebSocket-Accept
// and the like pass as they came.
func AppendSwitchingHead(dst []byte, h *fasthttp.ResponseHeader) []byte {
	dst = append(dst, "HTTP/1.1 101 "...)
	if m := h.StatusMessage(); len(m) > 0 {
		dst = append(dst, m...)
	} else {
		dst = append(dst, "Switching Protocols"...)
	}
	dst = append(dst, "\r\n"...)
	var conn connectionOptions
	conn.addResponse(h)
	connection := false
	for k, v := range h.All() {
		switch {
		case isConnection(k):
			if !connection {
				dst = appendLine(dst, k, []byte("Upgrade"))
				connection = true
			}
			continue
		case EqualFold(k, "Upgrade"):
		case conn.dropped(k), EqualFold(k, fasthttp.HeaderContentLength):
			continue // a 101 has no body (RFC 9110 section 8.6)
		}
		dst = appendLine(dst, k, v)
	}
	if !connection {
		dst = append(dst, "Connection: Upgrade\r\n"...)
	}
	return append(dst, "\r\n"...)
}

func appendLine(dst, name, value []byte) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}
