package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate checks the invariants the rest of tailor relies on. It returns
// Errors: at the offending value's file:line:col when c was parsed and the
// value was written in the file, else naming the key alone. Parse and Load
// call it; call it again after changing a Config by hand.
func (c *Config) Validate() error {
	v := &validator{c: c}

	v.hostPort("listen", c.Listen)
	v.origin()
	v.originHost()
	v.timeout("timeouts.connect", c.Timeouts.Connect, maxTimeout)
	v.timeout("timeouts.response", c.Timeouts.Response, maxTimeout)
	v.timeout("timeouts.idle", c.Timeouts.Idle, maxTimeout)
	v.timeout("limits.header_timeout", c.Limits.HeaderTimeout, maxTimeout)
	if c.Limits.MaxConns < 0 {
		v.fail("limits.max_conns", "must be 0 (sized from the open-files limit) or more, not %d", c.Limits.MaxConns)
	}
	if c.Limits.MaxConnsPerIP < 0 {
		v.fail("limits.max_conns_per_ip", "must be 0 (sized from max_conns) or more, not %d", c.Limits.MaxConnsPerIP)
	}
	if c.MaxRewriteBody <= 0 {
		v.fail("max_rewrite_body", "must be more than 0, not %v", c.MaxRewriteBody)
	}
	if c.MaxHeaderBytes < 4*KiB || c.MaxHeaderBytes > MiB {
		v.fail("max_header_bytes", "must be between 4KiB and 1MiB, not %v", c.MaxHeaderBytes)
	}
	for i, s := range c.TrustedProxies {
		if _, err := parsePrefix(s); err != nil {
			v.fail(fmt.Sprintf("trusted_proxies[%d]", i), "%v", err)
		}
	}

	v.hostPort("admin.listen", c.Admin.Listen)
	if c.Admin.Listen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
		v.fail("admin.listen", "must differ from listen (both are %q)", c.Listen)
	}

	v.tls()

	v.cookie()
	if c.Identity.JWT != nil {
		v.jwt(c.Identity.JWT)
	}

	// The profile cache is split into at least 64 shards and counts
	// lifetimes in whole seconds.
	switch {
	case c.Profiles.CacheSize < 64:
		v.fail("profiles.cache_size", "must be at least 64, not %d", c.Profiles.CacheSize)
	case c.Profiles.CacheSize > MaxProfileCacheSize:
		v.fail("profiles.cache_size", "must be at most %d, not %d: each entry takes some 550 bytes", MaxProfileCacheSize, c.Profiles.CacheSize)
	}
	v.atLeastSecond("profiles.ttl", c.Profiles.TTL)
	v.notNegative("profiles.miss_budget", c.Profiles.MissBudget)
	if c.Profiles.MissBudget > maxMissBudget {
		v.fail("profiles.miss_budget", "must be at most %v, not %v: a visitor's request waits this long on a cache miss", maxMissBudget, c.Profiles.MissBudget)
	}
	v.atLeastSecond("profiles.negative_ttl", c.Profiles.NegativeTTL)

	v.nats()

	if c.Rules.Dir == "" {
		v.fail("rules.dir", "must not be empty")
	}
	v.rulesBucket()
	v.beaconPath()
	if s := c.Privacy.ConsentCookie; s != "" && !isToken(s) {
		v.fail("privacy.consent_cookie", "%q is not a valid cookie name", s)
	}
	return v.errs.Err()
}

// beaconPath checks beacon_path: "" (off) or an absolute path, without
// a query, a fragment, spaces or dot segments, that is a path fasthttp
// would leave as written.
func (v *validator) beaconPath() {
	s := v.c.BeaconPath
	if s == "" {
		return
	}
	switch {
	case !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//"):
		v.fail("beacon_path", "want an absolute path such as /_tailor/goal (or \"\" to turn the beacon off), not %q", Truncate(s, 60))
	case s == "/" || strings.HasSuffix(s, "/"):
		v.fail("beacon_path", "want a path that names a resource, not a directory: %q", Truncate(s, 60))
	case len(s) > 256:
		v.fail("beacon_path", "want at most 256 bytes, not %d", len(s))
	case strings.IndexFunc(s, func(r rune) bool { return !plainPathRune(r) }) >= 0 ||
		strings.Contains(s, "/./") || strings.Contains(s, "/../") || strings.Contains(s, "//") ||
		strings.HasSuffix(s, "/.") || strings.HasSuffix(s, "/.."):
		v.fail("beacon_path", "want a plain path (letters, digits and / - _ . ~), not %q", Truncate(s, 60))
	}
}

// plainPathRune reports whether r may be written in beacon_path: what a
// URL path holds unescaped, and fasthttp leaves as written.
func plainPathRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/-_.~", r)
}

// Upper bounds on durations. Beyond them a value is a typo (a unit
// missing or wrong) rather than a choice, and a deadline of now plus an
// absurd duration overflows into the past, which would time out every
// request at once.
const (
	maxTimeout    = 24 * time.Hour
	maxMissBudget = time.Minute
	maxLeeway     = time.Hour
)

// MaxProfileCacheSize bounds profiles.cache_size whatever the memory:
// a billion profiles take some 550 GB. tailor check and serve also
// compare the cache with the memory the machine has.
const MaxProfileCacheSize = 1_000_000_000

type validator struct {
	c    *Config
	errs Errors
}

// ErrorAt returns a problem with the value at key, named as Validate names
// keys ("profiles.cache_size", "identity.jwt.keys[0]"), at the
// file:line:col where it is written when c was parsed from a file that
// sets it. It is for problems found outside this package, such as a key
// file that does not load or a cache larger than the machine's memory, so
// that they read like the others. Its kind is ErrInvalid.
func (c *Config) ErrorAt(key string, format string, args ...any) *Error {
	e := &Error{File: c.Path, Msg: key + ": " + fmt.Sprintf(format, args...), Err: ErrInvalid}
	if c.src != nil {
		e.File = c.src.file
		if pos, ok := c.src.pos[key]; ok {
			e.Line, e.Col = pos.line, pos.col
		}
	}
	return e
}

// Warnings returns what in c is allowed but probably unsafe, each as an
// Error whose message starts "warning: ", at its file:line:col: an admin
// listener reachable from other hosts with no admin.token, so that
// /metrics and /readyz answer anyone who can reach it.
func (c *Config) Warnings() Errors {
	var ws Errors
	if c.Admin.Token == "" && !isLoopback(c.Admin.Listen) {
		e := c.ErrorAt("admin.listen", "%q is not a loopback address and admin.token is empty: /metrics and /readyz answer anyone who can reach it, and the console and /v1/ are off; listen on 127.0.0.1, or set admin.token", c.Admin.Listen)
		e.Msg = "warning: " + e.Msg
		ws = append(ws, e)
	}
	return ws
}

// isLoopback reports whether the host of addr ("host:port") can only be
// reached from this machine: a loopback address or "localhost". An empty
// host, 0.0.0.0 and :: listen on every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// fail records a problem with the value at path (or, for a problem between
// keys, the first of paths that was written in the file).
func (v *validator) fail(path string, format string, args ...any) {
	v.failAt([]string{path}, format, args...)
}

func (v *validator) failAt(paths []string, format string, args ...any) {
	if src := v.c.src; src != nil {
		for _, p := range paths {
			if src.bad[p] {
				return // already reported while decoding
			}
		}
	}
	v.errs = append(v.errs, v.c.problem(paths, fmt.Sprintf(format, args...)))
}

// KeyError returns a problem with the value of key (a path such as
// "tls.cert_file") that shows outside Validate — a file the key names
// that does not load, say — as an *Error at the place the value is
// written, or naming the key alone, so that it reads as Validate's
// problems do. Its kind is ErrInvalid.
func (c *Config) KeyError(key, format string, args ...any) *Error {
	return c.problem([]string{key}, fmt.Sprintf(format, args...))
}

// problem is an Error about the value at paths[0], placed at the first of
// paths written in the file.
func (c *Config) problem(paths []string, msg string) *Error {
	e := &Error{File: c.Path, Msg: paths[0] + ": " + msg, Err: ErrInvalid}
	if src := c.src; src != nil {
		e.File = src.file
		for _, p := range paths {
			if pos, ok := src.pos[p]; ok {
				e.Line, e.Col = pos.line, pos.col
				break
			}
		}
	}
	return e
}

// timeout checks a duration that must be more than 0 and at most most.
func (v *validator) timeout(path string, d, most time.Duration) {
	switch {
	case d <= 0:
		v.fail(path, "must be more than 0, not %v", d)
	case d > most:
		v.fail(path, "must be at most %v, not %v", most, d)
	}
}

func (v *validator) notNegative(path string, d time.Duration) {
	if d < 0 {
		v.fail(path, "must not be negative, not %v", d)
	}
}

func (v *validator) atLeastSecond(path string, d time.Duration) {
	if d < time.Second {
		v.fail(path, "must be at least 1s, not %v", d)
	}
}

func (v *validator) hostPort(path, s string) {
	_, port, err := net.SplitHostPort(s)
	if err != nil || port == "" {
		v.fail(path, "want host:port, such as \":8080\" or \"127.0.0.1:9090\", not %q", s)
		return
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		v.fail(path, "port %q is not a number from 0 to 65535", port)
	}
}

func (v *validator) origin() {
	s := v.c.Origin
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Opaque != "" || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "":
		v.fail("origin", "want an absolute http:// or https:// URL such as \"http://127.0.0.1:3000\", not %q", s)
	case u.User != nil:
		v.fail("origin", "must not hold a user name or password")
	case u.Path != "" && u.Path != "/":
		v.fail("origin", "must not have a path (%q): tailor forwards each request's own path", u.Path)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		v.fail("origin", "must not have a query or fragment")
	case u.Port() != "":
		if n, err := strconv.ParseUint(u.Port(), 10, 16); err != nil || n == 0 {
			v.fail("origin", "port %q is not a number from 1 to 65535", u.Port())
		}
	}
}

func (v *validator) originHost() {
	s := v.c.OriginHost
	if s == "" {
		return
	}
	if strings.ContainsAny(s, "/?#@ \t\r\n") {
		v.fail("origin_host", "want a host name, optionally with :port, not %q", s)
	}
}

// tls checks that listen_tls has its own address and a certificate to
// serve. Whether the files load is for the proxy to find (it reports
// through KeyError): the config reads no file but itself.
func (v *validator) tls() {
	c := v.c
	if c.ListenTLS == "" {
		return
	}
	v.hostPort("listen_tls", c.ListenTLS)
	for _, other := range []struct{ key, addr string }{{"listen", c.Listen}, {"admin.listen", c.Admin.Listen}} {
		if c.ListenTLS == other.addr && !strings.HasSuffix(c.ListenTLS, ":0") {
			v.fail("listen_tls", "must differ from %s (both are %q)", other.key, c.ListenTLS)
		}
	}
	if c.TLS.CertFile == "" {
		v.failAt([]string{"tls.cert_file", "tls", "listen_tls"}, "must be set when listen_tls is: the certificate (PEM) to serve")
	}
	if c.TLS.KeyFile == "" {
		v.failAt([]string{"tls.key_file", "tls", "listen_tls"}, "must be set when listen_tls is: the certificate's private key (PEM)")
	}
}

func (v *validator) cookie() {
	c := v.c.Identity.Cookie
	const p = "identity.cookie."
	if !isToken(c.Name) {
		v.fail(p+"name", "%q is not a valid cookie name", c.Name)
	}
	for _, prefix := range []string{"__Host-", "__Secure-"} {
		if strings.HasPrefix(c.Name, prefix) && !c.Secure {
			v.failAt([]string{p + "secure", p + "name"}, "a cookie named %q must be secure: browsers ignore a %q cookie without Secure", c.Name, prefix)
		}
	}
	for i, k := range c.Keys {
		if k == "" {
			v.fail(fmt.Sprintf("%skeys[%d]", p, i), "must not be empty (for an ephemeral key, leave keys out or write keys: [])")
		}
	}
	if c.MaxAge <= 0 {
		v.fail(p+"max_age", "must be more than 0, not %v", c.MaxAge)
	}
	switch c.SameSite {
	case "lax", "strict":
	case "none":
		if !c.Secure {
			v.failAt([]string{p + "same_site", p + "secure"}, "none requires secure: true: browsers reject SameSite=None without Secure")
		}
	default:
		v.fail(p+"same_site", "want lax, strict or none, not %q", c.SameSite)
	}
}

// jwtAlgorithms are the signing algorithms tailor can verify (RFC 7518
// section 3.1 and RFC 8037 for EdDSA).
var jwtAlgorithms = []string{
	"RS256", "RS384", "RS512",
	"ES256", "ES384", "ES512",
	"PS256", "PS384", "PS512",
	"EdDSA",
	"HS256", "HS384", "HS512",
}

func (v *validator) jwt(j *JWT) {
	const p = "identity.jwt."
	if j.Header == "" && j.Cookie == "" {
		v.failAt([]string{p + "header", p + "cookie", "identity.jwt"}, "set header or cookie, or there is nowhere to read tokens from")
	}
	if j.Header != "" && !isToken(j.Header) {
		v.fail(p+"header", "%q is not a valid header name", j.Header)
	}
	if j.Cookie != "" && !isToken(j.Cookie) {
		v.fail(p+"cookie", "%q is not a valid cookie name", j.Cookie)
	}
	if len(j.Algorithms) == 0 {
		v.failAt([]string{p + "algorithms", "identity.jwt"}, "list at least one algorithm")
	}
	for i, alg := range j.Algorithms {
		path := fmt.Sprintf("%salgorithms[%d]", p, i)
		switch {
		case strings.EqualFold(alg, "none"):
			v.fail(path, "%q is never accepted: an unsigned token would let anyone claim any profile", alg)
		case !slices.Contains(jwtAlgorithms, alg):
			msg := fmt.Sprintf("unsupported algorithm %q", alg)
			if s := Suggest(alg, jwtAlgorithms); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			v.fail(path, "%s; supported: %s", msg, strings.Join(jwtAlgorithms, ", "))
		}
	}
	if len(j.Keys) == 0 && j.JWKSFile == "" {
		v.failAt([]string{p + "keys", p + "jwks_file", "identity.jwt"}, "set keys or jwks_file, or no token can be verified")
	}
	for i, k := range j.Keys {
		if k == "" || k == "hmac:" {
			v.fail(fmt.Sprintf("%skeys[%d]", p, i), "must not be empty")
		}
	}
	v.notNegative(p+"leeway", j.Leeway)
	if j.Leeway > maxLeeway {
		v.fail(p+"leeway", "must be at most %v, not %v: leeway lets an expired token through for that long", maxLeeway, j.Leeway)
	}
	if j.SubjectClaim == "" {
		v.fail(p+"subject_claim", "must not be empty")
	}
}

func (v *validator) nats() {
	n := v.c.NATS
	if n.URL != "" {
		for s := range strings.SplitSeq(n.URL, ",") {
			s = strings.TrimSpace(s)
			u, err := url.Parse(s)
			ok := err == nil && u.Host != ""
			if ok {
				switch u.Scheme {
				case "nats", "tls", "ws", "wss":
				default:
					ok = false
				}
			}
			if !ok {
				v.fail("nats.url", "want nats://host:port (or tls://, ws://, wss://), comma-separated, not %q", s)
			}
		}
	}
	if n.Embedded && n.DataDir == "" {
		v.fail("nats.data_dir", "must not be empty when embedded is true")
	}
	if !isBucketName(n.Bucket) {
		v.fail("nats.bucket", "%q is not a valid bucket name (letters, digits, - and _)", n.Bucket)
	}
	if n.EventsStream != "" && !isStreamName(n.EventsStream) {
		v.fail("nats.events_stream", "%q is not a valid stream name (no spaces, '.', '*', '>', '/' or '\\')", n.EventsStream)
	}
	v.notNegative("nats.events_max_age", n.EventsMaxAge)
	if n.EventsMaxBytes < 0 {
		v.fail("nats.events_max_bytes", "must not be negative")
	}
	if n.EventsQueue < 1 || n.EventsQueue > 1<<24 {
		v.fail("nats.events_queue", "want 1 to 16777216 events, not %d", n.EventsQueue)
	}
	if !isBucketName(n.ReadoutsBucket) {
		v.fail("nats.readouts_bucket", "%q is not a valid bucket name (letters, digits, - and _)", n.ReadoutsBucket)
	} else if n.ReadoutsBucket == n.Bucket {
		v.fail("nats.readouts_bucket", "%q is the profile bucket: readouts need a bucket of their own", n.ReadoutsBucket)
	}
}

// rulesBucket checks rules.bucket: a bucket name, reached over the NATS
// the profiles use, and not the profile bucket itself (a rule version
// there would be read as a profile).
func (v *validator) rulesBucket() {
	c := v.c
	b := c.Rules.Bucket
	switch {
	case b == "":
	case !isBucketName(b):
		v.fail("rules.bucket", "%q is not a valid bucket name (letters, digits, - and _)", b)
	case c.NATS.URL == "" && !c.NATS.Embedded:
		v.fail("rules.bucket", "needs nats.url or nats.embedded: the rule versions are read over NATS")
	case b == c.NATS.Bucket:
		v.fail("rules.bucket", "%q is nats.bucket, the profiles' bucket: name another", b)
	case c.NATS.DataDir == "":
		v.fail("rules.bucket", "needs nats.data_dir: the version served is kept there for a start while NATS is down")
	}
}

// parsePrefix reads a CIDR, or a bare address as a single-address prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8 or fd00::/8", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or a CIDR such as 10.0.0.0/8", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// isToken reports whether s is an RFC 7230 token, which is what cookie
// names (RFC 6265) and header names are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isBucketName follows nats.go's rule for KV bucket names.
func isBucketName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && c != '-' && (c < '0' || c > '9') && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

// isStreamName follows the NATS server's rule for stream names: printable,
// and none of the characters that mean something in subjects or paths.
func isStreamName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(".*>/\\", r) {
			return false
		}
	}
	return true
}
