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
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tailor-edge/tailor/internal/listen"
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
	closedByVisitor  = "visitor"  // the visitor closed, or its connection failed
	closedByOrigin   = "origin"   // the origin closed, or its connection failed
	closedIdle       = "idle"     // no byte either way for timeouts.idle, or a side stopped reading that long
	closedByShutdown = "shutdown" // tailor stopped
)

// spliceBufferSize is each direction's copy buffer: a 1 MiB WebSocket
// message crosses in 32 reads, and 10,000 quiet sockets hold 640 MB of
// buffers less than they would at 64 KiB.
const spliceBufferSize = 32 << 10

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
// the visitor's hijacked connection and the origin's until both
// directions have ended. A direction that reaches end of file half-closes
// its destination, so that the other can finish (a WebSocket's closing
// handshake, RFC 6455 section 7.1.1); an error, the pair's idle limit or
// Shutdown ends both at once.
func (p *Proxy) splice(visitor, origin net.Conn, head []byte) {
	s := &spliced{visitor: visitor, origin: origin, idle: p.cfg.Timeouts.Idle}
	defer origin.Close() // fasthttp closes the visitor's when this returns
	if !p.spliced.add(s) {
		s.end(closedByShutdown)
		p.m.upgradeClosed(closedByShutdown)
		return
	}
	defer p.spliced.remove(s)
	p.m.upgradedConns.Inc()
	defer p.m.upgradedConns.Dec()

	s.touch()
	if _, err := visitor.Write(head); err != nil {
		s.end(closedByVisitor)
	} else {
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.pipe(origin, visitor, p.m.upgradedBytes[0], closedByVisitor, closedByOrigin)
		}()
		s.pipe(visitor, origin, p.m.upgradedBytes[1], closedByOrigin, closedByVisitor)
		<-done
	}
	p.m.upgradeClosed(s.reason())
}

// spliced is a visitor's connection spliced to the origin's.
type spliced struct {
	visitor, origin net.Conn
	idle            time.Duration
	last            atomic.Int64 // when a byte last moved, either way (Unix nanoseconds)

	mu     sync.Mutex
	why    string // the first reason a direction ended
	closed bool   // both connections are closed
}

func (s *spliced) touch() { s.last.Store(time.Now().UnixNano()) }

// pipe copies src to dst until src ends. srcSide and dstSide name the
// side to blame when reading src or writing dst fails.
func (s *spliced) pipe(dst, src net.Conn, n prometheus.Counter, srcSide, dstSide string) {
	buf := make([]byte, spliceBufferSize)
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			s.touch()
			nw, werr := dst.Write(buf[:nr])
			n.Add(float64(nw))
			if werr != nil {
				s.end(failedSide(werr, dstSide))
				return
			}
			s.touch()
		}
		switch {
		case rerr == nil:
		case errors.Is(rerr, io.EOF):
			// A clean end of one direction: pass it on, let the other
			// direction finish.
			if s.halfClose(dst, srcSide) {
				return
			}
			s.end(srcSide)
			return
		case isTimeout(rerr) && !s.isClosed():
			// This direction was quiet for its read timeout; the pair is
			// idle only if the other was quiet as well.
			if left := s.idle - time.Duration(time.Now().UnixNano()-s.last.Load()); left > 0 {
				src.SetReadDeadline(time.Now().Add(left))
				continue
			}
			s.end(closedIdle)
			return
		default:
			s.end(failedSide(rerr, srcSide))
			return
		}
	}
}

// failedSide is the reason a read or write error ends the pair: idle for
// a timeout (a side that stopped reading, or silence), else the side.
func failedSide(err error, side string) string {
	if isTimeout(err) {
		return closedIdle
	}
	return side
}

// halfClose shuts down the writing side of dst after its peer ended
// cleanly, and records why if it is the first direction to end. It
// reports false when dst cannot be half-closed.
func (s *spliced) halfClose(dst net.Conn, why string) bool {
	if closeWrite(dst) != nil {
		return false
	}
	s.mu.Lock()
	if s.why == "" {
		s.why = why
	}
	s.mu.Unlock()
	return true
}

// end closes both connections, which ends both directions, and records
// why unless a reason came first.
func (s *spliced) end(why string) {
	s.mu.Lock()
	if s.why == "" {
		s.why = why
	}
	closed := s.closed
	s.closed = true
	s.mu.Unlock()
	if !closed {
		underlying(s.visitor).Close()
		s.origin.Close()
	}
}

func (s *spliced) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *spliced) reason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.why
}

// underlying returns the connection under fasthttp's hijacked one, whose
// Close does nothing (fasthttp closes the connection when the hijack
// handler returns; closing it before that is how a direction blocked in a
// read is ended). Closing twice is harmless.
func underlying(c net.Conn) net.Conn {
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		return u.UnsafeConn()
	}
	return c
}

// closeWrite half-closes c: a FIN on TCP, close_notify on TLS.
func closeWrite(c net.Conn) error {
	for {
		switch x := c.(type) {
		case interface{ CloseWrite() error }:
			return x.CloseWrite()
		case interface{ UnsafeConn() net.Conn }:
			c = x.UnsafeConn()
		case *listen.Conn:
			c = x.Conn
		default:
			return errors.ErrUnsupported
		}
	}
}

// splices holds the spliced pairs open now, so that Shutdown can end
// them: fasthttp forgets a connection once it is hijacked.
type splices struct {
	mu     sync.Mutex
	open   map[*spliced]struct{}
	closed bool
	wg     sync.WaitGroup
}

// add records s, or reports false once closeAll has run.
func (ss *splices) add(s *spliced) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return false
	}
	if ss.open == nil {
		ss.open = make(map[*spliced]struct{})
	}
	ss.open[s] = struct{}{}
	ss.wg.Add(1)
	return true
}

func (ss *splices) remove(s *spliced) {
	ss.mu.Lock()
	delete(ss.open, s)
	ss.mu.Unlock()
	ss.wg.Done()
}

// closeAll ends every spliced pair, and any spliced later, and waits
// until their goroutines are done or ctx ends.
func (ss *splices) closeAll(ctx context.Context) error {
	ss.mu.Lock()
	ss.closed = true
	open := make([]*spliced, 0, len(ss.open))
	for s := range ss.open {
		open = append(open, s)
	}
	ss.mu.Unlock()
	for _, s := range open {
		s.end(closedByShutdown)
	}
	done := make(chan struct{})
	go func() { ss.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
