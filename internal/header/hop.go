package header

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// hopHeaders are the hop-by-hop headers: they describe one connection, not
// the message, so a proxy removes them in both directions (RFC 9110 section
// 7.6.1; Keep-Alive and Proxy-Connection are the pre-standard forms still
// sent by old clients). Transfer-Encoding is here because fasthttp frames
// each side itself: the body is re-framed, never relayed as raw chunks.
// Upgrade and Connection: Upgrade are set again, on their own connection,
// for the requests tailor tunnels and on the 101 that answers them
// (internal/tunnel, AppendSwitchingHead).
var hopHeaders = [][]byte{
	[]byte("Connection"),
	[]byte("Proxy-Connection"),
	[]byte("Keep-Alive"),
	[]byte("Proxy-Authenticate"),
	[]byte("Proxy-Authorization"),
	[]byte("Te"),
	[]byte("Trailer"),
	[]byte("Transfer-Encoding"),
	[]byte("Upgrade"),
}

// isHop reports whether name is one of hopHeaders, in any case.
func isHop(name []byte) bool {
	for _, h := range hopHeaders {
		if len(h) == len(name) && bytes.EqualFold(name, h) {
			return true
		}
	}
	return false
}

// isConnection reports whether name is Connection, in any case.
func isConnection(name []byte) bool { return EqualFold(name, fasthttp.HeaderConnection) }

// connectionOptions holds the header names listed by a message's
// Connection header(s) (RFC 9110 section 7.6.1), which are hop-by-hop too.
// It is a value type with room for the usual few names, so that the request
// path does not allocate; names beyond its capacity are still honoured.
type connectionOptions struct {
	names [8][]byte
	n     int
	more  [][]byte
}

func (o *connectionOptions) add(v []byte) {
	for len(v) > 0 {
		var tok []byte
		tok, v, _ = bytes.Cut(v, []byte{','})
		tok = bytes.TrimSpace(tok)
		switch {
		case len(tok) == 0:
		case o.n < len(o.names):
			o.names[o.n] = tok
			o.n++
		default:
			o.more = append(o.more, tok)
		}
	}
}

func (o *connectionOptions) has(name []byte) bool {
	for _, n := range o.names[:o.n] {
		if bytes.EqualFold(n, name) {
			return true
		}
	}
	for _, n := range o.more {
		if bytes.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// addResponse adds the names h's Connection headers list.
func (o *connectionOptions) addResponse(h *fasthttp.ResponseHeader) {
	for k, v := range h.All() {
		if isConnection(k) {
			o.add(v)
		}
	}
}

// dropped reports whether a header called name does not cross this hop:
// it is hop-by-hop, or the message's Connection header lists it.
func (o *connectionOptions) dropped(name []byte) bool {
	return isHop(name) || o.has(name)
}

// EqualFold reports whether b equals s in ASCII case-insensitively: a
// header name or token as it came, against the one looked for.
func EqualFold(b []byte, s string) bool {
	return len(b) == len(s) && bytes.EqualFold(b, []byte(s))
}
