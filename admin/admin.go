package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/proxy"
)

// Options are the parts of the admin listener that do not come from
// tailor.yaml.
type Options struct {
	// Logger receives the listener's logs; nil means slog.Default().
	Logger *slog.Logger
	// Version is the build the console names.
	Version string
	// Profiles is the central store the profiles API reads and writes;
	// nil answers 503 (no NATS configured).
	Profiles ProfileStore
	// Events reads the readout the edges fold from the events stream,
	// for the console's experiment readouts and audience sizes; nil
	// shows none.
	Events ReadoutReader
}

// Admin is the operator's listener: /healthz (the process is up), /readyz
// (the proxy is serving), /metrics (Prometheus) and, with admin.token set,
// the console at / (console.go) and /v1/profiles/{id} (GET, PUT, DELETE a
// profile in the central store). It listens apart from visitors, on
// loopback by default. Wrong tokens are rate-limited per client address
// (limit.go).
type Admin struct {
	cfg   *config.Config
	proxy *proxy.Proxy
	opts  Options
	log   *slog.Logger
	// sessionKey signs console logins; made at start, so a restart logs
	// everyone out.
	sessionKey [32]byte
	server     *http.Server
	enabled    bool     // admin.token is set: /v1/* and the console answer
	tokenHash  [32]byte // SHA-256 of admin.token
	logins     *loginLimiter
	auth       authMetrics
}

// New builds the admin listener of p, which cfg configures. Its metric,
// tailor_admin_auth_failures_total, joins p's registry, which /metrics
// serves.
func New(cfg *config.Config, p *proxy.Proxy, opts Options) *Admin {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	a := &Admin{
		cfg:    cfg,
		proxy:  p,
		opts:   opts,
		log:    opts.Logger.With("component", "admin"),
		logins: newLoginLimiter(nil),
		auth:   registerAuthMetrics(p.Registry()),
	}
	if cfg.Admin.Token != "" {
		a.enabled, a.tokenHash = true, sha256.Sum256([]byte(cfg.Admin.Token))
		rand.Read(a.sessionKey[:])
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { text(w, http.StatusOK, "ok\n") })
	mux.HandleFunc("GET /readyz", a.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(p.Registry(), promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	a.consoleRoutes(mux)
	a.profileRoutes(mux)
	a.server = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: cfg.Limits.HeaderTimeout,
		ReadTimeout:       cfg.Timeouts.Response,
		WriteTimeout:      cfg.Timeouts.Response,
		IdleTimeout:       cfg.Timeouts.Idle,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	return a
}

// Serve answers operators on ln until Shutdown, after which it returns nil.
func (a *Admin) Serve(ln net.Listener) error {
	if err := a.server.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the admin listener: it stops accepting, closes idle
// connections and returns once the requests under way are answered, or
// when ctx ends.
func (a *Admin) Shutdown(ctx context.Context) error { return a.server.Shutdown(ctx) }

func (a *Admin) ready(w http.ResponseWriter, _ *http.Request) {
	if a.proxy.Ready() && a.cfg.Rules.Bucket != "" && a.proxy.RulesVersion() == 0 {
		// Not ready to be put in front of visitors: every page would
		// pass through unpersonalized. Visitors who reach it anyway get
		// the origin's pages (fail open).
		text(w, http.StatusServiceUnavailable, "not ready\nno rule version yet\n")
		return
	}
	if a.proxy.Ready() {
		if v := a.proxy.RulesVersion(); v > 0 { // rules.bucket: which version this edge serves
			text(w, http.StatusOK, "ready\nrules version "+strconv.FormatUint(v, 10)+"\n")
			return
		}
		text(w, http.StatusOK, "ready\n")
		return
	}
	text(w, http.StatusServiceUnavailable, "not ready\n")
}

// authorized checks the bearer token in constant time. Both sides are
// hashed first, so that the comparison does not leak the token's length.
func (a *Admin) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return false
	}
	got := sha256.Sum256([]byte(h[len(scheme):]))
	return subtle.ConstantTimeCompare(got[:], a.tokenHash[:]) == 1
}

// text answers with a line of plain text.
func text(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(msg))
}

// apiError answers with {"error": msg}.
func apiError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// clientAddr is the address of the operator's end of the connection.
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.IPv4Unspecified()
	}
	return ap.Addr().Unmap()
}
