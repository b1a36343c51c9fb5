package identity

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

// Signer signs and verifies the visitor's cookies: the id cookie and the
// state cookie beside it. The first key signs; every key verifies, so keys
// rotate by putting the new one first. It is safe for concurrent use.
type Signer struct {
	keys      []*macPool
	name      string // the id cookie's
	stateName string // the state cookie's
	attrs     string // "; Path=/; Max-Age=…; HttpOnly…", precomputed
}

// macPool keeps HMAC states for one key: hmac.New allocates and hashes the
// key on every call, Reset does neither.
type macPool struct{ sync.Pool }

func newMacPool(key []byte) *macPool {
	return &macPool{sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

// ephemeralKeyNote is logged when no key is configured.
const ephemeralKeyNote = "identity.cookie.keys is empty: signing visitor cookies with a random key, so every visitor gets a new id when tailor restarts"

// NewSigner returns the signer for identity.cookie. Without keys it signs
// with a random one, and says so in log (nil: slog.Default()).
func NewSigner(c config.Cookie, log *slog.Logger) (*Signer, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Signer{name: c.Name, stateName: stateCookieName(c.Name)}
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

// Name is the id cookie's name (identity.cookie.name).
func (s *Signer) Name() string { return s.name }

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

// Verify returns the id in id cookie value v when v is well formed and its
// MAC verifies under one of the keys.
func (s *Signer) Verify(v []byte) (id string, ok bool) {
	if len(v) != cookieLen || string(v[:len(cookieVersion)]) != cookieVersion || v[len(cookieVersion)+idLen] != '.' {
		return "", false
	}
	raw := v[len(cookieVersion) : len(cookieVersion)+idLen]
	got := v[len(cookieVersion)+idLen+1:]
	// The id must be canonical base64url of 16 bytes: two spellings of one
	// id would be two visitors.
	var bits [idBytes]byte
	if n, err := base64.RawURLEncoding.Strict().Decode(bits[:], raw); err != nil || n != idBytes {
		return "", false
	}
	var buf [macLen]byte
	for _, k := range s.keys {
		if hmac.Equal(k.mac(buf[:0], raw), got) {
			return string(raw), true
		}
	}
	return "", false
}

// Mint returns a fresh id and its signed id cookie value.
func (s *Signer) Mint() (id, value string) {
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

// SetCookie returns the Set-Cookie value that gives the visitor id cookie
// value (from Mint).
func (s *Signer) SetCookie(value string) string {
	return s.name + "=" + value + s.attrs
}
