package proxy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/tailor-edge/tailor/cache"
)

// Admin is the operator's listener: /healthz (the process is up), /readyz
// (the proxy is serving), /metrics (Prometheus) and, with admin.token set,
// the console at / (console.go) and /v1/profiles/{id} (GET, PUT, DELETE a
// profile in the central store). It listens apart from visitors, on
// loopback by default. Wrong tokens are rate-limited per client address
// (adminlimit.go).
type Admin struct {
	proxy   *Proxy
	log     *slog.Logger
	readout consoleState
	// sessionKey signs console logins; made at start, so a restart logs
	// everyone out.
	sessionKey [32]byte
	server     *fasthttp.Server
	metrics    fasthttp.RequestHandler
	enabled    bool     // admin.token is set: /v1/* answers
	tokenHash  [32]byte // SHA-256 of admin.token
	logins     *loginLimiter
}

// NewAdmin builds the admin listener for p.
func NewAdmin(p *Proxy, log *slog.Logger) *Admin {
	if log == nil {
		log = slog.Default()
	}
	a := &Admin{
		proxy:  p,
		log:    log.With("component", "admin"),
		logins: newLoginLimiter(nil),
		metrics: fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(p.Registry(), promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
			ErrorHandling: promhttp.ContinueOnError,
		})),
	}
	if p.cfg.Admin.Token != "" {
		a.enabled, a.tokenHash = true, sha256.Sum256([]byte(p.cfg.Admin.Token))
		rand.Read(a.sessionKey[:])
	}
	a.server = &fasthttp.Server{
		Handler: a.handle,
		// Bodies somewhat over the profile limit are read whole, so that
		// the handler answers 413 on a connection it can keep: refused
		// right after its headers, a body the client is still sending
		// meets a reset, often before the client reads the 413 (seen as
		// a flaky "connection reset by peer" in TestAdminProfilesAPI).
		// Beyond this, fasthttp refuses at once.
		MaxRequestBodySize: 16 * cache.MaxProfileBytes,
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			if errors.Is(err, fasthttp.ErrBodyTooLarge) {
				apiError(ctx, fasthttp.StatusRequestEntityTooLarge, "a profile document is at most "+strconv.Itoa(cache.MaxProfileBytes)+" bytes")
				return
			}
			apiError(ctx, fasthttp.StatusBadRequest, "malformed request")
		},
		Name:            "tailor-admin",
		ReadTimeout:     p.cfg.Timeouts.Response,
		WriteTimeout:    p.cfg.Timeouts.Response,
		IdleTimeout:     p.cfg.Timeouts.Idle,
		CloseOnShutdown: true,
		Logger:          fasthttpLogger{log.With("component", "admin")},
	}
	return a
}

// Serve answers operators on ln until Shutdown.
func (a *Admin) Serve(ln net.Listener) error { return a.server.Serve(ln) }

// Shutdown stops the admin listener.
func (a *Admin) Shutdown(ctx context.Context) error { return a.server.ShutdownWithContext(ctx) }

func (a *Admin) handle(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/healthz":
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
	case "/readyz":
		ctx.SetContentType("text/plain; charset=utf-8")
		if a.proxy.Ready() {
			ctx.SetBodyString("ready\n")
			return
		}
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBodyString("not ready\n")
	case "/metrics":
		a.metrics(ctx)
	case "/", "/login":
		a.console(ctx)
	default:
		if strings.HasPrefix(string(ctx.Path()), "/v1/") {
			a.v1(ctx)
			return
		}
		ctx.Error("404 page not found\n", fasthttp.StatusNotFound)
	}
}
