package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/identity"
	"github.com/tailor-edge/tailor/internal/metrics"
)

// identifyingProxy is a Proxy with just what identify needs, its cookies
// signed with two keys as during a rotation.
func identifyingProxy(t testing.TB) *Proxy {
	t.Helper()
	c := config.Default().Identity.Cookie
	c.Keys = []string{"new-key-0123456789abcdef0123456789abcdef", "old-key-0123456789abcdef0123456789abcdef"}
	s, err := identity.NewSigner(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Proxy{signer: s, cfg: config.Default(), m: metrics.New(metrics.NewRegistry(), "test", nil)}
}

// TestForgedCookieStartsFreshVisitor: a cookie that does not verify (the
// identity package tests the ways) gets a fresh id and a Set-Cookie, and
// never selects the visitor it names.
func TestForgedCookieStartsFreshVisitor(t *testing.T) {
	p := identifyingProxy(t)
	victim, good := p.signer.Mint()
	other, otherValue := p.signer.Mint()
	mac := good[strings.LastIndexByte(good, '.')+1:]
	cases := map[string]string{
		"forged mac":   "v1." + victim + "." + strings.Repeat("A", len(mac)),
		"swapped ids":  "v1." + other + "." + mac,
		"swapped macs": good[:strings.LastIndexByte(good, '.')+1] + otherValue[strings.LastIndexByte(otherValue, '.')+1:],
		"truncated":    good[:len(good)-1],
		"empty":        "",
	}
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
	p := identifyingProxy(b)
	_, v := p.signer.Mint()
	var req fasthttp.Request
	req.Header.SetCookie("tailor_id", v)
	b.ReportAllocs()
	for b.Loop() {
		if id := p.identify(&req, time.Now(), false); id.SetCookie != "" {
			b.Fatal("cookie did not verify")
		}
	}
}

const jwtSecret = "a-test-secret-that-is-32-bytes-long!"

// testJWT is the login configuration token's tokens verify under.
func testJWT() *config.JWT {
	j := config.DefaultJWT()
	j.Algorithms = []string{"HS256"}
	j.Keys = []string{"hmac:" + jwtSecret}
	return j
}

// token returns a login token for subject.
func token(t *testing.T, subject string, segments ...string) string {
	t.Helper()
	claims := jwt.MapClaims{"sub": subject, "exp": time.Now().Add(time.Hour).Unix()}
	if len(segments) > 0 {
		claims["segments"] = segments
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(jwtSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
