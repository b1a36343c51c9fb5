package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// mustParse parses src as "tailor.yaml" with the given environment.
func mustParse(t *testing.T, src string, lookup func(string) (string, bool)) *Config {
	t.Helper()
	c, err := parse(strings.NewReader(src), "tailor.yaml", lookup)
	if err != nil {
		t.Fatalf("parse(%q) = %v", src, err)
	}
	return c
}

// problems parses src and returns its errors as strings.
func problems(t *testing.T, src string, lookup func(string) (string, bool)) []string {
	t.Helper()
	c, err := parse(strings.NewReader(src), "tailor.yaml", lookup)
	if err == nil {
		t.Fatalf("parse(%q) = %+v, nil; want errors", src, c)
	}
	if c != nil {
		t.Errorf("parse(%q) returned a config with errors", src)
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("parse(%q) error %T is not Errors: %v", src, err, err)
	}
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

func TestEveryKeyIsParsed(t *testing.T) {
	src, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := mustParse(t, string(src), env("ADMIN_TOKEN", "s3cret", "COOKIE_KEY", "new-key"))
	want := &Config{
		Listen:     "0.0.0.0:80",
		Origin:     "https://www.example.com:8443/",
		OriginHost: "www.example.com",
		Timeouts: Timeouts{
			Connect:  time.Second,
			Response: 30 * time.Second,
			Idle:     2 * time.Minute,
		},
		ListenTLS:            "0.0.0.0:443",
		TLS:                  TLS{CertFile: "/etc/tailor/tls/tls.crt", KeyFile: "tls/tls.key"},
		MaxRewriteBody:       2_000_000,
		Limits:               Limits{MaxConns: 5000, MaxConnsPerIP: 100, HeaderTimeout: 5 * time.Second},
		MaxHeaderBytes:       32 * KiB,
		UnderscoresInHeaders: true,
		TrustedProxies:       []string{"10.0.0.0/8", "192.168.1.7", "fd00::/8"},
		Admin:                Admin{Listen: "[::1]:9191", Token: "s3cret"},
		Identity: Identity{
			Cookie: Cookie{
				Name:     "__Host-tid",
				Keys:     []string{"new-key", "old-key"},
				MaxAge:   30 * 24 * time.Hour,
				Secure:   true,
				SameSite: "strict",
			},
			JWT: &JWT{
				Header:        "X-Token",
				Cookie:        "session",
				Algorithms:    []string{"EdDSA", "HS256"},
				Keys:          []string{"keys/ed25519.pem", "hmac:devsecret"},
				JWKSFile:      "keys/jwks.json",
				Issuer:        "https://login.example.com/",
				Audience:      "shop",
				Leeway:        5 * time.Second,
				SubjectClaim:  "uid",
				SegmentsClaim: "groups",
			},
		},
		Profiles: Profiles{
			CacheSize:   50_000,
			TTL:         time.Hour,
			MissBudget:  5 * time.Millisecond,
			NegativeTTL: time.Minute,
		},
		NATS: NATS{
			URL:            "nats://nats-1:4222, tls://nats-2:4222",
			Embedded:       true,
			DataDir:        "/var/lib/tailor/nats",
			Creds:          "/etc/tailor/edge.creds",
			Bucket:         "shop_profiles",
			EventsStream:   "SHOP_EVENTS",
			EventsMaxAge:   168 * time.Hour,
			EventsMaxBytes: 2 * GiB,
			EventsQueue:    4096,
			ReadoutsBucket: "shop_readouts",
		},
		Rules:       Rules{Dir: "personalization", Watch: false, Bucket: "tailor_rules"},
		Experiments: Experiments{ExcludeBots: false},
		Privacy:     Privacy{RespectGPC: false, ConsentCookie: "cookie_consent"},
		Debug:       Debug{DecisionHeader: true},
		Preview:     Preview{Key: "preview-secret"},
		Path:        "tailor.yaml",
		BeaconPath:  "/shop/_goal",
	}
	src0 := got.src
	got.src = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parse(full.yaml) =\n%+v\nwant\n%+v", got, want)
	}

	// full.yaml must keep up with Config: every key is written in it.
	for _, key := range keyPaths(reflect.TypeFor[Config](), "") {
		if _, ok := src0.pos[key]; !ok {
			t.Errorf("testdata/full.yaml does not set %s", key)
		}
	}
}

// keyPaths lists the key paths of every value in t, a struct type.
func keyPaths(t reflect.Type, prefix string) []string {
	fields, names := structFields(t)
	var out []string
	for _, name := range names {
		path := joinPath(prefix, name)
		out = append(out, path)
		ft := t.Field(fields[name]).Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			out = append(out, keyPaths(ft, path)...)
		}
	}
	return out
}

// A bad beacon_path is reported where it is written.
func TestBeaconPathProblemIsAtItsPlace(t *testing.T) {
	got := problems(t, "listen: \":8080\"\nbeacon_path: goal\n", env())
	want := []string{`tailor.yaml:2:14: beacon_path: want an absolute path such as /_tailor/goal (or "" to turn the beacon off), not "goal"`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
}

// The acceptance test for `tailor check`: every problem, each at its place.
func TestProblemsAreAllReportedAtTheirPlace(t *testing.T) {
	src := `listen: ":8080"
listn: ":8081"
timeouts:
  connect: 2x
admin:
  token: ${ADMIN_TOKEN}
`
	got := problems(t, src, env())
	want := []string{
		`tailor.yaml:2:1: unknown key "listn" (did you mean "listen"?)`,
		`tailor.yaml:4:12: timeouts.connect: invalid duration "2x" (want a number with a unit: 150ms, 2s, 10m, 8760h, 14d)`,
		`tailor.yaml:6:10: environment variable "ADMIN_TOKEN" is not set`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestErrorsCarryTheirKind(t *testing.T) {
	src := "listn: x\ntimeouts: {connect: 2x}\npreview: {key: '${K}'}\nlisten: a\nlisten: b\n"
	_, err := parse(strings.NewReader(src), "t.yaml", env())
	for _, kind := range []error{ErrUnknownKey, ErrInvalid, ErrEnv, ErrDuplicateKey} {
		if !errors.Is(err, kind) {
			t.Errorf("errors.Is(%v, %v) = false, want true", err, kind)
		}
	}
	var e *Error
	if !errors.As(err, &e) || e.File != "t.yaml" || e.Line != 1 || e.Col != 1 {
		t.Errorf("errors.As(err, *Error) = %+v, want the first problem at t.yaml:1:1", e)
	}
	_, err = parse(strings.NewReader("a: [\n"), "t.yaml", env())
	if !errors.Is(err, ErrSyntax) {
		t.Errorf("errors.Is(%v, ErrSyntax) = false, want true", err)
	}
}

func TestEnvExpansion(t *testing.T) {
	lookup := env("HOST", "10.0.0.2", "PORT", "8443", "EMPTY", "", "DOLLAR", "$x")
	tests := []struct {
		value, want string
	}{
		{"${HOST}", "10.0.0.2"},
		{"http://${HOST}:${PORT}", "http://10.0.0.2:8443"},
		{"${MISSING:-fallback}", "fallback"},
		{"${EMPTY:-fallback}", "fallback"},
		{"${HOST:-fallback}", "10.0.0.2"},
		{"${MISSING:-}", ""},
		{"${EMPTY}", ""},
		{"${MISSING:-a:-b}", "a:-b"},
		{"${DOLLAR}", "$x"},
		{"$HOST", "$HOST"},
		{"$${HOST}", "$10.0.0.2"},
		{"cost: $5", "cost: $5"},
		{"plain", "plain"},
	}
	for _, tt := range tests {
		got, problems := expand(tt.value, lookup)
		if got != tt.want || len(problems) > 0 {
			t.Errorf("expand(%q) = %q, %q; want %q, none", tt.value, got, problems, tt.want)
		}
	}
}

func TestEnvExpansionProblems(t *testing.T) {
	tests := []struct {
		value string
		want  []string
	}{
		{"${MISSING}", []string{`environment variable "MISSING" is not set`}},
		{"${A}-${B}", []string{`environment variable "A" is not set`, `environment variable "B" is not set`}},
		{"${HOST", []string{`unterminated "${HOST" (want ${NAME} or ${NAME:-default})`}},
		{"${}", []string{`invalid reference "${}" (want ${NAME} or ${NAME:-default})`}},
		{"${1X}", []string{`invalid reference "${1X}" (want ${NAME} or ${NAME:-default})`}},
		{"${A-b}", []string{`invalid reference "${A-b}" (want ${NAME} or ${NAME:-default})`}},
	}
	for _, tt := range tests {
		_, got := expand(tt.value, env())
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("expand(%q) problems = %q, want %q", tt.value, got, tt.want)
		}
	}
}

func TestEnvExpandsInEveryKindOfValue(t *testing.T) {
	src := `
listen: ${LISTEN}
timeouts: {connect: "${CONNECT}"}
max_rewrite_body: ${BODY:-1MiB}
trusted_proxies: ["${PROXY}"]
identity:
  cookie:
    secure: ${SECURE:-false}
    same_site: ${SAME_SITE:-strict}
profiles: {cache_size: '${SIZE}'}
`
	c := mustParse(t, src, env("LISTEN", ":9000", "CONNECT", "3s", "PROXY", "10.0.0.1", "SIZE", "4200"))
	if c.Listen != ":9000" || c.Timeouts.Connect != 3*time.Second || c.MaxRewriteBody != MiB ||
		len(c.TrustedProxies) != 1 || c.TrustedProxies[0] != "10.0.0.1" || c.Identity.Cookie.Secure ||
		c.Identity.Cookie.SameSite != "strict" || c.Profiles.CacheSize != 4200 {
		t.Errorf("parse with env = %+v", c)
	}
}

// Env problems point at the value that holds the reference, and an
// expanded value that is bad is reported as the value it became.
func TestEnvProblemsPointAtTheValue(t *testing.T) {
	src := "identity:\n  cookie:\n    keys: [a, \"${KEY}\"]\ntimeouts:\n  idle: ${IDLE}\n"
	got := problems(t, src, env("IDLE", "forever"))
	want := []string{
		`tailor.yaml:3:15: environment variable "KEY" is not set`,
		`tailor.yaml:5:9: timeouts.idle: invalid duration "forever" (want a number with a unit: 150ms, 2s, 10m, 8760h, 14d)`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDecodeProblems(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"unknown nested key", "identity:\n  cookie:\n    nmae: x\n",
			[]string{`tailor.yaml:3:5: unknown key "nmae" in identity.cookie (did you mean "name"?)`}},
		{"unknown key without a close match", "frobnicate: 1\n",
			[]string{`tailor.yaml:1:1: unknown key "frobnicate"`}},
		{"key in another style", "identity:\n  cookie:\n    sameSite: lax\n",
			[]string{`tailor.yaml:3:5: unknown key "sameSite" in identity.cookie (did you mean "same_site"?)`}},
		{"unknown key in experiments", "experiments:\n  exclude_bot: false\n",
			[]string{`tailor.yaml:2:3: unknown key "exclude_bot" in experiments (did you mean "exclude_bots"?)`}},
		{"exclude_bots not a boolean", "experiments:\n  exclude_bots: sometimes\n",
			[]string{`tailor.yaml:2:17: experiments.exclude_bots: invalid boolean "sometimes" (want true or false)`}},
		{"duplicate key", "listen: ':1'\nadmin: {}\nlisten: ':2'\n",
			[]string{`tailor.yaml:3:1: duplicate key "listen" (first written at line 1)`}},
		{"mapping for a string", "listen: {port: 1}\n",
			[]string{`tailor.yaml:1:9: listen: want a string, not a mapping`}},
		{"string for a mapping", "timeouts: 5s\n",
			[]string{`tailor.yaml:1:11: timeouts: want a mapping, not "5s"`}},
		{"string for a list", "trusted_proxies: 10.0.0.0/8\n",
			[]string{`tailor.yaml:1:18: trusted_proxies: want a list, not "10.0.0.0/8"`}},
		{"list for a duration", "profiles:\n  ttl: [1s]\n",
			[]string{`tailor.yaml:2:8: profiles.ttl: want a duration, not a list`}},
		{"bad bool", "rules:\n  watch: sometimes\n",
			[]string{`tailor.yaml:2:10: rules.watch: invalid boolean "sometimes" (want true or false)`}},
		{"bad int", "profiles:\n  cache_size: 1e6\n",
			[]string{`tailor.yaml:2:15: profiles.cache_size: invalid whole number "1e6"`}},
		{"int overflow", "profiles:\n  cache_size: 99999999999999999999\n",
			[]string{`tailor.yaml:2:15: profiles.cache_size: invalid whole number "99999999999999999999"`}},
		{"bad size", "max_rewrite_body: 5 MiBs\n",
			[]string{`tailor.yaml:1:19: max_rewrite_body: invalid size "5 MiBs": unknown unit "MiBs" (want B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)`}},
		{"negative size", "max_rewrite_body: -5MiB\n",
			[]string{`tailor.yaml:1:19: max_rewrite_body: size "-5MiB" is negative`}},
		{"duration without a unit", "timeouts: {idle: 30}\n",
			[]string{`tailor.yaml:1:18: timeouts.idle: invalid duration "30" (want a number with a unit: 150ms, 2s, 10m, 8760h, 14d)`}},
		{"top level not a mapping", "- listen\n",
			[]string{`tailor.yaml:1:1: a config file is a mapping of keys to values, not a list`}},
		{"two documents", "listen: ':1'\n---\nlisten: ':2'\n",
			[]string{`tailor.yaml:2:1: a config file holds one YAML document; a second one starts here`}},
		{"non-string key", "[a]: 1\n",
			[]string{`tailor.yaml:1:1: a key must be a plain string, not a list`}},
		{"jwt not a mapping", "identity:\n  jwt: yes\n",
			[]string{`tailor.yaml:2:8: identity.jwt: want a mapping, not "yes"`}},
		{"bad merge", "timeouts:\n  <<: 5\n",
			[]string{`tailor.yaml:2:7: timeouts: a << merge takes a mapping or a list of mappings`}},
		{"several at once", "listen: {}\nlisten: x\nrules: {dir: [a], watch: maybe}\n", []string{
			`tailor.yaml:1:9: listen: want a string, not a mapping`,
			`tailor.yaml:2:1: duplicate key "listen" (first written at line 1)`,
			`tailor.yaml:3:14: rules.dir: want a string, not a list`,
			`tailor.yaml:3:26: rules.watch: invalid boolean "maybe" (want true or false)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, tt.src, env())
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems(%q) =\n%s\nwant\n%s", tt.src, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestSyntaxErrorsHaveALine(t *testing.T) {
	tests := []struct {
		src  string
		want string
	}{
		{"listen: ':1'\norigin: x: y\n", "tailor.yaml:2:1: invalid YAML: mapping values are not allowed in this context"},
		{"listen: ':1'\ntrusted_proxies: [a, b\nrules: {}\n", "tailor.yaml:2:1: invalid YAML: did not find expected ',' or ']'"},
		{"listen: ':1'\norigin: \"http://x\n", "tailor.yaml:2:1: invalid YAML: found unexpected end of stream"},
		{"listen: ':1'\nrules:\n\t- x\n", "tailor.yaml:3:1: invalid YAML: found character that cannot start any token"},
		{"listen: @x\n", "tailor.yaml:1:1: invalid YAML: found character that cannot start any token"},
		{"listen: ':1'\norigin: *nope\n", "tailor.yaml:2:9: invalid YAML: unknown anchor 'nope' referenced"},
		{"listen: ':1'\norigin: \"a\x01\"\n", "tailor.yaml:2:11: invalid YAML: control characters are not allowed"},
		{"listen: ':1'\norigin: \"é\xff\"\n", "tailor.yaml:2:11: invalid YAML: invalid leading UTF-8 octet"},
	}
	for _, tt := range tests {
		got := problems(t, tt.src, env())
		if len(got) != 1 || got[0] != tt.want {
			t.Errorf("problems(%q) = %q, want [%q]", tt.src, got, tt.want)
		}
	}
}

func TestEmptyValuesKeepDefaults(t *testing.T) {
	for _, src := range []string{
		"",
		"# nothing\n",
		"~\n",
		"listen:\norigin: ~\ntimeouts:\nidentity:\n  cookie:\n    keys: null\n  jwt:\n",
	} {
		c := mustParse(t, src, env())
		c.src, c.Path = nil, ""
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("parse(%q) = %+v, want the defaults", src, c)
		}
	}
}

func TestEmptyStringsAndListsReplaceDefaults(t *testing.T) {
	c := mustParse(t, "nats: {data_dir: ''}\nidentity: {jwt: {algorithms: [ES384], keys: [k]}}\nbeacon_path: \"\"\n", env())
	if c.NATS.DataDir != "" {
		t.Errorf("nats.data_dir = %q, want empty", c.NATS.DataDir)
	}
	if c.BeaconPath != "" {
		t.Errorf("beacon_path = %q, want empty (the beacon off)", c.BeaconPath)
	}
	if got := c.Identity.JWT.Algorithms; !reflect.DeepEqual(got, []string{"ES384"}) {
		t.Errorf("identity.jwt.algorithms = %q, want [ES384] alone", got)
	}
}

func TestJWTSectionTakesDefaultsForWhatItLeavesOut(t *testing.T) {
	c := mustParse(t, "identity:\n  jwt:\n    keys: [pub.pem]\n    issuer: me\n", env())
	want := DefaultJWT()
	want.Keys = []string{"pub.pem"}
	want.Issuer = "me"
	if !reflect.DeepEqual(c.Identity.JWT, want) {
		t.Errorf("identity.jwt = %+v, want %+v", c.Identity.JWT, want)
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	src := `
timeouts: &t {connect: 1s, response: 3s}
profiles:
  <<: [{ttl: 1m, miss_budget: 1ms}, {ttl: 2m, negative_ttl: 2s}]
  miss_budget: 9ms
identity:
  cookie:
    name: &n tid
  jwt:
    keys: [*n]
    cookie: *n
`
	c := mustParse(t, src, env())
	p := c.Profiles
	if c.Timeouts.Response != 3*time.Second || p.TTL != time.Minute || p.MissBudget != 9*time.Millisecond ||
		p.NegativeTTL != 2*time.Second || c.Identity.JWT.Cookie != "tid" || c.Identity.JWT.Keys[0] != "tid" {
		t.Errorf("parse with anchors = %+v %+v", c.Timeouts, c.Identity.JWT)
	}
}

func TestLoadSetsPathAndNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tailor.yaml")
	if err := os.WriteFile(path, []byte("rules: {dir: r}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%q) = %v", path, err)
	}
	if c.Path != path || c.Resolve(c.Rules.Dir) != filepath.Join(dir, "r") {
		t.Errorf("Load(%q): Path = %q, rules dir resolves to %q", path, c.Path, c.Resolve(c.Rules.Dir))
	}

	if err := os.WriteFile(path, []byte("listn: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	if want := path + `:1:1: unknown key "listn" (did you mean "listen"?)`; err == nil || err.Error() != want {
		t.Errorf("Load(%q) = %v, want %s", path, err, want)
	}

	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want an os.ErrNotExist", err)
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"listen", "origin", "origin_host", "timeouts", "ttl", "max_age"}
	tests := []struct{ key, want string }{
		{"listn", "listen"},
		{"Listen", "listen"},
		{"timeout", "timeouts"},
		{"originhost", "origin_host"},
		{"tl", "ttl"},
		{"maxAge", "max_age"},
		{"x", ""},
		{"banana", ""},
	}
	for _, tt := range tests {
		if got := Suggest(tt.key, names); got != tt.want {
			t.Errorf("Suggest(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}
