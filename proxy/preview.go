package proxy

import (
	"bytes"
	"net/url"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/identity"
	"github.com/tailor-edge/tailor/journey"
	"github.com/tailor-edge/tailor/rules"
)

// preview returns the preview the request asks for, or nil: no
// tailor_preview parameter, previews disabled, or a token that does not
// verify (the request is then served as any other). The parameter, when
// there, is cut out of the request target, whose other bytes the origin
// gets exactly as the client sent them.
func (p *Proxy) preview(req *fasthttp.Request, now time.Time) *identity.PreviewClaims {
	uri, tok, found := cutQueryParam(req.Header.RequestURI(), identity.PreviewParam)
	if !found {
		return nil
	}
	req.Header.SetRequestURIBytes(uri)
	var c *identity.PreviewClaims
	if p.cfg.Preview.Key != "" {
		var err error
		if c, err = identity.VerifyPreview([]byte(p.cfg.Preview.Key), tok, now); err != nil {
			p.log.Debug("preview link refused", "err", err)
			c = nil
		}
	}
	if c == nil {
		p.m.Previews.Inc("rejected")
	} else {
		p.m.Previews.Inc("rendered")
	}
	return c
}

// cutQueryParam removes every name=value pair (or bare name) of the query
// of request target uri whose name is exactly name, as written, and
// returns the new target and the first such value, percent-decoded. The
// rest of the target is kept byte for byte. found is false when the query
// has no such pair; uri is then returned as it is.
func cutQueryParam(uri []byte, name string) (out []byte, value string, found bool) {
	q := bytes.IndexByte(uri, '?')
	if q < 0 {
		return uri, "", false
	}
	end := len(uri)
	if h := bytes.IndexByte(uri[q:], '#'); h >= 0 {
		end = q + h
	}
	pairs := bytes.Split(uri[q+1:end], []byte{'&'})
	kept := pairs[:0]
	for _, pair := range pairs {
		k, v, _ := bytes.Cut(pair, []byte{'='})
		if string(k) == name {
			if !found {
				value, found = unescapeQuery(v), true
			}
			continue
		}
		kept = append(kept, pair)
	}
	if !found {
		return uri, "", false
	}
	out = make([]byte, 0, len(uri))
	out = append(out, uri[:q]...)
	if len(kept) > 0 {
		out = append(out, '?')
		out = append(out, bytes.Join(kept, []byte{'&'})...)
	}
	return append(out, uri[end:]...), value, true
}

// unescapeQuery decodes a query value ('+' is a space); a malformed
// escape is kept as written.
func unescapeQuery(v []byte) string {
	s, err := url.QueryUnescape(string(v))
	if err != nil {
		return string(v)
	}
	return s
}

// previewVisitor makes v the visitor a preview link names.
func previewVisitor(set *rules.Set, v *rules.Visitor, c *identity.PreviewClaims) {
	v.ID = c.Subject
	if v.ID == "" {
		v.ID = "preview"
	}
	v.Known = c.Known
	v.Segments, v.Stage, v.Traits, v.Scores = c.Segments, c.Stage, c.Traits, c.Scores
	v.Visits, v.NewVisitor, v.Engagement = max(c.Visits, 1), c.Visits <= 1, c.Engagement
	var edge []identity.InterestScore
	for tag, score := range c.Interests {
		edge = append(edge, identity.InterestScore{Tag: tag, Score: score})
	}
	v.Interests, v.TopInterest, v.Persona = journey.Interests(set, edge, nil)
	if c.Persona != "" {
		v.Persona = c.Persona
	}
}
