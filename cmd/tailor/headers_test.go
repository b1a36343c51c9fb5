package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/internal/testkit"
)

// rawOrigin is an origin on loopback that records each request head as it
// came off the wire and answers with the bytes responses gives its path.
type rawOrigin struct {
	ln    net.Listener
	heads testkit.Lines
}

func newRawOrigin(t *testing.T, responses map[string]string) *rawOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &rawOrigin{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go o.serve(c, responses)
		}
	}()
	return o
}

func (o *rawOrigin) serve(c net.Conn, responses map[string]string) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		var head strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		o.heads.Add(head.String())
		path := strings.Fields(head.String())[1]
		resp, ok := responses[path]
		if !ok {
			resp = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
		}
		if _, err := io.WriteString(c, resp); err != nil {
			return
		}
	}
}

// serveTailor runs `tailor serve` with the config text (listen, origin
// and admin are filled in) and a rules directory holding rules (none when
// ""), and returns the proxy's address.
func serveTailor(t *testing.T, originAddr, extra, rules string) string {
	t.Helper()
	addr, _ := serveTailorAdmin(t, originAddr, extra, rules)
	return addr
}

// serveTailorAdmin is serveTailor, and returns the admin address too.
func serveTailorAdmin(t *testing.T, originAddr, extra, rules string) (addr, admin string) {
	t.Helper()
	dir := t.TempDir()
	addr, admin = freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf("listen: %q\norigin: \"http://%s\"\nadmin: { listen: %q }\n%s", addr, originAddr, admin, extra)
	if rules != "" {
		os.Mkdir(filepath.Join(dir, "rules"), 0o755)
		if err := os.WriteFile(filepath.Join(dir, "rules", "r.yaml"), []byte(rules), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg += "rules: { dir: rules, watch: false }\n"
	}
	path := filepath.Join(dir, "tailor.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	serveInBackground(t, path, admin)
	return addr, admin
}

// rawExchange sends req as it is on a new connection to addr and returns
// the response head and body (read to the end: req asks to close).
func rawExchange(t *testing.T, addr, req string) (head, body string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil && len(b) == 0 {
		t.Fatalf("reading the answer to %q: %v", req, err)
	}
	head, body, _ = strings.Cut(string(b), "\r\n\r\n")
	return head, body
}

// headerLine returns the value of the first header line of head named
// exactly name (case included), and whether there is one.
func headerLine(head, name string) (string, bool) {
	for _, l := range strings.Split(head, "\r\n")[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok && k == name {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

const originDate = "Tue, 01 Dec 2026 10:00:00 GMT"

// TestOriginDateIsKept (issue 15): the origin's Date was dropped from
// every response. It passes as the origin sent it, and a response without
// one gets tailor's (RFC 9110 section 6.6.1); response header names keep
// their case.
func TestOriginDateIsKept(t *testing.T) {
	origin := newRawOrigin(t, map[string]string{
		"/date":   "HTTP/1.1 200 OK\r\nDate: " + originDate + "\r\nx-OrIgIn-CaSe: yes\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
		"/nodate": "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
	})
	addr := serveTailor(t, origin.ln.Addr().String(), "", "")

	head, body := rawExchange(t, addr, "GET /date HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
	if date, _ := headerLine(head, "Date"); date != originDate || body != "ok" {
		t.Errorf("Date = %q (body %q), want the origin's %q\n%s", date, body, originDate, head)
	}
	if strings.Count(head, "Date:") != 1 {
		t.Errorf("want exactly one Date:\n%s", head)
	}
	if v, ok := headerLine(head, "x-OrIgIn-CaSe"); !ok || v != "yes" {
		t.Errorf("the origin's x-OrIgIn-CaSe lost its case:\n%s", head)
	}

	head, _ = rawExchange(t, addr, "GET /nodate HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
	date, _ := headerLine(head, "Date")
	when, err := http.ParseTime(date)
	if err != nil || time.Since(when).Abs() > 5*time.Second {
		t.Errorf("a response without Date got Date %q (%v), want the time now\n%s", date, err, head)
	}

	// tailor's own answers carry one too.
	head, _ = rawExchange(t, addr, "GET /date HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.1 400") {
		t.Fatalf("a bad Transfer-Encoding: %s", head)
	}
	if date, _ := headerLine(head, "Date"); date == "" {
		t.Errorf("tailor's 400 has no Date:\n%s", head)
	}
}

// TestRequestHeaderNameCaseIsKept (issue 15): request header names were
// canonicalised on the way to the origin (x-MiXeD-CaSe arrived as
// X-Mixed-Case). Host alone is spelt "Host", as nginx sends it.
func TestRequestHeaderNameCaseIsKept(t *testing.T) {
	origin := newRawOrigin(t, map[string]string{"/": "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"})
	addr := serveTailor(t, origin.ln.Addr().String(), "", "")
	head, _ := rawExchange(t, addr, "GET / HTTP/1.1\r\nhost: example.test\r\nx-MiXeD-CaSe: 1\r\nACCEPT: */*\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.1 200") {
		t.Fatalf("got %s", head)
	}
	got := origin.heads.Last()
	for _, want := range []string{"\r\nx-MiXeD-CaSe: 1\r\n", "\r\nACCEPT: */*\r\n", "\r\nHost: example.test\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("the origin did not get %q as sent:\n%s", strings.TrimSpace(want), got)
		}
	}
}

// TestHeaderNamesThatAreNotTokensAreRefused (issue 15): header names with
// a space (`Transfer-Encoding x: chunked`) were forwarded; nginx answers
// 400. No such request reaches the origin.
func TestHeaderNamesThatAreNotTokensAreRefused(t *testing.T) {
	origin := newRawOrigin(t, map[string]string{"/": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"})
	addr := serveTailor(t, origin.ln.Addr().String(), "", "")
	for _, line := range []string{
		"Transfer-Encoding x: chunked",
		"Content-Length x: 50",
		"X Y: 1",
		"X(Y): 1",
		"X@Y: 1",
		"X\"Y: 1",
		"X[Y]: 1",
		"X,Y: 1",
		"X/Y: 1",
		"X\x7fY: 1",
		"X\x80Y: 1",
	} {
		head, _ := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: example.test\r\n"+line+"\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(head, "HTTP/1.1 400") {
			t.Errorf("header %q: got %q, want 400", line, strings.SplitN(head, "\r\n", 2)[0])
		}
	}
	if n := origin.heads.Len(); n != 0 {
		t.Errorf("%d requests with bad header names reached the origin:\n%s", n, origin.heads.Last())
	}
	// Every tchar of RFC 9110 section 5.6.2 is fine.
	head, _ := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: example.test\r\nX!#$%&'*+-.^`|~09az: 1\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.1 200") || !strings.Contains(origin.heads.Last(), "\r\nX!#$%&'*+-.^`|~09az: 1\r\n") {
		t.Errorf("a name of tchars: %q\norigin got:\n%s", head, origin.heads.Last())
	}
}

// TestUnderscoreHeadersAreDropped (issue 15): `X_Forwarded_For` was
// forwarded, and CGI-style origins read it as X-Forwarded-For, which tailor
// replaces. As nginx does by default, such headers are dropped, unless
// underscores_in_headers is on.
func TestUnderscoreHeadersAreDropped(t *testing.T) {
	origin := newRawOrigin(t, map[string]string{"/": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"})
	req := "GET / HTTP/1.1\r\nHost: example.test\r\nX_Forwarded_For: 6.6.6.6\r\nX-Keep: 1\r\nConnection: close\r\n\r\n"

	addr := serveTailor(t, origin.ln.Addr().String(), "", "")
	head, _ := rawExchange(t, addr, req)
	if got := origin.heads.Last(); !strings.HasPrefix(head, "HTTP/1.1 200") || strings.Contains(got, "6.6.6.6") || !strings.Contains(got, "X-Keep: 1") {
		t.Errorf("by default: %q; the origin got:\n%s", strings.SplitN(head, "\r\n", 2)[0], got)
	}

	addr = serveTailor(t, origin.ln.Addr().String(), "underscores_in_headers: true\n", "")
	head, _ = rawExchange(t, addr, req)
	if got := origin.heads.Last(); !strings.HasPrefix(head, "HTTP/1.1 200") || !strings.Contains(got, "\r\nX_Forwarded_For: 6.6.6.6\r\n") {
		t.Errorf("with underscores_in_headers: %q; the origin got:\n%s", strings.SplitN(head, "\r\n", 2)[0], got)
	}
}

// TestForwardedFromUntrustedClientIsReplaced (issue 15): `Forwarded:
// for=…;host=evil.example` from any client reached the origin. It is
// treated as X-Forwarded-For is: replaced for untrusted clients, appended
// to for trusted proxies.
func TestForwardedFromUntrustedClientIsReplaced(t *testing.T) {
	origin := newRawOrigin(t, map[string]string{"/": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"})
	req := "GET / HTTP/1.1\r\nHost: example.test\r\nForwarded: for=1.2.3.4;host=evil.example\r\nConnection: close\r\n\r\n"

	addr := serveTailor(t, origin.ln.Addr().String(), "", "")
	rawExchange(t, addr, req)
	got := origin.heads.Last()
	if v, _ := headerLine(got, "Forwarded"); v != "for=127.0.0.1;host=example.test;proto=http" || strings.Count(got, "Forwarded:") != 1 {
		t.Errorf("from an untrusted client the origin got:\n%s", got)
	}

	addr = serveTailor(t, origin.ln.Addr().String(), "trusted_proxies: [127.0.0.1]\n", "")
	rawExchange(t, addr, req)
	got = origin.heads.Last()
	if v, _ := headerLine(got, "Forwarded"); v != "for=1.2.3.4;host=evil.example, for=127.0.0.1;host=example.test;proto=http" {
		t.Errorf("from a trusted proxy the origin got:\n%s", got)
	}
}

const greetingPage = `<html><body><p class="greeting">Welcome!</p></body></html>`

func htmlResponse(body string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nDate: %s\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s", originDate, len(body), body)
}

// TestCountryHeadersOnlyFromTrustedProxies (issue 15): `curl -H
// 'CF-IPCountry: de'` put anyone in a German segment. Country headers are
// the CDN's word, and count only from trusted_proxies.
func TestCountryHeadersOnlyFromTrustedProxies(t *testing.T) {
	origin := newRawOrigin(t, map[string]string{"/": htmlResponse(greetingPage)})
	rules := "pages:\n  - match: [\"/\"]\n    rules:\n      - id: german\n        when: { country: [DE] }\n        select: .greeting\n        text: Willkommen!\n"
	for _, h := range []string{"CF-IPCountry: de", "CloudFront-Viewer-Country: DE", "X-Country-Code: DE", "X-Geo-Country: DE"} {
		req := "GET / HTTP/1.1\r\nHost: example.test\r\n" + h + "\r\nConnection: close\r\n\r\n"
		addr := serveTailor(t, origin.ln.Addr().String(), "", rules)
		if _, body := rawExchange(t, addr, req); !strings.Contains(body, "Welcome!") {
			t.Errorf("%s from an untrusted client was believed: %q", h, body)
		}
		addr = serveTailor(t, origin.ln.Addr().String(), "trusted_proxies: [127.0.0.0/8]\n", rules)
		if _, body := rawExchange(t, addr, req); !strings.Contains(body, "Willkommen!") {
			t.Errorf("%s from a trusted proxy was not believed: %q", h, body)
		}
	}
}

// TestHEADOnRulesPageAnswersGETHeaders (issue 15): a HEAD on a page with
// rules answered the origin's Content-Length, not the personalized page's.
func TestHEADOnRulesPageAnswersGETHeaders(t *testing.T) {
	origin := newRawOrigin(t, map[string]string{"/": htmlResponse(greetingPage)})
	rules := "pages:\n  - match: [\"/\"]\n    rules:\n      - id: greet\n        select: .greeting\n        text: A much longer greeting for every visitor\n"
	addr := serveTailor(t, origin.ln.Addr().String(), "", rules)
	getHead, body := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: example.test\r\nUser-Agent: "+testkit.BrowserUA+"\r\nConnection: close\r\n\r\n")
	if !strings.Contains(body, "A much longer greeting") {
		t.Fatalf("GET was not personalized: %q", body)
	}
	head, body := rawExchange(t, addr, "HEAD / HTTP/1.1\r\nHost: example.test\r\nUser-Agent: "+testkit.BrowserUA+"\r\nConnection: close\r\n\r\n")
	if body != "" {
		t.Errorf("HEAD answered a body: %q", body)
	}
	if !strings.Contains(origin.heads.Last(), "GET / HTTP/1.1") {
		t.Errorf("for HEAD on a page with rules, the origin should be asked for the page:\n%s", origin.heads.Last())
	}
	for _, name := range []string{"Content-Length", "Content-Type", "Cache-Control", "Vary", "Date"} {
		want, _ := headerLine(getHead, name)
		if got, _ := headerLine(head, name); got != want {
			t.Errorf("HEAD %s = %q, GET's = %q", name, got, want)
		}
	}
	if want := fmt.Sprint(len(greetingPage)); strings.Contains(head, "Content-Length: "+want+"\r\n") {
		t.Errorf("HEAD answered the origin's length %s:\n%s", want, head)
	}
	if _, ok := headerLine(head, "Set-Cookie"); !ok {
		t.Errorf("HEAD for a new visitor sets no cookie, the GET does:\n%s", head)
	}
}
