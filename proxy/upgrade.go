package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"

	"github.com/tailor-edge/tailor/internal/header"
	"github.com/tailor-edge/tailor/internal/listen"
	"github.com/tailor-edge/tailor/internal/metrics"
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
	p.m.Upstream.Observe(time.Since(start).Seconds())
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
		p.m.Tunnel.Upgrades.Inc(metrics.Declined)
		p.relayDeclined(ctx, resp, conn)
		return
	}
	if !header.Offered(protocols, header.Peek(&resp.Header, "Upgrade")) {
		fasthttp.ReleaseResponse(resp)
		conn.Close()
		p.upgradeFailed(ctx, errSwitchedProtocol)
		return
	}
	head := header.AppendSwitchingHead(nil, &resp.Header)
	fasthttp.ReleaseResponse(resp)
	// What the origin sent after its 101 (a first message, say) is in br;
	// it goes to the visitor right after the head, and br is let go.
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		head = append(head, b...)
	}
	p.m.Tunnel.Upgrades.Inc(metrics.Upgraded)
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
	p.m.Tunnel.Upgrades.Inc(metrics.UpgradeFailed)
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
	header.CopyResponse(&ctx.Response.Header, &resp.Header, stream == nil)
	if stream == nil {
		fasthttp.ReleaseResponse(resp)
		conn.Close()
		return
	}
	body := &originBody{resp: resp, r: stream, n: p.m.ResponseBytes}
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

// splice relays head to the visitor, then copies bytes both ways between
// the visitor's hijacked connection and the origin's (splice.Set.Run),
// counting them and why the pair ended.
func (p *Proxy) splice(visitor, origin net.Conn, head []byte) {
	m := &p.m.Tunnel
	m.Open.Inc()
	why := p.spliced.Run(visitor, origin, head, p.cfg.Timeouts.Idle, m.ToOrigin, m.ToVisitor)
	m.Open.Dec()
	m.Closes.Inc(why)
}
