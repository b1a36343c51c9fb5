package proxy

import (
	"net/http"
	"strings"
	"testing"
)

// TestConsoleCookieNeverReachesTheOrigin: an operator's console login
// (the admin package sets it) is sent along to the proxy when the admin
// listener is on the same host; it is no business of the origin's.
func TestConsoleCookieNeverReachesTheOrigin(t *testing.T) {
	origin, sent := recordingOrigin(t, func(r *http.Request) string { return strings.Join(r.Header.Values("Cookie"), "|") }, nil)
	p := startProxy(t, origin, nil)
	for cookie, want := range map[string]string{
		"a=1; tailor_console=123.abc; b=2": "a=1; b=2",
		"tailor_console=123.abc":           "",
		"tailor_console=1.x;theme=dark":    "theme=dark",
		"a=1;  b=2":                        "a=1;  b=2",                 // untouched without it
		"not_tailor_console=1; x=2":        "not_tailor_console=1; x=2", // another cookie, kept
	} {
		sent.Reset()
		get(t, p.url+"/x", "Cookie", cookie)
		if got := sent.All(); len(got) != 1 || got[0] != want {
			t.Errorf("Cookie %q reached the origin as %q, want [%q]", cookie, got, want)
		}
	}
}
