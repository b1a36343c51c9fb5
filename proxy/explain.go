package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/cache"
	"github.com/tailor-edge/tailor/internal/coding"
	"github.com/tailor-edge/tailor/rewrite"
	"github.com/tailor-edge/tailor/rules"
)

// ExplainUserAgent is the User-Agent of an explained request that names
// none: an ordinary desktop browser's.
const ExplainUserAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// ExplainRequest says what to explain: a page of the origin, as seen by a
// visitor with the given profile, headers and cookies.
type ExplainRequest struct {
	// URL is a path ("/products/?a=b") or a full URL, whose host becomes
	// the Host header.
	URL string
	// Profile stands in for the visitor's profile; nil is an anonymous
	// visitor.
	Profile *cache.Profile
	// Headers are extra request headers, in order. Without a User-Agent
	// the page is explained as a desktop browser sees it
	// (ExplainUserAgent): no User-Agent at all is a bot's, which sees
	// every experiment's control.
	Headers [][2]string
	// Cookies are "name=value" pairs.
	Cookies []string
}

// Explanation is what the rules did to one page for one visitor.
type Explanation struct {
	URL    string
	Status int
	// Page is false when no page of the rules matches the path (or the
	// response is not 2xx HTML): Personalized then equals Original.
	Page     bool
	Reason   string // why the page was not personalized, when it was not
	Decision rules.Decision
	// Selectors lists each selector of the page with how many elements it
	// matched and how many it had to skip (no source tag to splice).
	Selectors    []SelectorMatch
	Original     []byte // the origin's body, decoded
	Personalized []byte
	// Warnings say which rules wrote visitor values into a <script> or
	// <style> of this page (escaped as JavaScript or CSS there), which
	// tailor check cannot see when the selector does not name the tag.
	Warnings []string
}

// SelectorMatch is one selector's reach on the page.
type SelectorMatch struct {
	Selector         string
	Matched, Skipped int
}

// Explain fetches a page from the origin and applies the current rules to
// it in-process, as a request through the proxy would: the same visitor
// identification (cookies, token), profile, journey step and decision
// (evaluate), without caching anything, setting cookies or reporting
// events. Country headers are believed, as from a trusted proxy.
func (p *Proxy) Explain(er ExplainRequest) (*Explanation, error) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	resp.Header.SetNoDefaultContentType(true)

	host, target := p.origin.Addr, er.URL
	if u, err := url.Parse(er.URL); err == nil && u.IsAbs() {
		host, target = u.Host, u.RequestURI()
	} else if len(target) == 0 || target[0] != '/' {
		return nil, fmt.Errorf("explain %q: want a path starting with / or a full URL", er.URL)
	}
	req.SetRequestURI(target)
	req.Header.SetHost(host)
	if p.originHost != nil {
		req.Header.SetHostBytes(p.originHost)
	}
	req.Header.Set(fasthttp.HeaderAcceptEncoding, "gzip, br, zstd, deflate")
	req.Header.Set(fasthttp.HeaderUserAgent, ExplainUserAgent)
	for _, h := range er.Headers {
		if strings.EqualFold(h[0], fasthttp.HeaderUserAgent) {
			req.Header.Set(fasthttp.HeaderUserAgent, h[1])
			continue
		}
		req.Header.Add(h[0], h[1])
	}
	for _, c := range er.Cookies {
		req.Header.Add(fasthttp.HeaderCookie, c)
	}
	if err := p.origin.DoTimeout(req, resp, p.cfg.Timeouts.Response); err != nil {
		return nil, fmt.Errorf("fetch %s from the origin: %w", target, err)
	}
	ex := &Explanation{URL: target, Status: resp.StatusCode()}
	raw := bytebufferpool.Get()
	defer bytebufferpool.Put(raw)
	if s := resp.BodyStream(); s != nil {
		if _, err := io.Copy(raw, io.LimitReader(s, int64(p.cfg.MaxRewriteBody)+1)); err != nil {
			return nil, fmt.Errorf("read %s from the origin: %w", target, err)
		}
	} else {
		raw.B = append(raw.B, resp.Body()...)
	}
	body := raw.B
	if enc := coding.Parse(resp.Header.ContentEncoding()); enc != coding.Identity {
		plain := bytebufferpool.Get()
		defer bytebufferpool.Put(plain)
		if err := coding.Decode(plain, raw.B, enc, int(p.cfg.MaxRewriteBody)); err != nil {
			return nil, fmt.Errorf("decode %s body of %s: %w", enc, target, err)
		}
		body = plain.B
	}
	ex.Original = append([]byte(nil), body...)
	ex.Personalized = ex.Original

	st := p.rules.Load()
	switch {
	case st.set == nil:
		ex.Reason = "no rules are loaded"
		return ex, nil
	case len(body) > int(p.cfg.MaxRewriteBody):
		ex.Reason = "the page is larger than max_rewrite_body"
		return ex, nil
	case !isHTML2xx(resp):
		ex.Reason = fmt.Sprintf("the origin answered %d %s, not a 2xx text/html page", resp.StatusCode(), resp.Header.ContentType())
		return ex, nil
	}
	page := st.set.Match(string(req.URI().Path()))
	if page == nil {
		ex.Reason = "no page in the rules matches " + string(req.URI().Path())
		return ex, nil
	}
	ex.Page = true
	tpl, err := rewrite.Compile(body, page.Matchers())
	if errors.Is(err, rewrite.ErrTooComplex) {
		ex.Page = false
		ex.Reason = "matching the page's selectors takes more work than a page may: the proxy serves it unchanged (tailor check warns of such selectors)"
		return ex, nil
	}
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", target, err)
	}
	for i := range page.Selectors() {
		ex.Selectors = append(ex.Selectors, SelectorMatch{page.SelectorText(i), tpl.Matched(i), tpl.Skipped(i)})
	}
	// The visitor as the proxy sees one: identified by the request's
	// cookies or token, their profile (the one given, else the store's),
	// and this page view's step in their journey.
	now := p.now()
	v := p.visitorFor(req, now)
	if er.Profile != nil {
		v.profile = er.Profile
		if !v.id.Known() {
			v.id.Subject = er.Profile.ID // a profile given by hand stands for a known visitor
		}
	} else {
		p.lookup(v, time.Now())
	}
	visitor, request := p.evaluate(st.set, req, v, true)
	ex.Decision = st.set.Decide(page, visitor, request)
	// Rendered as the proxy renders it: the actions, and the probes of
	// held-out experiments among them.
	edits := pageEdits(&ex.Decision)
	out := outcome{probes: ex.Decision.Probes, changed: true}
	for i, a := range ex.Decision.Actions {
		if a.RawText == nil {
			continue
		}
		rule, raw := a.Rule, a.RawText
		seen := map[string]bool{}
		edits[out.actionEdit(i)].RawText = func(elem string) []byte {
			if !seen[elem] {
				seen[elem] = true
				ex.Warnings = append(ex.Warnings, fmt.Sprintf("rule %s writes visitor values into a <%s> (escaped as %s there); check that the page's code does not run or insert them as markup", rule, elem, map[string]string{"script": "JavaScript", "style": "CSS"}[elem]))
			}
			return raw(elem)
		}
	}
	out.done = make([]bool, len(edits))
	ex.Personalized = tpl.RenderApplied(nil, edits, out.done)
	overriddenOnPage(&ex.Decision, tpl, edits, &out)
	// The exposures the proxy would report: those true on this page.
	ex.Decision.Exposures = exposuresShown(&ex.Decision, &out)
	return ex, nil
}

// overriddenOnPage adds to the decision's traces what rules.Decide cannot
// see, judging per selector: a rule whose content an earlier rule with
// another selector made on an element both match (rewrite.Edit's Sole) is
// overridden there, by that rule. A rule none of whose changes applied
// anywhere then did not fire, as the proxy's header and hit counts say.
func overriddenOnPage(d *rules.Decision, tpl *rewrite.Template, edits []rewrite.Edit, out *outcome) {
	for i := range d.Actions {
		by := tpl.OverriddenBy(edits, out.actionEdit(i))
		if by < 0 {
			continue
		}
		a := &d.Actions[i]
		tr := traceOf(d, a.Rule)
		if tr == nil {
			continue
		}
		o := rules.Override{Change: a.Change(), By: out.ruleOfEdit(d, by)}
		tr.Overridden = append(tr.Overridden, o)
		reason := o.Change + " overridden by rule " + o.By + " on an element both match"
		if tr.Reason != "" {
			reason = tr.Reason + "; " + reason
		}
		tr.Reason = reason
		tr.Fired = ruleApplied(d, a.Rule, out)
	}
}

// traceOf returns the trace of rule id, or nil.
func traceOf(d *rules.Decision, id string) *rules.Trace {
	for i := range d.Trace {
		if d.Trace[i].Rule == id {
			return &d.Trace[i]
		}
	}
	return nil
}

// editsOf turns the rules' actions into rewrite edits; the two packages
// share the meaning and the numbering of their operations.
func editsOf(actions []rules.Action) []rewrite.Edit {
	edits := make([]rewrite.Edit, len(actions))
	for i, a := range actions {
		// Sole: for one element, the first rule makes the content, even
		// when rules with different selectors match it (SPEC "Rule
		// files"); attributes and classes are per element already.
		edits[i] = rewrite.Edit{Sel: a.Sel, Op: rewrite.Op(a.Op), Name: a.Name, Value: a.Value, RawText: a.RawText, Sole: true}
	}
	return edits
}

func isHTML2xx(resp *fasthttp.Response) bool {
	code := resp.StatusCode()
	return code >= 200 && code <= 299 && code != fasthttp.StatusNoContent &&
		code != fasthttp.StatusPartialContent && isHTMLType(resp.Header.ContentType())
}
