package proxy

import (
	"bytes"
	"errors"
	"io"
	"time"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/internal/coding"
	"github.com/tailor-edge/tailor/internal/flush"
	"github.com/tailor-edge/tailor/internal/header"
	"github.com/tailor-edge/tailor/rewrite"
	"github.com/tailor-edge/tailor/rules"
)

// Streamed personalization: the bytes of a page before its first rewritten
// element reach the visitor as the origin sends them, instead of after the
// whole page has arrived.
//
// Where the first change falls is predicted from the templates cached for
// the URL (FirstChange of the decision's edits on each shape). A URL with
// no template cached is probed instead: whenever the origin pauses and
// what has arrived has doubled, rewrite.PrefixSafe looks for the first
// element the edits' selectors match in it, when they are forward
// selectors (decided by what precedes an element), and when the origin
// streams the page (no Content-Length); that is once for a page that
// comes in one piece, a few times for a page that trickles in.
// Only the origin's own bytes before that point are sent early; the rest
// is held until the page ends, compiled (or reused) and rendered as on the
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
// only when the experiment's probe applied: known once it is rendered),
// and the origin's body is not encoded; and only to HTTP/1.1 clients,
// which take a chunked body.

// minStreamAhead is the least a prediction must let through early for a
// page to be streamed: below it, holding the page costs nothing worth
// saving.
const minStreamAhead = 4 << 10

// streamPlan is how a page streams: the bytes before first may be sent as
// they come; with first < 0 (a page no template of which is cached) that
// point is found as the page arrives, from the selectors used marks (see
// rewrite.PrefixSafe). size is the buffer to start with.
type streamPlan struct {
	first, size int
	used        []bool
	seg         *rewrite.Segmenter // too large to hold: cut in pieces from the start
}

// streamable reports whether the page can be streamed (see above) and how.
func (p *Proxy) streamable(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, page *rules.Page, key string, dec *rules.Decision, v *visit, edits []rewrite.Edit) (plan streamPlan, ok bool) {
	if p.cfg.Debug.DecisionHeader || v.preview != nil || len(dec.Exposures) > 0 || len(dec.Probes) > 0 ||
		ctx.IsHead() || !ctx.Request.Header.IsHTTP11() ||
		coding.Parse(resp.Header.ContentEncoding()) != coding.Identity {
		return plan, false
	}
	if cl := resp.Header.ContentLength(); cl > int(p.cfg.MaxRewriteBody) {
		// Too large to hold: rewritten in pieces if the selectors allow
		// (segmented), from the first segmentWindow on; else the buffered
		// path passes it through with its length.
		seg, ok := rewrite.NewSegmenter(page.Matchers(), edits)
		if !ok {
			return plan, false
		}
		return streamPlan{first: 0, size: segmentWindow, seg: seg}, true
	}
	cached, found := p.pages.Get(key)
	if !found {
		// Never compiled (or evicted): the first change is looked for in
		// what has arrived whenever the origin pauses, if the selectors
		// the edits use let a prefix tell, and if the origin streams its
		// page (no Content-Length: one that knows the length has the page
		// ready, and the visitor gets its corrected length).
		if resp.Header.ContentLength() >= 0 {
			return plan, false
		}
		sels := page.Matchers()
		plan.used = make([]bool, len(sels))
		for _, e := range edits {
			if e.Sel >= 0 && e.Sel < len(sels) {
				if !plan.used[e.Sel] && !rewrite.Forward(sels[e.Sel:e.Sel+1]) {
					return plan, false
				}
				plan.used[e.Sel] = true
			}
		}
		plan.first, plan.size = -1, 64<<10
		return plan, true
	}
	plan.first = -1
	for _, tpl := range cached.tpls {
		if fc := tpl.FirstChange(edits); plan.first < 0 || fc < plan.first {
			plan.first = fc
		}
		plan.size = max(plan.size, tpl.Len())
	}
	return plan, plan.first >= minStreamAhead
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
	plan   streamPlan
	start  time.Time
	sent   int64
	// done notes per edit whether it applied (rewrite.Template's
	// RenderApplied), in doneBuf when the rules are few.
	done    []bool
	doneBuf [16]bool
}

var _ fasthttp.BodyWriterTo = (*streamedPage)(nil)

// personalizeStreamed sends the headers and leaves the body to
// streamedPage.WriteTo (see above).
func (p *Proxy) personalizeStreamed(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, page *rules.Page, v *visit, dec *rules.Decision, edits []rewrite.Edit, key string, plan streamPlan, start time.Time) {
	out := &ctx.Response
	// A decision with exposures is never streamed (streamable), so the
	// outcome does not hang on whether the changes land.
	view := p.conclude(ctx, v, dec, nil)
	header.CopyResponse(&out.Header, &resp.Header, false)
	markPersonalized(&out.Header, true)
	p.setVisitorCookies(&out.Header, v, &view)
	out.SetBodyStream(&streamedPage{
		p: p, resp: resp, stream: resp.BodyStream(), page: page, dec: *dec,
		edits: edits, key: key, plan: plan, start: start,
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
	size := s.plan.size
	bb := getPageBuf(min(size+size/8+4096, limit+1))
	c := flush.Copier{W: w, Hold: s.plan.first, Limit: limit}
	if s.plan.seg != nil {
		c.Limit = min(limit, segmentWindow)
	}
	if c.Hold < 0 {
		c.Hold, c.Probe = 0, s.probe
	}
	c.Buf = bb.B[:cap(bb.B)]
	eof, err := c.Run(s.stream)
	c.Stop()
	held := c.Held()
	defer func() {
		bb.B = c.Buf[:0]
		putPageBuf(bb)
	}()
	if err != nil {
		// The origin broke off, or the visitor left: the headers are gone,
		// so the visitor gets a cut-short page, as from the origin.
		p.settleMetrics(&s.dec, outcome{}, rewriteError, false)
		return c.Total, err
	}
	if !eof {
		// Larger than max_rewrite_body: rewritten in pieces when the
		// selectors allow (segmented), else the origin's page, unchanged.
		seg, ok := s.plan.seg, s.plan.seg != nil
		if !ok {
			seg, ok = rewrite.NewSegmenter(s.page.Matchers(), s.edits)
		}
		if ok {
			n, err := s.segmented(w, &c, seg)
			s.sent = n
			return n, err
		}
		p.settleMetrics(&s.dec, outcome{}, rewriteTooLarge, true)
		n, err := w.Write(held[c.Written:]) // more follows: flushed
		s.sent = c.Total + int64(n)
		if err != nil {
			return s.sent, err
		}
		m, err := flush.Copy(w, s.stream)
		s.sent += m
		return s.sent, err
	}
	rendered := getPageBuf(len(held) + len(held)/8)
	defer putPageBuf(rendered)
	tpl, result := s.render(held, rendered)
	var rest []byte
	if tpl != nil {
		if bytes.HasPrefix(rendered.B, held[:c.Written]) {
			rest = rendered.B[c.Written:]
		} else {
			tpl, result = nil, rewriteConflict
		}
	}
	if tpl == nil {
		rest = held[c.Written:]
	}
	var out outcome
	if tpl != nil {
		out.done = s.done
	}
	p.settleMetrics(&s.dec, out, result, true)
	p.m.RewriteTime.Observe(time.Since(s.start).Seconds())
	n, err := flush.WriteLast(w, rest)
	s.sent = c.Total + int64(n)
	return s.sent, err
}

// segmentWindow is how much of a page too large to hold whole is read
// before the Segmenter cuts a piece of it (after the first, which is
// max_rewrite_body): large enough that a piece costs little more per byte
// than a whole page, small enough that the pieces stream.
const segmentWindow = 512 << 10

// segmented rewrites a page larger than max_rewrite_body in pieces (see
// rewrite.Segmenter), holding at most max_rewrite_body of it: c holds the
// first max_rewrite_body bytes, of which c.Written went out as the origin
// sent them. When no piece can be cut within max_rewrite_body, or the
// Segmenter fails, the rest of the page is the origin's, and the page
// counts as too_large or error; when the first piece turns out to change
// what went out early, as conflict.
func (s *streamedPage) segmented(w io.Writer, c *flush.Copier, seg *rewrite.Segmenter) (int64, error) {
	p := s.p
	limit := int(p.cfg.MaxRewriteBody)
	held := c.Held()
	early := c.Written // origin bytes sent before the first piece
	total := c.Total
	out := getPageBuf(segmentWindow + segmentWindow/8)
	defer putPageBuf(out)
	result := rewriteDone
	counts := outcome{seg: seg} // none after a conflict: nothing of the rewrite went out
	defer func() {
		p.settleMetrics(&s.dec, counts, result, true)
		p.m.RewriteTime.Observe(time.Since(s.start).Seconds())
	}()
	// rest sends what is held and the rest of the origin's page, unchanged.
	rest := func(why string, first bool) (int64, error) {
		result = why
		if first {
			held = held[early:]
		}
		n, err := w.Write(held)
		total += int64(n)
		if err != nil {
			return total, err
		}
		m, err := flush.Copy(w, s.stream)
		return total + m, err
	}
	eof := false
	window := min(segmentWindow, limit) // what a piece is cut from
	for first := true; ; {
		for len(held) < window && !eof {
			if len(held) == cap(held) {
				held = append(held, 0)[:len(held)]
				c.Buf = held[:cap(held)] // for the page pool
			}
			n, err := s.stream.Read(held[len(held):cap(held)])
			held = held[:len(held)+n]
			switch {
			case err == io.EOF:
				eof = true
			case err != nil:
				result = rewriteError
				return total, err
			}
		}
		n := min(len(held), window)
		if first {
			n = min(len(held), max(n, early+segmentWindow/2)) // the first piece covers what went out early
		}
		final := eof && n == len(held)
		o, used, err := s.next(seg, out.B[:0], held[:n], final)
		out.B = o
		if err != nil {
			p.log.Debug("segmented rewrite", "err", err)
			why := rewriteError
			if errors.Is(err, errPanicked) {
				why = rewritePanicked
			}
			return rest(why, first)
		}
		if used == 0 && !final {
			// No safe point in the window: a larger one, up to
			// max_rewrite_body; past it, the page is the origin's.
			if window >= limit {
				return rest(rewriteTooLarge, first)
			}
			window = min(2*window, limit)
			continue
		}
		b := out.B
		if first {
			if used <= early && !final && bytes.Equal(b, held[:used]) {
				// A piece that changed nothing, all sent already: on to
				// the next, which covers the rest of what was sent.
				early -= used
				held = append(held[:0], held[used:]...)
				continue
			}
			if !bytes.HasPrefix(b, held[:early]) {
				counts = outcome{}
				return rest(rewriteConflict, first)
			}
			b = b[early:]
			first = false
		}
		m, err := w.Write(b)
		total += int64(m)
		if err != nil {
			result = rewriteError
			return total, err
		}
		if final {
			return total, nil
		}
		held = append(held[:0], held[used:]...)
		window = min(segmentWindow, limit)
	}
}

// errPanicked is what next returns for a Segmenter that panicked.
var errPanicked = errors.New("panicked")

// next is seg.Next under a recover: a bug serves the rest of the origin's
// page instead of taking the process down.
func (s *streamedPage) next(seg *rewrite.Segmenter, dst, piece []byte, final bool) (out []byte, used int, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.p.log.Error("segmented rewrite panicked; served the origin's page", "panic", r)
			out, used, err = dst, 0, errPanicked
		}
	}()
	return seg.Next(dst, piece, final)
}

// probe says how much of a page that is still arriving, and was never
// compiled, may be sent (rewrite.PrefixSafe): at most half a
// segmentWindow, which the first piece of a page too large to hold whole
// then covers (segmented).
func (s *streamedPage) probe(held []byte) (hold int, final bool) {
	defer func() {
		// It runs on the flush goroutine's: a bug must not end the process.
		if r := recover(); r != nil {
			s.p.log.Error("prefix probe panicked; the page is held", "panic", r)
			hold, final = 0, true
		}
	}()
	safe, found, err := rewrite.PrefixSafe(held, s.page.Matchers(), s.plan.used)
	if err != nil {
		return 0, true
	}
	if safe >= segmentWindow/2 {
		return segmentWindow / 2, true
	}
	return safe, found
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
	s.done = appliedBuf(s.doneBuf[:], len(s.edits))
	out.B = tpl.RenderApplied(out.B[:0], s.edits, s.done) // under the recover, as on the buffered path
	return tpl, rewriteDone
}

// Close returns the origin connection and counts the bytes sent.
func (s *streamedPage) Close() error {
	s.p.m.ResponseBytes.Add(float64(s.sent))
	err := s.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(s.resp)
	return err
}
