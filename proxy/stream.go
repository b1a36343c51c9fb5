package proxy

import (
	"bytes"
	"io"
	"time"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/rewrite"
	"github.com/tailor-edge/tailor/rules"
)

// Streamed personalization: the bytes of a page before its first rewritten
// element reach the visitor as the origin sends them, instead of after the
// whole page has arrived.
//
// Where the first change falls is predicted from the templates cached for
// the URL (FirstChange of the decision's edits on each shape). Only the
// origin's own bytes before that point are sent early; the rest is held
// until the page ends, compiled (or reused) and rendered as on the
// buffered path. The prediction is then checked: when the rendered page
// starts with every byte already sent, the rest of it follows; when it
// does not (the page changed shape before the predicted point), the rest
// of the origin's page follows instead, unchanged, and is counted as
// tailor_rewrites_total{result="conflict"}. Either way the visitor gets a
// page that is entirely the origin's or entirely the personalized one.
//
// A page streams only when nothing needs the outcome before its body: the
// decision header is off and the request is no preview (the header would
// have to say whether rules fired), the decision has no experiment (an
// exposure is recorded in the state cookie, sent with the headers, and
// only when the variant is shown), and the origin's body is not encoded;
// and only to HTTP/1.1 clients, which take a chunked body.

// minStreamAhead is the least a prediction must let through early for a
// page to be streamed: below it, holding the page costs nothing worth
// saving.
const minStreamAhead = 4 << 10

// streamable reports whether the page can be streamed (see above),
// predicts its first change from the templates cached under key, and says
// how large they are.
func (p *Proxy) streamable(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, key string, dec *rules.Decision, v *visit, edits []rewrite.Edit) (first, size int, ok bool) {
	if p.cfg.Debug.DecisionHeader || v.preview != nil || len(dec.Exposures) > 0 ||
		ctx.IsHead() || !ctx.Request.Header.IsHTTP11() ||
		parseContentEncoding(resp.Header.ContentEncoding()) != encIdentity {
		return 0, 0, false
	}
	cached, found := p.pages.Get(key)
	if !found {
		return 0, 0, false
	}
	first, size = -1, 0
	for _, tpl := range cached.tpls {
		if fc := tpl.FirstChange(edits); first < 0 || fc < first {
			first = fc
		}
		size = max(size, tpl.Len())
	}
	return first, size, first >= minStreamAhead
}

// streamedPage is the body of a streamed personalized page.
type streamedPage struct {
	p      *Proxy
	resp   *fasthttp.Response
	stream io.Reader
	page   *rules.Page
	dec    rules.Decision
	edits  []rewrite.Edit
	key    string
	first  int
	size   int // the cached pages' largest: the buffer to start with
	start  time.Time
	sent   int64
}

var _ fasthttp.BodyWriterTo = (*streamedPage)(nil)

// personalizeStreamed sends the headers and leaves the body to
// streamedPage.WriteTo (see above).
func (p *Proxy) personalizeStreamed(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, page *rules.Page, v *visit, dec *rules.Decision, edits []rewrite.Edit, key string, first, size int, start time.Time) {
	out := &ctx.Response
	p.report(ctx, v, dec, true) // no exposures: nothing depends on the outcome
	copyResponseHeaders(&out.Header, &resp.Header, false)
	markPersonalized(&out.Header, true)
	p.setVisitorCookies(&out.Header, v)
	out.SetBodyStream(&streamedPage{
		p: p, resp: resp, stream: resp.BodyStream(), page: page, dec: *dec,
		edits: edits, key: key, first: first, size: size, start: start,
	}, -1)
}

// Read is for fasthttp paths that do not use WriteTo: it gives the
// origin's page unchanged.
func (s *streamedPage) Read(b []byte) (int, error) {
	n, err := s.stream.Read(b)
	s.sent += int64(n)
	return n, err
}

// SupportsBodyWriteTo lets fasthttp use WriteTo, where the page is
// personalized.
func (s *streamedPage) SupportsBodyWriteTo() bool { return true }

// WriteTo sends the page: the origin's bytes before the predicted first
// change as they come, the rest once the page is complete (see above).
func (s *streamedPage) WriteTo(w io.Writer) (int64, error) {
	p := s.p
	limit := int(p.cfg.MaxRewriteBody)
	// The page is held whole, in a pooled buffer sized for the cached page
	// (it rarely grows).
	bb := getPageBuf(min(s.size+s.size/8+4096, limit+1))
	c := flushCopier{w: w, hold: s.first, limit: limit}
	c.buf = bb.B[:cap(bb.B)]
	eof, err := c.run(s.stream)
	c.stop()
	held := c.held()
	defer func() {
		bb.B = c.buf[:0]
		putPageBuf(bb)
	}()
	if err != nil {
		// The origin broke off, or the visitor left: the headers are gone,
		// so the visitor gets a cut-short page, as from the origin.
		p.settleMetrics(&s.dec, nil, rewriteError)
		return c.total, err
	}
	if !eof {
		// Larger than max_rewrite_body: the origin's page, unchanged.
		p.settleMetrics(&s.dec, nil, rewriteTooLarge)
		n, err := w.Write(held[c.written:]) // more follows: flushed
		s.sent = c.total + int64(n)
		if err != nil {
			return s.sent, err
		}
		m, err := flushCopy(w, s.stream)
		s.sent += m
		return s.sent, err
	}
	rendered := getPageBuf(len(held) + len(held)/8)
	defer putPageBuf(rendered)
	tpl, result := s.render(held, rendered)
	var rest []byte
	if tpl != nil {
		if bytes.HasPrefix(rendered.B, held[:c.written]) {
			rest = rendered.B[c.written:]
		} else {
			tpl, result = nil, rewriteConflict
		}
	}
	if tpl == nil {
		rest = held[c.written:]
	}
	p.settleMetrics(&s.dec, tpl, result)
	p.m.rewriteTime.Observe(time.Since(s.start).Seconds())
	n, err := writeLast(w, rest)
	s.sent = c.total + int64(n)
	return s.sent, err
}

// render finds the template of the complete page, or says why not.
func (s *streamedPage) render(page []byte, out *bytebufferpool.ByteBuffer) (tpl *rewrite.Template, result string) {
	defer func() {
		if r := recover(); r != nil {
			s.p.log.Error("rewrite panicked; served the origin's page", "panic", r)
			tpl, result = nil, rewritePanicked
		}
	}()
	tpl, err := s.p.templateFor(s.key, s.page, page)
	if err != nil {
		return nil, s.p.compileFailed(err)
	}
	out.B = tpl.Render(out.B[:0], s.edits) // under the recover, as on the buffered path
	return tpl, rewriteDone
}

// Close returns the origin connection and counts the bytes sent.
func (s *streamedPage) Close() error {
	s.p.m.responseBytes.Add(float64(s.sent))
	err := s.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(s.resp)
	return err
}
