package identity

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
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

// VerifyPreview returns the claims of preview token tok when it is signed
// with key (preview.key) and not expired at now.
func VerifyPreview(key []byte, tok string, now time.Time) (*PreviewClaims, error) {
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
