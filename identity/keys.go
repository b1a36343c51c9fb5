package identity

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tailor-edge/tailor/internal/regular"
	"github.com/tailor-edge/tailor/internal/watch"
)

// maxKeyFileBytes bounds a PEM key file or a JWKS document: a few
// kilobytes each, even with a certificate chain or many keys.
const maxKeyFileBytes = 1 << 20

// unwrapPath drops the *fs.PathError around a file's error: messages name
// the file already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// jwksDebounce lets an editor or a ConfigMap swap finish (truncate, write,
// rename, symlink flip) before the JWKS file is read.
const jwksDebounce = 100 * time.Millisecond

// jwtKey is one verification key.
type jwtKey struct {
	kid string // "" for keys from PEM files and JWKs without one
	alg string // the JWK's "alg": when set, the only algorithm the key verifies
	key any    // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or []byte (HMAC secret)
}

// suits reports whether k may verify a token signed with alg. Matching the
// key's type to the algorithm's family is what defeats algorithm
// confusion: an RSA public key is never handed to HMAC as a secret.
func (k jwtKey) suits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch key := k.key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case *ecdsa.PublicKey:
		// RFC 7518 section 3.4 ties each ES algorithm to one curve.
		switch alg {
		case "ES256":
			return key.Curve == elliptic.P256()
		case "ES384":
			return key.Curve == elliptic.P384()
		case "ES512":
			return key.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	case []byte:
		switch alg {
		case "HS256", "HS384", "HS512":
			return true
		}
	}
	return false
}

// typeName names k's type for a log line.
func (k jwtKey) typeName() string {
	switch k.key.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "EC"
	case ed25519.PublicKey:
		return "Ed25519"
	case []byte:
		return "HMAC"
	}
	return fmt.Sprintf("%T", k.key)
}

// keySet is the keys in force, never changed once built: a reload builds a
// new one and swaps it in.
type keySet struct {
	named   map[string][]jwtKey // by kid
	forAlg  map[string]any      // alg → key or jwt.VerificationKeySet: every key that suits it
	unnamed map[string]any      // alg → key or jwt.VerificationKeySet: the suitable keys without a kid
	size    int
}

// newKeySet indexes keys for the allowed algorithms, so keyFor does map
// look-ups instead of building candidate lists per request.
func newKeySet(keys []jwtKey, algs []string) *keySet {
	s := &keySet{named: map[string][]jwtKey{}, forAlg: map[string]any{}, unnamed: map[string]any{}, size: len(keys)}
	for _, k := range keys {
		if k.kid != "" {
			s.named[k.kid] = append(s.named[k.kid], k)
		}
	}
	for _, alg := range algs {
		var all, anon []jwt.VerificationKey
		for _, k := range keys {
			if !k.suits(alg) {
				continue
			}
			all = append(all, k.key)
			if k.kid == "" {
				anon = append(anon, k.key)
			}
		}
		if v := verificationKeys(all); v != nil {
			s.forAlg[alg] = v
		}
		if v := verificationKeys(anon); v != nil {
			s.unnamed[alg] = v
		}
	}
	return s
}

// verificationKeys is what a jwt.Keyfunc returns for keys: nil for none,
// the key itself for one, a set (tried in turn) for more.
func verificationKeys(keys []jwt.VerificationKey) any {
	switch len(keys) {
	case 0:
		return nil
	case 1:
		return keys[0]
	}
	return jwt.VerificationKeySet{Keys: keys}
}

// keyFor is the jwt.Keyfunc. A kid that names keys selects among them
// only. A kid that names none falls back to the keys without a kid (a PEM
// key has none to compare), and a token without a kid may be verified by
// any key that suits its algorithm.
func (s *keySet) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if kid, _ := t.Header["kid"].(string); kid != "" {
		if named, ok := s.named[kid]; ok {
			var keys []jwt.VerificationKey
			for _, k := range named {
				if k.suits(alg) {
					keys = append(keys, k.key)
				}
			}
			if v := verificationKeys(keys); v != nil {
				return v, nil
			}
			return nil, errKeyAlgorithm
		}
		if v, ok := s.unnamed[alg]; ok {
			return v, nil
		}
		return nil, errUnknownKey
	}
	if v, ok := s.forAlg[alg]; ok {
		return v, nil
	}
	return nil, errUnknownKey
}

// loadJWTKey reads one entry of identity.jwt.keys: "hmac:<secret>" or the
// path of a PEM file.
func loadJWTKey(spec string, resolve func(string) string) ([]jwtKey, error) {
	if secret, ok := strings.CutPrefix(spec, "hmac:"); ok {
		if secret == "" {
			return nil, errors.New("load jwt key: empty hmac secret")
		}
		return []jwtKey{{key: []byte(secret)}}, nil
	}
	path := resolve(spec)
	data, err := regular.ReadFile(path, maxKeyFileBytes)
	if err != nil {
		return nil, fmt.Errorf("load jwt key %s: %w", path, unwrapPath(err))
	}
	keys, err := parsePEMKeys(data)
	if err != nil {
		return nil, fmt.Errorf("load jwt key %s: %w", path, err)
	}
	return keys, nil
}

// parsePEMKeys reads the public keys in a PEM file: "PUBLIC KEY" (PKIX),
// "RSA PUBLIC KEY" (PKCS #1) blocks, and the first certificate's key.
func parsePEMKeys(data []byte) ([]jwtKey, error) {
	var keys []jwtKey
	sawCert := false
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var pub any
		var err error
		switch b.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case "CERTIFICATE":
			// A chain file goes on to its issuers, whose keys sign
			// certificates, not tokens: only the leaf counts.
			if sawCert {
				continue
			}
			sawCert = true
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(b.Bytes); err == nil {
				pub = cert.PublicKey
			}
		default:
			if strings.Contains(b.Type, "PRIVATE KEY") {
				return nil, errors.New("holds a private key: give tailor only the public key, which cannot sign")
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", strings.ToLower(b.Type), err)
		}
		if err := checkPublicKey(pub); err != nil {
			return nil, err
		}
		keys = append(keys, jwtKey{key: pub})
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public key or certificate found")
	}
	return keys, nil
}

// checkPublicKey refuses key types no JWS algorithm tailor allows can use.
func checkPublicKey(pub any) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits is below 2048", k.N.BitLen())
		}
		return nil
	case ed25519.PublicKey:
		return nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("unsupported curve %s: use P-256, P-384 or P-521", k.Curve.Params().Name)
	}
	return fmt.Errorf("unsupported public key type %T", pub)
}

// loadJWKS reads the JWKS file and, if it parses, swaps its keys in; on
// error the keys in force stay.
func (v *Verifier) loadJWKS() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	data, err := regular.ReadFile(v.jwksPath, maxKeyFileBytes)
	if err != nil {
		return fmt.Errorf("read jwks %s: %w", v.jwksPath, unwrapPath(err))
	}
	if v.keys.Load() != nil && bytes.Equal(data, v.lastJWKS) {
		return nil
	}
	keys, notes, err := parseJWKS(data)
	if err != nil {
		return fmt.Errorf("parse jwks %s: %w", v.jwksPath, err)
	}
	for _, n := range notes {
		v.log.Warn("jwks: "+n, "file", v.jwksPath)
	}
	all := append(slices.Clip(v.static), keys...)
	first := v.keys.Load() == nil
	v.keys.Store(newKeySet(all, v.algs))
	v.lastJWKS = data
	if !first {
		v.log.Info("jwks reloaded", "file", v.jwksPath, "keys", len(keys))
	}
	return nil
}

// Watch re-reads the JWKS file whenever its directory changes, until ctx
// ends. The directory, not the file, is watched: editors save by renaming
// a new file over the old one, and Kubernetes updates a mounted ConfigMap
// by swapping a symlink beside it, and neither is seen by a watch on the
// file itself. A file that fails to read or parse is logged and the keys in
// force stay. Without jwks_file it returns at once.
func (v *Verifier) Watch(ctx context.Context) error {
	if v.jwksPath == "" {
		return nil
	}
	// reloadJWKS once the watch is in place: the file may have changed
	// between newVerifier and then.
	if err := watch.Dir(ctx, filepath.Dir(v.jwksPath), false, jwksDebounce, v.log, v.reloadJWKS, v.reloadJWKS); err != nil {
		return fmt.Errorf("watch jwks: %w", err)
	}
	return nil
}

// reloadJWKS is loadJWKS for the watcher, which has no one to return to.
func (v *Verifier) reloadJWKS() {
	if err := v.loadJWKS(); err != nil {
		v.log.Warn("jwks reload failed; the previous keys keep verifying", "err", err)
	}
}

// jwk is what tailor reads of an RFC 7517 JSON Web Key: the members that
// say whether the key is for verifying tokens at all, and the public-key
// members, which go-jose turns into the key.
type jwk struct {
	Kty    string   `json:"kty,omitempty"`
	Kid    string   `json:"kid,omitempty"`
	Use    string   `json:"use,omitempty"`
	KeyOps []string `json:"key_ops,omitempty"`
	Alg    string   `json:"alg,omitempty"`
	Crv    string   `json:"crv,omitempty"`
	N      string   `json:"n,omitempty"`
	E      string   `json:"e,omitempty"`
	X      string   `json:"x,omitempty"`
	Y      string   `json:"y,omitempty"`
	K      string   `json:"k,omitempty"`
	D      string   `json:"d,omitempty"`
}

// parseJWKS reads a JWK Set. Keys tailor cannot use (another kty or curve,
// "use": "enc") are left out with a note, as RFC 7517 section 5 asks; a
// key of a known type that is malformed fails the whole set, because a
// half-read set would drop a key the site signs with.
func parseJWKS(data []byte) (keys []jwtKey, notes []string, err error) {
	var doc struct {
		Keys *[]jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, err
	}
	if doc.Keys == nil {
		return nil, nil, errors.New(`no "keys" member`)
	}
	for i, k := range *doc.Keys {
		name := fmt.Sprintf("key %d", i)
		if k.Kid != "" {
			name = fmt.Sprintf("key %d (kid %q)", i, k.Kid)
		}
		if k.Use != "" && k.Use != "sig" {
			notes = append(notes, fmt.Sprintf("%s skipped: use %q is not sig", name, k.Use))
			continue
		}
		if len(k.KeyOps) > 0 && !slices.Contains(k.KeyOps, "verify") {
			notes = append(notes, fmt.Sprintf("%s skipped: key_ops has no verify", name))
			continue
		}
		if k.Alg != "" && (strings.EqualFold(k.Alg, "none") || jwt.GetSigningMethod(k.Alg) == nil) {
			notes = append(notes, fmt.Sprintf("%s skipped: unsupported alg %q", name, k.Alg))
			continue
		}
		pub, note, err := k.publicKey()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		if note != "" {
			notes = append(notes, fmt.Sprintf("%s skipped: %s", name, note))
			continue
		}
		if k.D != "" {
			notes = append(notes, fmt.Sprintf("%s holds private key material; only its public part is used, and the file should not have it", name))
		}
		keys = append(keys, jwtKey{kid: k.Kid, alg: k.Alg, key: pub})
	}
	if len(keys) == 0 {
		return nil, notes, errors.New("no usable key")
	}
	return keys, notes, nil
}

// publicKey builds k's verification key with go-jose. A note instead means
// k is of a kind tailor does not use; an error, that it is broken.
//
// go-jose is handed the public members only: from "d" it would build a
// private key, and refuse an RSA one without its primes, where tailor
// wants the public part and a note. It decodes strictly, so the leniency
// tailor has always had is kept here: padded base64url, and EC
// coordinates that lost their leading zeros (RFC 7518 section 6.2.1.2
// says full length; some issuers trim).
func (k jwk) publicKey() (key any, note string, err error) {
	pub := jwk{Kty: k.Kty, Crv: k.Crv}
	pub.N, pub.E, pub.K = strings.TrimRight(k.N, "="), strings.TrimRight(k.E, "="), strings.TrimRight(k.K, "=")
	pub.X, pub.Y = strings.TrimRight(k.X, "="), strings.TrimRight(k.Y, "=")
	if k.Kty == "EC" {
		pub.X, pub.Y = padCoordinate(k.Crv, pub.X), padCoordinate(k.Crv, pub.Y)
	}
	raw, err := json.Marshal(pub)
	if err != nil {
		return nil, "", err
	}
	var jk jose.JSONWebKey
	if err := jk.UnmarshalJSON(raw); errors.Is(err, jose.ErrUnsupportedKeyType) {
		switch k.Kty {
		case "RSA":
			return nil, fmt.Sprintf("RSA modulus over %d bits", jose.MaxRSAModulusBits), nil
		case "EC", "OKP":
			return nil, fmt.Sprintf("unsupported curve %q", k.Crv), nil
		}
		return nil, fmt.Sprintf("unsupported kty %q", k.Kty), nil
	} else if err != nil {
		return nil, "", err
	}
	if rk, ok := jk.Key.(*rsa.PublicKey); ok {
		// RFC 7518 section 6.3.1: e is unsigned big-endian; go-jose takes
		// 2 and up to 63 bits, no exponent a real key uses.
		if rk.E < 3 || rk.E > 1<<31-1 {
			return nil, "", errors.New(`RSA exponent "e" out of range`)
		}
		if rk.N.BitLen() < 2048 {
			return nil, fmt.Sprintf("RSA modulus of %d bits is below 2048", rk.N.BitLen()), nil
		}
	}
	return jk.Key, "", nil
}

// padCoordinate left-pads base64url EC coordinate c with zero bytes to the
// size of curve crv. c is returned as it is when it is not short, or not
// base64url, or crv is no curve tailor knows: go-jose then says what is
// wrong.
func padCoordinate(crv, c string) string {
	var curve elliptic.Curve
	switch crv {
	case "P-256":
		curve = elliptic.P256()
	case "P-384":
		curve = elliptic.P384()
	case "P-521":
		curve = elliptic.P521()
	default:
		return c
	}
	size := (curve.Params().BitSize + 7) / 8
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) >= size {
		return c
	}
	return base64.RawURLEncoding.EncodeToString(append(make([]byte, size-len(b)), b...))
}
