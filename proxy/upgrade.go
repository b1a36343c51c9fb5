package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"iter"
	"net"
	"time"

	"github.com/tailor-edge/tailor/internal/listen"
	"github.com/tailor-edge/tailor/internal/splice"
	"github.com/valyala/fasthttp"
)

// Upgrade pass-through (RFC 9110 section 7.8; RFC 6455 section 4 for
// WebSocket). A request that asks to switch protocols is sent to the origin
// on a connection of its own, with the usual outbound headers plus
// Connection: Upgrade and its Upgrade header. If the origin switches
// (101), tailor relays the 101 and splices the two connections, bytes
// copied both ways as they come, until either side closes or the pair has
// been idle for timeouts.idle. Otherwise the origin's answer is relayed as
// any response, and the origin connection closed.
//
// An upgraded connection is not HTTP any more: no identity, no rules, no
// events. tailor never looks inside the tunnel.

// Results of an upgrade request, labelling tailor_upgrades_total.
const (
	upgradeDone     = "upgraded" // the origin switched; the connections are spliced
	upgradeDeclined = "declined" // the origin answered without switching; relayed
	upgradeFailed   = "failed"   // no answer from the origin: 502 or 504
)

// Why a spliced pair ended, labelling tailor_upgraded_closes_total.
const (
	closedByVisitor  = splice.ByVisitor
	closedByOrigin   = splice.ByOrigin
	closedIdle       = splice.Idle
	closedByShutdown = splice.ByShutdown
)

// upgradeProtocols returns the protocols a request asks to switch to
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
func upgradeProtocols(h *fasthttp.RequestHeader) []byte {
	if !h.IsGet() || !h.IsHTTP11() {
		return nil
	}
	if cl := h.ContentLength(); cl > 0 || cl == -1 {
		return nil
	}
	var connUpgrade bool
	var protocols []byte
	forEachRawHeader(h.RawHeaders(), func(name, value []byte) {
		switch {
		case equalFold(name, fasthttp.HeaderConnection):
			connUpgrade = connUpgrade || hasToken(value, "upgrade")
		case equalFold(name, "Upgrade") && len(value) > 0:
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
		if equalFold(name, "h2c") {
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

// offered reports whether the protocols a 101 switched to are among
// those the client asked for; a 101 without any is not.
func offered(asked, switched []byte) bool {
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
		if equalFold(t, token) {
			return true
		}
	}
	return false
}

// upgrade forwards an upgrade request to the origin. A 101 hijacks the
// visitor's connection and splices it to the origin's; any other answer
// is relayed as it came.
func (p *Proxy) upgrade(ctx *fasthttp.RequestCtx, protocols []byte, start time.Time) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	p.outboundHeaders(ctx, req, false)
	req.Header.Add(fasthttp.HeaderConnection, "Upgrade")
	req.Header.AddBytesV("Upgrade", protocols)

	conn, ic, err := p.dialOrigin()
	if err != nil {
		p.upgradeFailed(ctx, err)
		return
	}
	// The request has no body: its head is all there is to send.
	if _, err := conn.Write(req.Header.AppendBytes(nil)); err != nil {
		conn.Close()
		p.upgradeFailed(ctx, err)
		return
	}
	br := bufio.NewReaderSize(conn, int(p.cfg.MaxHeaderBytes))
	resp := fasthttp.AcquireResponse()
	resp.Header.DisableNormalizing()
	resp.Header.SetNoDefaultContentType(true)
	resp.StreamBody = true
	err = resp.Read(br) // skips interim answers (100, 103) but 101
	p.m.upstream.Observe(time.Since(start).Seconds())
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		conn.Close()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fasthttp.ErrConnectionClosed
		}
		p.upgradeFailed(ctx, err)
		return
	}
	if resp.StatusCode() != fasthttp.StatusSwitchingProtocols {
		p.m.upgrades[upgradeDeclined].Inc()
		p.relayDeclined(ctx, resp, conn)
		return
	}
	// RFC 9110 section 7.8: a 101 names the protocol switched to, which
	// must be one the client asked for (net/http's ReverseProxy checks
	// the same).
	if !offered(protocols, peekHeader(&resp.Header, "Upgrade")) {
		fasthttp.ReleaseResponse(resp)
		conn.Close()
		p.upgradeFailed(ctx, errSwitchedProtocol)
		return
	}
	head := appendSwitchingHead(nil, &resp.Header)
	fasthttp.ReleaseResponse(resp)
	// What the origin sent after its 101 (a first message, say) is in br;
	// it goes to the visitor right after the head, and br is let go.
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		head = append(head, b...)
	}
	p.m.upgrades[upgradeDone].Inc()
	ic.SetTimeouts(p.cfg.Timeouts.Idle, p.cfg.Timeouts.Idle)
	ctx.SetStatusCode(fasthttp.StatusSwitchingProtocols) // counted by finish; never written
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(visitor net.Conn) {
		listen.KeepOpen(visitor)
		p.splice(visitor, conn, head)
	})
}

// errSwitchedProtocol is an origin's 101 to a protocol the client did not
// ask for, or to none.
var errSwitchedProtocol = errors.New("origin switched to a protocol the client did not ask for")

// upgradeFailed answers an upgrade request the origin could not take, as
// originFailed does for any request (502 or 504).
func (p *Proxy) upgradeFailed(ctx *fasthttp.RequestCtx, err error) {
	p.m.upgrades[upgradeFailed].Inc()
	p.originFailed(ctx, err)
}

// dialOrigin opens a connection of its own to the origin, with the
// origin client's address and TLS settings: an upgraded connection never
// goes back to the pool, so it is not taken from it. Reads and writes
// get the response timeout, as the origin client's do; the returned
// listen.Conn is the one to set other timeouts on.
func (p *Proxy) dialOrigin() (net.Conn, *listen.Conn, error) {
	t := p.cfg.Timeouts
	d := net.Dialer{Timeout: t.Connect, KeepAlive: 30 * time.Second}
	raw, err := d.Dial("tcp", p.origin.Addr)
	if err != nil {
		return nil, nil, err
	}
	ic := listen.NewConn(raw, t.Response, t.Response)
	if !p.origin.IsTLS {
		return ic, ic, nil
	}
	tc := tls.Client(ic, p.origin.TLSConfig.Clone())
	hctx, cancel := context.WithTimeout(context.Background(), t.Connect)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, nil, err
	}
	return tc, ic, nil
}

// relayDeclined sends the visitor the origin's answer to an upgrade
// request that it did not switch on, streamed as respond does, and closes
// the origin connection once the body is through.
func (p *Proxy) relayDeclined(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, conn net.Conn) {
	stream := resp.BodyStream()
	copyResponseHeaders(&ctx.Response.Header, &resp.Header, stream == nil)
	if stream == nil {
		fasthttp.ReleaseResponse(resp)
		conn.Close()
		return
	}
	body := &originBody{resp: resp, r: stream, n: p.m.responseBytes}
	ctx.Response.SetBodyStream(&closingBody{originBody: body, conn: conn}, resp.Header.ContentLength())
}

// closingBody is an originBody on a connection of its own, closed with it.
type closingBody struct {
	*originBody
	conn net.Conn
}

func (b *closingBody) Close() error {
	err := b.originBody.Close()
	b.conn.Close()
	return err
}

// appendSwitchingHead appends the 101 response head for the visitor: the
// origin's status line and headers, in order and case, minus the
// hop-by-hop ones but Upgrade, and with Connection saying Upgrade only
// (any other connection option was the origin's hop). Sec-WebSocket-Accept
// and the like pass as they came.
func appendSwitchingHead(dst []byte, h *fasthttp.ResponseHeader) []byte {
	dst = append(dst, "HTTP/1.1 101 "...)
	if m := h.StatusMessage(); len(m) > 0 {
		dst = append(dst, m...)
	} else {
		dst = append(dst, "Switching Protocols"...)
	}
	dst = append(dst, "\r\n"...)
	var conn connectionOptions
	for k, v := range h.All() {
		if bytes.EqualFold(k, hopHeaders[0]) {
			conn.add(v)
		}
	}
	connection := false
	for k, v := range h.All() {
		switch {
		case equalFold(k, fasthttp.HeaderConnection):
			if !connection {
				dst = appendHeaderLine(dst, k, []byte("Upgrade"))
				connection = true
			}
			continue
		case equalFold(k, "Upgrade"):
		case isHopHeader(k) || conn.has(k), equalFold(k, fasthttp.HeaderContentLength):
			continue // a 101 has no body (RFC 9110 section 8.6)
		}
		dst = appendHeaderLine(dst, k, v)
	}
	if !connection {
		dst = append(dst, "Connection: Upgrade\r\n"...)
	}
	return append(dst, "\r\n"...)
}

func appendHeaderLine(dst, name, value []byte) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}

// splice relays head to the visitor, then copies bytes both ways between
// the visitor's hijacked connection and the origin's (splice.Set.Run),
// counting them and why the pair ended.
func (p *Proxy) splice(visitor, origin net.Conn, head []byte) {
	p.m.upgradedConns.Inc()
	why := p.spliced.Run(visitor, origin, head, p.cfg.Timeouts.Idle, p.m.upgradedBytes[0], p.m.upgradedBytes[1])
	p.m.upgradedConns.Dec()
	p.m.upgradeClosed(why)
}
