package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/internal/coding"
	"github.com/tailor-edge/tailor/internal/header"
	"github.com/tailor-edge/tailor/journey"
	"github.com/tailor-edge/tailor/rewrite"
	"github.com/tailor-edge/tailor/rules"
)

// Results of trying to personalize a response; they label
// tailor_rewrites_total.
const (
	rewriteDone     = "rewritten"   // rules fired and the page was changed
	rewriteNoChange = "unchanged"   // rules were tried, none fired
	rewriteTooLarge = "too_large"   // larger than max_rewrite_body: streamed untouched
	rewriteEncoding = "encoding"    // a content coding tailor cannot read
	rewriteComplex  = "too_complex" // matching the selectors ran out of budget (rewrite.ErrTooComplex)
	rewriteConflict = "conflict"    // streamed, and the page changed before the predicted first change (stream.go)
	rewriteError    = "error"       // anything else: the origin's response was served (fail-open)
	rewritePanicked = "panic"       // a bug: recovered, origin's response served
)

func isHTMLType(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return header.EqualFold(bytes.TrimSpace(ct), "text/html")
}

// personalize buffers, decodes, rewrites and re-encodes an HTML response
// for the visitor. Whatever goes wrong, the visitor gets the origin's
// response unchanged (fail-open). It takes ownership of resp.
func (p *Proxy) personalize(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, st *ruleState, page *rules.Page, v *visit) {
	start := time.Now()
	out := &ctx.Response
	stream := resp.BodyStream()
	limit := int(p.cfg.MaxRewriteBody)
	v.rulesVersion = st.version

	// Decide first: the decision needs the visitor and the request, not
	// the page. When no rule applies, the page streams through as the
	// origin sends it, never buffered, decoded or compiled.
	dec, result := p.decide(ctx, st, page, v)
	if result != "" {
		shown := p.settle(ctx, v, &dec, nil, result, true)
		view := p.conclude(ctx, v, &dec, shown)
		p.passThrough(out, resp, stream, nil, v, &view)
		markPersonalized(&out.Header, false)
		markPreview(&out.Header, v) // again: markPersonalized made it private
		return
	}

	edits := pageEdits(&dec)
	key := p.pageKey(ctx, st)
	if plan, ok := p.streamable(ctx, resp, page, key, &dec, v, edits); ok {
		p.personalizeStreamed(ctx, resp, page, v, &dec, edits, key, plan, start)
		return
	}

	cl := resp.Header.ContentLength()
	if cl > limit {
		shown := p.settle(ctx, v, &dec, nil, rewriteTooLarge, true)
		view := p.conclude(ctx, v, &dec, shown)
		p.passThrough(out, resp, stream, nil, v, &view)
		return
	}
	hint := 64 << 10 // the buffer to read a page of unknown length into
	if cl > 0 {
		hint = cl
	}
	raw := getPageBuf(hint)
	n, err := io.Copy(raw, io.LimitReader(stream, int64(limit)+1))
	if err != nil {
		// The origin broke off mid-body, before anything was sent: the
		// visitor gets a 502, as for any origin that fails to answer.
		putPageBuf(raw)
		p.settle(ctx, v, &dec, nil, rewriteError, false)
		p.log.Debug("read origin body", "err", err)
		resp.CloseBodyStream()
		fasthttp.ReleaseResponse(resp)
		out.Reset()
		out.Header.SetContentType("text/plain; charset=utf-8")
		out.SetStatusCode(fasthttp.StatusBadGateway)
		out.SetBodyString("502 Bad Gateway: the origin broke off its response\n")
		return
	}
	if n > int64(limit) {
		// Chunked and larger than the limit: stream what we read, then the rest.
		shown := p.settle(ctx, v, &dec, nil, rewriteTooLarge, true)
		view := p.conclude(ctx, v, &dec, shown)
		p.passThrough(out, resp, stream, raw, v, &view)
		return
	}
	// The whole body is in raw: the origin connection can go back to the pool.
	resp.CloseBodyStream()

	room := getApplied(len(edits))
	body, done, result := p.rewriteBody(ctx, resp, key, page, edits, raw.B, *room, len(dec.Actions) == 0)
	shown := p.settle(ctx, v, &dec, done, result, true)
	appliedPool.Put(room)
	view := p.conclude(ctx, v, &dec, shown)
	p.m.RewriteTime.Observe(time.Since(start).Seconds())
	header.CopyResponse(&out.Header, &resp.Header, false)
	fasthttp.ReleaseResponse(resp)
	// The response streams the page from its buffer, which goes back to
	// the page pool when written (pagebuf.go: not through fasthttp's body
	// buffers, whose pool calibrates to recent sizes too).
	if body == nil {
		out.SetBodyStream(&pageBody{b: raw}, len(raw.B))
	} else {
		putPageBuf(raw)
		out.SetBodyStream(&pageBody{b: body}, len(body.B))
	}
	markPersonalized(&out.Header, body != nil)
	p.setVisitorCookies(&out.Header, v, &view)
}

// decide returns what the rules decide for this visitor on page. result
// is "" when there is something to rewrite, else the label to count: no
// rule applies (unchanged), or deciding panicked.
func (p *Proxy) decide(ctx *fasthttp.RequestCtx, st *ruleState, page *rules.Page, v *visit) (dec rules.Decision, result string) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("deciding panicked; served the origin's page", "panic", r, "path", string(ctx.Path()))
			dec, result = rules.Decision{}, rewritePanicked
		}
	}()
	var visitor *rules.Visitor
	var request *rules.Request
	if v.preview != nil {
		visitor, request = visitorOf(&ctx.Request, nil, nil, nil, v.now, p.trustsClient(ctx))
		previewVisitor(st.set, visitor, v.preview)
	} else {
		// A HEAD is decided as its GET would be, but is no page view:
		// it is not counted, and conclude writes no state for it.
		visitor, request = p.evaluate(st.set, &ctx.Request, v, p.trustsClient(ctx))
		if !ctx.IsHead() {
			p.countView(v)
		}
		if !v.tracked {
			// An opted-out visitor sees every experiment's control, on
			// every request, and is counted in none.
			visitor.Control = true
		}
	}
	dec = st.set.Decide(page, visitor, request)
	if len(dec.Actions) == 0 && len(dec.Probes) == 0 {
		return dec, rewriteNoChange
	}
	return dec, ""
}

// evaluate is the visitor side of a decision, the one the proxy and
// tailor explain both run: the visitor's profile (awaited within
// miss_budget), this page view's step in their journey (track), and what
// the rules read of both and of the request. trusted says whether the
// request's country headers count.
func (p *Proxy) evaluate(set *rules.Set, req *fasthttp.Request, v *visit, trusted bool) (*rules.Visitor, *rules.Request) {
	profile := p.await(v)
	p.track(set, req, v, profile, journey.StepOf(set, string(req.URI().Path())))
	visitor, request := visitorOf(req, &v.id, profile, v.view, v.now, trusted)
	v.asSeen(visitor, request)
	return visitor, request
}

// settle counts what became of a decision, once the page is served: the
// rewrite's result, and the rules and map cases that changed the page —
// only those with an edit the renderer applied to an element (done, per
// action: for one element the first rule makes the content, whatever
// their selectors), and none when the page was not changed (done nil, or
// result not rewriteDone) — and the empty map cases chosen, which leave
// the block whatever became of the rewrite. A HEAD, or a page not served
// (served false: the origin broke off), is no page view: no rule or case
// hit is counted for it. The decision header says the same, and why the
// page was left as the origin sent it when rules applied. It returns the
// decision's exposures that were true on the page (exposuresShown), read
// before done goes back to its pool.
func (p *Proxy) settle(ctx *fasthttp.RequestCtx, v *visit, dec *rules.Decision, done []bool, result string, served bool) []rules.Exposure {
	view := served && !ctx.IsHead()
	out := p.settleMetrics(dec, outcome{done: done}, result, view)
	shown := exposuresShown(dec, &out)
	if view && len(dec.Exposures) > 0 {
		p.m.Exposures.Add("shown", float64(len(shown)))
		p.m.Exposures.Add("hidden", float64(len(dec.Exposures)-len(shown)))
	}
	if p.cfg.Debug.DecisionHeader || v.preview != nil {
		h := decisionHeader(dec, v.preview != nil, &out, shown)
		if !out.changed && len(dec.Actions) > 0 {
			h += "; unchanged=" + result
		}
		if v.rulesVersion > 0 {
			h += "; version=" + strconv.FormatUint(v.rulesVersion, 10)
		}
		ctx.Response.Header.Set("X-Tailor-Decision", h)
	}
	return shown
}

// exposuresShown returns the decision's exposures that are true on the
// page that went out (exposure truth, README "Experiments"): a probe of
// the experiment applied, whichever arm the visitor is in (a block the
// experiment targets reached the page, and, where every change its arms
// would make there for the visitor is to the content, no earlier change
// took it; see rules.Probe). It is the decision's own slice when every
// exposure is true.
func exposuresShown(dec *rules.Decision, out *outcome) []rules.Exposure {
	shown := dec.Exposures
	for k := range dec.Exposures {
		if exposureTrue(dec, &dec.Exposures[k], out) {
			if len(shown) < len(dec.Exposures) {
				shown = append(shown, dec.Exposures[k])
			}
			continue
		}
		if len(shown) == len(dec.Exposures) {
			shown = slices.Clip(dec.Exposures[:k:k])
		}
	}
	return shown
}

func exposureTrue(dec *rules.Decision, x *rules.Exposure, out *outcome) bool {
	for j := range dec.Probes {
		if dec.Probes[j].Experiment == x.Experiment && out.probed(j) {
			return true
		}
	}
	return false
}

// outcome is what the renderer reported of a decision's edits (one per
// action, editsOf): done from rewrite.Template.RenderApplied, or seg for
// a page rewritten in pieces; neither when nothing was rendered.
type outcome struct {
	done    []bool
	seg     *rewrite.Segmenter
	changed bool // settleMetrics: the page went out changed
	// probes are the decision's, whose edits are among the actions'
	// (pageEdits).
	probes []rules.Probe
}

// applied reports whether action i's edit changed an element of the
// page that went out.
func (o *outcome) applied(i int) bool {
	if !o.changed {
		return false
	}
	return o.edit(o.actionEdit(i))
}

// probed reports whether probe j applied to the page that went out: the
// block reached it. A probe changes no byte: it counts on a page that
// went out unchanged too, once rendered.
func (o *outcome) probed(j int) bool {
	return j < len(o.probes) && o.edit(o.probes[j].At+j)
}

// edit reports whether the renderer applied edit k.
func (o *outcome) edit(k int) bool {
	if o.seg != nil {
		return o.seg.Applied(k)
	}
	return k < len(o.done) && o.done[k]
}

// actionEdit is the index among the page's edits of action i's.
func (o *outcome) actionEdit(i int) int {
	k := i
	for _, pr := range o.probes {
		if pr.At > i {
			break
		}
		k++
	}
	return k
}

// ruleOfEdit returns the rule of edit k: a probe's, or an action's.
func (o *outcome) ruleOfEdit(d *rules.Decision, k int) string {
	before := 0 // probes before edit k
	for j, pr := range o.probes {
		switch at := pr.At + j; {
		case at == k:
			return pr.Rule
		case at < k:
			before++
		}
	}
	if i := k - before; i >= 0 && i < len(d.Actions) {
		return d.Actions[i].Rule
	}
	return ""
}

// pageEdits returns the edits that render a decision: its actions', with
// its probes among them where they stand (rules.Probe.At), so that a
// probe applies where the held-out change would have.
func pageEdits(dec *rules.Decision) []rewrite.Edit {
	edits := editsOf(dec.Actions)
	if len(dec.Probes) == 0 {
		return edits
	}
	out := make([]rewrite.Edit, 0, len(edits)+len(dec.Probes))
	k := 0
	for _, pr := range dec.Probes {
		at := min(max(pr.At, k), len(edits))
		out = append(out, edits[k:at]...)
		k = at
		out = append(out, rewrite.Edit{Sel: pr.Sel, Op: rewrite.Probe, Sole: pr.Content, Peek: pr.Peek})
	}
	return append(out, edits[k:]...)
}

// appliedBuf returns room to note, per edit, whether it applied: buf's
// when it is large enough, so that a page with few rules allocates none.
func appliedBuf(buf []bool, n int) []bool {
	if n <= len(buf) {
		return buf[:n]
	}
	return make([]bool, n)
}

// appliedPool holds the per-edit notes of buffered rewrites: they go to
// the heap with the renderer's edits (RawText is called through them), so
// a buffer on the stack would be an allocation per page.
var appliedPool sync.Pool // of *[]bool

// getApplied returns a pooled []bool of n entries; put it back in
// appliedPool once read.
func getApplied(n int) *[]bool {
	if b, ok := appliedPool.Get().(*[]bool); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]bool, n, max(n, 16))
	return &b
}

// settleMetrics is settle's counting, and tells whether the page changed
// and which actions were applied. Rule and map case hits are counted for
// a page view only (view).
func (p *Proxy) settleMetrics(dec *rules.Decision, out outcome, result string, view bool) outcome {
	p.m.Rewrites.Inc(result)
	out.probes = dec.Probes
	out.changed = result == rewriteDone && out.done != nil
	if out.seg != nil {
		// Pieces that went out before a segmented rewrite gave up (too
		// large, an error) keep their changes.
		out.changed = out.seg.Changed()
	}
	if !view {
		return out
	}
	// A rule counts once however many changes it made: the actions of
	// one rule (an attr: with several pairs) are next to each other.
	counted := ""
	for i := range dec.Actions {
		if a := &dec.Actions[i]; a.Rule != counted && out.applied(i) {
			p.m.RuleHit(a.Rule)
			counted = a.Rule
		}
	}
	for _, c := range dec.Cases {
		// An empty case applies nothing: the map chose it, and the
		// page shows the origin's block as it says.
		if c.Empty || ruleApplied(dec, c.Rule, &out) {
			p.m.CaseHit(c.Map, c.Case)
		}
	}
	return out
}

// ruleApplied reports whether an action of rule id was applied.
func ruleApplied(dec *rules.Decision, id string, out *outcome) bool {
	for i := range dec.Actions {
		if dec.Actions[i].Rule == id && out.applied(i) {
			return true
		}
	}
	return false
}

// rewriteBody returns the personalized body, encoded for the visitor, or
// nil to serve the origin's bytes, and, in room (one per edit), which
// edits it applied (nil when it rendered nothing); result labels the
// metric either way. probesOnly says the edits are probes, which change
// nothing: the page is rendered for what they report, and the origin's
// bytes are served, as they are, encoding included.
func (p *Proxy) rewriteBody(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, key string, page *rules.Page, edits []rewrite.Edit, raw []byte, room []bool, probesOnly bool) (body *bytebufferpool.ByteBuffer, done []bool, result string) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("rewrite panicked; served the origin's page", "panic", r, "path", string(ctx.Path()))
			body, done, result = nil, nil, rewritePanicked
		}
	}()
	enc := coding.Parse(resp.Header.ContentEncoding())
	if enc == coding.Unknown {
		return nil, nil, rewriteEncoding
	}
	html := raw
	if enc != coding.Identity {
		plain := getPageBuf(2 * len(raw))
		defer putPageBuf(plain)
		if err := coding.Decode(plain, raw, enc, int(p.cfg.MaxRewriteBody)); err != nil {
			if err == coding.ErrTooLarge {
				return nil, nil, rewriteTooLarge
			}
			p.log.Debug("decode origin body", "encoding", enc.String(), "err", err)
			return nil, nil, rewriteError
		}
		html = plain.B
	}

	tpl, err := p.templateFor(key, page, html)
	if err != nil {
		return nil, nil, p.compileFailed(err)
	}
	rendered := getPageBuf(len(html) + len(html)/8)
	rendered.B = tpl.RenderApplied(rendered.B[:0], edits, room)
	if probesOnly {
		putPageBuf(rendered)
		return nil, room, rewriteNoChange
	}

	target := coding.Negotiate(ctx.Request.Header.Peek(fasthttp.HeaderAcceptEncoding), enc)
	encoded := rendered
	if target != coding.Identity {
		defer putPageBuf(rendered)
		encoded = getPageBuf(len(rendered.B))
		if err := coding.Encode(encoded, rendered.B, target); err != nil {
			putPageBuf(encoded)
			return nil, nil, rewriteError
		}
	}
	if target != enc {
		header.Del(&resp.Header, fasthttp.HeaderContentEncoding)
		if target != coding.Identity {
			resp.Header.Set(fasthttp.HeaderContentEncoding, target.String())
		}
	}
	return encoded, room, rewriteDone
}

// compileFailed logs why a page could not be compiled and returns the
// result to count.
func (p *Proxy) compileFailed(err error) string {
	p.log.Debug("compile page", "err", err)
	if errors.Is(err, rewrite.ErrTooComplex) {
		return rewriteComplex
	}
	return rewriteError
}

// pageKey is the page cache's key for the URL: the rule generation, the
// host and the request URI.
func (p *Proxy) pageKey(ctx *fasthttp.RequestCtx, st *ruleState) string {
	key := bytebufferpool.Get()
	defer bytebufferpool.Put(key)
	key.B = strconv.AppendUint(key.B[:0], st.gen, 16)
	key.B = append(key.B, ' ')
	key.B = append(key.B, ctx.Host()...)
	key.B = append(key.B, ctx.RequestURI()...)
	return string(key.B)
}

// templateFor returns the compiled page for the page cache's key: a
// cached one when the origin sent the same bytes again; a cached one
// adjusted without a parse (rewrite.Template.Reuse) when the page differs
// from it only where no selector can see, as per-request tokens, ids and
// text do; else a fresh compile. The cache holds, per URL and rule
// generation, the latest templates of up to maxShapes shapes (a notice
// shown on some requests, a logged-in header), so pages that never repeat
// replace each other instead of flooding it, and a page whose shape
// alternates still reuses. The template it returns may keep html (a
// pooled buffer): html must stay unchanged while it is used. A template
// for the cache keeps a copy.
//
// A reused template is used for this request only: the cache keeps the
// template it was reused from, which serves the next page of that shape as
// well, so that a page that changes on every request costs no copy and no
// allocation of its size.
func (p *Proxy) templateFor(key string, page *rules.Page, html []byte) (*rewrite.Template, error) {
	cached, ok := p.pages.Get(key)
	if ok {
		for _, tpl := range cached.tpls {
			if tpl.Same(html) {
				p.m.PageCacheHit.Inc()
				return tpl, nil
			}
		}
		// Shapes of the page's length first: per-request tokens (ids,
		// nonces, CSRF tokens) mostly keep their length where a block that
		// comes and goes changes it, and a wrong shape costs a Reuse that
		// compares up to where the shapes part. Only a shape found among
		// the others moves to the front.
		for pass := range 2 {
			for i, tpl := range cached.tpls {
				if (tpl.Len() == len(html)) != (pass == 0) {
					continue
				}
				if nt, ok := tpl.Reuse(html); ok {
					p.m.PageCacheReuse.Inc()
					if i > 0 && pass == 1 {
						p.pages.Add(key, cached.with(tpl, i)) // the latest shape first
					}
					return nt, nil
				}
			}
		}
	}
	p.m.PageCacheMiss.Inc()
	tpl, err := rewrite.Compile(bytes.Clone(html), page.Matchers())
	if err != nil {
		return nil, err
	}
	p.pages.Add(key, cached.with(tpl, -1))
	return tpl, nil
}

// maxShapes is how many templates of one URL the page cache keeps: the
// shapes a dynamic page takes (with or without a notice, a logged-in
// header) are few; a page that takes more is compiled more often.
const maxShapes = 4

// pageShapes are the latest templates of one URL, most recent first. A
// value in the page cache: never changed once stored.
type pageShapes struct{ tpls []*rewrite.Template }

// with returns the shapes with tpl first, in place of the template at i
// (the one it was reused from) or, for i < 0, of the oldest when all
// places are taken. ps may be nil.
func (ps *pageShapes) with(tpl *rewrite.Template, i int) *pageShapes {
	out := &pageShapes{tpls: make([]*rewrite.Template, 0, maxShapes)}
	out.tpls = append(out.tpls, tpl)
	if ps == nil {
		return out
	}
	for k, old := range ps.tpls {
		if k != i && len(out.tpls) < maxShapes {
			out.tpls = append(out.tpls, old)
		}
	}
	return out
}

// Size is what the shapes retain, for the page cache's byte bound.
func (ps *pageShapes) Size() int {
	n := 64
	for _, t := range ps.tpls {
		n += t.Size()
	}
	return n
}

// passThrough streams the origin's response untouched, prefix first when
// part of the body was already read.
func (p *Proxy) passThrough(out *fasthttp.Response, resp *fasthttp.Response, stream io.Reader, prefix *bytebufferpool.ByteBuffer, v *visit, view *journey.Outcome) {
	header.CopyResponse(&out.Header, &resp.Header, false)
	p.setVisitorCookies(&out.Header, v, view)
	r := stream
	size := resp.Header.ContentLength()
	if prefix != nil {
		r = io.MultiReader(bytes.NewReader(prefix.B), stream)
	}
	out.SetBodyStream(&originBody{resp: resp, r: r, n: p.m.ResponseBytes, prefix: prefix}, size)
}

// markPersonalized fixes the headers of a page on a path with rules: no
// shared cache may serve it to another visitor, who might be shown other
// blocks, even when this visitor got the origin's bytes. When the page
// changed, its ETag no longer names these bytes (its length, fasthttp sets
// from the body).
func markPersonalized(h *fasthttp.ResponseHeader, changed bool) {
	if changed {
		dropOriginValidators(h)
	}
	header.Set(h, fasthttp.HeaderCacheControl, privateCacheControl(header.Peek(h, fasthttp.HeaderCacheControl)))
	dropSharedCacheControls(h)
	vary := header.Peek(h, fasthttp.HeaderVary)
	if !varyHas(vary, "Cookie") && !varyHas(vary, "*") {
		if len(vary) == 0 {
			header.Set(h, fasthttp.HeaderVary, "Cookie")
		} else {
			header.Set(h, fasthttp.HeaderVary, string(vary)+", Cookie")
		}
	}
}

// dropOriginValidators removes what describes the origin's bytes from
// the headers of a page tailor changed: its validators (a conditional
// request would get the origin's 304 for a page tailor may now render
// differently), its digest, and Accept-Ranges (byte ranges of the
// origin's page do not address this one).
func dropOriginValidators(h *fasthttp.ResponseHeader) {
	for _, name := range []string{fasthttp.HeaderETag, fasthttp.HeaderLastModified, fasthttp.HeaderAcceptRanges, "Content-MD5"} {
		header.Del(h, name)
	}
}

// privateCacheControl keeps the origin's freshness directives for the
// visitor's own browser cache but forbids shared caches.
func privateCacheControl(v []byte) string {
	var b strings.Builder
	b.WriteString("private")
	for _, d := range strings.Split(string(v), ",") {
		d = strings.TrimSpace(d)
		name, _, _ := strings.Cut(strings.ToLower(d), "=")
		switch name {
		case "", "public", "private", "s-maxage", "proxy-revalidate":
			continue
		}
		b.WriteString(", ")
		b.WriteString(d)
	}
	return b.String()
}

func varyHas(vary []byte, name string) bool {
	for _, f := range bytes.Split(vary, []byte{','}) {
		if header.EqualFold(bytes.TrimSpace(f), name) {
			return true
		}
	}
	return false
}

// decisionHeader summarises a decision for X-Tailor-Decision: the rules
// that fired (those with an action applied), the map cases they chose,
// the experiment variants shown (exposuresShown), the stage and segments, and whether a preview link
// asked for it.
func decisionHeader(d *rules.Decision, preview bool, out *outcome, shown []rules.Exposure) string {
	var b strings.Builder
	b.WriteString("rules=")
	seen := map[string]bool{}
	for i := range d.Actions {
		a := &d.Actions[i]
		if !out.applied(i) {
			continue
		}
		if !seen[a.Rule] {
			if len(seen) > 0 {
				b.WriteByte(',')
			}
			seen[a.Rule] = true
			b.WriteString(a.Rule)
		}
	}
	maps := 0
	for _, c := range d.Cases {
		if !seen[c.Rule] && !c.Empty {
			continue
		}
		if maps == 0 {
			b.WriteString("; maps=")
		} else {
			b.WriteByte(',')
		}
		maps++
		fmt.Fprintf(&b, "%s:%s", c.Map, c.Case)
	}
	if len(shown) > 0 {
		b.WriteString("; experiments=")
		for i, e := range shown {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s:%s", e.Experiment, e.Variant)
		}
	}
	fmt.Fprintf(&b, "; stage=%s; segments=%s", d.Stage, strings.Join(d.Segments, ","))
	if d.Persona != "" {
		b.WriteString("; persona=" + d.Persona)
	}
	if preview {
		b.WriteString("; preview")
	}
	return b.String()
}
