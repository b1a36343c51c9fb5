package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

// env is a lookupEnv over the given NAME, value pairs.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

func TestDefaultsAreTheSpecsDefaults(t *testing.T) {
	c := Default()
	tests := []struct {
		key       string
		got, want any
	}{
		{"listen", c.Listen, ":8080"},
		{"origin", c.Origin, "http://127.0.0.1:3000"},
		{"origin_host", c.OriginHost, ""},
		{"timeouts.connect", c.Timeouts.Connect, 2 * time.Second},
		{"timeouts.response", c.Timeouts.Response, 15 * time.Second},
		{"timeouts.idle", c.Timeouts.Idle, 90 * time.Second},
		{"max_rewrite_body", c.MaxRewriteBody, ByteSize(5 << 20)},
		{"max_header_bytes", c.MaxHeaderBytes, ByteSize(64 << 10)},
		{"trusted_proxies", len(c.TrustedProxies), 0},
		{"admin.listen", c.Admin.Listen, "127.0.0.1:9090"},
		{"admin.token", c.Admin.Token, ""},
		{"identity.cookie.name", c.Identity.Cookie.Name, "tailor_id"},
		{"identity.cookie.keys", len(c.Identity.Cookie.Keys), 0},
		{"identity.cookie.max_age", c.Identity.Cookie.MaxAge, 8760 * time.Hour},
		{"identity.cookie.secure", c.Identity.Cookie.Secure, true},
		{"identity.cookie.same_site", c.Identity.Cookie.SameSite, "lax"},
		{"identity.jwt", c.Identity.JWT, (*JWT)(nil)},
		{"profiles.cache_size", c.Profiles.CacheSize, 1000000},
		{"profiles.ttl", c.Profiles.TTL, 10 * time.Minute},
		{"profiles.miss_budget", c.Profiles.MissBudget, 20 * time.Millisecond},
		{"profiles.negative_ttl", c.Profiles.NegativeTTL, 30 * time.Second},
		{"nats.url", c.NATS.URL, ""},
		{"nats.embedded", c.NATS.Embedded, false},
		{"nats.data_dir", c.NATS.DataDir, "./data/nats"},
		{"nats.creds", c.NATS.Creds, ""},
		{"nats.bucket", c.NATS.Bucket, "tailor_profiles"},
		{"nats.events_stream", c.NATS.EventsStream, "TAILOR_EVENTS"},
		{"rules.dir", c.Rules.Dir, "rules/"},
		{"rules.watch", c.Rules.Watch, true},
		{"rules.bucket", c.Rules.Bucket, ""},
		{"experiments.exclude_bots", c.Experiments.ExcludeBots, true},
		{"beacon_path", c.BeaconPath, "/_tailor/goal"},
		{"privacy.respect_gpc", c.Privacy.RespectGPC, true},
		{"privacy.consent_cookie", c.Privacy.ConsentCookie, ""},
		{"debug.decision_header", c.Debug.DecisionHeader, false},
		{"preview.key", c.Preview.Key, ""},
		{"path", c.Path, ""},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("Default() %s = %#v, want %#v", tt.key, tt.got, tt.want)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v, want nil", err)
	}
}

func TestJWTDefaults(t *testing.T) {
	want := &JWT{
		Header:        "Authorization",
		Algorithms:    []string{"RS256", "ES256"},
		Leeway:        30 * time.Second,
		SubjectClaim:  "sub",
		SegmentsClaim: "segments",
	}
	if got := DefaultJWT(); !reflect.DeepEqual(got, want) {
		t.Errorf("DefaultJWT() = %+v, want %+v", got, want)
	}
}

// The SPEC's example file spells out every default; parsed, it must be
// Default() plus what the example adds (a cookie key from the environment
// and a jwt section).
func TestSpecExampleIsTheDefaults(t *testing.T) {
	f, err := os.Open("testdata/spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := parse(f, "spec.yaml", env("TAILOR_COOKIE_KEY", "k1"))
	if err != nil {
		t.Fatalf("parse(spec.yaml) = %v", err)
	}
	want := Default()
	want.Path = "spec.yaml"
	want.TrustedProxies = []string{}
	want.Identity.Cookie.Keys = []string{"k1"}
	want.Identity.JWT = DefaultJWT()
	want.Identity.JWT.Keys = []string{"keys/public.pem"}
	got.src = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parse(spec.yaml) =\n%+v\nwant\n%+v", got, want)
	}
}

func TestResolveIsRelativeToTheConfigFile(t *testing.T) {
	abs := filepath.Join(t.TempDir(), "x")
	tests := []struct {
		path, p, want string
	}{
		{"/etc/tailor/tailor.yaml", "rules/", "/etc/tailor/rules"},
		{"/etc/tailor/tailor.yaml", "./data/nats", "/etc/tailor/data/nats"},
		{"conf/tailor.yaml", "rules/", filepath.Join("conf", "rules")},
		{"tailor.yaml", "rules/", "rules"},
		{"conf/tailor.yaml", abs, abs},
		{"conf/tailor.yaml", "", ""},
		{"", "rules/", "rules/"},
	}
	for _, tt := range tests {
		c := &Config{Path: tt.path}
		if got := c.Resolve(tt.p); got != tt.want {
			t.Errorf("Config{Path: %q}.Resolve(%q) = %q, want %q", tt.path, tt.p, got, tt.want)
		}
	}
}

func TestTrustedNetsReadsCIDRsAndBareAddresses(t *testing.T) {
	c := Default()
	c.TrustedProxies = []string{"10.0.0.0/8", "192.168.1.7", "::ffff:172.16.0.1", "fd00::/8", "2001:db8::1", "10.1.2.3/16", "bogus"}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.1.7/32"),
		netip.MustParsePrefix("172.16.0.1/32"),
		netip.MustParsePrefix("fd00::/8"),
		netip.MustParsePrefix("2001:db8::1/128"),
		netip.MustParsePrefix("10.1.0.0/16"),
	}
	if got := c.TrustedNets(); !slices.Equal(got, want) {
		t.Errorf("TrustedNets() = %v, want %v", got, want)
	}
}
