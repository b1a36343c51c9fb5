package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func startAdmin(t *testing.T, p *Proxy) string {
	t.Helper()
	a := NewAdmin(p, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go a.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		a.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String()
}

func TestAdminHealthReadinessAndMetrics(t *testing.T) {
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 1000)))
	}))
	p := startProxy(t, origin.URL, nil)
	admin := startAdmin(t, p.Proxy)

	for _, path := range []string{"/healthz", "/readyz"} {
		if resp, body := get(t, admin+path); resp.StatusCode != 200 {
			t.Errorf("%s = %d %q, want 200", path, resp.StatusCode, body)
		}
	}
	for i := 0; i < 3; i++ {
		get(t, p.url+"/")
	}
	rawRoundTrip(t, p.addr, "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n")

	resp, body := get(t, admin+"/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics = %d", resp.StatusCode)
	}
	text := string(body)
	for _, want := range []string{
		`tailor_requests_total{code="2xx"} 3`,
		`tailor_requests_total{code="4xx"} 1`,
		`tailor_rejected_requests_total{reason="obs_fold"} 1`,
		`tailor_response_body_bytes_total 3000`,
		`tailor_origin_duration_seconds_count 3`,
		`tailor_request_duration_seconds_count`,
		`tailor_in_flight_requests 0`,
		`tailor_origin_errors_total{kind="timeout"} 0`,
		`tailor_build_info{version="test"} 1`,
		`tailor_go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(line, "tailor_") {
			t.Errorf("metric not named tailor_*: %s", line)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	p.Shutdown(ctx)
	resp, err := http.Get(admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz after shutdown = %d, want 503", resp.StatusCode)
	}
}
