package proxy

import (
	"bytes"
	"net/url"
	"slices"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/cache"
	"github.com/tailor-edge/tailor/internal/header"
	"github.com/tailor-edge/tailor/journey"
	"github.com/tailor-edge/tailor/rules"
)

// countryHeaders are where CDNs and load balancers put the visitor's
// country; the first one present wins. They are believed only from
// trusted_proxies: anyone else can send them.
var countryHeaders = []string{"CF-IPCountry", "CloudFront-Viewer-Country", "X-Country-Code", "X-Geo-Country"}

// visitorOf builds what the rules decide on: the visitor's identity (nil
// for tailor explain, where a given profile stands for a known visitor),
// their profile (nil for none), what this page view did to their journey
// (nil: a first page view, as explain sees it) and the request. The
// request's country is read from its headers only when trusted (the
// client is a trusted proxy, or an operator's explain).
func visitorOf(req *fasthttp.Request, id *visitorIdentity, profile *cache.Profile, view *journey.View, now time.Time, trusted bool) (*rules.Visitor, *rules.Request) {
	v := &rules.Visitor{NewVisitor: true, Visits: 1}
	if id != nil {
		v.ID, v.Known = id.Key(), id.Known()
	}
	if profile != nil {
		if id == nil {
			v.ID, v.Known = profile.ID, true
		}
		v.Segments, v.Stage = profile.Segments, profile.Stage
		v.Traits, v.Scores = profile.TraitMap(), profile.ScoreMap()
	}
	if view != nil {
		v.Visits, v.NewVisitor = view.State.Visits, view.State.Visits <= 1
		v.Engagement, v.Stage = view.State.Engagement, view.Stage
		v.Interests, v.TopInterest, v.Persona = view.Interests, view.TopInterest, view.Persona
		// The variants their first exposures fixed: kept across a login
		// and new weights.
		v.Assigned = &view.State
	}
	if id != nil && len(id.TokenSegments) > 0 {
		v.Segments = mergeSegments(v.Segments, id.TokenSegments)
	}
	h := &req.Header
	raw := h.RawHeaders()
	if len(raw) == 0 {
		// A request built in-process (tailor explain) was never parsed.
		raw = h.Header()
		if i := bytes.Index(raw, []byte("\r\n")); i >= 0 {
			raw = raw[i+2:]
		}
	}
	r := &rules.Request{
		Path:      string(req.URI().Path()),
		Query:     queryValues(req.URI().QueryArgs()),
		Host:      string(req.Host()),
		Header:    func(name string) string { return string(rawHeader(raw, name)) },
		Cookie:    func(name string) string { return string(h.Cookie(name)) },
		Referrer:  string(rawHeader(raw, fasthttp.HeaderReferer)),
		Language:  string(rawHeader(raw, fasthttp.HeaderAcceptLanguage)), // rules take its first tag
		UserAgent: string(rawHeader(raw, fasthttp.HeaderUserAgent)),
		Time:      now,
	}
	r.Country = countryOf(raw, trusted)
	return v, r
}

// countryOf is the visitor's country from the first of countryHeaders in
// the raw header block, upper-cased; "" when none is set or the headers
// are not trusted.
func countryOf(raw []byte, trusted bool) string {
	if !trusted {
		return ""
	}
	for _, h := range countryHeaders {
		if c := rawHeader(raw, h); len(c) > 0 {
			return string(bytes.ToUpper(c))
		}
	}
	return ""
}

// mergeSegments returns the union of a and b, a's order first, in a new
// slice: a belongs to a cached profile and is never written to.
func mergeSegments(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	out = append(out, a...)
	for _, s := range b {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// rawHeader returns the first value of header name, in any case, from the
// request's raw header block.
func rawHeader(raw []byte, name string) []byte {
	var found []byte
	header.ForEach(raw, func(k, v []byte) {
		if found == nil && header.EqualFold(k, name) {
			found = v
		}
	})
	return found
}

func queryValues(args *fasthttp.Args) url.Values {
	if args.Len() == 0 {
		return nil
	}
	q := make(url.Values, args.Len())
	for k, v := range args.All() {
		q[string(k)] = append(q[string(k)], string(v))
	}
	return q
}
