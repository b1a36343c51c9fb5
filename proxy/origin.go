package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/listen"
	"github.com/tailor-edge/tailor/internal/metrics"
)

// defaultMaxOriginConns bounds the connections tailor keeps to the origin.
// nginx's default worker_connections is 512 per worker; a pool as large as
// this only fills when the origin is far slower than its visitors.
const defaultMaxOriginConns = 1024

// newOriginClient builds the fasthttp client that talks to the origin: one
// host, a bounded keep-alive pool, inactivity timeouts on every read and
// write, and no retries except for safe requests without a body.
func newOriginClient(cfg *config.Config, maxConns int) (*fasthttp.HostClient, error) {
	u, err := url.Parse(cfg.Origin)
	if err != nil {
		return nil, fmt.Errorf("parse origin %q: %w", cfg.Origin, err)
	}
	isTLS := u.Scheme == "https"
	addr := u.Host
	if u.Port() == "" {
		if isTLS {
			addr = net.JoinHostPort(u.Hostname(), "443")
		} else {
			addr = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	if maxConns <= 0 {
		maxConns = defaultMaxOriginConns
	}
	t := cfg.Timeouts
	dialer := &net.Dialer{Timeout: t.Connect, KeepAlive: 30 * time.Second}
	hc := &fasthttp.HostClient{
		Addr:  addr,
		IsTLS: isTLS,
		Dial: func(addr string) (net.Conn, error) {
			c, err := dialer.Dial("tcp", addr)
			if err != nil {
				return nil, err
			}
			// The response timeout bounds the wait for the first byte of
			// the response and every silence after it, not a whole
			// download.
			return listen.NewConn(c, t.Response, t.Response), nil
		},
		MaxConns:                      maxConns,
		MaxConnWaitTimeout:            t.Connect,
		MaxIdleConnDuration:           t.Idle,
		ReadBufferSize:                int(cfg.MaxHeaderBytes),
		WriteBufferSize:               32 * 1024,
		StreamResponseBody:            true,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
		MaxIdemponentCallAttempts:     2,
		RetryIfErr:                    retryIfErr,
	}
	if isTLS {
		hc.TLSConfig = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	}
	return hc, nil
}

// retryIfErr retries once, and only a safe request that carries no body:
// typically a keep-alive connection the origin closed just as we reused it.
// A POST is never sent twice (RFC 9110 section 9.2.2).
func retryIfErr(req *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
	if attempts >= 2 || req.IsBodyStream() || len(req.Body()) > 0 || isTimeout(err) {
		return false, false
	}
	switch string(req.Header.Method()) {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodOptions:
		return true, true
	}
	return false, false
}

func isTimeout(err error) bool {
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) ||
		errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// classifyOriginError maps a client error to the status the visitor gets,
// the metric label (metrics.Origin*) and the short body.
func classifyOriginError(err error) (status int, kind, body string) {
	switch {
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return fasthttp.StatusBadGateway, metrics.OriginPoolFull, "502 Bad Gateway: too many connections to the origin\n"
	case isTimeout(err):
		return fasthttp.StatusGatewayTimeout, metrics.OriginTimeout, "504 Gateway Timeout: the origin did not answer in time\n"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fasthttp.StatusBadGateway, metrics.OriginUnreachable, "502 Bad Gateway: the origin is unreachable\n"
	}
	if errors.Is(err, fasthttp.ErrConnectionClosed) {
		return fasthttp.StatusBadGateway, metrics.OriginUnreachable, "502 Bad Gateway: the origin closed the connection\n"
	}
	return fasthttp.StatusBadGateway, metrics.OriginProtocol, "502 Bad Gateway: the origin sent an invalid response\n"
}
