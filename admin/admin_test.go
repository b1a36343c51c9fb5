package admin

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/proxy"
)

// testAdmin is an admin listener and the proxy it watches, both serving
// on loopback.
type testAdmin struct {
	*Admin
	proxy    *proxy.Proxy
	url      string // http://host:port of the admin listener
	visitors string // http://host:port of the proxy
}

// startAdmin starts a proxy and its admin listener, after letting edit
// adjust the config and the admin's options. Both stop when the test
// ends; the admin's Serve must then have returned nil.
func startAdmin(t *testing.T, edit func(*config.Config, *Options)) *testAdmin {
	t.Helper()
	cfg := config.Default()
	opts := Options{Version: "test"}
	if edit != nil {
		edit(cfg, &opts)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	p, err := proxy.New(cfg, proxy.Options{Version: "test"})
	if err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	a := New(cfg, p, opts)
	visitors, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	operators, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		visitors.Close()
		t.Fatal(err)
	}
	go p.Serve(visitors)
	served := make(chan error, 1)
	go func() { served <- a.Serve(operators) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if p.Ready() { // a test may have shut it down itself
			p.Shutdown(ctx)
		}
		// As tailor serve does: a Serve that had not begun when Shutdown
		// came would keep the listener open.
		visitors.Close()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testAdmin{Admin: a, proxy: p, url: "http://" + operators.Addr().String(), visitors: "http://" + visitors.Addr().String()}
}

// call sends method url with body and the headers given as name, value
// pairs, and returns the answer with its body read.
func call(t *testing.T, method, url, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, string(b)
}

func TestAdminHealthReadinessAndMetrics(t *testing.T) {
	a := startAdmin(t, nil)
	for _, c := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/healthz", 200, "ok\n"},
		{"HEAD", "/healthz", 200, ""},
		{"GET", "/readyz", 200, "ready\n"},
		{"POST", "/healthz", 405, ""},
		{"GET", "/nothing-here", 404, "404 page not found\n"},
		{"GET", "/", 404, "the console is off: set admin.token to turn it on\n"},
		{"GET", "/v1/profiles/x", 404, `{"error":"the admin API is disabled: set admin.token"}` + "\n"},
	} {
		resp, body := call(t, c.method, a.url+c.path, "")
		if resp.StatusCode != c.status || c.body != "" && body != c.body {
			t.Errorf("%s %s = %d %q, want %d %q", c.method, c.path, resp.StatusCode, body, c.status, c.body)
		}
	}

	resp, text := call(t, "GET", a.url+"/metrics", "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// The proxy's metrics (proxy.TestMetricsCountRequestsAndAreNamedTailor
	// counts them) and the admin listener's own.
	for _, want := range []string{
		`tailor_build_info{version="test"} 1`,
		`tailor_requests_total{code="2xx"} 0`,
		`tailor_go_goroutines`,
		`tailor_admin_auth_failures_total{result="wrong_token"} 0`,
		`tailor_admin_auth_failures_total{result="rate_limited"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "tailor_") {
			t.Errorf("metric not named tailor_*: %s", line)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	a.proxy.Shutdown(ctx)
	if resp, body := call(t, "GET", a.url+"/readyz", ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz after the proxy's shutdown = %d %q, want 503", resp.StatusCode, body)
	}
}

// An edge following rules.bucket with no version loaded yet (a fresh
// edge, NATS down, nothing kept on disk) would serve every page
// unpersonalized: a load balancer should not send it visitors yet.
func TestReadyzNotReadyBeforeTheFirstRuleVersion(t *testing.T) {
	a := startAdmin(t, func(c *config.Config, _ *Options) {
		c.NATS.URL = "nats://127.0.0.1:1"
		c.Rules.Bucket = "tailor_rules"
	})
	want := "not ready\nno rule version yet\n"
	if resp, body := call(t, "GET", a.url+"/readyz", ""); resp.StatusCode != http.StatusServiceUnavailable || body != want {
		t.Errorf("/readyz before any version = %d %q, want 503 %q", resp.StatusCode, body, want)
	}
}

// An edge following rules.bucket says which version it serves, where a
// fleet's health checks already look.
func TestReadyzNamesThePublishedRuleVersion(t *testing.T) {
	a := startAdmin(t, func(c *config.Config, _ *Options) {
		c.NATS.URL = "nats://127.0.0.1:1"
		c.Rules.Bucket = "tailor_rules"
	})
	rules := fstest.MapFS{"r/home.yaml": {Data: []byte("pages:\n  - match: [\"/\"]\n    rules:\n      - {id: greet, select: .greeting, text: hi}\n")}}
	if err := a.proxy.LoadRulesFS(rules, "r", 12); err != nil {
		t.Fatal(err)
	}
	if resp, body := call(t, "GET", a.url+"/readyz", ""); resp.StatusCode != 200 || body != "ready\nrules version 12\n" {
		t.Errorf("/readyz serving version 12 = %d %q", resp.StatusCode, body)
	}
}
