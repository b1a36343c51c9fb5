package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/identity"
	"github.com/tailor-edge/tailor/rules"
)

// PreviewParam is the query parameter of a preview link (SPEC "HTTP
// behaviour"): "?tailor_preview=<token>".
const PreviewParam = "tailor_preview"

// previewIssuer marks tokens made for previews, so that a token the site
// signs for logins can never pass as one, whatever keys are shared.
const previewIssuer = "tailor-preview"

// maxPreviewToken bounds a preview token; longer ones are refused unread.
const maxPreviewToken = 8 << 10

// PreviewClaims are who a preview link shows a page as: the page renders
// for a visitor with exactly these segments, stage and traits (nothing is
// read from cookies, tokens or the profile store), with no cookie set and
// no event reported.
type PreviewClaims struct {
	// Segments, Stage, Traits and Scores replace the visitor's.
	Segments []string           `json:"segments,omitempty"`
	Stage    string             `json:"stage,omitempty"`
	Traits   map[string]any     `json:"traits,omitempty"`
	Scores   map[string]float64 `json:"scores,omitempty"`
	// Known previews a logged-in visitor.
	Known bool `json:"known,omitempty"`
	// Visits is the visit number; 0 means a first visit.
	Visits int `json:"visits,omitempty"`
	// Engagement is the visit's engagement value.
	Engagement float64 `json:"engagement,omitempty"`
	// Interests are the visitor's interest scores; Persona, when set,
	// is their persona, else the one nearest to Interests.
	Interests map[string]float64 `json:"interests,omitempty"`
	Persona   string             `json:"persona,omitempty"`
	// Label names the preview for people ("VIP in retention"); the
	// subject, when set, is the id experiments bucket by.
	Label string `json:"label,omitempty"`
	jwt.RegisteredClaims
}

// SignPreview returns a preview token for c, valid for ttl, signed with
// key (preview.key): append it to a page's URL as "?tailor_preview=".
func SignPreview(key string, c PreviewClaims, ttl time.Duration, now time.Time) (string, error) {
	if key == "" {
		return "", errors.New("sign preview: preview.key is empty, so previews are disabled")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("sign preview: ttl must be positive, not %v", ttl)
	}
	c.Issuer = previewIssuer
	c.IssuedAt = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	return jwt.NewWithClaims(jwt.SigningMethodHS256, &c).SignedString([]byte(key))
}

// verifyPreview returns the claims of a preview token signed with key and
// not expired.
func verifyPreview(key []byte, tok string, now time.Time) (*PreviewClaims, error) {
	if len(tok) > maxPreviewToken {
		return nil, errors.New("preview token too long")
	}
	c := &PreviewClaims{}
	_, err := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(previewIssuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	).ParseWithClaims(tok, c, func(*jwt.Token) (any, error) { return key, nil })
	if err != nil {
		return nil, err
	}
	return c, nil
}

// preview returns the preview the request asks for, or nil: no
// tailor_preview parameter, previews disabled, or a token that does not
// verify (the request is then served as any other). The parameter, when
// there, is cut out of the request target, whose other bytes the origin
// gets exactly as the client sent them.
func (p *Proxy) preview(req *fasthttp.Request, now time.Time) *PreviewClaims {
	uri, tok, found := cutQueryParam(req.Header.RequestURI(), PreviewParam)
	if !found {
		return nil
	}
	req.Header.SetRequestURIBytes(uri)
	var c *PreviewClaims
	if p.cfg.Preview.Key != "" {
		var err error
		if c, err = verifyPreview([]byte(p.cfg.Preview.Key), tok, now); err != nil {
			p.log.Debug("preview link refused", "err", err)
			c = nil
		}
	}
	if c == nil {
		p.m.previews.WithLabelValues("rejected").Inc()
	} else {
		p.m.previews.WithLabelValues("rendered").Inc()
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
func previewVisitor(set *rules.Set, v *rules.Visitor, c *PreviewClaims) {
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
	v.Interests, v.TopInterest, v.Persona = visitorInterests(set, edge, nil)
	if c.Persona != "" {
		v.Persona = c.Persona
	}
}
