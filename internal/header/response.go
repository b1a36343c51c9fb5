package header

import (
	"bufio"
	"bytes"
	"sync"

	"github.com/valyala/fasthttp"
)

// Header names keep the case the origin sent (normalising is off so they
// pass through as they came), so fasthttp's Peek and Del, which then
// compare exactly, would miss "etag" or "Etag" when asked for "ETag". These
// helpers compare names case-insensitively.

// Peek returns the first value of name in h, in any case.
func Peek(h *fasthttp.ResponseHeader, name string) []byte {
	for k, v := range h.All() {
		if EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// Del removes every header called name from h, in any case.
func Del(h *fasthttp.ResponseHeader, name string) {
	var keys [4][]byte
	n := 0
	for k := range h.All() {
		if EqualFold(k, name) && n < len(keys) {
			keys[n] = append([]byte(nil), k...)
			n++
		}
	}
	for _, k := range keys[:n] {
		h.DelBytes(k)
	}
}

// Set replaces every header called name (in any case) by one.
func Set(h *fasthttp.ResponseHeader, name, value string) {
	Del(h, name)
	h.Add(name, value)
}

// CopyResponse copies the origin's status and headers, in order and with
// their original case, minus the hop-by-hop ones, onto dst, keeping what
// is already set on dst (X-Tailor-Decision, Connection: close). The
// origin's Date goes out as it came (one is added when it has none).
// Content-Length is copied only withLength, for a response without a body
// stream (HEAD, 304): otherwise the body stream sets it.
func CopyResponse(dst, src *fasthttp.ResponseHeader, withLength bool) {
	startResponse(dst, Peek(src, fasthttp.HeaderDate))
	dst.SetStatusCode(src.StatusCode())
	if m := src.StatusMessage(); len(m) > 0 {
		dst.SetStatusMessage(m)
	}
	var conn connectionOptions
	conn.addResponse(src)
	for k, v := range src.All() {
		if conn.dropped(k) {
			continue
		}
		if !withLength && EqualFold(k, fasthttp.HeaderContentLength) {
			continue
		}
		dst.AddBytesKV(k, v)
	}
}

// startResponse makes dst ready to take an origin's headers: empty but
// for what is already set on it (X-Tailor-Decision, Connection: close),
// going out with date, the origin's Date, or with tailor's clock when
// date is nil (RFC 9110 section 6.6.1: a proxy forwarding a response
// without one adds one).
//
// fasthttp manages Date itself: Set and Add ignore the name. Only a parsed
// header carries one, and only while the server's own date is off
// (NoDefaultDate, which the server sets on every response header and which
// Reset turns back on); so the origin's Date is parsed into dst.
func startResponse(dst *fasthttp.ResponseHeader, date []byte) {
	var kept [][2][]byte
	for k, v := range dst.All() {
		switch {
		case EqualFold(k, fasthttp.HeaderContentType), EqualFold(k, fasthttp.HeaderContentLength),
			EqualFold(k, fasthttp.HeaderServer), EqualFold(k, fasthttp.HeaderDate), EqualFold(k, fasthttp.HeaderConnection):
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
