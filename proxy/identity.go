package proxy

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/config"
)

// The anonymous visitor's cookie is "v1.<id>.<mac>": id is 128 random bits
// and mac is HMAC-SHA256(key, "v1."+id), both unpadded base64url (SPEC
// "Visitor identity"). A cookie that does not verify under any key is
// treated as absent: the visitor gets a fresh id, never somebody else's.
const (
	cookieVersion = "v1."
	idBytes       = 16
	idLen         = 22 // base64url of 16 bytes, unpadded
	macLen        = 43 // base64url of 32 bytes, unpadded
	cookieLen     = len(cookieVersion) + idLen + 1 + macLen
)

// signer signs and verifies identity cookies. The first key signs; every
// key verifies, so keys rotate by putting the new one first.
type signer struct {
	keys  []*macPool
	name  string
	attrs string // "; Path=/; Max-Age=…; HttpOnly…", precomputed
}

// macPool keeps HMAC states for one key: hmac.New allocates and hashes the
// key on every call, Reset does neither.
type macPool struct{ sync.Pool }

func newMacPool(key []byte) *macPool {
	return &macPool{sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

// ephemeralKeyNote is logged when no key is configured.
const ephemeralKeyNote = "identity.cookie.keys is empty: signing visitor cookies with a random key, so every visitor gets a new id when tailor restarts"

func newSigner(c config.Cookie, log *slog.Logger) (*signer, error) {
	s := &signer{name: c.Name}
	keys := c.Keys
	if len(keys) == 0 {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, err
		}
		keys = []string{string(k)}
		log.Warn(ephemeralKeyNote)
	}
	for i, k := range keys {
		if len(k) < 32 && len(c.Keys) > 0 {
			log.Warn("identity cookie key is shorter than 32 bytes; use a long random key", "key", i+1)
		}
		s.keys = append(s.keys, newMacPool([]byte(k)))
	}
	var b strings.Builder
	b.WriteString("; Path=/")
	if c.MaxAge > 0 {
		b.WriteString("; Max-Age=")
		b.WriteString(strconv.FormatInt(int64(c.MaxAge/time.Second), 10))
	}
	b.WriteString("; HttpOnly")
	if c.Secure {
		b.WriteString("; Secure")
	}
	switch strings.ToLower(c.SameSite) {
	case "strict":
		b.WriteString("; SameSite=Strict")
	case "none":
		b.WriteString("; SameSite=None")
	case "lax":
		b.WriteString("; SameSite=Lax")
	}
	s.attrs = b.String()
	return s, nil
}

// mac appends the base64url MAC of "v1."+id under key k to dst.
func (k *macPool) mac(dst []byte, id []byte) []byte {
	h := k.Get().(hash.Hash)
	h.Reset()
	h.Write([]byte(cookieVersion))
	h.Write(id)
	var sum [sha256.Size]byte
	dst = base64.RawURLEncoding.AppendEncode(dst, h.Sum(sum[:0]))
	k.Put(h)
	return dst
}

// verify returns the id of a well-formed cookie value whose MAC verifies
// under one of the keys.
func (s *signer) verify(v []byte) (string, bool) {
	if len(v) != cookieLen || string(v[:len(cookieVersion)]) != cookieVersion || v[len(cookieVersion)+idLen] != '.' {
		return "", false
	}
	id := v[len(cookieVersion) : len(cookieVersion)+idLen]
	got := v[len(cookieVersion)+idLen+1:]
	// The id must be canonical base64url of 16 bytes: two spellings of one
	// id would be two visitors.
	var raw [idBytes]byte
	if n, err := base64.RawURLEncoding.Strict().Decode(raw[:], id); err != nil || n != idBytes {
		return "", false
	}
	var buf [macLen]byte
	for _, k := range s.keys {
		if hmac.Equal(k.mac(buf[:0], id), got) {
			return string(id), true
		}
	}
	return "", false
}

// mint returns a fresh id and its signed cookie value.
func (s *signer) mint() (id, value string) {
	var raw [idBytes]byte
	rand.Read(raw[:]) // never fails (crypto/rand, Go 1.24+)
	b := make([]byte, 0, cookieLen)
	b = append(b, cookieVersion...)
	b = base64.RawURLEncoding.AppendEncode(b, raw[:])
	idEnd := len(b)
	b = append(b, '.')
	b = s.keys[0].mac(b, b[len(cookieVersion):idEnd])
	v := string(b)
	return v[len(cookieVersion):idEnd], v
}

// setCookie returns the Set-Cookie value that gives the visitor value.
func (s *signer) setCookie(value string) string {
	return s.name + "=" + value + s.attrs
}

// visitorIdentity is who a request comes from.
type visitorIdentity struct {
	// AnonymousID is the id in the visitor's cookie, or a fresh one.
	AnonymousID string
	// SetCookie, when not empty, is the Set-Cookie value that gives the
	// visitor a fresh id (their cookie was missing, malformed or forged).
	SetCookie string
	// Fresh is true when AnonymousID was minted for this request: no
	// profile can exist for it yet.
	Fresh bool
	// Subject is the profile id from a verified token; "" without one.
	Subject string
	// TokenSegments are the segments the verified token carries.
	TokenSegments []string
}

// Key is the profile lookup key: the token's subject when there is one,
// else the anonymous id.
func (v *visitorIdentity) Key() string {
	if v.Subject != "" {
		return v.Subject
	}
	return v.AnonymousID
}

// Known reports whether a verified token identified the visitor.
func (v *visitorIdentity) Known() bool { return v.Subject != "" }

// identify reads the visitor's cookie and token. optOut (GPC/DNT, when
// respected) means no new tracking cookie: a visitor without a valid one
// gets an id for this request only.
func (p *Proxy) identify(req *fasthttp.Request, now time.Time, optOut bool) visitorIdentity {
	var id visitorIdentity
	if v := req.Header.Cookie(p.signer.name); len(v) > 0 {
		if anon, ok := p.signer.verify(v); ok {
			id.AnonymousID = anon
		} else {
			p.m.identity.WithLabelValues(identityForged).Inc()
		}
	}
	if id.AnonymousID == "" {
		anon, value := p.signer.mint()
		id.AnonymousID, id.Fresh = anon, true
		if !optOut {
			id.SetCookie = p.signer.setCookie(value)
		}
		p.m.identity.WithLabelValues(identityNew).Inc()
	}
	if p.jwt != nil {
		if tok := p.jwt.token(req); len(tok) > 0 {
			claims, reason := p.jwt.verify(tok, now)
			if reason != "" {
				p.m.jwtRejected.WithLabelValues(reason).Inc()
			} else {
				id.Subject, id.TokenSegments = claims.Subject, claims.Segments
				p.m.identity.WithLabelValues(identityKnown).Inc()
			}
		}
	}
	return id
}

// tracking reports whether the visitor may be tracked: not when they ask
// not to be (Sec-GPC: 1 or DNT: 1, when privacy.respect_gpc), nor, when
// privacy.consent_cookie is set, until that cookie says "granted". An
// untracked visitor gets no new cookie and no events; the rules still
// personalize from the request and from cookies they already hold.
func (p *Proxy) tracking(req *fasthttp.Request) bool {
	if p.cfg.Privacy.RespectGPC {
		raw := req.Header.RawHeaders()
		if string(rawHeader(raw, "Sec-GPC")) == "1" || string(rawHeader(raw, "DNT")) == "1" {
			return false
		}
	}
	if c := p.cfg.Privacy.ConsentCookie; c != "" {
		return string(req.Header.Cookie(c)) == "granted"
	}
	return true
}

// visitorFor identifies the visitor of a request.
func (p *Proxy) visitorFor(req *fasthttp.Request, now time.Time) *visit {
	tracked := p.tracking(req)
	return &visit{id: p.identify(req, now, !tracked), tracked: tracked}
}
