package proxy

import (
	"net"
	"time"

	"github.com/tailor-edge/tailor/internal/header"
	"github.com/valyala/fasthttp"
)

// upgrade forwards a request to switch protocols to the origin
// (internal/tunnel): with the outbound headers any request gets, on a
// connection of its own. A 101 splices the visitor's connection to the
// origin's; any other answer is relayed as it came, and no answer is a 502
// or 504, as for any request.
func (p *Proxy) upgrade(ctx *fasthttp.RequestCtx, protocols []byte, start time.Time) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	p.outboundHeaders(ctx, req, false)
	resp, conn, err := p.tunnel.Open(ctx, req, protocols, start)
	switch {
	case err != nil:
		p.originFailed(ctx, err)
	case resp != nil:
		p.relayDeclined(ctx, resp, conn)
	}
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
