package proxy

import (
	"bufio"
	"bytes"
	"iter"
	"sync"

	"github.com/valyala/fasthttp"
)

// hopHeaders are the hop-by-hop headers: they describe one connection, not
// the message, so a proxy removes them in both directions (RFC 9110 section
// 7.6.1; Keep-Alive and Proxy-Connection are the pre-standard forms still
// sent by old clients). Transfer-Encoding is here because fasthttp frames
// each side itself: the body is re-framed, never relayed as raw chunks.
// Upgrade and Connection: Upgrade are set again, on their own connection,
// for the requests tailor tunnels and on the 101 that answers them
// (upgrade.go).
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

// isHopHeader reports whether name is one of hopHeaders, in any case.
func isHopHeader(name []byte) bool {
	for _, h := range hopHeaders {
		if len(h) == len(name) && bytes.EqualFold(name, h) {
			return true
		}
	}
	return false
}

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
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
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

// rawLines yields the lines of raw, a header block as it came off the
// wire (without the request line), without their CRLF or LF; empty lines
// are left out.
func rawLines(raw []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for len(raw) > 0 {
			var line []byte
			if i := bytes.IndexByte(raw, '\n'); i >= 0 {
				line, raw = raw[:i], raw[i+1:]
			} else {
				line, raw = raw, nil
			}
			line = bytes.TrimSuffix(line, []byte{'\r'})
			if len(line) > 0 && !yield(line) {
				return
			}
		}
	}
}

// forEachRawHeader calls fn with each name and value of raw, the header
// block as it came off the wire. Values are trimmed of surrounding
// whitespace. Lines without a colon are skipped (checkFraming has refused
// requests with any).
func forEachRawHeader(raw []byte, fn func(name, value []byte)) {
	for line := range rawLines(raw) {
		if colon := bytes.IndexByte(line, ':'); colon > 0 {
			fn(line[:colon], bytes.TrimSpace(line[colon+1:]))
		}
	}
}

// Reasons a request is refused before anything reaches the origin. They
// label tailor_rejected_requests_total.
const (
	rejectObsFold          = "obs_fold"
	rejectLengthAndChunked = "length_and_transfer_encoding"
	rejectTransferEncoding = "transfer_encoding"
	rejectBadChunk         = "bad_chunk"
	rejectHeaderTooLarge   = "header_too_large"
	rejectBadRequest       = "bad_request"
	rejectHeaderName       = "bad_header_name"
	rejectTimeout          = "timeout"
)

// checkFraming looks at the request headers as they came off the wire and
// returns a reason to refuse the request when its framing is ambiguous: a
// front proxy and an origin that disagree on where a request ends are how
// request smuggling works (RFC 9112 sections 6.3 and 11.2). fasthttp already
// refuses duplicate Content-Length, whitespace before a colon and bad header
// bytes; it tolerates the cases below, which nginx and the RFC's advice for
// intermediaries do not.
func checkFraming(raw []byte) string {
	var lengths, encodings int
	for line := range rawLines(raw) {
		if line[0] == ' ' || line[0] == '\t' {
			// obs-fold: a line continuing the previous header. RFC 9112
			// section 5.2 lets a server reject it; a proxy that unfolds it
			// sees a different header than an origin that does not.
			return rejectObsFold
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return rejectBadRequest
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		if !isToken(name) {
			// A space or separator in a name (RFC 9110 section 5.1):
			// "Transfer-Encoding x" is Transfer-Encoding to some
			// parsers.
			return rejectHeaderName
		}
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			lengths++
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			encodings++
			if !bytes.EqualFold(value, []byte("chunked")) {
				return rejectTransferEncoding
			}
		}
	}
	switch {
	case encodings > 1:
		return rejectTransferEncoding
	case encodings == 1 && lengths > 0:
		return rejectLengthAndChunked
	}
	return ""
}

// tchars are the bytes of a token (RFC 9110 section 5.6.2).
var tchars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()

func isToken(b []byte) bool {
	for _, c := range b {
		if !tchars[c] {
			return false
		}
	}
	return len(b) > 0
}

// Header names keep the case the origin sent (normalising is off so they
// pass through as they came), so fasthttp's Peek and Del, which then
// compare exactly, would miss "etag" or "Etag" when asked for "ETag". These
// helpers compare names case-insensitively.

// peekHeader returns the first value of name in h, in any case.
func peekHeader(h *fasthttp.ResponseHeader, name string) []byte {
	for k, v := range h.All() {
		if equalFold(k, name) {
			return v
		}
	}
	return nil
}

// delHeader removes every header called name from h, in any case.
func delHeader(h *fasthttp.ResponseHeader, name string) {
	var keys [4][]byte
	n := 0
	for k := range h.All() {
		if equalFold(k, name) && n < len(keys) {
			keys[n] = append([]byte(nil), k...)
			n++
		}
	}
	for _, k := range keys[:n] {
		h.DelBytes(k)
	}
}

// setHeader replaces every header called name (in any case) by one.
func setHeader(h *fasthttp.ResponseHeader, name, value string) {
	delHeader(h, name)
	h.Add(name, value)
}

// startResponseHeader makes dst ready to take an origin's headers: empty
// but for what is already set on it (X-Tailor-Decision, Connection:
// close), going out with date, the origin's Date, or with tailor's clock
// when date is nil (RFC 9110 section 6.6.1: a proxy forwarding a response
// without one adds one).
//
// fasthttp manages Date itself: Set and Add ignore the name. Only a parsed
// header carries one, and only while the server's own date is off
// (NoDefaultDate, which the server sets on every response header and which
// Reset turns back on); so the origin's Date is parsed into dst.
func startResponseHeader(dst *fasthttp.ResponseHeader, date []byte) {
	var kept [][2][]byte
	for k, v := range dst.All() {
		switch {
		case equalFold(k, fasthttp.HeaderContentType), equalFold(k, fasthttp.HeaderContentLength),
			equalFold(k, fasthttp.HeaderServer), equalFold(k, fasthttp.HeaderDate), equalFold(k, fasthttp.HeaderConnection):
		default:
			kept = append(kept, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
		}
	}
	closing := dst.ConnectionClose()
	if date == nil || !parseDate(dst, date) {
		dst.Reset()
		dst.DisableNormalizing()
		dst.SetNoDefaultContentType(true)
	}
	dst.SetContentLength(0)
	for _, kv := range kept {
		dst.AddBytesKV(kv[0], kv[1])
	}
	if closing {
		dst.SetConnectionClose()
	} else {
		dst.ResetConnectionClose()
	}
}

type headParser struct {
	head []byte
	r    bytes.Reader
	br   *bufio.Reader
}

var headParsers = sync.Pool{New: func() any {
	hp := &headParser{}
	hp.br = bufio.NewReaderSize(&hp.r, 256)
	return hp
}}

// parseDate replaces dst by a header holding only "Date: date", and
// reports whether date parsed as a header value.
func parseDate(dst *fasthttp.ResponseHeader, date []byte) bool {
	hp := headParsers.Get().(*headParser)
	defer headParsers.Put(hp)
	hp.head = append(append(append(hp.head[:0], "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nDate: "...), date...), "\r\n\r\n"...)
	hp.r.Reset(hp.head)
	hp.br.Reset(&hp.r)
	return dst.Read(hp.br) == nil
}
