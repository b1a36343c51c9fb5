package identity

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/config"
)

func testSigner(t testing.TB, keys ...string) *Signer {
	t.Helper()
	c := config.Default().Identity.Cookie
	c.Keys = keys
	s, err := NewSigner(c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signWith builds a cookie value for id the way the format says, with key.
func signWith(key, id string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte("v1." + id))
	return "v1." + id + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// macOf is HMAC-SHA256(key, msg) in base64url.
func macOf(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

const (
	keyNew = "new-key-0123456789abcdef0123456789abcdef"
	keyOld = "old-key-0123456789abcdef0123456789abcdef"
)

func TestCookieRoundTripAndRotation(t *testing.T) {
	old := testSigner(t, keyOld)
	id, value := old.Mint()
	if got, ok := old.Verify([]byte(value)); !ok || got != id {
		t.Fatalf("verify(mint()) = %q, %v; want %q", got, ok, id)
	}
	if value != signWith(keyOld, id) {
		t.Errorf("cookie %q is not v1.<id>.<HMAC-SHA256(key, v1.id)>", value)
	}
	// After rotation the new key signs and the old one still verifies.
	rotated := testSigner(t, keyNew, keyOld)
	if got, ok := rotated.Verify([]byte(value)); !ok || got != id {
		t.Errorf("after rotation an old-key cookie does not verify: %q, %v", got, ok)
	}
	id2, value2 := rotated.Mint()
	if value2 != signWith(keyNew, id2) {
		t.Error("after rotation new cookies are not signed with the first key")
	}
	// Once the old key is dropped, its cookies stop verifying.
	if _, ok := testSigner(t, keyNew).Verify([]byte(value)); ok {
		t.Error("a cookie verified after its key was removed")
	}
}

// TestForgedCookiesNeverSelectAnotherVisitor tries the ways a visitor
// could claim another's id: each must verify as nobody.
func TestForgedCookiesNeverSelectAnotherVisitor(t *testing.T) {
	s := testSigner(t, keyNew)
	victim, good := s.Mint()
	other, otherValue := s.Mint()
	mac := good[strings.LastIndexByte(good, '.')+1:]
	otherMac := otherValue[strings.LastIndexByte(otherValue, '.')+1:]
	flip := func(c byte) byte {
		if c == 'A' {
			return 'B'
		}
		return 'A'
	}
	// The last base64 character of a 16-byte id carries 2 spare bits:
	// another spelling of the same id that a lax decoder would accept.
	nonCanonical := []byte(victim)
	nonCanonical[len(nonCanonical)-1] ^= 1
	cases := map[string]string{
		"forged mac":             "v1." + victim + "." + strings.Repeat("A", macLen),
		"re-signed, wrong key":   signWith("attacker-key-0123456789abcdef012345", victim),
		"truncated":              good[:len(good)-1],
		"truncated id":           "v1." + victim[:idLen-1] + "." + mac,
		"swapped macs":           "v1." + victim + "." + otherMac,
		"swapped ids":            "v1." + other + "." + mac,
		"flipped mac bit":        good[:len(good)-1] + string(flip(good[len(good)-1])),
		"non-canonical id":       "v1." + string(nonCanonical) + "." + mac,
		"other version":          "v2" + good[2:],
		"extra bytes":            good + "A",
		"padded":                 good + "=",
		"empty":                  "",
		"mac only":               mac,
		"id without mac":         "v1." + victim,
		"lowercased":             strings.ToLower(good),
		"signed with empty key":  signWith("", victim),
		"signed without version": "v1." + victim + "." + macOf(keyNew, victim),
	}
	for name, v := range cases {
		if got, ok := s.Verify([]byte(v)); ok {
			t.Errorf("%s: verify(%q) = %q, want rejected", name, v, got)
		}
	}
}

func TestCookieAttributes(t *testing.T) {
	c := config.Default().Identity.Cookie
	c.Name, c.Keys, c.Secure, c.SameSite, c.MaxAge = "__Host-tailor_id", []string{keyNew}, true, "strict", 48*time.Hour
	s, err := NewSigner(c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	_, v := s.Mint()
	got := s.SetCookie(v)
	want := "__Host-tailor_id=" + v + "; Path=/; Max-Age=172800; HttpOnly; Secure; SameSite=Strict"
	if got != want {
		t.Errorf("Set-Cookie = %q\nwant          %q", got, want)
	}
	if strings.Contains(strings.ToLower(got), "domain=") {
		t.Error("a __Host- cookie must not carry Domain")
	}
}

func TestStateCookieNameFollowsTheIDCookiePrefix(t *testing.T) {
	for id, want := range map[string]string{
		"tailor_id":          "tailor_state",
		"__Host-tailor_id":   "__Host-tailor_state",
		"__Secure-visitor":   "__Secure-tailor_state",
		"visitor__Host-late": "tailor_state",
	} {
		c := config.Default().Identity.Cookie
		c.Name, c.Keys = id, []string{keyNew}
		s, err := NewSigner(c, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.StateName(); got != want {
			t.Errorf("StateName() for id cookie %q = %q, want %q", id, got, want)
		}
	}
}

func BenchmarkVerifyCookie(b *testing.B) {
	s := testSigner(b, keyNew, keyOld)
	_, v := s.Mint()
	raw := []byte(v)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.Verify(raw); !ok {
			b.Fatal("cookie did not verify")
		}
	}
}
