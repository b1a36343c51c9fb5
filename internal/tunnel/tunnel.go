package tunnel

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/internal/header"
	"github.com/tailor-edge/tailor/internal/listen"
	"github.com/tailor-edge/tailor/internal/metrics"
	"github.com/tailor-edge/tailor/internal/splice"
)

// Tunnel opens protocol switches to one origin. Set its fields before the
// first Open and change none after; it is safe for concurrent use.
type Tunnel struct {
	// Addr is the origin's host:port.
	Addr string
	// TLS, when not nil, is the configuration connections to the origin
	// are made with (the origin client's); nil: plain TCP.
	TLS *tls.Config
	// Connect bounds the dial and the TLS handshake; Response bounds every
	// read and write until the origin has answered, as the origin
	// client's do; Idle ends a spliced pair after no byte either way for
	// that long (timeouts.idle).
	Connect, Response, Idle time.Duration
	// MaxHeaderBytes bounds the origin's answer's head.
	MaxHeaderBytes int
	// Metrics counts what Open and the spliced pairs do; it must be set.
	Metrics *metrics.Tunnel

	spliced splice.Set // the pairs open now
}

// ErrSwitchedProtocol is an origin's 101 to a protocol the client did not
// ask for, or to none.
var ErrSwitchedProtocol = errors.New("origin switched to a protocol the client did not ask for")

// Open sends req, a request to switch to protocols with the headers the
// origin is to see, to the origin on a connection of its own, with
// Connection: Upgrade and the Upgrade header added. start is when the
// request came, for the origin's latency.
//
// On a 101 to a protocol the visitor asked for, Open has ctx's connection
// hijacked and spliced to the origin's once the handler returns, and
// returns nil, nil, nil. On another answer it returns the origin's
// response, its body streaming, and the connection it came on: the caller
// relays the response and closes conn once the body is through. With no
// usable answer it returns the error, for a 502 or 504.
func (t *Tunnel) Open(ctx *fasthttp.RequestCtx, req *fasthttp.Request, protocols []byte, start time.Time) (*fasthttp.Response, net.Conn, error) {
	req.Header.Add(fasthttp.HeaderConnection, "Upgrade")
	req.Header.AddBytesV("Upgrade", protocols)

	conn, ic, err := t.dial()
	if err != nil {
		return t.failed(err)
	}
	// The request has no body: its head is all there is to send.
	if _, err := conn.Write(req.Header.AppendBytes(nil)); err != nil {
		conn.Close()
		return t.failed(err)
	}
	br := bufio.NewReaderSize(conn, t.MaxHeaderBytes)
	resp := fasthttp.AcquireResponse()
	resp.Header.DisableNormalizing()
	resp.Header.SetNoDefaultContentType(true)
	resp.StreamBody = true
	err = resp.Read(br) // skips interim answers (100, 103) but 101
	t.Metrics.Upstream.Observe(time.Since(start).Seconds())
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		conn.Close()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fasthttp.ErrConnectionClosed
		}
		return t.failed(err)
	}
	if resp.StatusCode() != fasthttp.StatusSwitchingProtocols {
		t.Metrics.Upgrades.Inc(metrics.Declined)
		return resp, conn, nil
	}
	if !header.Offered(protocols, header.Peek(&resp.Header, "Upgrade")) {
		fasthttp.ReleaseResponse(resp)
		conn.Close()
		return t.failed(ErrSwitchedProtocol)
	}
	head := header.AppendSwitchingHead(nil, &resp.Header)
	fasthttp.ReleaseResponse(resp)
	// What the origin sent after its 101 (a first message, say) is in br;
	// it goes to the visitor right after the head, and br is let go.
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		head = append(head, b...)
	}
	t.Metrics.Upgrades.Inc(metrics.Upgraded)
	ic.SetTimeouts(t.Idle, t.Idle)
	ctx.SetStatusCode(fasthttp.StatusSwitchingProtocols) // counted by the proxy; never written
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(visitor net.Conn) {
		listen.KeepOpen(visitor)
		t.splice(visitor, conn, head)
	})
	return nil, nil, nil
}

// failed counts an upgrade request the origin could not take.
func (t *Tunnel) failed(err error) (*fasthttp.Response, net.Conn, error) {
	t.Metrics.Upgrades.Inc(metrics.UpgradeFailed)
	return nil, nil, err
}

// dial opens a connection of its own to the origin: an upgraded
// connection never goes back to the origin client's pool, so it is not
// taken from it. Reads and writes get the response timeout; the returned
// listen.Conn is the one to set other timeouts on.
func (t *Tunnel) dial() (net.Conn, *listen.Conn, error) {
	d := net.Dialer{Timeout: t.Connect, KeepAlive: 30 * time.Second}
	raw, err := d.Dial("tcp", t.Addr)
	if err != nil {
		return nil, nil, err
	}
	ic := listen.NewConn(raw, t.Response, t.Response)
	if t.TLS == nil {
		return ic, ic, nil
	}
	tc := tls.Client(ic, t.TLS.Clone())
	hctx, cancel := context.WithTimeout(context.Background(), t.Connect)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, nil, err
	}
	return tc, ic, nil
}

// splice relays head to the visitor, then copies bytes both ways between
// the visitor's hijacked connection and the origin's (splice.Set.Run),
// counting them and why the pair ended.
func (t *Tunnel) splice(visitor, origin net.Conn, head []byte) {
	m := t.Metrics
	m.Open.Inc()
	t.spliced.Run(visitor, origin, head, t.Idle, m.ToOrigin, m.ToVisitor, func(why string) {
		m.Open.Dec()
		m.Closes.Inc(why)
	})
}

// CloseAll closes the spliced pairs open now and any opened from now on,
// and waits until their goroutines are done or ctx ends (splice.Set).
func (t *Tunnel) CloseAll(ctx context.Context) error { return t.spliced.CloseAll(ctx) }
