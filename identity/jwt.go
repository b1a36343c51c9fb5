package identity

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/config"
)

// Reasons Verify gives for turning a token down, one label value each for a
// rejection metric.
const (
	jwtMalformed   = "malformed"     // not three base64url JSON parts, or a claim of the wrong type
	jwtAlgorithm   = "algorithm"     // alg not in the allow-list, unknown, or not one the named key may use
	jwtSignature   = "signature"     // no suitable key verifies the signature
	jwtExpired     = "expired"       // exp passed (beyond leeway), or no exp at all
	jwtNotYetValid = "not_yet_valid" // nbf still ahead (beyond leeway)
	jwtIssuer      = "issuer"        // iss missing or not the configured issuer
	jwtAudience    = "audience"      // aud missing or without the configured audience
	jwtSubject     = "subject"       // the subject claim is missing, empty or not a string
	jwtOversized   = "oversized"     // longer than maxJWTSize
	jwtUnknownKey  = "unknown_key"   // the kid names no key, or no key suits the algorithm
)

// jwtReasons lists every reason Verify can return.
var jwtReasons = []string{
	jwtMalformed, jwtAlgorithm, jwtSignature, jwtExpired, jwtNotYetValid,
	jwtIssuer, jwtAudience, jwtSubject, jwtOversized, jwtUnknownKey,
}

// RejectReasons lists every reason Verify can give for turning a token
// down, so that a metric can create its label values up front and a
// first rejection shows as a rise from zero.
func RejectReasons() []string { return slices.Clone(jwtReasons) }

// maxJWTSize bounds the work an anonymous client can make verify do: login
// tokens are a few hundred bytes, and 8 KiB leaves room for fat claims.
const maxJWTSize = 8 << 10

var (
	errUnknownKey   = errors.New("no key for this token")
	errKeyAlgorithm = errors.New("the named key does not allow this algorithm")
)

// verifiedTokens bounds the verified-token cache: some 200 bytes each.
const verifiedTokens = 16384

// verifiedToken is a verified-token cache entry.
type verifiedToken struct {
	claims Claims
	set    *keySet   // the key set it verified under
	nbf    time.Time // not valid before (leeway applied)
	until  time.Time // not valid after (leeway applied)
}

// Claims are what a verified token says about the visitor.
type Claims struct {
	Subject  string   // value of SubjectClaim: the profile id
	Segments []string // SegmentsClaim, nil when absent or of another shape
}

// Verifier checks the site's login tokens (identity.jwt). It is safe for
// concurrent use; Watch swaps the keys underneath it.
type Verifier struct {
	header        string
	cookie        string
	algs          []string
	opts          []jwt.ParserOption // all but the clock, which is per call
	issuer        string
	audience      string
	subjectClaim  string
	segmentsClaim string

	static   []jwtKey // from j.Keys; part of every key set
	jwksPath string   // resolved; "" without jwks_file
	log      *slog.Logger

	keys atomic.Pointer[keySet]

	// verified remembers tokens that verified, by SHA-256, until they
	// expire: a logged-in visitor sends the same token with every page,
	// and a signature check costs 20 µs (HS256) to 100 µs (RS256) where
	// the lookup costs under one. An entry counts only under the key set
	// it was verified with, so a JWKS reload that drops a key drops the
	// tokens it signed.
	verified *lru.Cache[[sha256.Size]byte, verifiedToken]
	leeway   time.Duration

	mu       sync.Mutex // serialises JWKS reloads
	lastJWKS []byte     // the file as last loaded, to skip no-op reloads
}

// NewVerifier loads the keys cfg's identity.jwt names, or returns nil
// without identity.jwt. Keys that do not load are returned as
// config.Errors at their file:line:col. log receives key warnings and
// JWKS reloads (nil: slog.Default()).
func NewVerifier(cfg *config.Config, log *slog.Logger) (*Verifier, error) {
	if cfg.Identity.JWT == nil {
		return nil, nil
	}
	v, err := newVerifier(cfg.Identity.JWT, cfg.Resolve, log)
	if err != nil {
		return nil, keyErrors(cfg, err)
	}
	return v, nil
}

// newVerifier loads the keys j names. resolve turns a path from the
// config file into one to open (nil: paths are used as they are); log
// receives key warnings and JWKS reloads (nil: slog.Default()).
func newVerifier(j *config.JWT, resolve func(string) string, log *slog.Logger) (*Verifier, error) {
	if j == nil {
		return nil, errors.New("create jwt verifier: no jwt configuration")
	}
	if resolve == nil {
		resolve = func(p string) string { return p }
	}
	if log == nil {
		log = slog.Default()
	}
	v := &Verifier{
		header:        j.Header,
		cookie:        j.Cookie,
		issuer:        j.Issuer,
		audience:      j.Audience,
		subjectClaim:  j.SubjectClaim,
		segmentsClaim: j.SegmentsClaim,
		leeway:        j.Leeway,
		log:           log.With("component", "jwt"),
	}
	var err error
	if v.verified, err = lru.New[[sha256.Size]byte, verifiedToken](verifiedTokens); err != nil {
		return nil, err
	}
	if v.subjectClaim == "" {
		v.subjectClaim = "sub"
	}
	for _, alg := range j.Algorithms {
		// Validate already refuses "none"; this keeps it out even for a
		// config that skipped Validate.
		if strings.EqualFold(alg, "none") || jwt.GetSigningMethod(alg) == nil {
			continue
		}
		v.algs = append(v.algs, alg)
	}
	if len(v.algs) == 0 {
		return nil, fmt.Errorf("create jwt verifier: no supported algorithm in %q", j.Algorithms)
	}
	v.opts = []jwt.ParserOption{
		jwt.WithValidMethods(v.algs),
		jwt.WithLeeway(j.Leeway),
		// A login token without exp would identify its bearer forever,
		// after logout and after a leak alike: the site must set one.
		jwt.WithExpirationRequired(),
		// Non-canonical base64 would let one token have many spellings.
		jwt.WithStrictDecoding(),
	}
	if j.Issuer != "" {
		v.opts = append(v.opts, jwt.WithIssuer(j.Issuer))
	}
	if j.Audience != "" {
		v.opts = append(v.opts, jwt.WithAudience(j.Audience))
	}

	var keyErrs []error
	for i, spec := range j.Keys {
		keys, err := loadJWTKey(spec, resolve)
		if err != nil {
			keyErrs = append(keyErrs, &keyError{key: fmt.Sprintf("identity.jwt.keys[%d]", i), err: err})
			continue
		}
		for _, k := range keys {
			if !slices.ContainsFunc(v.algs, k.suits) {
				v.log.Warn("jwt key suits none of the allowed algorithms and will verify nothing",
					"key", keyLabel(spec), "type", k.typeName(), "algorithms", v.algs)
			}
			if b, ok := k.key.([]byte); ok && len(b) < 32 {
				v.log.Warn("hmac jwt secret is shorter than 32 bytes: tokens can be forged by brute force",
					"key", keyLabel(spec))
			}
		}
		v.static = append(v.static, keys...)
	}
	if j.JWKSFile != "" {
		v.jwksPath = resolve(j.JWKSFile)
		if err := v.loadJWKS(); err != nil {
			keyErrs = append(keyErrs, &keyError{key: "identity.jwt.jwks_file", err: err})
		}
	}
	if len(keyErrs) > 0 {
		return nil, errors.Join(keyErrs...)
	}
	if j.JWKSFile == "" {
		v.keys.Store(newKeySet(v.static, v.algs))
	}
	return v, nil
}

// keyError is a key of identity.jwt that does not load; key names it as
// config.Config.ErrorAt does.
type keyError struct {
	key string
	err error
}

func (e *keyError) Error() string { return e.key + ": " + e.err.Error() }
func (e *keyError) Unwrap() error { return e.err }

// CheckKeys loads every key file cfg names, as NewVerifier does, and
// returns what does not load as config.Errors at each key's file:line:col,
// so that tailor check finds what serve would refuse. With no identity.jwt
// it returns nil.
func CheckKeys(cfg *config.Config) error {
	_, err := NewVerifier(cfg, slog.New(slog.DiscardHandler))
	return err
}

// keyErrors turns newVerifier's keyErrors into config.Errors; any other
// error is returned as it is.
func keyErrors(cfg *config.Config, err error) error {
	if err == nil {
		return nil
	}
	var errs config.Errors
	var walk func(error) bool
	walk = func(err error) bool {
		if ke, ok := err.(*keyError); ok {
			errs = append(errs, cfg.ErrorAt(ke.key, "%v", ke.err))
			return true
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				if !walk(e) {
					return false
				}
			}
			return true
		}
		return false
	}
	if !walk(err) {
		return err
	}
	return errs
}

// keyLabel names a configured key for a log line without its secret.
func keyLabel(spec string) string {
	if strings.HasPrefix(spec, "hmac:") {
		return "hmac:…"
	}
	return spec
}

// Token returns the raw token of req: from the header, written
// "Bearer <token>" (scheme in any case), else from the cookie. It returns
// nil when there is none, and does not allocate. The slice points into
// req: it is valid until req is released and must be copied to be kept.
func (v *Verifier) Token(req *fasthttp.Request) []byte {
	if v.header != "" {
		h := req.Header.Peek(v.header)
		if h == nil {
			// The server keeps header names as the client sent them
			// (DisableHeaderNamesNormalizing), so Peek only finds the
			// configured spelling; HTTP/2 fronts send it lower-case.
			for k, val := range req.Header.All() {
				if len(k) == len(v.header) && bytes.EqualFold(k, []byte(v.header)) {
					h = val
					break
				}
			}
		}
		if t := bearer(h); t != nil {
			return t
		}
	}
	if v.cookie != "" {
		if c := req.Header.Cookie(v.cookie); len(c) > 0 {
			return c
		}
	}
	return nil
}

// bearer returns the credentials of an RFC 6750 "Bearer" header value,
// nil for another scheme or none.
func bearer(h []byte) []byte {
	const scheme = "Bearer "
	if len(h) <= len(scheme) || !bytes.EqualFold(h[:len(scheme)], []byte(scheme)) {
		return nil
	}
	t := bytes.TrimLeft(h[len(scheme):], " \t")
	if len(t) == 0 {
		return nil
	}
	return t
}

// Verify checks tok at time now and returns what it says about the
// visitor, or the reason it was turned down (one of RejectReasons). It
// never blocks on a key reload. A token that verified before is found in
// a cache until it expires, without allocating.
func (v *Verifier) Verify(tok []byte, now time.Time) (c Claims, reason string) {
	if len(tok) > maxJWTSize {
		return Claims{}, jwtOversized
	}
	if len(tok) == 0 {
		return Claims{}, jwtMalformed
	}
	set := v.keys.Load()
	sum := sha256.Sum256(tok)
	if e, ok := v.verified.Get(sum); ok && e.set == set && !now.Before(e.nbf) && now.Before(e.until) {
		return e.claims, ""
	}
	claims := jwt.MapClaims{}
	// The clock is per call, so is the parser: WithTimeFunc is the only way
	// to give the validator a time other than time.Now.
	opts := append(v.opts[:len(v.opts):len(v.opts)], jwt.WithTimeFunc(func() time.Time { return now }))
	t, err := jwt.NewParser(opts...).ParseWithClaims(string(tok), claims, set.keyFor)
	if err != nil {
		return Claims{}, v.reason(t, claims, err)
	}
	if iss, _ := claims["iss"].(string); iss == previewIssuer {
		// A preview link's token names a visitor to render as, not one
		// who logged in, even where preview.key is also a login key.
		return Claims{}, jwtIssuer
	}
	sub, _ := claims[v.subjectClaim].(string)
	if sub == "" {
		return Claims{}, jwtSubject
	}
	kc := Claims{Subject: sub}
	if v.segmentsClaim != "" {
		kc.Segments = segmentsOf(claims[v.segmentsClaim])
	}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		e := verifiedToken{claims: kc, set: set, until: exp.Add(v.leeway)}
		if nbf, err := claims.GetNotBefore(); err == nil && nbf != nil {
			e.nbf = nbf.Add(-v.leeway)
		}
		v.verified.Add(sum, e)
	}
	return kc, ""
}

// reason turns a parse error into a metric label. The validator joins all
// the claim errors it finds; the order here picks the one an operator most
// needs to see (a wrong issuer matters more than a stale token).
func (v *Verifier) reason(t *jwt.Token, claims jwt.MapClaims, err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return jwtMalformed
	case errors.Is(err, errUnknownKey):
		return jwtUnknownKey
	case errors.Is(err, errKeyAlgorithm):
		return jwtAlgorithm
	case t != nil && t.Method != nil && !slices.Contains(v.algs, t.Method.Alg()):
		return jwtAlgorithm
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// alg is missing or names a method the library does not know.
		if t != nil {
			if _, ok := t.Header["alg"].(string); ok {
				return jwtAlgorithm
			}
		}
		return jwtMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return jwtSignature
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return jwtIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return jwtAudience
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// The library does not say which claim; look.
		if _, ok := claims["exp"]; !ok {
			return jwtExpired
		}
		if iss, _ := claims["iss"].(string); v.issuer != "" && iss == "" {
			return jwtIssuer
		}
		return jwtAudience
	case errors.Is(err, jwt.ErrTokenExpired):
		return jwtExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return jwtNotYetValid
	}
	return jwtMalformed
}

// segmentsOf reads a segments claim: an array of strings or one string.
// Anything else is ignored rather than guessed at.
func segmentsOf(c any) []string {
	switch c := c.(type) {
	case string:
		if c != "" {
			return []string{c}
		}
	case []any:
		segs := make([]string, 0, len(c))
		for _, e := range c {
			s, ok := e.(string)
			if !ok {
				return nil
			}
			if s != "" {
				segs = append(segs, s)
			}
		}
		if len(segs) > 0 {
			return segs
		}
	}
	return nil
}
