package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   string
	}{
		{"listen without a port", func(c *Config) { c.Listen = "8080" }, `listen: want host:port, such as ":8080" or "127.0.0.1:9090", not "8080"`},
		{"listen with a bad port", func(c *Config) { c.Listen = ":80800" }, `listen: port "80800" is not a number from 0 to 65535`},
		{"listen with a named port", func(c *Config) { c.Listen = ":http" }, `listen: port "http" is not a number from 0 to 65535`},
		{"origin without a scheme", func(c *Config) { c.Origin = "127.0.0.1:3000" }, `origin: want an absolute http:// or https:// URL such as "http://127.0.0.1:3000", not "127.0.0.1:3000"`},
		{"origin of another scheme", func(c *Config) { c.Origin = "ftp://example.com" }, `origin: want an absolute http:// or https:// URL`},
		{"origin without a host", func(c *Config) { c.Origin = "http:///x" }, `origin: want an absolute http:// or https:// URL`},
		{"origin with a path", func(c *Config) { c.Origin = "http://example.com/shop" }, `origin: must not have a path ("/shop")`},
		{"origin with a query", func(c *Config) { c.Origin = "http://example.com/?a=1" }, `origin: must not have a query or fragment`},
		{"origin with credentials", func(c *Config) { c.Origin = "http://u:p@example.com" }, `origin: must not hold a user name or password`},
		{"origin with port 0", func(c *Config) { c.Origin = "http://example.com:0" }, `origin: port "0" is not a number from 1 to 65535`},
		{"origin_host as a URL", func(c *Config) { c.OriginHost = "https://example.com" }, `origin_host: want a host name, optionally with :port, not "https://example.com"`},
		{"zero connect timeout", func(c *Config) { c.Timeouts.Connect = 0 }, `timeouts.connect: must be more than 0, not 0s`},
		{"negative idle timeout", func(c *Config) { c.Timeouts.Idle = -1 }, `timeouts.idle: must be more than 0, not -1ns`},
		{"absurd response timeout", func(c *Config) { c.Timeouts.Response = 100000 * time.Hour }, `timeouts.response: must be at most 24h0m0s, not 100000h0m0s`},
		{"zero rewrite body", func(c *Config) { c.MaxRewriteBody = 0 }, `max_rewrite_body: must be more than 0, not 0B`},
		{"tiny header limit", func(c *Config) { c.MaxHeaderBytes = 4*KiB - 1 }, `max_header_bytes: must be between 4KiB and 1MiB, not 4095B`},
		{"huge header limit", func(c *Config) { c.MaxHeaderBytes = 2 * MiB }, `max_header_bytes: must be between 4KiB and 1MiB, not 2MiB`},
		{"bad CIDR", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "10.0.0.0/33"} }, `trusted_proxies[1]: "10.0.0.0/33" is not a CIDR such as 10.0.0.0/8 or fd00::/8`},
		{"host name as proxy", func(c *Config) { c.TrustedProxies = []string{"lb.internal"} }, `trusted_proxies[0]: "lb.internal" is not an IP address or a CIDR such as 10.0.0.0/8`},
		{"zoned proxy", func(c *Config) { c.TrustedProxies = []string{"fe80::1%eth0"} }, `trusted_proxies[0]: "fe80::1%eth0" is not an IP address`},
		{"admin on the proxy's address", func(c *Config) { c.Admin.Listen = c.Listen }, `admin.listen: must differ from listen (both are ":8080")`},
		{"bad admin listen", func(c *Config) { c.Admin.Listen = "localhost" }, `admin.listen: want host:port`},
		{"bad listen_tls", func(c *Config) { c.ListenTLS = "443"; c.TLS = TLS{"c.pem", "k.pem"} }, `listen_tls: want host:port, such as ":8080" or "127.0.0.1:9090", not "443"`},
		{"listen_tls on the proxy's address", func(c *Config) { c.ListenTLS = c.Listen; c.TLS = TLS{"c.pem", "k.pem"} }, `listen_tls: must differ from listen (both are ":8080")`},
		{"listen_tls on the admin address", func(c *Config) { c.ListenTLS = c.Admin.Listen; c.TLS = TLS{"c.pem", "k.pem"} }, `listen_tls: must differ from admin.listen (both are "127.0.0.1:9090")`},
		{"listen_tls without a certificate", func(c *Config) { c.ListenTLS = ":8443"; c.TLS.KeyFile = "k.pem" }, `tls.cert_file: must be set when listen_tls is: the certificate (PEM) to serve`},
		{"listen_tls without a key", func(c *Config) { c.ListenTLS = ":8443"; c.TLS.CertFile = "c.pem" }, `tls.key_file: must be set when listen_tls is: the certificate's private key (PEM)`},
		{"empty cookie name", func(c *Config) { c.Identity.Cookie.Name = "" }, `identity.cookie.name: "" is not a valid cookie name`},
		{"cookie name with a space", func(c *Config) { c.Identity.Cookie.Name = "tailor id" }, `identity.cookie.name: "tailor id" is not a valid cookie name`},
		{"cookie name with a separator", func(c *Config) { c.Identity.Cookie.Name = "tailor;id" }, `identity.cookie.name: "tailor;id" is not a valid cookie name`},
		{"__Host- cookie not secure", func(c *Config) { c.Identity.Cookie.Name = "__Host-tid"; c.Identity.Cookie.Secure = false }, `identity.cookie.secure: a cookie named "__Host-tid" must be secure`},
		{"__Secure- cookie not secure", func(c *Config) { c.Identity.Cookie.Name = "__Secure-tid"; c.Identity.Cookie.Secure = false }, `identity.cookie.secure: a cookie named "__Secure-tid" must be secure`},
		{"empty cookie key", func(c *Config) { c.Identity.Cookie.Keys = []string{"a", ""} }, `identity.cookie.keys[1]: must not be empty`},
		{"zero max_age", func(c *Config) { c.Identity.Cookie.MaxAge = 0 }, `identity.cookie.max_age: must be more than 0, not 0s`},
		{"bad same_site", func(c *Config) { c.Identity.Cookie.SameSite = "Lax" }, `identity.cookie.same_site: want lax, strict or none, not "Lax"`},
		{"same_site none without secure", func(c *Config) { c.Identity.Cookie.SameSite = "none"; c.Identity.Cookie.Secure = false }, `identity.cookie.same_site: none requires secure: true`},
		{"jwt alg none", func(c *Config) { c.Identity.JWT.Algorithms = []string{"RS256", "none"} }, `identity.jwt.algorithms[1]: "none" is never accepted: an unsigned token would let anyone claim any profile`},
		{"jwt alg NONE", func(c *Config) { c.Identity.JWT.Algorithms = []string{"NONE"} }, `identity.jwt.algorithms[0]: "NONE" is never accepted`},
		{"jwt alg in lower case", func(c *Config) { c.Identity.JWT.Algorithms = []string{"rs256"} }, `identity.jwt.algorithms[0]: unsupported algorithm "rs256" (did you mean "RS256"?); supported: RS256, RS384, RS512, ES256, ES384, ES512, PS256, PS384, PS512, EdDSA, HS256, HS384, HS512`},
		{"jwt alg unknown", func(c *Config) { c.Identity.JWT.Algorithms = []string{"XYZ999"} }, `identity.jwt.algorithms[0]: unsupported algorithm "XYZ999"; supported:`},
		{"jwt without algorithms", func(c *Config) { c.Identity.JWT.Algorithms = nil }, `identity.jwt.algorithms: list at least one algorithm`},
		{"jwt without keys", func(c *Config) { c.Identity.JWT.Keys = nil }, `identity.jwt.keys: set keys or jwks_file, or no token can be verified`},
		{"jwt with an empty hmac key", func(c *Config) { c.Identity.JWT.Keys = []string{"hmac:"} }, `identity.jwt.keys[0]: must not be empty`},
		{"jwt with nowhere to look", func(c *Config) { c.Identity.JWT.Header = "" }, `identity.jwt.header: set header or cookie, or there is nowhere to read tokens from`},
		{"jwt bad header", func(c *Config) { c.Identity.JWT.Header = "X Token" }, `identity.jwt.header: "X Token" is not a valid header name`},
		{"jwt bad cookie", func(c *Config) { c.Identity.JWT.Cookie = "a=b" }, `identity.jwt.cookie: "a=b" is not a valid cookie name`},
		{"jwt negative leeway", func(c *Config) { c.Identity.JWT.Leeway = -1 }, `identity.jwt.leeway: must not be negative, not -1ns`},
		{"jwt without a subject", func(c *Config) { c.Identity.JWT.SubjectClaim = "" }, `identity.jwt.subject_claim: must not be empty`},
		{"zero cache", func(c *Config) { c.Profiles.CacheSize = 0 }, `profiles.cache_size: must be at least 64, not 0`},
		{"tiny cache", func(c *Config) { c.Profiles.CacheSize = 10 }, `profiles.cache_size: must be at least 64, not 10`},
		{"huge cache", func(c *Config) { c.Profiles.CacheSize = 2_000_000_000 }, `profiles.cache_size: must be at most 1000000000, not 2000000000`},
		{"absurd miss budget", func(c *Config) { c.Profiles.MissBudget = time.Hour }, `profiles.miss_budget: must be at most 1m0s, not 1h0m0s`},
		{"absurd jwt leeway", func(c *Config) { c.Identity.JWT.Leeway = 48 * time.Hour }, `identity.jwt.leeway: must be at most 1h0m0s, not 48h0m0s`},
		{"negative ttl", func(c *Config) { c.Profiles.TTL = -1 }, `profiles.ttl: must be at least 1s, not -1ns`},
		{"sub-second ttl", func(c *Config) { c.Profiles.TTL = time.Millisecond }, `profiles.ttl: must be at least 1s, not 1ms`},
		{"negative miss budget", func(c *Config) { c.Profiles.MissBudget = -1 }, `profiles.miss_budget: must not be negative`},
		{"negative negative_ttl", func(c *Config) { c.Profiles.NegativeTTL = -1 }, `profiles.negative_ttl: must be at least 1s`},
		{"nats http url", func(c *Config) { c.NATS.URL = "http://nats:4222" }, `nats.url: want nats://host:port (or tls://, ws://, wss://), comma-separated, not "http://nats:4222"`},
		{"nats url without scheme", func(c *Config) { c.NATS.URL = "nats://a:4222,b:4222" }, `nats.url: want nats://host:port (or tls://, ws://, wss://), comma-separated, not "b:4222"`},
		{"embedded without data_dir", func(c *Config) { c.NATS.Embedded = true; c.NATS.DataDir = "" }, `nats.data_dir: must not be empty when embedded is true`},
		{"bucket with a dot", func(c *Config) { c.NATS.Bucket = "tailor.profiles" }, `nats.bucket: "tailor.profiles" is not a valid bucket name (letters, digits, - and _)`},
		{"empty bucket", func(c *Config) { c.NATS.Bucket = "" }, `nats.bucket: "" is not a valid bucket name`},
		{"stream with a wildcard", func(c *Config) { c.NATS.EventsStream = "EVENTS>" }, `nats.events_stream: "EVENTS>" is not a valid stream name`},
		{"stream with a space", func(c *Config) { c.NATS.EventsStream = "MY EVENTS" }, `nats.events_stream: "MY EVENTS" is not a valid stream name`},
		{"no events queue", func(c *Config) { c.NATS.EventsQueue = 0 }, `nats.events_queue: want 1 to 16777216 events, not 0`},
		{"negative events age", func(c *Config) { c.NATS.EventsMaxAge = -time.Hour }, `nats.events_max_age: must not be negative`},
		{"empty rules dir", func(c *Config) { c.Rules.Dir = "" }, `rules.dir: must not be empty`},
		{"rules bucket with a dot", func(c *Config) { c.NATS.URL = "nats://a:4222"; c.Rules.Bucket = "tailor.rules" }, `rules.bucket: "tailor.rules" is not a valid bucket name`},
		{"rules bucket without nats", func(c *Config) { c.Rules.Bucket = "tailor_rules" }, `rules.bucket: needs nats.url or nats.embedded`},
		{"rules bucket is the profiles'", func(c *Config) { c.NATS.Embedded = true; c.Rules.Bucket = "tailor_profiles" }, `rules.bucket: "tailor_profiles" is nats.bucket`},
		{"rules bucket without data_dir", func(c *Config) { c.NATS.URL = "nats://a:4222"; c.NATS.DataDir = ""; c.Rules.Bucket = "tailor_rules" }, `rules.bucket: needs nats.data_dir`},
		{"bad consent cookie", func(c *Config) { c.Privacy.ConsentCookie = "consent given" }, `privacy.consent_cookie: "consent given" is not a valid cookie name`},
		{"relative beacon path", func(c *Config) { c.BeaconPath = "_tailor/goal" }, `beacon_path: want an absolute path such as /_tailor/goal (or "" to turn the beacon off), not "_tailor/goal"`},
		{"beacon path as a URL", func(c *Config) { c.BeaconPath = "https://example.com/goal" }, `beacon_path: want an absolute path such as /_tailor/goal (or "" to turn the beacon off), not "https://example.com/goal"`},
		{"beacon path as a directory", func(c *Config) { c.BeaconPath = "/_tailor/" }, `beacon_path: want a path that names a resource, not a directory: "/_tailor/"`},
		{"beacon path with a query", func(c *Config) { c.BeaconPath = "/goal?x=1" }, `beacon_path: want a plain path (letters, digits and / - _ . ~), not "/goal?x=1"`},
		{"beacon path with dot segments", func(c *Config) { c.BeaconPath = "/a/../goal" }, `beacon_path: want a plain path (letters, digits and / - _ . ~), not "/a/../goal"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Identity.JWT = DefaultJWT()
			c.Identity.JWT.Keys = []string{"pub.pem"}
			tt.change(c)
			err := c.Validate()
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("Validate() = %v, want one error saying %s", err, tt.want)
			}
			if got := errs[0].Error(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("Validate() = %s, want %s", got, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(Validate(), ErrInvalid) = false, want true")
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
	}{
		{"ephemeral port", func(c *Config) { c.Listen = "127.0.0.1:0"; c.Admin.Listen = "127.0.0.1:0" }},
		{"IPv6 listen", func(c *Config) { c.Listen = "[::]:8080" }},
		{"https origin with a slash", func(c *Config) { c.Origin = "https://example.com/" }},
		{"origin with a port", func(c *Config) { c.Origin = "http://[::1]:3000" }},
		{"origin_host with a port", func(c *Config) { c.OriginHost = "www.example.com:8080" }},
		{"__Host- cookie", func(c *Config) { c.Identity.Cookie.Name = "__Host-tailor_id" }},
		{"same_site none and secure", func(c *Config) { c.Identity.Cookie.SameSite = "none" }},
		{"same_site strict without secure", func(c *Config) {
			c.Identity.Cookie.SameSite = "strict"
			c.Identity.Cookie.Secure = false
		}},
		{"every JWT algorithm", func(c *Config) {
			c.Identity.JWT = DefaultJWT()
			c.Identity.JWT.Algorithms = append([]string(nil), jwtAlgorithms...)
			c.Identity.JWT.JWKSFile = "jwks.json"
		}},
		{"JWT from a cookie only", func(c *Config) {
			c.Identity.JWT = DefaultJWT()
			c.Identity.JWT.Header = ""
			c.Identity.JWT.Cookie = "session"
			c.Identity.JWT.Keys = []string{"hmac:secret"}
		}},
		{"nats urls", func(c *Config) { c.NATS.URL = "nats://a:4222, tls://b:4222,ws://c:80,wss://d" }},
		{"zero miss budget", func(c *Config) { c.Profiles.MissBudget = 0 }},
		{"trusted proxies", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "::1", "10.1.2.3/16"} }},
		{"TLS listener", func(c *Config) { c.ListenTLS = ":8443"; c.TLS = TLS{"tls.crt", "tls.key"} }},
		{"TLS files without a TLS listener", func(c *Config) { c.TLS = TLS{"tls.crt", ""} }},
		{"ephemeral TLS port", func(c *Config) {
			c.Listen, c.Admin.Listen, c.ListenTLS = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
			c.TLS = TLS{"tls.crt", "tls.key"}
		}},
	}
	for _, tt := range tests {
		c := Default()
		tt.change(c)
		if err := c.Validate(); err != nil {
			t.Errorf("%s: Validate() = %v, want nil", tt.name, err)
		}
	}
}

// Validation problems in a parsed file point at the value to change, and
// a value already rejected while decoding is not reported twice.
func TestValidationProblemsPointAtTheValue(t *testing.T) {
	src := `listen: "8080"
origin: ftp://example.com
trusted_proxies: [10.0.0.0/8, 10.0.0.300]
identity:
  cookie:
    name: __Host-tid
    secure: false
    keys: ["${MISSING}"]
  jwt:
    algorithms: [none]
nats:
  bucket: "a.b"
profiles:
  cache_size: zero
`
	got := problems(t, src, env())
	want := []string{
		`tailor.yaml:1:9: listen: want host:port, such as ":8080" or "127.0.0.1:9090", not "8080"`,
		`tailor.yaml:2:9: origin: want an absolute http:// or https:// URL such as "http://127.0.0.1:3000", not "ftp://example.com"`,
		`tailor.yaml:3:31: trusted_proxies[1]: "10.0.0.300" is not an IP address or a CIDR such as 10.0.0.0/8`,
		`tailor.yaml:7:13: identity.cookie.secure: a cookie named "__Host-tid" must be secure: browsers ignore a "__Host-" cookie without Secure`,
		`tailor.yaml:8:12: environment variable "MISSING" is not set`,
		`tailor.yaml:9:3: identity.jwt.keys: set keys or jwks_file, or no token can be verified`,
		`tailor.yaml:10:18: identity.jwt.algorithms[0]: "none" is never accepted: an unsigned token would let anyone claim any profile`,
		`tailor.yaml:12:11: nats.bucket: "a.b" is not a valid bucket name (letters, digits, - and _)`,
		`tailor.yaml:14:15: profiles.cache_size: invalid whole number "zero"`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A problem with a value nobody wrote (a default that conflicts with a
// key that was written elsewhere, or a Config built in code) names the key.
func TestValidationProblemsWithoutAPlace(t *testing.T) {
	c := Default()
	c.Path = "tailor.yaml"
	c.Rules.Dir = ""
	err := c.Validate()
	if want := "tailor.yaml: rules.dir: must not be empty"; err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want %s", err, want)
	}
	c.Path = ""
	if want := "rules.dir: must not be empty"; err == nil || c.Validate().Error() != want {
		t.Errorf("Validate() = %v, want %s", c.Validate(), want)
	}
}

// rules.bucket's problems are at the bucket's name in the file.
func TestRulesBucketProblemsPointAtTheBucket(t *testing.T) {
	got := problems(t, "nats: {url: 'nats://a:4222'}\nrules:\n  bucket: tailor.rules\n", env())
	if want := []string{`tailor.yaml:3:11: rules.bucket: "tailor.rules" is not a valid bucket name (letters, digits, - and _)`}; !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
	got = problems(t, "rules: {bucket: tailor_rules}\n", env())
	if want := []string{`tailor.yaml:1:17: rules.bucket: needs nats.url or nats.embedded: the rule versions are read over NATS`}; !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
}

// listen_tls without its files points at the section, or at listen_tls
// when there is none; KeyError places what the proxy finds wrong with a
// file (it does not load) as Validate would.
func TestTLSProblemsPointAtTheKey(t *testing.T) {
	got := problems(t, "listen_tls: ':8443'\ntls:\n  key_file: k.pem\n", env())
	if want := []string{`tailor.yaml:2:1: tls.cert_file: must be set when listen_tls is: the certificate (PEM) to serve`}; !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
	got = problems(t, "listen_tls: ':8443'\n", env())
	if want := []string{
		`tailor.yaml:1:13: tls.cert_file: must be set when listen_tls is: the certificate (PEM) to serve`,
		`tailor.yaml:1:13: tls.key_file: must be set when listen_tls is: the certificate's private key (PEM)`,
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}

	c := mustParse(t, "listen_tls: ':8443'\ntls: { cert_file: c.pem, key_file: k.pem }\n", env())
	e := c.KeyError("tls.key_file", "%q does not match", "k.pem")
	if got, want := e.Error(), `tailor.yaml:2:36: tls.key_file: "k.pem" does not match`; got != want || !errors.Is(e, ErrInvalid) {
		t.Errorf("KeyError = %s (kind %v), want %s (ErrInvalid)", got, e.Err, want)
	}
	if got, want := Default().KeyError("tls.cert_file", "missing").Error(), "tls.cert_file: missing"; got != want {
		t.Errorf("KeyError on a Config built in code = %s, want %s", got, want)
	}
}

func TestWarnings(t *testing.T) {
	for _, tc := range []struct {
		listen, token string
		warn          bool
	}{
		{"127.0.0.1:9090", "", false},
		{"[::1]:9090", "", false},
		{"localhost:9090", "", false},
		{"0.0.0.0:9090", "", true},
		{":9090", "", true},
		{"[::]:9090", "", true},
		{"10.0.0.5:9090", "", true},
		{"admin.internal:9090", "", true},
		{"0.0.0.0:9090", "secret", false},
	} {
		c := Default()
		c.Admin.Listen, c.Admin.Token = tc.listen, tc.token
		ws := c.Warnings()
		if got := len(ws) == 1 && strings.HasPrefix(ws[0].Msg, "warning: admin.listen: "); got != tc.warn || len(ws) > 1 {
			t.Errorf("Warnings() with admin.listen %q, token %q = %v, want a warning: %v", tc.listen, tc.token, ws, tc.warn)
		}
	}
}

func TestErrorAtPointsAtTheKey(t *testing.T) {
	c, err := Parse(strings.NewReader("listen: \":8080\"\nprofiles:\n  cache_size: 5000\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.ErrorAt("profiles.cache_size", "too big").Error(), "t.yaml:3:15: profiles.cache_size: too big"; got != want {
		t.Errorf("ErrorAt = %q, want %q", got, want)
	}
	if got, want := c.ErrorAt("nats.data_dir", "a file").Error(), "t.yaml: nats.data_dir: a file"; got != want {
		t.Errorf("ErrorAt of a key not in the file = %q, want %q", got, want)
	}
}
