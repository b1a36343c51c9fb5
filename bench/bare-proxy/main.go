// Command bare-proxy is the least a fasthttp reverse proxy can do: forward
// each request to one origin and stream the answer back, with no identity,
// rules or header rewriting. bench/passthrough.sh runs it beside tailor as
// the ceiling fasthttp itself sets on this machine.
//
//	bare-proxy -listen 127.0.0.1:8080 -origin 127.0.0.1:8081
package main

import (
	"flag"
	"log"

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve on")
	origin := flag.String("origin", "127.0.0.1:8081", "origin host:port")
	flag.Parse()
	hc := &fasthttp.HostClient{Addr: *origin, MaxConns: 1024, StreamResponseBody: true}
	s := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			resp := fasthttp.AcquireResponse()
			if err := hc.Do(&ctx.Request, resp); err != nil {
				fasthttp.ReleaseResponse(resp)
				ctx.Error(err.Error(), fasthttp.StatusBadGateway)
				return
			}
			resp.CopyTo(&ctx.Response) // headers; the body streams below
			if s := resp.BodyStream(); s != nil {
				ctx.Response.SetBodyStream(&body{s, resp}, resp.Header.ContentLength())
			} else {
				fasthttp.ReleaseResponse(resp)
			}
		},
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		NoDefaultContentType:  true,
	}
	log.Fatal(s.ListenAndServe(*listen))
}

// body hands the origin's body stream to fasthttp, which closes it once
// written; closing returns the origin connection to the pool.
type body struct {
	s    interface{ Read([]byte) (int, error) }
	resp *fasthttp.Response
}

func (b *body) Read(p []byte) (int, error) { return b.s.Read(p) }

func (b *body) Close() error {
	err := b.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(b.resp)
	return err
}
