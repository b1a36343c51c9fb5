package proxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/config"
)

func testSigner(t *testing.T, keys ...string) *signer {
	t.Helper()
	c := config.Default().Identity.Cookie
	c.Keys = keys
	s, err := newSigner(c, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
	id, value := old.mint()
	if got, ok := old.verify([]byte(value)); !ok || got != id {
		t.Fatalf("verify(mint()) = %q, %v; want %q", got, ok, id)
	}
	if value != signWith(keyOld, id) {
		t.Errorf("cookie %q is not v1.<id>.<HMAC-SHA256(key, v1.id)>", value)
	}
	// After rotation the new key signs and the old one still verifies.
	rotated := testSigner(t, keyNew, keyOld)
	if got, ok := rotated.verify([]byte(value)); !ok || got != id {
		t.Errorf("after rotation an old-key cookie does not verify: %q, %v", got, ok)
	}
	id2, value2 := rotated.mint()
	if value2 != signWith(keyNew, id2) {
		t.Error("after rotation new cookies are not signed with the first key")
	}
	// Once the old key is dropped, its cookies stop verifying.
	if _, ok := testSigner(t, keyNew).verify([]byte(value)); ok {
		t.Error("a cookie verified after its key was removed")
	}
}

// TestForgedCookiesNeverSelectAnotherVisitor tries the ways a visitor
// could claim another's id: each must verify as nobody.
func TestForgedCookiesNeverSelectAnotherVisitor(t *testing.T) {
	s := testSigner(t, keyNew)
	victim, good := s.mint()
	other, otherValue := s.mint()
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
		if got, ok := s.verify([]byte(v)); ok {
			t.Errorf("%s: verify(%q) = %q, want rejected", name, v, got)
		}
	}
	// Through identify: a forged cookie gets a fresh id and a Set-Cookie.
	p := &Proxy{signer: s, cfg: config.Default(), m: newMetrics(NewRegistry(), "test")}
	for name, v := range cases {
		var req fasthttp.Request
		req.Header.SetCookie("tailor_id", v)
		id := p.identify(&req, time.Now(), false)
		if id.AnonymousID == victim || id.AnonymousID == other || id.Key() == victim {
			t.Errorf("%s: identified as an existing visitor", name)
		}
		if id.SetCookie == "" {
			t.Errorf("%s: no fresh cookie issued", name)
		}
	}
	var req fasthttp.Request
	req.Header.SetCookie("tailor_id", good)
	if id := p.identify(&req, time.Now(), false); id.AnonymousID != victim || id.SetCookie != "" {
		t.Errorf("the genuine cookie identified %q (Set-Cookie %q), want %q and none", id.AnonymousID, id.SetCookie, victim)
	}
}

func TestCookieAttributes(t *testing.T) {
	c := config.Default().Identity.Cookie
	c.Name, c.Keys, c.Secure, c.SameSite, c.MaxAge = "__Host-tailor_id", []string{keyNew}, true, "strict", 48*time.Hour
	s, err := newSigner(c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	_, v := s.mint()
	got := s.setCookie(v)
	want := "__Host-tailor_id=" + v + "; Path=/; Max-Age=172800; HttpOnly; Secure; SameSite=Strict"
	if got != want {
		t.Errorf("Set-Cookie = %q\nwant          %q", got, want)
	}
	if strings.Contains(strings.ToLower(got), "domain=") {
		t.Error("a __Host- cookie must not carry Domain")
	}
}

func TestOptedOutVisitorsGetNoTrackingCookie(t *testing.T) {
	origin := pageOrigin(t, shopPage, nil)
	p := startProxy(t, origin, nil)
	for _, h := range [][]string{{"Sec-GPC", "1"}, {"DNT", "1"}} {
		resp, _ := get(t, p.url+"/", h...)
		if c := resp.Header.Get("Set-Cookie"); c != "" {
			t.Errorf("%s: 1 got Set-Cookie %q", h[0], c)
		}
	}
	resp, _ := get(t, p.url+"/")
	if resp.Header.Get("Set-Cookie") == "" {
		t.Error("a visitor who did not opt out got no cookie")
	}
}

func TestStaticAssetsGetNoIdentity(t *testing.T) {
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		io.WriteString(w, "body{color:red}")
	}))
	p := startProxy(t, origin.URL, nil)
	resp, body := get(t, p.url+"/site.css")
	if c := resp.Header.Get("Set-Cookie"); c != "" || string(body) != "body{color:red}" {
		t.Errorf("a stylesheet got Set-Cookie %q, body %q", c, body)
	}
}

func BenchmarkIdentifyCookie(b *testing.B) {
	s := &signer{name: "tailor_id", keys: []*macPool{newMacPool([]byte(keyNew)), newMacPool([]byte(keyOld))}}
	p := &Proxy{signer: s, cfg: config.Default(), m: newMetrics(NewRegistry(), "test")}
	_, v := s.mint()
	var req fasthttp.Request
	req.Header.SetCookie("tailor_id", v)
	b.ReportAllocs()
	for b.Loop() {
		if id := p.identify(&req, time.Now(), false); id.SetCookie != "" {
			b.Fatal("cookie did not verify")
		}
	}
}
