package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/cache"
	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/identity"
	"github.com/tailor-edge/tailor/internal/bots"
	"github.com/tailor-edge/tailor/internal/flush"
	"github.com/tailor-edge/tailor/internal/header"
	"github.com/tailor-edge/tailor/internal/listen"
	"github.com/tailor-edge/tailor/internal/metrics"
	"github.com/tailor-edge/tailor/internal/tunnel"
	"github.com/tailor-edge/tailor/journey"
	"github.com/tailor-edge/tailor/rules"
	natsync "github.com/tailor-edge/tailor/sync"
)

// Options are the parts of a Proxy that do not come from tailor.yaml.
type Options struct {
	// Logger receives the proxy's logs; nil means slog.Default().
	Logger *slog.Logger
	// Registry receives the proxy's metrics; nil means a fresh
	// metrics.NewRegistry(), with the Go and process collectors.
	Registry *prometheus.Registry
	// Version labels tailor_build_info.
	Version string
	// MaxOriginConns bounds the origin connection pool; 0 means 1024.
	MaxOriginConns int
	// PageCacheBytes bounds the compiled-page cache; 0 means 64 MiB.
	PageCacheBytes int64
	// Profiles is the edge's profile cache, which the sync package keeps
	// fresh; nil means New makes one from the config's profiles section.
	Profiles *cache.Profiles
	// Source is the central store read on a profile cache miss; nil means
	// none (no NATS configured): profiles come from tokens' claims only.
	Source ProfileSource
	// Events receives page views, goals, stage changes, exposures and
	// identity links; nil reports none.
	Events EventSink
	// Clock is the time page views are tracked and reported at: visits,
	// stages, interest decay, event times. nil means time.Now; tests move
	// it forward.
	Clock func() time.Time
}

// DefaultPageCacheBytes bounds the compiled-page cache unless
// Options.PageCacheBytes says otherwise: a few hundred typical pages.
const DefaultPageCacheBytes = 64 << 20

// Proxy forwards visitors' requests to the origin and streams the answers
// back. Create it with New, run it with Serve, stop it with Shutdown.
type Proxy struct {
	cfg        *config.Config
	log        *slog.Logger
	reg        *prometheus.Registry
	m          *metrics.Proxy
	origin     *fasthttp.HostClient
	originHost []byte // Host sent to the origin; nil passes the client's
	trusted    []netip.Prefix
	limits     *listen.Limits      // limits.max_conns and max_conns_per_ip
	cert       *listen.Certificate // the TLS listener's; nil without listen_tls
	server     *fasthttp.Server
	ready      atomic.Bool
	// acceptLogged is when an accept error was last logged (UnixNano).
	acceptLogged atomic.Int64

	rules atomic.Pointer[ruleState]
	pages *cache.Pages[*pageShapes]
	// loadMu serializes rule loads (LoadRules); rulesReadAt is when the
	// last one began reading the files (Unix nanoseconds).
	loadMu      sync.Mutex
	rulesReadAt atomic.Int64

	signer   *identity.Signer
	jwt      *identity.Verifier // nil without identity.jwt
	profiles *cache.Profiles
	source   ProfileSource // nil without a central store
	events   EventSink     // nil: no events
	beacon   *beacon       // nil without beacon_path (beacon.go)
	devices  *uaDevices    // the devices of recent User-Agents (bots.go)

	now func() time.Time

	tunnel tunnel.Tunnel // protocol switches (upgrade.go)
}

// rewriteResults are every result a page with rules ends with
// (personalize.go), the labels of tailor_rewrites_total.
var rewriteResults = []string{rewriteDone, rewriteNoChange, rewriteTooLarge, rewriteEncoding,
	rewriteComplex, rewriteConflict, rewriteError, rewritePanicked}

// New builds a Proxy from a validated config and loads its rules; an
// error in the rule files is returned with every problem as file:line:col.
func New(cfg *config.Config, opts Options) (*Proxy, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	reg := opts.Registry
	if reg == nil {
		reg = metrics.NewRegistry()
	}
	hc, err := newOriginClient(cfg, opts.MaxOriginConns)
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		cfg:     cfg,
		log:     log.With("component", "proxy"),
		reg:     reg,
		m:       metrics.New(reg, opts.Version, rewriteResults),
		origin:  hc,
		trusted: cfg.TrustedNets(),
		devices: newUADevices(),
	}
	bots.Default() // the crawler list, compiled now (some 8 ms) rather than in the first visitor's page view
	maxOrigin := opts.MaxOriginConns
	if maxOrigin <= 0 {
		maxOrigin = defaultMaxOriginConns
	}
	p.limits = listen.NewLimits(cfg, p.trusted, maxOrigin, reg)
	t := cfg.Timeouts
	p.tunnel = tunnel.Tunnel{Addr: hc.Addr, Connect: t.Connect, Response: t.Response, Idle: t.Idle,
		MaxHeaderBytes: int(cfg.MaxHeaderBytes), Metrics: &p.m.Tunnel}
	if hc.IsTLS {
		p.tunnel.TLS = hc.TLSConfig
	}
	if cfg.OriginHost != "" {
		p.originHost = []byte(cfg.OriginHost)
	}
	pageBytes := opts.PageCacheBytes
	if pageBytes <= 0 {
		pageBytes = DefaultPageCacheBytes
	}
	if p.pages, err = cache.NewPages[*pageShapes](pageBytes); err != nil {
		return nil, err
	}
	p.m.PageCache(p.pages)
	if p.signer, err = identity.NewSigner(cfg.Identity.Cookie, p.log); err != nil {
		return nil, err
	}
	p.events = opts.Events
	p.now = opts.Clock
	if p.now == nil {
		p.now = time.Now
	}
	if s, ok := p.events.(interface{ Stats() natsync.PublisherStats }); ok {
		p.m.Publisher(s)
	}
	if p.jwt, err = identity.NewVerifier(cfg, p.log); err != nil {
		return nil, err
	}
	p.profiles, p.source = opts.Profiles, opts.Source
	if p.profiles == nil && p.source != nil {
		pc := cfg.Profiles
		if p.profiles, err = cache.NewProfiles(pc.CacheSize, pc.TTL, pc.NegativeTTL, nil); err != nil {
			return nil, err
		}
	}
	if p.profiles != nil {
		p.m.ProfileCache(p.profiles)
	}
	if s, ok := p.source.(interface {
		Stats() natsync.WatchStats
		Connected() bool
	}); ok {
		p.m.Sync(s)
	}
	if cfg.ListenTLS != "" {
		if p.cert, err = listen.NewCertificate(cfg, log.With("component", "tls"), reg); err != nil {
			return nil, err
		}
	}
	if p.beacon, err = newBeacon(cfg, reg); err != nil {
		return nil, err
	}
	if err := p.LoadRules(); err != nil {
		return nil, err
	}
	// The read buffer bounds the request head (431 beyond it). The write
	// buffer is large because a 100 KB page then takes one or two write
	// syscalls instead of four: measured 11% less CPU per request
	// (bench/passthrough.sh). Write buffers go back to a pool while a
	// keep-alive connection idles (ReduceMemoryUsage); the read buffer stays
	// (fasthttp keeps it while request bodies stream).
	p.server = &fasthttp.Server{
		Handler:                       p.handle,
		ErrorHandler:                  p.handleParseError,
		HeaderReceived:                listen.BodyDeadline,
		ReadBufferSize:                int(cfg.MaxHeaderBytes),
		WriteBufferSize:               128 * 1024,
		ReduceMemoryUsage:             true,
		IdleTimeout:                   cfg.Timeouts.Idle,
		StreamRequestBody:             true,
		DisableHeaderNamesNormalizing: true,
		DisablePreParseMultipartForm:  true,
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true,
		NoDefaultContentType:          true,
		TCPKeepalive:                  true,
		CloseOnShutdown:               true,
		Logger:                        fasthttpLogger{p.log},
	}
	return p, nil
}

// Serve accepts visitors on ln until Shutdown. Every client connection gets
// the idle timeout between reads and between writes.
func (p *Proxy) Serve(ln net.Listener) error {
	p.ready.Store(true)
	p.log.Info("connection limits", "max_conns", p.limits.Max(), "max_conns_per_ip", p.limits.PerIP(),
		"header_timeout", p.cfg.Limits.HeaderTimeout, "open_files_limit", listen.OpenFilesLimit())
	return p.server.Serve(p.visitorListener(ln))
}

// ServeTLS accepts visitors over TLS on ln (listen_tls) until Shutdown,
// with the certificate of the tls section; Serve may run beside it. It
// is the same server: the same handler, and the same limits, counted
// together. TLS sits on top of the visitor listener, so a connection
// over a limit is closed before its handshake, and limits.header_timeout
// bounds the handshake and the first request header together. Requests
// see ctx.IsTLS(), so the origin is told proto=https.
func (p *Proxy) ServeTLS(ln net.Listener) error {
	if p.cert == nil {
		return errors.New("serve tls: listen_tls is not configured")
	}
	return p.server.Serve(tls.NewListener(p.visitorListener(ln), p.cert.TLSConfig()))
}

// visitorListener wraps ln so that its connections get the idle timeout,
// the header deadline and the connection limits.
func (p *Proxy) visitorListener(ln net.Listener) net.Listener {
	idle := p.cfg.Timeouts.Idle
	return listen.Listener{Listener: ln, Read: idle, Write: idle,
		Header: p.cfg.Limits.HeaderTimeout, Limits: p.limits, Failed: p.acceptFailed}
}

// WatchCertificate reloads the TLS certificate when its files change,
// until ctx ends; it returns at once without listen_tls. A pair that does
// not load is logged and counted, and the certificate in force stays.
func (p *Proxy) WatchCertificate(ctx context.Context) error {
	if p.cert == nil {
		return nil
	}
	return p.cert.Watch(ctx)
}

// acceptFailed counts an accept error that Serve rides out, and logs it
// at most once a minute (they come in bursts, every few milliseconds).
func (p *Proxy) acceptFailed(err error, wait time.Duration) {
	p.m.AcceptErrors.Inc()
	now := time.Now().UnixNano()
	if last := p.acceptLogged.Load(); now-last < int64(time.Minute) || !p.acceptLogged.CompareAndSwap(last, now) {
		return
	}
	p.log.Error("accepting connections failed; retrying (is the open-files limit too low? see tailor_accept_errors_total)",
		"err", err, "retry_in", wait)
}

// Shutdown stops accepting, lets in-flight requests finish (including
// responses still streaming) and returns when they have, or when ctx ends.
// Upgraded connections (WebSockets) have no request to finish: once the
// requests are done, they are closed, and their clients reconnect.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.ready.Store(false)
	err := p.server.ShutdownWithContext(ctx)
	// Once ctx has ended they are still closed, just not waited for.
	if serr := p.tunnel.CloseAll(ctx); err == nil {
		err = serr
	}
	return err
}

// WatchKeys re-reads the JWKS file when it changes, until ctx ends; it
// returns at once when there is none.
func (p *Proxy) WatchKeys(ctx context.Context) error {
	if p.jwt == nil {
		return nil
	}
	return p.jwt.Watch(ctx)
}

// Ready reports whether the proxy is serving.
func (p *Proxy) Ready() bool { return p.ready.Load() }

// Registry is where the proxy's metrics live, for the admin listener.
func (p *Proxy) Registry() *prometheus.Registry { return p.reg }

// RuleHits is how often rule id's action has been applied since the proxy
// started (tailor_rule_hits_total), for the console.
func (p *Proxy) RuleHits(id string) float64 { return p.m.RuleHits(id) }

// MapCaseHits is how often map id (rules.MapChoice.Map: a map rule's
// id) has chosen its case key (rules.MapChoice.Case: a stage, a segment,
// default, or a two-dimensional map's cell such as "vip/retention") with
// its change applied, since the proxy started
// (tailor_map_case_hits_total), for the console.
func (p *Proxy) MapCaseHits(id, key string) float64 { return p.m.CaseHits(id, key) }

// chunkedPrefetch is how much of a chunked request body is read and checked
// before anything is sent to the origin. A body that ends within it is
// forwarded with a Content-Length; a longer one streams, and a broken chunk
// later on aborts the origin connection mid-body, which the origin cannot
// mistake for a complete request.
const chunkedPrefetch = 64 * 1024

func (p *Proxy) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	p.m.InFlight.Inc()
	defer p.m.InFlight.Dec()

	if reason := header.CheckFraming(ctx.Request.Header.RawHeaders()); reason != "" {
		p.reject(ctx, fasthttp.StatusBadRequest, reason)
		return
	}

	// Goal reports and the goal script are tailor's own (beacon.go).
	if p.serveBeacon(ctx, start) {
		return
	}

	// A WebSocket (or another protocol switch) is tunneled to the origin:
	// no identity, rules or events on it (upgrade.go).
	if protocols := header.UpgradeProtocols(&ctx.Request.Header); protocols != nil {
		p.upgrade(ctx, protocols, start)
		p.finish(ctx, start)
		return
	}

	// A preview link renders the page as the visitor it names; its
	// parameter is taken off the URL before the origin sees it.
	var preview *identity.PreviewClaims
	if (ctx.IsGet() || ctx.IsHead()) && bytes.Contains(ctx.Request.Header.RequestURI(), []byte(identity.PreviewParam)) {
		preview = p.preview(&ctx.Request, start)
	}

	// The rules are read once per request: the page they give for this
	// path decides both what is asked of the origin and what is done with
	// its answer, even if a reload lands in between.
	st := p.rules.Load()
	var page *rules.Page
	// A HEAD gets the headers its GET would: the page is asked for and
	// personalized, and fasthttp sends no body.
	if st.set != nil && (ctx.IsGet() || ctx.IsHead()) {
		page = st.set.Match(string(ctx.Path()))
	}

	// A page with rules needs the visitor's profile: a cache miss is
	// fetched from the central store while the origin renders the page.
	var v *visit
	switch {
	case preview != nil:
		v = &visit{now: p.now(), preview: preview}
	case page != nil:
		v = p.visitorFor(&ctx.Request, p.now())
		p.lookup(v, start)
	}

	// A page that gets the goal script is read whole and asked for
	// afresh, like one with rules (beacon.go, outboundHeaders): the
	// visitor's validators came with a page tailor may now render
	// otherwise (an unchanged page keeps the origin's ETag), and the
	// origin's 304 would keep the old one.
	goalPage := p.goalPage(ctx, st)

	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	p.outboundHeaders(ctx, req, page != nil || goalPage)

	var prefetch *bytebufferpool.ByteBuffer
	switch cl := ctx.Request.Header.ContentLength(); {
	case cl > 0:
		req.SetBodyStream(&countingReader{r: ctx.RequestBodyStream(), n: p.m.RequestBytes}, cl)
	case cl == -1:
		prefetch = bytebufferpool.Get()
		defer bytebufferpool.Put(prefetch)
		body := ctx.RequestBodyStream()
		_, err := io.Copy(prefetch, io.LimitReader(body, chunkedPrefetch))
		if err != nil {
			p.reject(ctx, fasthttp.StatusBadRequest, header.RejectBadChunk)
			return
		}
		if prefetch.Len() < chunkedPrefetch {
			req.SetBodyRaw(prefetch.B)
			p.m.RequestBytes.Add(float64(prefetch.Len()))
		} else {
			r := io.MultiReader(bytes.NewReader(prefetch.B), body)
			req.SetBodyStream(&countingReader{r: r, n: p.m.RequestBytes}, -1)
		}
	}

	resp := fasthttp.AcquireResponse()
	// Without this the origin's headers would seem to carry fasthttp's
	// default Content-Type when the origin sent none.
	resp.Header.SetNoDefaultContentType(true)
	err := p.origin.Do(req, resp)
	p.m.Upstream.Observe(time.Since(start).Seconds())
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		p.originFailed(ctx, err)
		p.finish(ctx, start)
		return
	}
	p.respond(ctx, resp, st, page, v, goalPage)
	p.finish(ctx, start)
}

// pageView tracks a page view that no rule personalizes: the journey
// advances and the events are reported as on any page; it returns the
// view's outcome for the state cookie. The profile is looked up only when
// something needs it, from the cache: a page without rules waits for the
// store (at most miss_budget) only when its journey entry would move the
// visitor's stage, which depends on the profile's.
func (p *Proxy) pageView(ctx *fasthttp.RequestCtx, st *ruleState, v *visit) (out journey.Outcome) {
	if v.preview != nil {
		// A preview always explains itself, even where no rule applies.
		ctx.Response.Header.Set("X-Tailor-Decision", "rules=; preview")
		return out
	}
	defer func() {
		if r := recover(); r != nil {
			// A bug: the page goes out as the origin sent it, without
			// tracking.
			p.log.Error("tracking a page view panicked", "panic", r, "path", string(ctx.Path()))
			v.view, out = nil, journey.Outcome{}
		}
	}()
	step := journey.StepOf(st.set, string(ctx.Path()))
	reporting := p.events != nil && v.tracked
	var profile *cache.Profile
	if step.Stage != "" || reporting {
		profile = p.peek(v, step.Stage != "")
	}
	p.track(st.set, &ctx.Request, v, profile, step)
	p.countView(v)
	var dec rules.Decision
	if reporting {
		// The visitor as the rules see them, for the events: their
		// segments and stage, and the experiments every page is in.
		visitor, request := visitorOf(&ctx.Request, &v.id, profile, v.view, v.now, p.trustsClient(ctx))
		v.asSeen(visitor, request)
		if st.set != nil {
			dec = st.set.Decide(nil, visitor, request)
		} else {
			dec = rules.Decision{Segments: visitor.Segments, Stage: visitor.Stage, Persona: visitor.Persona}
		}
	}
	return p.conclude(ctx, v, &dec, nil)
}

func (p *Proxy) countView(v *visit) {
	switch {
	case v.excludedBot:
		p.m.Bots.Inc()
	case v.tracked:
		p.m.Tracked.Inc()
	default:
		p.m.OptedOut.Inc()
	}
}

// respond turns the origin's response into the visitor's. It takes
// ownership of resp. This is the one place where a response may be
// changed: the rewrite engine plugs in here, for 2xx text/html answers to
// a GET on a path with rules (page not nil, and v the visitor). Every 2xx
// text/html answer identifies the visitor (a fresh cookie when theirs is
// missing or forged); with goalPage it gets the goal script. Everything
// else passes through, streamed.
func (p *Proxy) respond(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, st *ruleState, page *rules.Page, v *visit, goalPage bool) {
	out := &ctx.Response
	if ctx.Request.Header.ConnectionClose() {
		out.SetConnectionClose()
	}
	html := isHTML2xx(resp)
	if html && goalPage {
		resp = p.withGoalScript(ctx, resp, st) // a page with click goals (beacon.go)
	}
	if page != nil && html && resp.BodyStream() != nil {
		p.personalize(ctx, resp, st, page, v)
		return
	}
	if html && v == nil {
		v = p.visitorFor(&ctx.Request, p.now())
	}
	var view journey.Outcome
	if html && !ctx.IsHead() {
		view = p.pageView(ctx, st, v)
	}
	stream := resp.BodyStream()
	header.CopyResponse(&out.Header, &resp.Header, stream == nil)
	if html {
		p.setVisitorCookies(&out.Header, v, &view)
	}
	if stream == nil {
		fasthttp.ReleaseResponse(resp)
		return
	}
	out.SetBodyStream(&originBody{resp: resp, r: stream, n: p.m.ResponseBytes}, resp.Header.ContentLength())
}

func (p *Proxy) finish(ctx *fasthttp.RequestCtx, start time.Time) {
	p.m.CountStatus(ctx.Response.StatusCode())
	p.m.Duration.Observe(time.Since(start).Seconds())
}

// outboundHeaders fills req with what the origin should see: the client's
// request line and headers exactly as they came (order, case, duplicates,
// cookie bytes), minus hop-by-hop headers, plus X-Forwarded-*. For a page
// tailor may change (wholePage: rules, the goal script), the origin's page
// is asked whole and afresh (header.Forward.WholePage: no Range, If-Range
// or validators), and a HEAD is asked as a GET, whose page gives the
// answer's length. The client's request itself is left as it came.
func (p *Proxy) outboundHeaders(ctx *fasthttp.RequestCtx, req *fasthttp.Request, wholePage bool) {
	in := &ctx.Request.Header
	out := &req.Header
	// Raw mode: fasthttp keeps every header as given and frames the body
	// itself from the body we set.
	out.DisableSpecialHeader()
	out.DisableNormalizing()
	if wholePage && ctx.IsHead() {
		out.SetMethod(fasthttp.MethodGet)
	} else {
		out.SetMethodBytes(in.Method())
	}
	out.SetRequestURIBytes(header.OriginForm(in.RequestURI()))
	client := remoteAddr(ctx)
	fwd := header.Forward{
		Client:        client,
		Trusted:       p.trustsClient(ctx),
		TLS:           ctx.IsTLS(),
		Host:          p.originHost,
		DefaultHost:   p.origin.Addr,
		WholePage:     wholePage,
		Underscores:   p.cfg.UnderscoresInHeaders,
		PrivateCookie: ConsoleCookie,
	}
	if n := fwd.Copy(out, in.RawHeaders()); n > 0 {
		p.m.DroppedHeaders.Add(float64(n))
	}
}

// ConsoleCookie is the cookie of an operator's console login (the admin
// package sets it). A browser sends it along to the proxy too when the
// admin listener is on the same host; outboundHeaders keeps it from the
// origin.
const ConsoleCookie = "tailor_console"

// trustsClient reports whether the client is one of trusted_proxies.
func (p *Proxy) trustsClient(ctx *fasthttp.RequestCtx) bool {
	return len(p.trusted) > 0 && listen.IsTrusted(p.trusted, remoteAddr(ctx))
}

func remoteAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	if ta, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	return netip.IPv4Unspecified()
}

// reject answers a request tailor refuses to forward, and closes the
// connection: after a framing error we cannot know where the next request
// would start.
func (p *Proxy) reject(ctx *fasthttp.RequestCtx, status int, reason string) {
	p.m.Rejected.Inc(reason)
	p.m.CountStatus(status)
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(fasthttp.StatusMessage(status) + "\n")
	ctx.SetConnectionClose()
}

func (p *Proxy) originFailed(ctx *fasthttp.RequestCtx, err error) {
	status, kind, body := classifyOriginError(err)
	p.m.OriginErrors.Inc(kind)
	p.log.Debug("origin request failed", "kind", kind, "err", err)
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(body)
}

// handleParseError answers requests fasthttp could not parse: they never
// reach the handler, let alone the origin.
func (p *Proxy) handleParseError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		p.reject(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, header.RejectHeaderTooLarge)
	case isTimeout(err):
		p.reject(ctx, fasthttp.StatusRequestTimeout, header.RejectTimeout)
	default:
		p.reject(ctx, fasthttp.StatusBadRequest, header.RejectBadRequest)
	}
}

// countingReader counts the bytes read through it into a metric, once, at
// EOF or error, so the hot loop does no atomic per read.
type countingReader struct {
	r    io.Reader
	n    prometheus.Counter
	read int
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.read += n
	if err != nil && c.n != nil {
		c.n.Add(float64(c.read))
		c.n = nil
	}
	return n, err
}

// originBody streams the origin's body to the visitor. fasthttp closes it
// when the response is written or the visitor goes away; closing returns
// the origin connection to the pool (or drops it, if the body was not read
// to its end).
type originBody struct {
	resp   *fasthttp.Response
	r      io.Reader
	n      prometheus.Counter
	sent   int
	prefix *bytebufferpool.ByteBuffer // part of the body read before streaming began; nil if none
}

func (b *originBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.sent += n
	return n, err
}

// WriteTo streams the body to fasthttp's body writer in large writes,
// flushing when the origin pauses (flush.go).
func (b *originBody) WriteTo(w io.Writer) (int64, error) {
	n, err := flush.Copy(w, b.r)
	b.sent += int(n)
	return n, err
}

// SupportsBodyWriteTo lets fasthttp use WriteTo: it reads exactly what Read
// would, and counts it the same way.
func (b *originBody) SupportsBodyWriteTo() bool { return true }

var _ fasthttp.BodyWriterTo = (*originBody)(nil)

func (b *originBody) Close() error {
	b.n.Add(float64(b.sent))
	err := b.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(b.resp)
	if b.prefix != nil {
		putPageBuf(b.prefix) // a page buffer (personalize)
	}
	return err
}

// fasthttpLogger routes fasthttp's own messages into slog.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug("fasthttp", "msg", fmt.Sprintf(format, args...))
}
