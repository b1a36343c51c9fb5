package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tailor-edge/tailor/internal/testkit"
)

// metricsText is testkit.MetricsText, under the name this package's
// tests use.
var metricsText = testkit.MetricsText

func TestMetricsCountRequestsAndAreNamedTailor(t *testing.T) {
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 1000)))
	}))
	p := startProxy(t, origin.URL, nil)
	for range 3 {
		get(t, p.url+"/")
	}
	rawRoundTrip(t, p.addr, "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n")

	text := metricsText(t, p.Registry())
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

	shutdown(t, p)
	if p.Ready() {
		t.Error("Ready() after Shutdown, want false")
	}
}
