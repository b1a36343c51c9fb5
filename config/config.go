package config

import (
	"net/netip"
	"path/filepath"
	"time"
)

// Config is the whole of tailor.yaml. Every field has a default (see Default).
// Field docs are written for users: they are the reference for each key.
type Config struct {
	// Listen is the address the proxy accepts visitors on.
	Listen string `yaml:"listen"`
	// Origin is the site behind tailor, as scheme://host:port.
	Origin string `yaml:"origin"`
	// OriginHost overrides the Host header sent to the origin; empty passes
	// the client's Host as it was sent.
	OriginHost string `yaml:"origin_host"`
	// Timeouts bound the origin connection and the client connections.
	Timeouts Timeouts `yaml:"timeouts"`
	// ListenTLS, when set, is a second address the proxy accepts visitors
	// on, with TLS (1.2 and later) and the certificate in TLS: for a site
	// with no load balancer in front to terminate TLS. Empty: no TLS
	// listener.
	ListenTLS string `yaml:"listen_tls"`
	// TLS is the certificate ListenTLS serves.
	TLS TLS `yaml:"tls"`
	// MaxRewriteBody is the largest HTML body tailor buffers to rewrite;
	// larger bodies stream through untouched.
	MaxRewriteBody ByteSize `yaml:"max_rewrite_body"`
	// Limits bound what visitors' connections may hold.
	Limits Limits `yaml:"limits"`
	// MaxHeaderBytes bounds the request line plus headers; beyond it the
	// client gets 431.
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes"`
	// UnderscoresInHeaders forwards request headers whose names contain an
	// underscore. Off (nginx's default), they are dropped: CGI-style
	// origins read X_Forwarded_For as X-Forwarded-For, which tailor sets.
	UnderscoresInHeaders bool `yaml:"underscores_in_headers"`
	// TrustedProxies lists CIDRs whose X-Forwarded-* headers are kept and
	// appended to; from any other peer they are replaced. A bare address
	// stands for itself (/32 or /128). See TrustedNets.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Admin is the operator's listener.
	Admin Admin `yaml:"admin"`
	// Identity says how visitors are recognised.
	Identity Identity `yaml:"identity"`
	// Profiles sizes the local profile cache.
	Profiles Profiles `yaml:"profiles"`
	// NATS connects to the central customer store.
	NATS NATS `yaml:"nats"`
	// Rules says where rule files live.
	Rules Rules `yaml:"rules"`
	// Experiments says who takes part in experiments.
	Experiments Experiments `yaml:"experiments"`
	// BeaconPath is where pages report goals the HTML cannot show (a
	// click, an add-to-cart over XHR): tailor answers POST BeaconPath
	// itself and serves the goal script at BeaconPath + ".js"; neither
	// reaches the origin. An absolute path; "" turns both off.
	BeaconPath string `yaml:"beacon_path"`
	// Privacy controls tracking for visitors who opt out.
	Privacy Privacy `yaml:"privacy"`
	// Debug exposes decisions for troubleshooting.
	Debug Debug `yaml:"debug"`
	// Preview signs preview links.
	Preview Preview `yaml:"preview"`

	// Path is the file the config was loaded from ("" for Default or Parse
	// without a name). Relative paths in the config resolve against its
	// directory.
	Path string `yaml:"-"`

	// src remembers where each key was written, so that Validate can point
	// at the offending value. Nil for a Config that was not parsed.
	src *source
}

// Timeouts bound waiting on the origin and on idle connections. Each is
// more than 0 and at most 24h.
type Timeouts struct {
	// Connect bounds dialing the origin.
	Connect time.Duration `yaml:"connect"`
	// Response bounds waiting for the origin's response headers.
	Response time.Duration `yaml:"response"`
	// Idle closes keep-alive connections (client and origin side) idle this long.
	Idle time.Duration `yaml:"idle"`
}

// TLS is the certificate the TLS listener serves. Both files are PEM and
// are re-read when they change (a renewal, a Kubernetes Secret update);
// a pair that does not load keeps the previous one serving.
type TLS struct {
	// CertFile is the certificate chain: the site's certificate first,
	// then the intermediates. Relative to the config file (see
	// Config.Resolve).
	CertFile string `yaml:"cert_file"`
	// KeyFile is the certificate's private key (PKCS #1, PKCS #8 or
	// SEC 1), unencrypted. Relative to the config file.
	KeyFile string `yaml:"key_file"`
}

// Limits bound the visitors' connections, against slowloris and
// descriptor exhaustion.
type Limits struct {
	// MaxConns is the most visitor connections open at once; more are
	// closed as they are accepted. 0 sizes it from the open-files limit
	// (see proxy.ConnLimits).
	MaxConns int `yaml:"max_conns"`
	// MaxConnsPerIP is the most connections one client address may hold
	// open; trusted_proxies are exempt. 0 sizes it from MaxConns.
	MaxConnsPerIP int `yaml:"max_conns_per_ip"`
	// HeaderTimeout bounds receiving a whole request line and header,
	// from a connection's accept or a request's first byte: a header
	// trickled a byte at a time is cut there (408).
	HeaderTimeout time.Duration `yaml:"header_timeout"`
}

// Admin is the operator's listener: health, metrics, profiles API, console.
type Admin struct {
	// Listen is the admin address; keep it off the public interface.
	// Warnings warns of one that is not loopback when Token is empty.
	Listen string `yaml:"listen"`
	// Token is the bearer token for /v1/*; empty disables /v1/*.
	Token string `yaml:"token"`
}

// Identity says how visitors are recognised.
type Identity struct {
	// Cookie is the anonymous visitor's first-party cookie.
	Cookie Cookie `yaml:"cookie"`
	// JWT is nil when the section is absent: anonymous visitors only.
	// When the section is present, keys it leaves out take the defaults
	// listed on JWT.
	JWT *JWT `yaml:"jwt"`
}

// Cookie is the signed first-party visitor cookie.
type Cookie struct {
	// Name is the cookie's name. A "__Host-" or "__Secure-" prefix
	// requires Secure.
	Name string `yaml:"name"`
	// Keys are HMAC keys: the first signs, all verify, so a new key can be
	// put first and the old one dropped once its cookies have expired. An
	// empty list is allowed; the proxy then signs with an ephemeral key and
	// says so in its log.
	Keys []string `yaml:"keys"`
	// MaxAge is the cookie's lifetime (Max-Age), in whole seconds.
	MaxAge time.Duration `yaml:"max_age"`
	// Secure marks the cookie Secure (HTTPS only).
	Secure bool `yaml:"secure"`
	// SameSite is lax, strict or none; none requires Secure.
	SameSite string `yaml:"same_site"`
}

// JWT verifies tokens from the site's login. Defaults, when the section is
// present: header Authorization, algorithms [RS256, ES256], leeway 30s,
// subject_claim sub, segments_claim segments.
type JWT struct {
	// Header carries the token as "Bearer <token>".
	Header string `yaml:"header"`
	// Cookie, when set, is read for the token as well.
	Cookie string `yaml:"cookie"`
	// Algorithms is the allow-list of signing algorithms; "none" is never
	// accepted.
	Algorithms []string `yaml:"algorithms"`
	// Keys are PEM public key files or HMAC secrets written "hmac:<secret>".
	Keys []string `yaml:"keys"`
	// JWKSFile is a JWKS document on disk, re-read on change.
	JWKSFile string `yaml:"jwks_file"`
	// Issuer, when set, must equal the token's iss claim.
	Issuer string `yaml:"issuer"`
	// Audience, when set, must be among the token's aud claim.
	Audience string `yaml:"audience"`
	// Leeway tolerates clock skew when checking exp and nbf; at most 1h.
	Leeway time.Duration `yaml:"leeway"`
	// SubjectClaim names the claim that holds the profile id.
	SubjectClaim string `yaml:"subject_claim"`
	// SegmentsClaim names an optional claim whose segments are merged into
	// the profile's.
	SegmentsClaim string `yaml:"segments_claim"`
}

// Profiles sizes the local profile cache.
type Profiles struct {
	// CacheSize is the number of profiles the LRU holds: from 64 to
	// MaxProfileCacheSize, and no more than the machine's memory holds
	// (some 550 bytes each; tailor check and serve compare).
	CacheSize int `yaml:"cache_size"`
	// TTL is how long an entry lives without an update.
	TTL time.Duration `yaml:"ttl"`
	// MissBudget is how long a request waits for the central store on a
	// cache miss before it goes on with an empty profile; at most 1m.
	MissBudget time.Duration `yaml:"miss_budget"`
	// NegativeTTL is how long "no such profile" is remembered.
	NegativeTTL time.Duration `yaml:"negative_ttl"`
}

// NATS connects the edge to the central customer store.
type NATS struct {
	// URL lists servers, comma-separated (nats://, tls://, ws://, wss://).
	// Empty with Embedded false means no sync: profiles come from JWT
	// claims only.
	URL string `yaml:"url"`
	// Embedded starts an in-process NATS server with JetStream (single node).
	// It listens on the first URL's host:port, or 127.0.0.1:4222 when URL
	// is empty, so that "tailor import" finds it.
	Embedded bool `yaml:"embedded"`
	// DataDir is where the embedded server keeps JetStream data; relative
	// to the config file (see Config.Resolve).
	DataDir string `yaml:"data_dir"`
	// Creds is a NATS credentials file.
	Creds string `yaml:"creds"`
	// Bucket is the JetStream KV bucket holding the edge copy of the
	// central store.
	Bucket string `yaml:"bucket"`
	// EventsStream is the JetStream stream for events (subjects
	// tailor.events.>), created when missing; "" publishes no events.
	EventsStream string `yaml:"events_stream"`
	// EventsMaxAge is how long the stream keeps an event; 0 keeps events
	// until EventsMaxBytes pushes the oldest out.
	EventsMaxAge time.Duration `yaml:"events_max_age"`
	// EventsMaxBytes bounds the stream's size; the oldest events go
	// first. 0 means no bound but the server's.
	EventsMaxBytes ByteSize `yaml:"events_max_bytes"`
	// EventsQueue bounds the events waiting in memory to be published
	// (while NATS is slow or down); beyond it events are dropped and
	// counted in tailor_events_total{result="dropped"}.
	EventsQueue int `yaml:"events_queue"`
	// ReadoutsBucket is the KV bucket (and the object store of the same
	// name) where the experiment readouts folded from the events stream
	// are kept, created when missing: tailor report and the console read
	// them there.
	ReadoutsBucket string `yaml:"readouts_bucket"`
	// FoldReadouts makes this edge take its turn folding the events
	// stream into the readouts: one edge at a time holds the lease, and
	// another takes over when it stops. false leaves it to the others.
	FoldReadouts bool `yaml:"fold_readouts"`
}

// Rules says where rule files live.
type Rules struct {
	// Dir holds the rule files: every *.yaml in it, sorted by name;
	// relative to the config file (see Config.Resolve).
	Dir string `yaml:"dir"`
	// Watch reloads the rules on change; a bad edit keeps the last good
	// rules.
	Watch bool `yaml:"watch"`
	// Bucket, when set, is the JetStream KV bucket that "tailor rules
	// push" publishes numbered versions of the rule files to: serve then
	// loads the newest version from it instead of Dir, follows new ones,
	// and keeps the version it serves under nats.data_dir so that it
	// starts with it while NATS is down. It needs nats.url or
	// nats.embedded. Dir is what "tailor rules push" publishes.
	Bucket string `yaml:"bucket"`
}

// Experiments says who takes part in experiments.
type Experiments struct {
	// ExcludeBots gives visitors whose User-Agent is a bot's (device: bot:
	// crawlers, previewers, monitors, headless browsers, HTTP libraries,
	// an empty User-Agent) the control of every experiment, no identity
	// cookies and no events. Off, bots are tracked like people and their
	// events say "bot": true.
	ExcludeBots bool `yaml:"exclude_bots"`
}

// Privacy controls tracking for visitors who opt out.
type Privacy struct {
	// RespectGPC treats Sec-GPC: 1 or DNT: 1 as an opt-out: no events, no
	// new tracking cookie.
	RespectGPC bool `yaml:"respect_gpc"`
	// ConsentCookie, when set, allows events only when this cookie's value
	// is "granted".
	ConsentCookie string `yaml:"consent_cookie"`
}

// Debug exposes decisions for troubleshooting.
type Debug struct {
	// DecisionHeader adds X-Tailor-Decision to responses.
	DecisionHeader bool `yaml:"decision_header"`
}

// Preview signs preview links.
type Preview struct {
	// Key is the HMAC key for preview links; empty disables previews.
	Key string `yaml:"key"`
}

// Default returns a Config holding every default; Parse overlays a file on
// top of it. The result is valid (see Validate).
func Default() *Config {
	return &Config{
		Listen: ":8080",
		Origin: "http://127.0.0.1:3000",
		Timeouts: Timeouts{
			Connect:  2 * time.Second,
			Response: 15 * time.Second,
			Idle:     90 * time.Second,
		},
		Limits:         Limits{HeaderTimeout: 10 * time.Second},
		MaxRewriteBody: 5 * MiB,
		MaxHeaderBytes: 64 * KiB,
		Admin:          Admin{Listen: "127.0.0.1:9090"},
		Identity: Identity{
			Cookie: Cookie{
				Name:     "tailor_id",
				MaxAge:   8760 * time.Hour,
				Secure:   true,
				SameSite: "lax",
			},
		},
		Profiles: Profiles{
			CacheSize:   1_000_000,
			TTL:         10 * time.Minute,
			MissBudget:  20 * time.Millisecond,
			NegativeTTL: 30 * time.Second,
		},
		NATS: NATS{
			DataDir:        "./data/nats",
			Bucket:         "tailor_profiles",
			EventsStream:   "TAILOR_EVENTS",
			EventsMaxAge:   30 * 24 * time.Hour,
			EventsMaxBytes: 10 * GiB,
			EventsQueue:    65536,
			ReadoutsBucket: "tailor_readouts",
			FoldReadouts:   true,
		},
		Rules:       Rules{Dir: "rules/", Watch: true},
		Experiments: Experiments{ExcludeBots: true},
		Privacy:     Privacy{RespectGPC: true},
		BeaconPath:  DefaultBeaconPath,
	}
}

// DefaultBeaconPath is beacon_path unless tailor.yaml says otherwise.
const DefaultBeaconPath = "/_tailor/goal"

// DefaultJWT returns the JWT section as it is when tailor.yaml has a jwt:
// section that sets nothing.
func DefaultJWT() *JWT {
	return &JWT{
		Header:        "Authorization",
		Algorithms:    []string{"RS256", "ES256"},
		Leeway:        30 * time.Second,
		SubjectClaim:  "sub",
		SegmentsClaim: "segments",
	}
}

// setDefaults is how the decoder fills a section it allocates.
func (j *JWT) setDefaults() { *j = *DefaultJWT() }

// Resolve returns p relative to the directory of the config file: paths in
// tailor.yaml mean the same wherever tailor is started from. Absolute paths
// and "" are returned unchanged, and so is every path when the config did
// not come from a file (Path is ""): it is then relative to the working
// directory.
func (c *Config) Resolve(p string) string {
	if p == "" || c.Path == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.Path), p)
}

// TrustedNets returns TrustedProxies parsed, a bare address as a /32 or
// /128 and IPv4-mapped IPv6 addresses as IPv4, so compare peers after
// netip.Addr.Unmap. It parses on every call: call it once at setup. Entries
// that do not parse are left out; Validate reports them.
func (c *Config) TrustedNets() []netip.Prefix {
	nets := make([]netip.Prefix, 0, len(c.TrustedProxies))
	for _, s := range c.TrustedProxies {
		if p, err := parsePrefix(s); err == nil {
			nets = append(nets, p)
		}
	}
	return nets
}
