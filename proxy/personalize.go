package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

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
	rewriteError    = "error"       // anything else: the origin's response was served (fail-open)
	rewritePanicked = "panic"       // a bug: recovered, origin's response served
)

func isHTMLType(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return equalFold(bytes.TrimSpace(ct), "text/html")
}

// personalize buffers, decodes, rewrites and re-encodes an HTML response
// for the visitor. Whatever goes wrong, the visitor gets the origin's
// response unchanged (fail-open). It takes ownership of resp.
func (p *Proxy) personalize(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, st *ruleState, page *rules.Page, v *visit) {
	start := time.Now()
	out := &ctx.Response
	stream := resp.BodyStream()
	limit := int(p.cfg.MaxRewriteBody)

	// Decide first: the decision needs the visitor and the request, not
	// the page. When no rule applies, the page streams through as the
	// origin sends it, never buffered, decoded or compiled.
	dec, result := p.decide(ctx, st, page, v)
	if result != "" {
		p.m.rewrites.WithLabelValues(result).Inc()
		p.report(ctx, v, &dec, true)
		p.passThrough(out, resp, stream, nil, v)
		markPersonalized(&out.Header, false)
		markPreview(&out.Header, v) // again: markPersonalized made it private
		return
	}

	if cl := resp.Header.ContentLength(); cl > limit {
		p.m.rewrites.WithLabelValues(rewriteTooLarge).Inc()
		p.report(ctx, v, &dec, false)
		p.passThrough(out, resp, stream, nil, v)
		return
	}
	raw := bytebufferpool.Get()
	n, err := io.Copy(raw, io.LimitReader(stream, int64(limit)+1))
	if err != nil {
		// The origin broke off mid-body, before anything was sent: the
		// visitor gets a 502, as for any origin that fails to answer.
		bytebufferpool.Put(raw)
		p.m.rewrites.WithLabelValues(rewriteError).Inc()
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
		p.m.rewrites.WithLabelValues(rewriteTooLarge).Inc()
		p.report(ctx, v, &dec, false)
		p.passThrough(out, resp, stream, raw, v)
		return
	}
	// The whole body is in raw: the origin connection can go back to the pool.
	resp.CloseBodyStream()
	defer bytebufferpool.Put(raw)

	body, result := p.rewriteBody(ctx, resp, st, page, &dec, raw.B)
	p.m.rewrites.WithLabelValues(result).Inc()
	p.report(ctx, v, &dec, body != nil)
	p.m.rewriteTime.Observe(time.Since(start).Seconds())
	copyResponseHeaders(&out.Header, &resp.Header, false)
	fasthttp.ReleaseResponse(resp)
	if body == nil {
		out.SetBody(raw.B)
	} else {
		out.SetBody(body.B)
		bytebufferpool.Put(body)
	}
	markPersonalized(&out.Header, body != nil)
	p.setVisitorCookies(&out.Header, v)
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
	now := p.now()
	var visitor *rules.Visitor
	var request *rules.Request
	if v.preview != nil {
		visitor, request = visitorOf(&ctx.Request, nil, nil, nil, now)
		previewVisitor(st.set, visitor, v.preview)
	} else {
		profile := p.await(v)
		p.track(st.set, &ctx.Request, v, profile, journeyStep(st.set, string(ctx.Path())), now)
		p.countView(v)
		visitor, request = visitorOf(&ctx.Request, &v.id, profile, v.view, now)
	}
	dec = st.set.Decide(page, visitor, request)
	for _, a := range dec.Actions {
		p.m.ruleHits.WithLabelValues(a.Rule).Inc()
	}
	for _, c := range dec.Cases {
		p.m.caseHits.WithLabelValues(c.Rule, c.Case).Inc()
	}
	if p.cfg.Debug.DecisionHeader || v.preview != nil {
		ctx.Response.Header.Set("X-Tailor-Decision", decisionHeader(&dec, v.preview != nil))
	}
	if len(dec.Actions) == 0 {
		return dec, rewriteNoChange
	}
	return dec, ""
}

// rewriteBody returns the personalized body, encoded for the visitor, or
// nil to serve the origin's bytes; result labels the metric either way.
func (p *Proxy) rewriteBody(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, st *ruleState, page *rules.Page, dec *rules.Decision, raw []byte) (body *bytebufferpool.ByteBuffer, result string) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("rewrite panicked; served the origin's page", "panic", r, "path", string(ctx.Path()))
			body, result = nil, rewritePanicked
		}
	}()
	enc := parseContentEncoding(resp.Header.ContentEncoding())
	if enc == encUnknown {
		return nil, rewriteEncoding
	}
	html := raw
	if enc != encIdentity {
		plain := bytebufferpool.Get()
		defer bytebufferpool.Put(plain)
		if err := decode(plain, raw, enc, int(p.cfg.MaxRewriteBody)); err != nil {
			if err == errTooLarge {
				return nil, rewriteTooLarge
			}
			p.log.Debug("decode origin body", "encoding", enc.String(), "err", err)
			return nil, rewriteError
		}
		html = plain.B
	}

	tpl, err := p.template(ctx, st, page, html)
	if err != nil {
		p.log.Debug("compile page", "err", err)
		if errors.Is(err, rewrite.ErrTooComplex) {
			return nil, rewriteComplex
		}
		return nil, rewriteError
	}
	rendered := bytebufferpool.Get()
	rendered.B = tpl.Render(rendered.B[:0], editsOf(dec.Actions))
	defer bytebufferpool.Put(rendered)

	target := negotiate(ctx.Request.Header.Peek(fasthttp.HeaderAcceptEncoding), enc)
	encoded := bytebufferpool.Get()
	if err := encode(encoded, rendered.B, target); err != nil {
		bytebufferpool.Put(encoded)
		return nil, rewriteError
	}
	if target != enc {
		delHeader(&resp.Header, fasthttp.HeaderContentEncoding)
		if target != encIdentity {
			resp.Header.Set(fasthttp.HeaderContentEncoding, target.String())
		}
	}
	return encoded, rewriteDone
}

// template returns the compiled page for this URL: the cached one when
// the origin sent the same bytes again; the cached one adjusted without a
// parse (rewrite.Template.Reuse) when the page differs only where no
// selector can see, as a per-request nonce or CSRF token does; else a
// fresh compile. The cache holds the latest template per URL and rule
// generation, so pages that never repeat replace each other instead of
// flooding it.
func (p *Proxy) template(ctx *fasthttp.RequestCtx, st *ruleState, page *rules.Page, html []byte) (*rewrite.Template, error) {
	key := bytebufferpool.Get()
	defer bytebufferpool.Put(key)
	key.B = strconv.AppendUint(key.B[:0], st.gen, 16)
	key.B = append(key.B, ' ')
	key.B = append(key.B, ctx.Host()...)
	key.B = append(key.B, ctx.RequestURI()...)

	cached, ok := p.pages.Get(string(key.B))
	if ok && cached.Same(html) {
		p.m.pageCache.WithLabelValues("hit").Inc()
		return cached, nil
	}
	// html is a pooled buffer; a cached template must own its bytes.
	own := bytes.Clone(html)
	if ok {
		if tpl, ok := cached.Reuse(own); ok {
			p.m.pageCache.WithLabelValues("reuse").Inc()
			p.pages.Add(string(key.B), tpl)
			return tpl, nil
		}
	}
	p.m.pageCache.WithLabelValues("miss").Inc()
	tpl, err := rewrite.Compile(own, page.Matchers())
	if err != nil {
		return nil, err
	}
	p.pages.Add(string(key.B), tpl)
	return tpl, nil
}

// passThrough streams the origin's response untouched, prefix first when
// part of the body was already read.
func (p *Proxy) passThrough(out *fasthttp.Response, resp *fasthttp.Response, stream io.Reader, prefix *bytebufferpool.ByteBuffer, v *visit) {
	copyResponseHeaders(&out.Header, &resp.Header, false)
	p.setVisitorCookies(&out.Header, v)
	r := stream
	size := resp.Header.ContentLength()
	if prefix != nil {
		r = io.MultiReader(bytes.NewReader(prefix.B), stream)
	}
	out.SetBodyStream(&originBody{resp: resp, r: r, n: p.m.responseBytes, prefix: prefix}, size)
}

// markPersonalized fixes the headers of a page on a path with rules: no
// shared cache may serve it to another visitor, who might be shown other
// blocks, even when this visitor got the origin's bytes. When the page
// changed, its ETag no longer names these bytes (its length, fasthttp sets
// from the body).
func markPersonalized(h *fasthttp.ResponseHeader, changed bool) {
	if changed {
		// Validators of the origin's page do not describe this one; a
		// conditional request would get the origin's 304 for a page the
		// rules may now render differently.
		delHeader(h, fasthttp.HeaderETag)
		delHeader(h, fasthttp.HeaderLastModified)
		// Byte ranges of the origin's page do not address this one.
		delHeader(h, fasthttp.HeaderAcceptRanges)
	}
	setHeader(h, fasthttp.HeaderCacheControl, privateCacheControl(peekHeader(h, fasthttp.HeaderCacheControl)))
	dropSharedCacheControls(h)
	vary := peekHeader(h, fasthttp.HeaderVary)
	if !varyHas(vary, "Cookie") && !varyHas(vary, "*") {
		if len(vary) == 0 {
			setHeader(h, fasthttp.HeaderVary, "Cookie")
		} else {
			setHeader(h, fasthttp.HeaderVary, string(vary)+", Cookie")
		}
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
		if equalFold(bytes.TrimSpace(f), name) {
			return true
		}
	}
	return false
}

// decisionHeader summarises a decision for X-Tailor-Decision: the rules
// that fired, the map cases and experiment variants they chose, the stage
// and segments, and whether a preview link asked for it.
func decisionHeader(d *rules.Decision, preview bool) string {
	var b strings.Builder
	b.WriteString("rules=")
	seen := map[string]bool{}
	for _, a := range d.Actions {
		if !seen[a.Rule] {
			if len(seen) > 0 {
				b.WriteByte(',')
			}
			seen[a.Rule] = true
			b.WriteString(a.Rule)
		}
	}
	if len(d.Cases) > 0 {
		b.WriteString("; maps=")
		for i, c := range d.Cases {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s:%s", c.Rule, c.Case)
		}
	}
	if len(d.Exposures) > 0 {
		b.WriteString("; experiments=")
		for i, e := range d.Exposures {
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
