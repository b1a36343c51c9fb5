package main

import (
	"strings"
	"testing"
)

// TestLanguageWithRegionFiresThroughTheProxy (issue 16): `when: {
// language: pt-BR }` never fired through the proxy, which cut
// Accept-Language "pt-BR,pt" to "pt" before the rules saw it (their own
// tests passed the header in whole). The rules now get the header and read
// its first tag themselves, as tailor explain does.
func TestLanguageWithRegionFiresThroughTheProxy(t *testing.T) {
	origin := newRawOrigin(t, map[string]string{"/": htmlResponse(`<p class="greeting">Welcome!</p><p class="lang">-</p>`)})
	rules := `pages:
  - match: ["/"]
    rules:
      - { id: brazil, when: { language: pt-BR }, select: .greeting, text: "Bem-vindo!" }
      - { id: portuguese, when: { language: pt }, select: .lang, text: "pt" }
`
	addr := serveTailor(t, origin.ln.Addr().String(), "", rules)
	for _, tc := range []struct {
		accept        string
		brazil, anyPT bool
	}{
		{"pt-BR,pt;q=0.9,en;q=0.5", true, true},
		{"pt-br", true, true},
		{"pt_BR", true, true},
		{"pt-PT,pt;q=0.9", false, true},
		{"pt", false, true},
		{"en-US,pt-BR;q=0.5", false, false},
		{"*", false, false},
	} {
		_, body := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nAccept-Language: "+tc.accept+"\r\nConnection: close\r\n\r\n")
		if got := strings.Contains(body, "Bem-vindo!"); got != tc.brazil {
			t.Errorf("Accept-Language %q: language pt-BR fired %v, want %v: %s", tc.accept, got, tc.brazil, body)
		}
		if got := strings.Contains(body, `<p class="lang">pt</p>`); got != tc.anyPT {
			t.Errorf("Accept-Language %q: language pt fired %v, want %v: %s", tc.accept, got, tc.anyPT, body)
		}
	}
}
