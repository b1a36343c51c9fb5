package proxy

import (
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestConsoleCookieNeverReachesTheOrigin: an operator's console login
// (the admin package sets it) is sent along to the proxy when the admin
// listener is on the same host; it is no business of the origin's.
func TestConsoleCookieNeverReachesTheOrigin(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, strings.Join(r.Header.Values("Cookie"), "|"))
		mu.Unlock()
		w.Write([]byte("ok"))
	}))
	p := startProxy(t, origin.URL, nil)
	for cookie, want := range map[string]string{
		"a=1; tailor_console=123.abc; b=2": "a=1; b=2",
		"tailor_console=123.abc":           "",
		"tailor_console=1.x;theme=dark":    "theme=dark",
		"a=1;  b=2":                        "a=1;  b=2",                 // untouched without it
		"not_tailor_console=1; x=2":        "not_tailor_console=1; x=2", // another cookie, kept
	} {
		seen = nil
		get(t, p.url+"/x", "Cookie", cookie)
		mu.Lock()
		got := seen[0]
		mu.Unlock()
		if got != want {
			t.Errorf("Cookie %q reached the origin as %q, want %q", cookie, got, want)
		}
	}
}
