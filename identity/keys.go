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
	"math/big"
	"path/filepath"
	"slices"
	"strings"
	"time"

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

// jwk is the part of an RFC 7517 JSON Web Key tailor reads.
type jwk struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Alg    string   `json:"alg"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	K      string   `json:"k"`
	D      string   `json:"d"`
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

// publicKey builds k's verification key. A note instead means k is of a
// kind tailor does not use; an error, that it is broken.
func (k jwk) publicKey() (key any, note string, err error) {
	switch k.Kty {
	case "RSA":
		n, err := b64Member("n", k.N)
		if err != nil {
			return nil, "", err
		}
		e, err := b64Member("e", k.E)
		if err != nil {
			return nil, "", err
		}
		// RFC 7518 section 6.3.1: e is unsigned big-endian; anything past
		// 31 bits is no exponent a real key uses.
		ev := new(big.Int).SetBytes(e)
		if !ev.IsInt64() || ev.Int64() < 3 || ev.Int64() > 1<<31-1 {
			return nil, "", errors.New(`RSA exponent "e" out of range`)
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ev.Int64())}
		if pub.N.BitLen() < 2048 {
			return nil, fmt.Sprintf("RSA modulus of %d bits is below 2048", pub.N.BitLen()), nil
		}
		return pub, "", nil
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Sprintf("unsupported curve %q", k.Crv), nil
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err := b64Member("x", k.X)
		if err != nil {
			return nil, "", err
		}
		y, err := b64Member("y", k.Y)
		if err != nil {
			return nil, "", err
		}
		if len(x) > size || len(y) > size {
			return nil, "", fmt.Errorf("EC coordinates longer than %d bytes", size)
		}
		// RFC 7518 section 6.2.1.2 wants full-length coordinates; some
		// issuers drop leading zeros, so pad rather than refuse.
		point := make([]byte, 1+2*size)
		point[0] = 4 // uncompressed
		copy(point[1+size-len(x):1+size], x)
		copy(point[1+2*size-len(y):], y)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, "", fmt.Errorf("parse EC point: %w", err)
		}
		return pub, "", nil
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, fmt.Sprintf("unsupported curve %q", k.Crv), nil
		}
		x, err := b64Member("x", k.X)
		if err != nil {
			return nil, "", err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, "", fmt.Errorf("Ed25519 key of %d bytes, want %d", len(x), ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(x), "", nil
	case "oct":
		secret, err := b64Member("k", k.K)
		if err != nil {
			return nil, "", err
		}
		return secret, "", nil
	case "":
		return nil, "", errors.New(`no "kty"`)
	}
	return nil, fmt.Sprintf("unsupported kty %q", k.Kty), nil
}

// b64Member decodes a base64url JWK member. RFC 7515 says unpadded; padded
// values from lenient issuers are accepted too.
func b64Member(name, s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("no %q", name)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("decode %q: %w", name, err)
	}
	return b, nil
}
