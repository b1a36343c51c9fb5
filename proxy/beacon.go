package proxy

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/maphash"
	"io"
	"math"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"
	"golang.org/x/net/html"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/identity"
	"github.com/tailor-edge/tailor/internal/coding"
	"github.com/tailor-edge/tailor/internal/header"
	"github.com/tailor-edge/tailor/journey"
	"github.com/tailor-edge/tailor/rules"
	natsync "github.com/tailor-edge/tailor/sync"
)

// The beacon (SPEC "HTTP"): POST beacon_path records a goal the page
// reports, a click or an add-to-cart over XHR that no page view shows.
// tailor answers it itself; the origin never sees it. GET beacon_path.js
// is the goal script, which tailor adds to pages with click goals.

// Results of a beacon request: the labels of tailor_beacon_total.
const (
	beaconAccepted    = "accepted"     // a goal event was published
	beaconDuplicate   = "duplicate"    // the same client id again: no second event
	beaconRateLimited = "rate_limited" // over the visitor's allowance: dropped, 204
	beaconForbidden   = "forbidden"    // cross-site: 403
	beaconInvalid     = "invalid"      // 400, 405, 413, 415
	beaconIgnored     = "ignored"      // 204 without an event: no valid cookie, opted out, a bot, no events
)

// Limits of the beacon.
const (
	// MaxBeaconBody is the largest report body; beyond it, 413.
	MaxBeaconBody = 4 << 10
	// beaconBurst reports may come at once from one visitor, and then
	// beaconRate a second; beyond, reports are dropped (still 204).
	beaconBurst = 20
	beaconRate  = 1.0
	// beaconVisitors bounds the visitors whose token buckets are kept
	// (the least recently seen go first: they get a full bucket back).
	beaconVisitors = 100_000
	// beaconWindow is how long a (visitor, client id) is remembered, and
	// beaconSeen how many at most: a report sent again within the window
	// is counted once.
	beaconWindow = 10 * time.Minute
	beaconSeen   = 100_000
)

// Results of adding the goal script to a page: the labels of
// tailor_goal_script_total.
const (
	scriptAdded    = "added"     // the tag went in
	scriptPresent  = "present"   // the page already loads the script
	scriptTooLarge = "too_large" // larger than max_rewrite_body: sent as is
	scriptEncoding = "encoding"  // a content coding tailor cannot read or write: sent as is
	scriptError    = "error"     // the origin broke off, or a bug: sent as is
)

//go:embed beacon.js
var goalScript []byte

// goalScriptETag names this build's goal script.
var goalScriptETag = func() string {
	sum := sha256.Sum256(goalScript)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}()

// beacon is the state of the beacon endpoint: its paths, its rate limits
// and the reports it has seen, all bounded.
type beacon struct {
	path, script string // beacon_path and beacon_path + ".js"
	results      *prometheus.CounterVec
	scripts      *prometheus.CounterVec

	// The visitors' buckets and the reports seen are keyed by a hash of
	// the visitor (and the report's id): 64 bits, where a collision among
	// 10^5 keys has odds of 10^-9, take a third of the memory strings do.
	seed    maphash.Seed
	mu      sync.Mutex
	buckets *lru.Cache[uint64, tokenBucket]
	seen    *expirable.LRU[uint64, struct{}]
}

// tokenBucket is one visitor's allowance of reports.
type tokenBucket struct {
	tokens float64
	at     time.Time
}

// newBeacon returns the beacon of cfg, registering its metrics on reg;
// nil when beacon_path is "".
func newBeacon(cfg *config.Config, reg prometheus.Registerer) (*beacon, error) {
	if cfg.BeaconPath == "" {
		return nil, nil
	}
	b := &beacon{
		path:   cfg.BeaconPath,
		script: cfg.BeaconPath + ".js",
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailor_beacon_total",
			Help: "Goal reports to beacon_path, by result: accepted, duplicate (the same client id again), rate_limited (over the visitor's allowance: dropped, answered 204), forbidden (cross-site, 403), invalid (400, 405, 413, 415), ignored (no valid visitor cookie, opted out, a bot, or no events).",
		}, []string{"result"}),
		scripts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailor_goal_script_total",
			Help: "Pages with click goals, by what became of the goal script tag: added, present (the page loads it already), too_large, encoding, error (the page went out as the origin sent it).",
		}, []string{"result"}),
		seed: maphash.MakeSeed(),
		seen: expirable.NewLRU[uint64, struct{}](beaconSeen, nil, beaconWindow),
	}
	var err error
	if b.buckets, err = lru.New[uint64, tokenBucket](beaconVisitors); err != nil {
		return nil, err
	}
	for _, r := range []string{beaconAccepted, beaconDuplicate, beaconRateLimited, beaconForbidden, beaconInvalid, beaconIgnored} {
		b.results.WithLabelValues(r)
	}
	for _, r := range []string{scriptAdded, scriptPresent, scriptTooLarge, scriptEncoding, scriptError} {
		b.scripts.WithLabelValues(r)
	}
	if err := reg.Register(b.results); err != nil {
		return nil, err
	}
	if err := reg.Register(b.scripts); err != nil {
		return nil, err
	}
	return b, nil
}

// allow takes a token from visitor's bucket, if it has one.
func (b *beacon) allow(visitor string, now time.Time) bool {
	key := maphash.String(b.seed, visitor)
	b.mu.Lock()
	defer b.mu.Unlock()
	tb, ok := b.buckets.Get(key)
	if !ok {
		tb = tokenBucket{tokens: beaconBurst, at: now}
	}
	if d := now.Sub(tb.at); d > 0 {
		tb.tokens = min(beaconBurst, tb.tokens+d.Seconds()*beaconRate)
		tb.at = now
	}
	allowed := tb.tokens >= 1
	if allowed {
		tb.tokens--
	}
	b.buckets.Add(key, tb)
	return allowed
}

// firstTime reports whether visitor's report id is new within the
// window, and remembers it.
func (b *beacon) firstTime(visitor, id string) bool {
	var h maphash.Hash
	h.SetSeed(b.seed)
	h.WriteString(visitor)
	h.WriteByte(0)
	h.WriteString(id)
	key := h.Sum64()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen.Contains(key) {
		return false
	}
	b.seen.Add(key, struct{}{})
	return true
}

// serveBeacon answers a request for the beacon or its script and reports
// true; false for any other path.
func (p *Proxy) serveBeacon(ctx *fasthttp.RequestCtx, start time.Time) bool {
	b := p.beacon
	if b == nil {
		return false
	}
	switch path := ctx.Path(); string(path) {
	case b.path:
		result := p.goalReport(ctx, b)
		b.results.WithLabelValues(result).Inc()
	case b.script:
		serveGoalScript(ctx)
	default:
		return false
	}
	p.finish(ctx, start)
	return true
}

// serveGoalScript answers GET beacon_path.js: the same bytes for every
// page and visitor, cacheable anywhere.
func serveGoalScript(ctx *fasthttp.RequestCtx) {
	resp := &ctx.Response
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
		resp.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
		return
	}
	resp.Header.Set(fasthttp.HeaderCacheControl, "public, max-age=3600")
	resp.Header.Set(fasthttp.HeaderETag, goalScriptETag)
	resp.Header.Set("X-Content-Type-Options", "nosniff")
	if inm := ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch); etagMatches(inm, goalScriptETag) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	ctx.SetContentType("text/javascript; charset=utf-8")
	ctx.SetBody(goalScript)
}

// etagMatches reports whether If-None-Match value inm names etag.
func etagMatches(inm []byte, etag string) bool {
	for _, t := range bytes.Split(inm, []byte{','}) {
		t = bytes.TrimPrefix(bytes.TrimSpace(t), []byte("W/"))
		if string(t) == etag || string(t) == "*" {
			return true
		}
	}
	return false
}

// goalReportBody is what a page posts.
type goalReportBody struct {
	Goal  string   `json:"goal"`
	Value *float64 `json:"value"`
	ID    string   `json:"id"`
}

// clientIDRe is a report's id: up to 64 letters, digits, _ and -.
var clientIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// goalReport answers POST beacon_path and returns the result to count.
func (p *Proxy) goalReport(ctx *fasthttp.RequestCtx, b *beacon) (result string) {
	defer func() {
		if r := recover(); r != nil {
			// A bug: nothing is recorded, and the page goes on.
			p.log.Error("a goal report panicked", "panic", r)
			ctx.Response.Reset()
			ctx.SetStatusCode(fasthttp.StatusInternalServerError)
			result = beaconInvalid
		}
	}()
	fail := func(status int, msg string) string {
		ctx.SetStatusCode(status)
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString(msg + "\n")
		return beaconInvalid
	}
	resp := &ctx.Response
	resp.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	if !ctx.IsPost() {
		resp.Header.Set(fasthttp.HeaderAllow, "POST")
		ctx.SetConnectionClose() // a body may follow that nobody reads
		return fail(fasthttp.StatusMethodNotAllowed, "the beacon takes POST")
	}
	if !p.sameSite(ctx) {
		ctx.SetConnectionClose()
		ctx.SetStatusCode(fasthttp.StatusForbidden)
		return beaconForbidden
	}
	if ctx.Request.Header.ContentLength() > MaxBeaconBody {
		ctx.SetConnectionClose()
		return fail(fasthttp.StatusRequestEntityTooLarge, "a goal report is at most 4 KiB")
	}
	body, err := io.ReadAll(io.LimitReader(ctx.RequestBodyStream(), MaxBeaconBody+1))
	switch {
	case err != nil:
		ctx.SetConnectionClose()
		return fail(fasthttp.StatusBadRequest, "the report's body could not be read")
	case len(body) > MaxBeaconBody:
		ctx.SetConnectionClose()
		return fail(fasthttp.StatusRequestEntityTooLarge, "a goal report is at most 4 KiB")
	}
	if !reportType(ctx.Request.Header.ContentType()) {
		return fail(fasthttp.StatusUnsupportedMediaType, "a goal report is JSON, sent as text/plain or application/json")
	}
	var r goalReportBody
	if err := json.Unmarshal(body, &r); err != nil {
		return fail(fasthttp.StatusBadRequest, `want {"goal": NAME, "value": N, "id": CLIENT_ID}`)
	}
	st := p.rules.Load()
	var set *rules.Set
	if st != nil {
		set = st.set
	}
	goal, ok := set.Goal(r.Goal)
	if !ok {
		return fail(fasthttp.StatusBadRequest, "undeclared goal "+config.Truncate(r.Goal, 40)+": declare it under goals: in the rules")
	}
	value := goal.Value
	if r.Value != nil {
		if v := *r.Value; v < 0 || v > goal.MaxValue || math.IsNaN(v) {
			return fail(fasthttp.StatusBadRequest, "the value is outside what the goal allows (0 to its max_value)")
		}
		value = *r.Value
	}
	if r.ID != "" && !clientIDRe.MatchString(r.ID) {
		return fail(fasthttp.StatusBadRequest, "id: up to 64 letters, digits, _ and -")
	}

	// A valid report; from here on the page is told 204 whatever is done
	// with it, so that it cannot tell an opted-out visitor from another.
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	req := &ctx.Request
	now := p.now()
	device, excludedBot := p.deviceOf(req)
	if p.events == nil || !p.tracking(req) || excludedBot {
		return beaconIgnored
	}
	id, ok := p.reportingVisitor(req, now)
	if !ok {
		return beaconIgnored
	}
	if !b.allow(id.AnonymousID, now) {
		// Dropped, and told 204 all the same: a 429 only a tracked
		// visitor can get would tell a page who is tracked.
		return beaconRateLimited
	}
	if r.ID != "" && !b.firstTime(id.AnonymousID, r.ID) {
		return beaconDuplicate
	}
	e := p.goalEvent(ctx, set, id, device, now)
	e.Type, e.Goal, e.Value = natsync.EventGoal, goal.Name, value
	p.publish(e)
	return beaconAccepted
}

// reportType reports whether a report's Content-Type is one a page sends
// JSON with: text/plain (navigator.sendBeacon with a string) or
// application/json; none at all counts as text.
func reportType(ct []byte) bool {
	mt, _, _ := bytes.Cut(ct, []byte{';'})
	mt = bytes.TrimSpace(mt)
	return len(mt) == 0 || header.EqualFold(mt, "text/plain") || header.EqualFold(mt, "application/json")
}

// sameSite reports whether a report may come from the page that sends it:
// not when the browser says the request is cross-site (Sec-Fetch-Site),
// nor when its Origin names another host than the one it is sent to.
// Requests without either (older browsers, curl) still need the visitor's
// cookie, which SameSite keeps from cross-site posts.
func (p *Proxy) sameSite(ctx *fasthttp.RequestCtx) bool {
	raw := ctx.Request.Header.RawHeaders()
	if header.EqualFold(rawHeader(raw, "Sec-Fetch-Site"), "cross-site") {
		return false
	}
	o := rawHeader(raw, "Origin")
	if o == nil {
		return true
	}
	u, err := url.Parse(string(o))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false // "null" (a sandboxed frame, a file), or garbage
	}
	return strings.EqualFold(stripDefaultPort(u.Host), stripDefaultPort(string(ctx.Host())))
}

// stripDefaultPort drops :80 and :443 from a host[:port]: the Host header
// may carry them where an Origin does not.
func stripDefaultPort(h string) string {
	if s, ok := strings.CutSuffix(h, ":80"); ok {
		return s
	}
	if s, ok := strings.CutSuffix(h, ":443"); ok {
		return s
	}
	return h
}

// reportingVisitor is who sends a report: the visitor of a valid signed
// cookie, with the subject of a valid token; ok is false without such a
// cookie (no id is minted for a report: the page view gave it).
func (p *Proxy) reportingVisitor(req *fasthttp.Request, now time.Time) (id visitorIdentity, ok bool) {
	c := req.Header.Cookie(p.signer.Name())
	if len(c) == 0 {
		return id, false
	}
	if id.AnonymousID, ok = p.signer.Verify(c); !ok {
		return id, false
	}
	if claims, reason, logged := p.login(req, now); logged && reason == "" {
		id.Subject, id.TokenSegments = claims.Subject, claims.Segments
	}
	return id, true
}

// goalEvent is the event of a report, without its type and goal: the
// page it came from (its Referer, when on this host, whose query gives
// the campaign) and the visitor as the edge knows them now, from their
// cached profile and their state cookie, without moving their journey.
func (p *Proxy) goalEvent(ctx *fasthttp.RequestCtx, set *rules.Set, id visitorIdentity, device string, now time.Time) *natsync.Event {
	req := &ctx.Request
	e := &natsync.Event{Time: now.UTC(), Visitor: id.Key(), AnonymousID: id.AnonymousID, Segments: []string{},
		Device: device, Country: countryOf(req.Header.RawHeaders(), p.trustsClient(ctx)), Bot: device == "bot"}
	if ref := rawHeader(req.Header.RawHeaders(), fasthttp.HeaderReferer); len(ref) > 0 {
		if u, err := url.Parse(string(ref)); err == nil && strings.EqualFold(stripDefaultPort(u.Host), stripDefaultPort(string(ctx.Host()))) {
			u.Fragment, u.RawFragment = "", ""
			e.URL, e.Path = u.String(), u.Path
			if e.Path == "" {
				e.Path = "/"
			}
			q := u.Query()
			e.UTMSource, e.UTMCampaign = q.Get("utm_source"), q.Get("utm_campaign")
		}
	}
	v := &visit{now: now, id: id, tracked: true, device: device}
	profile := p.peek(v, false)
	prev, ok := identity.State{}, false
	if c := req.Header.Cookie(p.signer.StateName()); len(c) > 0 {
		prev, ok = p.signer.DecodeState(id.AnonymousID, c)
	}
	view := journey.Next(set, prev, ok, journey.Input{Profile: profile, Unsure: v.unsure, Subject: id.Subject, Now: now})
	if set == nil {
		e.Stage, e.Persona = view.Stage, view.Persona
		return e
	}
	visitor, request := visitorOf(req, &v.id, profile, view, now, p.trustsClient(ctx))
	v.asSeen(visitor, request)
	if e.Path != "" {
		request.Path = e.Path
	}
	dec := set.Decide(nil, visitor, request)
	e.Stage, e.Persona = dec.Stage, dec.Persona
	if dec.Segments != nil {
		e.Segments = dec.Segments
	}
	return e
}

// goalPage reports whether the page asked for gets the goal script: the
// beacon is on, the request is a GET or HEAD for a path with a click goal,
// and the visitor's reports would count. A bot that exclude_bots keeps out
// and a visitor who opted out report nothing: their page is the origin's,
// streamed, its validators kept. A goal page is asked of the origin
// whole (a HEAD as a GET, whose page gives the length; no Range) and
// without the browser's If-None-Match or If-Modified-Since: a copy cached
// before the goal existed has no tag, and the origin's 304 would keep it.
func (p *Proxy) goalPage(ctx *fasthttp.RequestCtx, st *ruleState) bool {
	if p.beacon == nil || st == nil || !(ctx.IsGet() || ctx.IsHead()) || !st.set.HasClickGoal(string(ctx.Path())) {
		return false
	}
	req := &ctx.Request
	if _, excluded := p.deviceOf(req); excluded {
		return false
	}
	return p.tracking(req)
}

// withGoalScript returns the origin's response with the goal script's
// tag added before </body> when the page has click goals (and the beacon
// is on): the rest of the page byte for byte, in its content coding, with
// the page's CSP nonce on the tag, as if the origin had sent it. It
// takes ownership of resp and returns the response to serve: resp itself
// when the page has no click goals, or when it cannot be changed (too
// large, an unknown coding), unchanged.
func (p *Proxy) withGoalScript(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, st *ruleState) (out *fasthttp.Response) {
	b := p.beacon
	if b == nil || st == nil || resp.BodyStream() == nil {
		return resp
	}
	goals := st.set.ClickGoals(string(ctx.Path()))
	if len(goals) == 0 {
		return resp
	}
	limit := int(p.cfg.MaxRewriteBody)
	enc := coding.Parse(resp.Header.ContentEncoding())
	switch {
	case enc == coding.Unknown:
		b.scripts.WithLabelValues(scriptEncoding).Inc()
		return resp
	case resp.Header.ContentLength() > limit:
		b.scripts.WithLabelValues(scriptTooLarge).Inc()
		return resp
	}
	stream := resp.BodyStream()
	raw, err := io.ReadAll(io.LimitReader(stream, int64(limit)+1))
	if err != nil || len(raw) > limit {
		// What was read goes out first, then the rest as it comes.
		b.scripts.WithLabelValues(map[bool]string{true: scriptError, false: scriptTooLarge}[err != nil]).Inc()
		return replaceBody(resp, &heldBody{r: io.MultiReader(bytes.NewReader(raw), stream), old: resp}, resp.Header.ContentLength(), false)
	}
	resp.CloseBodyStream()
	page, result := p.addGoalScript(resp, raw, goals, enc, limit)
	b.scripts.WithLabelValues(result).Inc()
	return replaceBody(resp, bytes.NewReader(page), len(page), result == scriptAdded)
}

// replaceBody returns a response with resp's headers and body, of size
// bytes (-1 for unknown); changed drops the validators of the origin's
// bytes. resp is released unless body still reads from it (a heldBody,
// which releases it when closed).
func replaceBody(resp *fasthttp.Response, body io.Reader, size int, changed bool) *fasthttp.Response {
	out := fasthttp.AcquireResponse()
	resp.Header.CopyTo(&out.Header)
	out.Header.SetNoDefaultContentType(true)
	out.SetBodyStream(body, size)
	if changed {
		dropOriginValidators(&out.Header)
	}
	if _, held := body.(*heldBody); !held {
		fasthttp.ReleaseResponse(resp)
	}
	return out
}

// heldBody reads on from the origin's response, which it closes and
// releases when it is closed.
type heldBody struct {
	r   io.Reader
	old *fasthttp.Response
}

func (h *heldBody) Read(b []byte) (int, error) { return h.r.Read(b) }

func (h *heldBody) Close() error {
	err := h.old.CloseBodyStream()
	fasthttp.ReleaseResponse(h.old)
	return err
}

// addGoalScript returns the page raw (in content coding enc) with the
// goal script tag added, and the result to count; raw itself when it
// cannot be added.
func (p *Proxy) addGoalScript(resp *fasthttp.Response, raw []byte, goals []rules.ClickGoal, enc coding.Coding, limit int) (page []byte, result string) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("adding the goal script panicked; served the origin's page", "panic", r)
			page, result = raw, scriptError
		}
	}()
	plain := raw
	if enc != coding.Identity {
		buf := bytebufferpool.Get()
		defer bytebufferpool.Put(buf)
		if err := coding.Decode(buf, raw, enc, limit); err != nil {
			if errors.Is(err, coding.ErrTooLarge) {
				return raw, scriptTooLarge
			}
			return raw, scriptError
		}
		plain = buf.B
	}
	at, pageNonce, present := goalScriptSpot(plain, p.beacon.script)
	if present {
		return raw, scriptPresent
	}
	// The policy's nonce is the one the browser checks; a page's script
	// may carry a stale one (a cached fragment), so it comes second.
	nonce := cspNonce(&resp.Header)
	if nonce == "" {
		nonce = pageNonce
	}
	tag := goalScriptTag(p.beacon, goals, nonce)
	out := make([]byte, 0, len(plain)+len(tag))
	out = append(out, plain[:at]...)
	out = append(out, tag...)
	out = append(out, plain[at:]...)
	if enc == coding.Identity {
		return out, scriptAdded
	}
	buf := bytebufferpool.Get()
	defer bytebufferpool.Put(buf)
	if err := coding.Encode(buf, out, enc); err != nil {
		return raw, scriptEncoding
	}
	return bytes.Clone(buf.B), scriptAdded
}

// goalScriptSpot finds where the goal script's tag goes in page: before
// its last </body> (else its last </html>, else at its end), as an HTML
// tokenizer sees the page, so that a "</body>" inside a script or a
// comment is not taken for one. It also returns the nonce of the page's
// first <script nonce>, and whether a script already loads src.
func goalScriptSpot(page []byte, src string) (at int, nonce string, present bool) {
	z := html.NewTokenizer(bytes.NewReader(page))
	off, body, htm := 0, -1, -1
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		raw := z.Raw()
		start := off
		off += len(raw)
		// The raw tag is looked at first: asking the tokenizer for names
		// and attributes copies and unescapes them, for every tag.
		switch tt {
		case html.StartTagToken, html.SelfClosingTagToken:
			if len(raw) < 8 || !header.EqualFold(raw[1:7], "script") {
				continue
			}
			name, more := z.TagName()
			if string(name) != "script" {
				continue
			}
			for more {
				var k, v []byte
				k, v, more = z.TagAttr()
				switch string(k) {
				case "nonce":
					if nonce == "" && nonceRe.Match(v) {
						nonce = string(v)
					}
				case "src":
					present = present || string(v) == src
				}
			}
		case html.EndTagToken:
			switch {
			case len(raw) >= 7 && header.EqualFold(raw[2:6], "body") && endOfName(raw[6]):
				body = start
			case len(raw) >= 7 && header.EqualFold(raw[2:6], "html") && endOfName(raw[6]):
				htm = start
			}
		}
	}
	switch {
	case body >= 0:
		return body, nonce, present
	case htm >= 0:
		return htm, nonce, present
	}
	return len(page), nonce, present
}

// endOfName reports whether c ends a tag name ("</body>", "</body >").
func endOfName(c byte) bool {
	return c == '>' || c == '/' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

// nonceRe is what a CSP nonce may hold (base64 or base64url): nothing
// that could leave the attribute it is written in.
var nonceRe = regexp.MustCompile(`^[A-Za-z0-9+/_=-]{1,256}$`)

// cspNonce returns the nonce a script of the page may carry: the first
// valid 'nonce-…' of the script-src-elem directive of the response's
// Content-Security-Policy headers, else of script-src, else of
// default-src (enforced policies first, then report-only), or "".
func cspNonce(h *fasthttp.ResponseHeader) string {
	for _, name := range []string{"Content-Security-Policy", "Content-Security-Policy-Report-Only"} {
		for _, directive := range []string{"script-src-elem", "script-src", "default-src"} {
			for k, v := range h.All() {
				if !header.EqualFold(k, name) {
					continue
				}
				for _, d := range strings.Split(string(v), ";") {
					f := strings.Fields(d)
					if len(f) == 0 || !strings.EqualFold(f[0], directive) {
						continue
					}
					for _, src := range f[1:] {
						if n, ok := strings.CutPrefix(src, "'nonce-"); ok {
							if n, ok = strings.CutSuffix(n, "'"); ok && nonceRe.MatchString(n) {
								return n
							}
						}
					}
				}
			}
		}
	}
	return ""
}

// goalScriptTag writes the goal script's tag for a page's click goals.
func goalScriptTag(b *beacon, goals []rules.ClickGoal, nonce string) []byte {
	type clickGoal struct {
		Goal  string   `json:"goal"`
		Click []string `json:"click"`
	}
	list := make([]clickGoal, len(goals))
	for i, g := range goals {
		list[i] = clickGoal{g.Goal, g.Click}
	}
	js, _ := json.Marshal(list)
	var t bytes.Buffer
	t.WriteString(`<script src="`)
	t.WriteString(html.EscapeString(b.script))
	t.WriteString(`" defer`)
	if nonce != "" {
		t.WriteString(` nonce="`)
		t.WriteString(nonce)
		t.WriteString(`"`)
	}
	t.WriteString(` data-tailor-beacon="`)
	t.WriteString(html.EscapeString(b.path))
	t.WriteString(`" data-tailor-goals="`)
	t.WriteString(html.EscapeString(string(js)))
	t.WriteString(`"></script>`)
	return t.Bytes()
}
