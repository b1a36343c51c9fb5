package identity

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/testkit"
)

// jwtNow is the clock of every verification in these tests.
var jwtNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// jwtTestKeys are a test site's signing keys.
type jwtTestKeys struct {
	rsa, rsa2 *rsa.PrivateKey
	ec        *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
	hmac      []byte
}

// testJWTKeys makes the keys once per test binary: RSA generation takes
// seconds under the race detector.
var testJWTKeys = sync.OnceValues(func() (*jwtTestKeys, error) {
	var k jwtTestKeys
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		return nil, err
	}
	k.hmac = make([]byte, 32)
	rand.Read(k.hmac)
	return &k, nil
})

func jwtKeys(t testing.TB) *jwtTestKeys {
	t.Helper()
	k, err := testJWTKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// jwtClaims are a well-formed login token's claims at jwtNow; edit
// overrides them (a nil value deletes the claim).
func jwtClaims(edit map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub":      "user-42",
		"iss":      "https://login.example",
		"aud":      "tailor",
		"iat":      jwtNow.Add(-time.Minute).Unix(),
		"exp":      jwtNow.Add(time.Hour).Unix(),
		"segments": []string{"vip", "runner"},
	}
	for k, v := range edit {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func signJWT(t testing.TB, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s token: %v", m.Alg(), err)
	}
	return s
}

func writePEMFile(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func writePublicPEM(t testing.TB, dir, name string, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return writePEMFile(t, dir, name, "PUBLIC KEY", der)
}

// jwkOf writes key as a JWK.
func jwkOf(t testing.TB, kid string, key any) map[string]any {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	m := map[string]any{}
	if kid != "" {
		m["kid"] = kid
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64(k.N.Bytes()), b64(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		pt, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		size := (len(pt) - 1) / 2
		m["kty"], m["crv"], m["x"], m["y"] = "EC", k.Curve.Params().Name, b64(pt[1:1+size]), b64(pt[1+size:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64(k)
	case []byte:
		m["kty"], m["k"] = "oct", b64(k)
	default:
		t.Fatalf("jwkOf(%T)", key)
	}
	return m
}

func writeJWKS(t testing.TB, path string, keys ...map[string]any) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	testkit.ReplaceFile(t, path, b)
}

// jwtConfig is identity.jwt as a site with every kind of key would write it.
func jwtConfig(algs ...string) *config.JWT {
	return &config.JWT{
		Header:        "Authorization",
		Algorithms:    algs,
		Issuer:        "https://login.example",
		Audience:      "tailor",
		Leeway:        30 * time.Second,
		SubjectClaim:  "sub",
		SegmentsClaim: "segments",
	}
}

func newTestVerifier(t testing.TB, j *config.JWT, dir string, log *slog.Logger) *Verifier {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v, err := newVerifier(j, func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}, log)
	if err != nil {
		t.Fatalf("newVerifier: %v", err)
	}
	return v
}

// jwtSite is a directory of PEM keys and a JWKS holding all four test keys.
type jwtSite struct {
	dir                        string
	rsaPEM, ecPEM, edPEM, jwks string
	keys                       *jwtTestKeys
	rsaPEMBytes                []byte
}

func newJWTSite(t testing.TB) *jwtSite {
	t.Helper()
	k := jwtKeys(t)
	s := &jwtSite{dir: t.TempDir(), keys: k}
	s.rsaPEM = writePublicPEM(t, s.dir, "rsa.pem", &k.rsa.PublicKey)
	s.ecPEM = writePublicPEM(t, s.dir, "ec.pem", &k.ec.PublicKey)
	s.edPEM = writePublicPEM(t, s.dir, "ed.pem", k.ed.Public())
	var err error
	if s.rsaPEMBytes, err = os.ReadFile(s.rsaPEM); err != nil {
		t.Fatal(err)
	}
	s.jwks = filepath.Join(s.dir, "jwks.json")
	writeJWKS(t, s.jwks,
		jwkOf(t, "rsa-1", &k.rsa.PublicKey),
		jwkOf(t, "ec-1", &k.ec.PublicKey),
		jwkOf(t, "ed-1", k.ed.Public()),
		jwkOf(t, "hs-1", k.hmac))
	return s
}

func TestJWTVerifyAcceptsValidTokens(t *testing.T) {
	s := newJWTSite(t)
	k := s.keys
	algs := []string{"RS256", "ES256", "EdDSA", "HS256"}
	pemCfg := jwtConfig(algs...)
	pemCfg.Keys = []string{"rsa.pem", s.ecPEM, "ed.pem", "hmac:" + string(k.hmac)}
	jwksCfg := jwtConfig(algs...)
	jwksCfg.JWKSFile = "jwks.json"
	verifiers := map[string]*Verifier{
		"pem":  newTestVerifier(t, pemCfg, s.dir, nil),
		"jwks": newTestVerifier(t, jwksCfg, s.dir, nil),
	}
	tokens := []struct {
		name   string
		method jwt.SigningMethod
		key    any
		kid    string
	}{
		{"RS256", jwt.SigningMethodRS256, k.rsa, ""},
		{"RS256 with kid", jwt.SigningMethodRS256, k.rsa, "rsa-1"},
		{"ES256", jwt.SigningMethodES256, k.ec, ""},
		{"ES256 with kid", jwt.SigningMethodES256, k.ec, "ec-1"},
		{"EdDSA", jwt.SigningMethodEdDSA, k.ed, ""},
		{"EdDSA with kid", jwt.SigningMethodEdDSA, k.ed, "ed-1"},
		{"HS256", jwt.SigningMethodHS256, k.hmac, ""},
		{"HS256 with kid", jwt.SigningMethodHS256, k.hmac, "hs-1"},
	}
	want := Claims{Subject: "user-42", Segments: []string{"vip", "runner"}}
	for src, v := range verifiers {
		for _, tc := range tokens {
			t.Run(src+"/"+tc.name, func(t *testing.T) {
				tok := signJWT(t, tc.method, tc.key, tc.kid, jwtClaims(nil))
				got, reason := v.Verify([]byte(tok), jwtNow)
				if reason != "" || !reflect.DeepEqual(got, want) {
					t.Errorf("Verify(%s) = %+v, %q; want %+v, accepted", tc.name, got, reason, want)
				}
			})
		}
	}
}

func TestJWTClaimsBecomeSubjectAndSegments(t *testing.T) {
	k := jwtKeys(t)
	j := jwtConfig("HS256")
	j.Keys = []string{"hmac:" + string(k.hmac)}
	j.SubjectClaim, j.SegmentsClaim = "customer_id", "groups"
	v := newTestVerifier(t, j, "", nil)
	tests := []struct {
		name   string
		claims map[string]any
		want   Claims
	}{
		{"array", map[string]any{"customer_id": "c-1", "groups": []string{"vip", "", "runner"}}, Claims{"c-1", []string{"vip", "runner"}}},
		{"single string", map[string]any{"customer_id": "c-1", "groups": "vip"}, Claims{"c-1", []string{"vip"}}},
		{"absent", map[string]any{"customer_id": "c-1"}, Claims{"c-1", nil}},
		{"empty array", map[string]any{"customer_id": "c-1", "groups": []string{}}, Claims{"c-1", nil}},
		{"number ignored", map[string]any{"customer_id": "c-1", "groups": 7}, Claims{"c-1", nil}},
		{"mixed array ignored", map[string]any{"customer_id": "c-1", "groups": []any{"vip", 7}}, Claims{"c-1", nil}},
		{"object ignored", map[string]any{"customer_id": "c-1", "groups": map[string]any{"vip": true}}, Claims{"c-1", nil}},
		{"audience among several", map[string]any{"customer_id": "c-1", "aud": []string{"shop", "tailor"}}, Claims{"c-1", nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := signJWT(t, jwt.SigningMethodHS256, k.hmac, "", jwtClaims(tc.claims))
			got, reason := v.Verify([]byte(tok), jwtNow)
			if reason != "" || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Verify = %+v, %q; want %+v, accepted", got, reason, tc.want)
			}
		})
	}
}

func TestJWTVerifyRejects(t *testing.T) {
	s := newJWTSite(t)
	k := s.keys
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	full := jwtConfig("RS256", "ES256", "EdDSA", "HS256")
	full.Keys = []string{"rsa.pem", "ec.pem", "ed.pem", "hmac:" + string(k.hmac)}
	rsaOnly := jwtConfig("RS256")
	rsaOnly.Keys = []string{"rsa.pem"}
	// HS256 allowed but no HMAC secret: only the RSA key is there to misuse.
	rsaAndHS := jwtConfig("RS256", "HS256")
	rsaAndHS.Keys = []string{"rsa.pem"}
	jwks := jwtConfig("RS256", "ES256", "EdDSA", "HS256")
	jwks.JWKSFile = "jwks.json"
	v := map[string]*Verifier{}
	for name, j := range map[string]*config.JWT{"full": full, "rsaOnly": rsaOnly, "rsaAndHS": rsaAndHS, "jwks": jwks} {
		v[name] = newTestVerifier(t, j, s.dir, nil)
	}

	rs256 := func(edit map[string]any) string {
		return signJWT(t, jwt.SigningMethodRS256, k.rsa, "", jwtClaims(edit))
	}
	valid := rs256(nil)
	parts := strings.Split(valid, ".")
	enc := base64.RawURLEncoding.EncodeToString
	none := signJWT(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", jwtClaims(nil))
	forgedClaims, _ := json.Marshal(jwtClaims(map[string]any{"sub": "admin"}))

	tests := []struct {
		name     string
		verifier string
		tok      string
		want     string
	}{
		{"alg none", "full", none, jwtAlgorithm},
		{"alg NONE", "full", enc([]byte(`{"alg":"NONE","typ":"JWT"}`)) + "." + parts[1] + ".", jwtAlgorithm},
		{"alg none with kid", "jwks", enc([]byte(`{"alg":"none","kid":"rsa-1"}`)) + "." + parts[1] + ".", jwtAlgorithm},
		{"alg unknown", "full", enc([]byte(`{"alg":"XX256"}`)) + "." + parts[1] + "." + parts[2], jwtAlgorithm},
		{"alg missing", "full", enc([]byte(`{"typ":"JWT"}`)) + "." + parts[1] + "." + parts[2], jwtMalformed},
		{"HS256 with RSA PEM as secret, no HMAC key", "rsaAndHS", signJWT(t, jwt.SigningMethodHS256, s.rsaPEMBytes, "", jwtClaims(nil)), jwtUnknownKey},
		{"HS256 with RSA PEM as secret, HMAC key present", "full", signJWT(t, jwt.SigningMethodHS256, s.rsaPEMBytes, "", jwtClaims(nil)), jwtSignature},
		{"HS256 with RSA PEM as secret, HS256 not allowed", "rsaOnly", signJWT(t, jwt.SigningMethodHS256, s.rsaPEMBytes, "", jwtClaims(nil)), jwtAlgorithm},
		{"HS256 naming the RSA key's kid", "jwks", signJWT(t, jwt.SigningMethodHS256, s.rsaPEMBytes, "rsa-1", jwtClaims(nil)), jwtAlgorithm},
		{"RS512 when only RS256 allowed", "rsaOnly", signJWT(t, jwt.SigningMethodRS512, k.rsa, "", jwtClaims(nil)), jwtAlgorithm},
		{"unknown kid", "jwks", signJWT(t, jwt.SigningMethodRS256, k.rsa, "rsa-9", jwtClaims(nil)), jwtUnknownKey},
		{"signed by an RSA key not configured", "rsaOnly", signJWT(t, jwt.SigningMethodRS256, k.rsa2, "", jwtClaims(nil)), jwtSignature},
		{"signed by another key", "full", signJWT(t, jwt.SigningMethodES256, other, "", jwtClaims(nil)), jwtSignature},
		{"signed by another key with a known kid", "jwks", signJWT(t, jwt.SigningMethodES256, other, "ec-1", jwtClaims(nil)), jwtSignature},
		{"forged subject", "full", parts[0] + "." + enc(forgedClaims) + "." + parts[2], jwtSignature},
		{"signature cut off", "full", parts[0] + "." + parts[1] + ".", jwtSignature},
		{"expired beyond leeway", "full", rs256(map[string]any{"exp": jwtNow.Add(-31 * time.Second).Unix()}), jwtExpired},
		{"no exp", "full", rs256(map[string]any{"exp": nil}), jwtExpired},
		{"exp not a number", "full", rs256(map[string]any{"exp": "tomorrow"}), jwtMalformed},
		{"nbf in the future", "full", rs256(map[string]any{"nbf": jwtNow.Add(time.Minute).Unix()}), jwtNotYetValid},
		{"wrong issuer", "full", rs256(map[string]any{"iss": "https://evil.example"}), jwtIssuer},
		{"no issuer", "full", rs256(map[string]any{"iss": nil}), jwtIssuer},
		{"wrong issuer and expired", "full", rs256(map[string]any{"iss": "https://evil.example", "exp": jwtNow.Add(-time.Hour).Unix()}), jwtIssuer},
		{"wrong audience", "full", rs256(map[string]any{"aud": "someone-else"}), jwtAudience},
		{"wrong audiences", "full", rs256(map[string]any{"aud": []string{"a", "b"}}), jwtAudience},
		{"no audience", "full", rs256(map[string]any{"aud": nil}), jwtAudience},
		{"no subject", "full", rs256(map[string]any{"sub": nil}), jwtSubject},
		{"empty subject", "full", rs256(map[string]any{"sub": ""}), jwtSubject},
		{"numeric subject", "full", rs256(map[string]any{"sub": 42}), jwtSubject},
		{"oversized", "full", rs256(map[string]any{"pad": strings.Repeat("x", maxJWTSize)}), jwtOversized},
		{"oversized garbage", "full", strings.Repeat("a", maxJWTSize+1), jwtOversized},
		{"truncated", "full", valid[:len(parts[0])+1+len(parts[1])/2], jwtMalformed},
		{"two parts", "full", parts[0] + "." + parts[1], jwtMalformed},
		{"four parts", "full", valid + ".x", jwtMalformed},
		{"empty", "full", "", jwtMalformed},
		{"garbage", "full", "not a token at all", jwtMalformed},
		{"garbage parts", "full", "a.b.c", jwtMalformed},
		{"binary", "full", "\x00\xff\xfe.\x80.\x01", jwtMalformed},
		{"header not JSON", "full", enc([]byte("alg=RS256")) + "." + parts[1] + "." + parts[2], jwtMalformed},
		{"padded base64", "full", parts[0] + "=." + parts[1] + "." + parts[2], jwtMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := v[tc.verifier].Verify([]byte(tc.tok), jwtNow)
			if reason != tc.want {
				t.Errorf("Verify(%.40q…) = %+v, %q; want %q", tc.tok, got, reason, tc.want)
			}
			if reason != "" && !reflect.DeepEqual(got, Claims{}) {
				t.Errorf("rejected token still gave claims %+v", got)
			}
			if !slices.Contains(jwtReasons, reason) {
				t.Errorf("reason %q is not in jwtReasons", reason)
			}
		})
	}
}

func TestJWTLeewayToleratesClockSkew(t *testing.T) {
	k := jwtKeys(t)
	j := jwtConfig("HS256")
	j.Keys = []string{"hmac:" + string(k.hmac)}
	v := newTestVerifier(t, j, "", nil)
	tests := []struct {
		name  string
		claim map[string]any
		want  string
	}{
		{"expired within leeway", map[string]any{"exp": jwtNow.Add(-29 * time.Second).Unix()}, ""},
		{"expired beyond leeway", map[string]any{"exp": jwtNow.Add(-31 * time.Second).Unix()}, jwtExpired},
		{"nbf within leeway", map[string]any{"nbf": jwtNow.Add(29 * time.Second).Unix()}, ""},
		{"nbf beyond leeway", map[string]any{"nbf": jwtNow.Add(31 * time.Second).Unix()}, jwtNotYetValid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := signJWT(t, jwt.SigningMethodHS256, k.hmac, "", jwtClaims(tc.claim))
			if _, reason := v.Verify([]byte(tok), jwtNow); reason != tc.want {
				t.Errorf("Verify = %q, want %q", reason, tc.want)
			}
		})
	}
	// The clock is the caller's: the same token is expired an hour later.
	tok := signJWT(t, jwt.SigningMethodHS256, k.hmac, "", jwtClaims(nil))
	if _, reason := v.Verify([]byte(tok), jwtNow.Add(2*time.Hour)); reason != jwtExpired {
		t.Errorf("Verify two hours on = %q, want %q", reason, jwtExpired)
	}
}

func TestJWTKeyFiles(t *testing.T) {
	k := jwtKeys(t)
	dir := t.TempDir()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "login.example"},
		NotBefore:    jwtNow.Add(-time.Hour),
		NotAfter:     jwtNow.Add(time.Hour),
	}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.ec.PublicKey, k.ec)
	if err != nil {
		t.Fatal(err)
	}
	ecPriv, err := x509.MarshalPKCS8PrivateKey(k.ec)
	if err != nil {
		t.Fatal(err)
	}
	writePEMFile(t, dir, "pkcs1.pem", "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey))
	writePEMFile(t, dir, "cert.pem", "CERTIFICATE", cert)
	writePEMFile(t, dir, "private.pem", "PRIVATE KEY", ecPriv)
	writePublicPEM(t, dir, "small.pem", &small.PublicKey)
	if err := os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not PEM at all\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	rs := signJWT(t, jwt.SigningMethodRS256, k.rsa, "", jwtClaims(nil))
	es := signJWT(t, jwt.SigningMethodES256, k.ec, "", jwtClaims(nil))
	tests := []struct {
		name    string
		key     string
		tok     string
		wantErr string
	}{
		{"PKCS #1 RSA public key", "pkcs1.pem", rs, ""},
		{"certificate", "cert.pem", es, ""},
		{"absolute path", filepath.Join(dir, "cert.pem"), es, ""},
		{"private key", "private.pem", "", "private key"},
		{"RSA below 2048 bits", "small.pem", "", "below 2048"},
		{"not PEM", "junk.pem", "", "no PEM public key"},
		{"missing file", "absent.pem", "", "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := jwtConfig("RS256", "ES256")
			j.Keys = []string{tc.key}
			v, err := newVerifier(j, func(p string) string {
				if filepath.IsAbs(p) {
					return p
				}
				return filepath.Join(dir, p)
			}, slog.New(slog.DiscardHandler))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("newVerifier(%s) error = %v, want one mentioning %q", tc.key, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("newVerifier(%s): %v", tc.key, err)
			}
			if _, reason := v.Verify([]byte(tc.tok), jwtNow); reason != "" {
				t.Errorf("Verify = %q, want accepted", reason)
			}
		})
	}
	if _, err := newVerifier(func() *config.JWT { j := jwtConfig("RS256"); j.Keys = []string{"absent.pem"}; return j }(),
		func(p string) string { return filepath.Join(dir, p) }, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing key file error = %v, want fs.ErrNotExist", err)
	}
}

func TestJWTParseJWKS(t *testing.T) {
	k := jwtKeys(t)
	doc := func(keys ...any) string {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return string(b)
	}
	rsaKey := jwkOf(t, "r", &k.rsa.PublicKey)
	with := func(m map[string]any, kv ...string) map[string]any {
		c := map[string]any{}
		for k, v := range m {
			c[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			c[kv[i]] = kv[i+1]
		}
		return c
	}
	ec := jwkOf(t, "e", &k.ec.PublicKey)
	offCurve := with(ec, "y", base64.RawURLEncoding.EncodeToString(make([]byte, 32)))
	// An issuer that trims the leading zero byte off a coordinate: one
	// key in 256 has one to trim.
	var trimmed map[string]any
	for trimmed == nil {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if pt, _ := key.PublicKey.Bytes(); pt[1] == 0 {
			trimmed = with(jwkOf(t, "t", &key.PublicKey), "x", base64.RawURLEncoding.EncodeToString(pt[2:33]))
		}
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		doc       string
		wantKeys  int
		wantNotes int
		wantErr   bool
	}{
		{"all kinds", doc(rsaKey, ec, jwkOf(t, "d", k.ed.Public()), jwkOf(t, "h", k.hmac)), 4, 0, false},
		{"unusable keys skipped", doc(rsaKey,
			map[string]any{"kty": "OKP", "crv": "X25519", "x": "AAAA"},
			map[string]any{"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"},
			map[string]any{"kty": "foo"},
			with(rsaKey, "use", "enc"),
			with(rsaKey, "alg", "RSA-OAEP")), 1, 5, false},
		{"key_ops not an array", doc(with(ec, "key_ops", "verify")), 0, 0, true},
		{"key_ops without verify", `{"keys":[` + mustJSON(t, rsaKey) + `,{"kty":"oct","k":"c2VjcmV0","key_ops":["sign"]}]}`, 1, 1, false},
		{"private material noted", doc(with(rsaKey, "d", "AQAB")), 1, 1, false},
		{"padded base64 accepted", doc(with(rsaKey, "e", "AQAB==")), 1, 0, false},
		{"not JSON", "{keys", 0, 0, true},
		{"no keys member", `{"kty":"RSA"}`, 0, 0, true},
		{"empty set", `{"keys":[]}`, 0, 0, true},
		{"only unusable keys", doc(map[string]any{"kty": "foo"}), 0, 0, true},
		{"no kty", doc(map[string]any{"kid": "x"}), 0, 0, true},
		{"bad base64", doc(with(rsaKey, "n", "!!!")), 0, 0, true},
		{"RSA exponent 1", doc(with(rsaKey, "e", "AQ")), 0, 0, true},
		{"RSA exponent 2", doc(with(rsaKey, "e", "Ag")), 0, 0, true},
		{"RSA below 2048 bits skipped", doc(rsaKey, jwkOf(t, "small", &small.PublicKey)), 1, 1, false},
		{"EC coordinate without its leading zero", doc(trimmed), 1, 0, false},
		{"EC point off the curve", doc(offCurve), 0, 0, true},
		{"EC coordinate too long", doc(with(ec, "x", base64.RawURLEncoding.EncodeToString(make([]byte, 40)))), 0, 0, true},
		{"Ed25519 of the wrong size", doc(map[string]any{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}), 0, 0, true},
		{"oct without k", doc(map[string]any{"kty": "oct"}), 0, 0, true},
		{"member of the wrong type", `{"keys":[{"kty":"RSA","n":1}]}`, 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys, notes, err := parseJWKS([]byte(tc.doc))
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseJWKS error = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if len(keys) != tc.wantKeys || len(notes) != tc.wantNotes {
				t.Errorf("parseJWKS = %d keys, notes %q; want %d keys, %d notes", len(keys), notes, tc.wantKeys, tc.wantNotes)
			}
		})
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startJWKSWatch runs v.Watch until the test ends.
func startJWKSWatch(t *testing.T, v *Verifier) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watch: %v", err)
		}
	})
}

// jwtAccepted is a poll condition: tok verifies.
func jwtAccepted(v *Verifier, tok string) func() error {
	return func() error {
		if _, reason := v.Verify([]byte(tok), jwtNow); reason != "" {
			return fmt.Errorf("token rejected: %s", reason)
		}
		return nil
	}
}

func TestJWTKeyRotationIsPickedUpAndBrokenJWKSKeepsOldKeys(t *testing.T) {
	k := jwtKeys(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "jwks.json")
	writeJWKS(t, path, jwkOf(t, "k1", &k.rsa.PublicKey))
	j := jwtConfig("RS256")
	j.JWKSFile = "jwks.json"
	log := &testkit.Buffer{}
	v := newTestVerifier(t, j, dir, slog.New(slog.NewTextHandler(log, nil)))
	startJWKSWatch(t, v)

	oldTok := signJWT(t, jwt.SigningMethodRS256, k.rsa, "k1", jwtClaims(nil))
	newTok := signJWT(t, jwt.SigningMethodRS256, k.rsa2, "k2", jwtClaims(nil))
	if err := jwtAccepted(v, oldTok)(); err != nil {
		t.Fatalf("before rotation: %v", err)
	}
	if _, reason := v.Verify([]byte(newTok), jwtNow); reason != jwtUnknownKey {
		t.Fatalf("new key's token before rotation = %q, want %q", reason, jwtUnknownKey)
	}

	writeJWKS(t, path, jwkOf(t, "k2", &k.rsa2.PublicKey))
	testkit.CheckFor(t, 5*time.Second, 20*time.Millisecond, jwtAccepted(v, newTok))
	if _, reason := v.Verify([]byte(oldTok), jwtNow); reason != jwtUnknownKey {
		t.Errorf("retired key's token = %q, want %q", reason, jwtUnknownKey)
	}

	for i, broken := range []string{`{"keys": [`, `{"keys": []}`, ""} {
		testkit.ReplaceFile(t, path, []byte(broken))
		testkit.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
			if n := strings.Count(log.String(), "jwks reload failed"); n <= i {
				return fmt.Errorf("%d reload failures logged, want %d", n, i+1)
			}
			return nil
		})
		if err := jwtAccepted(v, newTok)(); err != nil {
			t.Fatalf("after broken rewrite %q: %v", broken, err)
		}
	}

	// Deleted, then back: the keys stay, then follow the file again.
	os.Remove(path)
	writeJWKS(t, path, jwkOf(t, "k1", &k.rsa.PublicKey), jwkOf(t, "k2", &k.rsa2.PublicKey))
	testkit.CheckFor(t, 5*time.Second, 20*time.Millisecond, jwtAccepted(v, oldTok))
	if err := jwtAccepted(v, newTok)(); err != nil {
		t.Errorf("after restoring both keys: %v", err)
	}
}

// Kubernetes mounts a ConfigMap as a symlink (jwks.json → ..data/jwks.json)
// and updates it by pointing ..data at a new directory; the file itself is
// never written.
func TestJWTConfigMapSymlinkSwapIsPickedUp(t *testing.T) {
	k := jwtKeys(t)
	dir := t.TempDir()
	version := func(name string, keys ...map[string]any) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		writeJWKS(t, filepath.Join(dir, name, "jwks.json"), keys...)
		if err := os.Symlink(name, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..2030_01_02_v1", jwkOf(t, "k1", &k.rsa.PublicKey))
	if err := os.Symlink(filepath.Join("..data", "jwks.json"), filepath.Join(dir, "jwks.json")); err != nil {
		t.Fatal(err)
	}
	j := jwtConfig("RS256")
	j.JWKSFile = filepath.Join(dir, "jwks.json")
	v := newTestVerifier(t, j, "", nil)
	startJWKSWatch(t, v)

	if err := jwtAccepted(v, signJWT(t, jwt.SigningMethodRS256, k.rsa, "k1", jwtClaims(nil)))(); err != nil {
		t.Fatalf("before the swap: %v", err)
	}
	version("..2030_01_02_v2", jwkOf(t, "k2", &k.rsa2.PublicKey))
	testkit.CheckFor(t, 5*time.Second, 20*time.Millisecond, jwtAccepted(v, signJWT(t, jwt.SigningMethodRS256, k.rsa2, "k2", jwtClaims(nil))))
	// The watch is surely set up by now (the first swap may have been read
	// when it started), so this one can only be seen through an event.
	version("..2030_01_02_v3", jwkOf(t, "k3", &k.rsa.PublicKey))
	testkit.CheckFor(t, 5*time.Second, 20*time.Millisecond, jwtAccepted(v, signJWT(t, jwt.SigningMethodRS256, k.rsa, "k3", jwtClaims(nil))))
}

func TestJWTWatchWithoutJWKSReturns(t *testing.T) {
	k := jwtKeys(t)
	j := jwtConfig("HS256")
	j.Keys = []string{"hmac:" + string(k.hmac)}
	v := newTestVerifier(t, j, "", nil)
	if err := v.Watch(context.Background()); err != nil {
		t.Errorf("watch without jwks_file = %v, want nil", err)
	}
}

// Verification goes on, lock-free, while reloads swap the key set.
func TestJWTVerifyDuringReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "jwks.json")
	a, b := []byte("secret-a-0123456789abcdef0123456"), []byte("secret-b-0123456789abcdef0123456")
	writeJWKS(t, path, jwkOf(t, "a", a))
	j := jwtConfig("HS256")
	j.JWKSFile = path
	v := newTestVerifier(t, j, "", nil)
	toks := [][]byte{
		[]byte(signJWT(t, jwt.SigningMethodHS256, a, "a", jwtClaims(nil))),
		[]byte(signJWT(t, jwt.SigningMethodHS256, b, "b", jwtClaims(nil))),
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, reason := v.Verify(toks[(g+i)%2], jwtNow); reason != "" && reason != jwtUnknownKey {
					t.Errorf("Verify during reload = %q, want accepted or %q", reason, jwtUnknownKey)
					return
				}
			}
		})
	}
	for i := range 50 {
		key := jwkOf(t, "a", a)
		if i%2 == 1 {
			key = jwkOf(t, "b", b)
		}
		writeJWKS(t, path, key)
		if err := v.loadJWKS(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

func TestJWTTokenFromHeaderOrCookie(t *testing.T) {
	tests := []struct {
		name           string
		header, cookie string
		request        string
		want           string
	}{
		{"bearer header", "Authorization", "", "Authorization: Bearer abc.def.ghi\r\n", "abc.def.ghi"},
		{"scheme in any case", "Authorization", "", "Authorization: bEaReR abc\r\n", "abc"},
		{"lower-case header name", "Authorization", "", "authorization: bearer abc\r\n", "abc"},
		{"upper-case header name", "Authorization", "", "AUTHORIZATION: BEARER   abc\r\n", "abc"},
		{"custom header", "X-Login", "", "X-Login: Bearer abc\r\n", "abc"},
		{"other scheme falls back to the cookie", "Authorization", "sess", "Authorization: Basic Zm9vOmJhcg==\r\nCookie: a=1; sess=tok; b=2\r\n", "tok"},
		{"cookie only", "Authorization", "sess", "Cookie: sess=tok\r\n", "tok"},
		{"header wins over cookie", "Authorization", "sess", "Authorization: Bearer hdr\r\nCookie: sess=tok\r\n", "hdr"},
		{"header not configured", "", "sess", "Authorization: Bearer hdr\r\nCookie: sess=tok\r\n", "tok"},
		{"cookie not configured", "Authorization", "", "Cookie: sess=tok\r\n", ""},
		{"bearer without token", "Authorization", "", "Authorization: Bearer \r\n", ""},
		{"bare bearer", "Authorization", "", "Authorization: Bearer\r\n", ""},
		{"bearer prefix of a longer word", "Authorization", "", "Authorization: Bearerabc\r\n", ""},
		{"empty cookie", "Authorization", "sess", "Cookie: sess=\r\n", ""},
		{"nothing", "Authorization", "sess", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := &Verifier{header: tc.header, cookie: tc.cookie}
			req := readJWTRequest(t, tc.request)
			if got := v.Token(req); string(got) != tc.want || (tc.want == "" && got != nil) {
				t.Errorf("Token(%q) = %q, want %q", tc.request, got, tc.want)
			}
		})
	}
}

// readJWTRequest parses a request the way the server does, header names
// kept as sent.
func readJWTRequest(t testing.TB, headers string) *fasthttp.Request {
	t.Helper()
	req := new(fasthttp.Request)
	req.Header.DisableNormalizing()
	raw := "GET / HTTP/1.1\r\nHost: shop.example\r\n" + headers + "\r\n"
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	return req
}

func TestJWTTokenDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	v := &Verifier{header: "Authorization", cookie: "sess"}
	for _, hdr := range []string{
		"Authorization: Bearer abc\r\n",
		"authorization: Bearer abc\r\n",
		"Cookie: a=1; sess=abc\r\n",
	} {
		req := readJWTRequest(t, hdr)
		if n := testing.AllocsPerRun(100, func() { v.Token(req) }); n != 0 {
			t.Errorf("Token(%q) allocates %.1f times, want 0", hdr, n)
		}
	}
}

func FuzzJWTVerify(f *testing.F) {
	k := jwtKeys(f)
	dir := f.TempDir()
	writePublicPEM(f, dir, "rsa.pem", &k.rsa.PublicKey)
	writeJWKS(f, filepath.Join(dir, "jwks.json"), jwkOf(f, "ec-1", &k.ec.PublicKey), jwkOf(f, "hs-1", k.hmac))
	j := jwtConfig("RS256", "ES256", "HS256")
	j.Keys = []string{"rsa.pem"}
	j.JWKSFile = "jwks.json"
	v := newTestVerifier(f, j, dir, nil)
	enc := base64.RawURLEncoding.EncodeToString
	for _, s := range []string{
		signJWT(f, jwt.SigningMethodRS256, k.rsa, "", jwtClaims(nil)),
		signJWT(f, jwt.SigningMethodES256, k.ec, "ec-1", jwtClaims(nil)),
		signJWT(f, jwt.SigningMethodHS256, k.hmac, "hs-1", jwtClaims(map[string]any{"segments": []any{"a", 1}})),
		signJWT(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", jwtClaims(nil)),
		enc([]byte(`{"alg":"HS256","kid":["x"]}`)) + "." + enc([]byte(`{"exp":1e400,"aud":[1],"nbf":"x"}`)) + ".",
		enc([]byte(`{"alg":"ES256"}`)) + "." + enc([]byte(`{}`)) + "." + enc(make([]byte, 64)),
		"", ".", "..", "a.b.c", "\xff.\xfe.\xfd",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, tok []byte) {
		got, reason := v.Verify(tok, jwtNow)
		switch {
		case reason == "" && got.Subject == "":
			t.Errorf("Verify(%q) accepted a token without a subject", tok)
		case reason != "" && !slices.Contains(jwtReasons, reason):
			t.Errorf("Verify(%q) gave reason %q, not in jwtReasons", tok, reason)
		}
	})
}

func benchmarkJWTVerify(b *testing.B, j *config.JWT, dir, tok string) {
	v := newTestVerifier(b, j, dir, nil)
	raw := []byte(tok)
	if _, reason := v.Verify(raw, jwtNow); reason != "" {
		b.Fatalf("Verify = %q, want accepted", reason)
	}
	// A returning visitor's token is found in the verified-token cache;
	// a first sight of it pays for the signature.
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v.Verify(raw, jwtNow)
		}
	})
	b.Run("first", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v.verified.Purge()
			v.Verify(raw, jwtNow)
		}
	})
}

func BenchmarkJWTVerifyRS256(b *testing.B) {
	k := jwtKeys(b)
	dir := b.TempDir()
	writePublicPEM(b, dir, "rsa.pem", &k.rsa.PublicKey)
	j := jwtConfig("RS256")
	j.Keys = []string{"rsa.pem"}
	benchmarkJWTVerify(b, j, dir, signJWT(b, jwt.SigningMethodRS256, k.rsa, "", jwtClaims(nil)))
}

func BenchmarkJWTVerifyHS256(b *testing.B) {
	k := jwtKeys(b)
	j := jwtConfig("HS256")
	j.Keys = []string{"hmac:" + string(k.hmac)}
	benchmarkJWTVerify(b, j, "", signJWT(b, jwt.SigningMethodHS256, k.hmac, "", jwtClaims(nil)))
}

func TestPreviewTokensAreNeverLogins(t *testing.T) {
	const shared = "one-secret-for-logins-and-previews-0123"
	j := jwtConfig("HS256")
	j.Issuer, j.Audience = "", "" // nothing else would turn the token down
	j.Keys = []string{"hmac:" + shared}
	v := newTestVerifier(t, j, t.TempDir(), nil)
	tok, err := SignPreview(shared, PreviewClaims{Stage: "intent", RegisteredClaims: jwt.RegisteredClaims{Subject: "cust-42"}}, time.Hour, jwtNow)
	if err != nil {
		t.Fatal(err)
	}
	if claims, reason := v.Verify([]byte(tok), jwtNow); reason != jwtIssuer {
		t.Errorf("a preview token as a login: %+v, reason %q; want it refused for its issuer", claims, reason)
	}
}
