package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tailor-edge/tailor/internal/testkit"
)

// tlsClient trusts only pool and opens a new connection per request, so
// that each request sees the certificate served at that moment.
func tlsClient(pool *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		DisableKeepAlives: true,
	}}
}

// servedSerial fetches url and returns the body and the serial of the
// certificate it came with.
func servedSerial(client *http.Client, url string) (body string, serial int64, err error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", 0, err
	}
	if resp.TLS == nil {
		return string(b), 0, fmt.Errorf("%s came without TLS", url)
	}
	return string(b), resp.TLS.PeerCertificates[0].SerialNumber.Int64(), nil
}

// TestTLSListenerServesAndReloadsCertificates (issue 15): for a site with
// no load balancer in front, tailor terminates TLS itself on listen_tls.
// Through the real binary: a client trusting a test CA gets the page, the
// origin is told the visitor came over https, TLS 1.1 is refused, a
// renewed certificate serves new connections within seconds of its files
// being replaced, and a broken one is counted while the last good one
// keeps serving.
func TestTLSListenerServesAndReloadsCertificates(t *testing.T) {
	var mu sync.Mutex
	var proto, forwarded string
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		proto, forwarded = r.Header.Get("X-Forwarded-Proto"), r.Header.Get("Forwarded")
		mu.Unlock()
		io.WriteString(w, "hello from the origin")
	}))
	defer origin.Close()
	seen := func() (string, string) {
		mu.Lock()
		defer mu.Unlock()
		return proto, forwarded
	}

	ca := testkit.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	certPEM, keyPEM := ca.Issue(t, 1, 24*time.Hour)
	testkit.ReplaceFile(t, certFile, certPEM)
	testkit.ReplaceFile(t, keyFile, keyPEM)
	tlsAddr := freeAddr(t)
	listen, admin := startServe(t, origin.URL, fmt.Sprintf("listen_tls: %q\ntls: { cert_file: %q, key_file: %q }\n", tlsAddr, certFile, keyFile))

	client := tlsClient(ca.Pool)
	base := "https://" + tlsAddr + "/"
	body, serial, err := servedSerial(client, base)
	if err != nil || body != "hello from the origin" || serial != 1 {
		t.Fatalf("GET %s = %q, certificate %d, %v; want the origin's page with certificate 1", base, body, serial, err)
	}
	if p, f := seen(); p != "https" || !strings.HasSuffix(f, ";proto=https") {
		t.Errorf("over TLS the origin saw X-Forwarded-Proto %q, Forwarded %q; want https, proto=https", p, f)
	}
	if _, _, err := servedSerial(client, "https://localhost:"+strings.Split(tlsAddr, ":")[1]+"/"); err != nil {
		t.Errorf("GET by the name localhost: %v", err)
	}
	resp, err := http.Get("http://" + listen + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if p, f := seen(); p != "http" || !strings.HasSuffix(f, ";proto=http") {
		t.Errorf("on the plain listener the origin saw X-Forwarded-Proto %q, Forwarded %q; want http, proto=http", p, f)
	}

	t.Run("only TLS 1.2 and later", func(t *testing.T) {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			c, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: ca.Pool, MinVersion: v, MaxVersion: v})
			if err != nil {
				t.Errorf("a %s client was refused: %v", tls.VersionName(v), err)
				continue
			}
			if got := c.ConnectionState().NegotiatedProtocol; got != "http/1.1" && got != "" {
				t.Errorf("ALPN chose %q, want http/1.1 (no h2)", got)
			}
			c.Close()
		}
		c, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		if err == nil {
			c.Close()
			t.Fatal("a TLS 1.1 client got a connection")
		}
		if !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("a TLS 1.1 client failed with %v, want the server to refuse the protocol version", err)
		}
	})

	// A renewal: a new certificate (serial 2) and key, each renamed over
	// the old file, as certificate managers do.
	certPEM2, keyPEM2 := ca.Issue(t, 2, 48*time.Hour)
	testkit.ReplaceFile(t, certFile, certPEM2)
	testkit.ReplaceFile(t, keyFile, keyPEM2)
	if !testkit.Within(5*time.Second, 50*time.Millisecond, func() bool { _, s, err := servedSerial(client, base); return err == nil && s == 2 }) {
		_, s, err := servedSerial(client, base)
		t.Fatalf("5s after the renewal, new connections get certificate %d (%v), want 2", s, err)
	}
	if n := metric(t, admin, `tailor_tls_reloads_total{result="ok"}`); n < 1 {
		t.Errorf(`tailor_tls_reloads_total{result="ok"} = %v after a renewal, want 1 or more`, n)
	}
	leaf2, _ := pem.Decode(certPEM2)
	cert2, _ := x509.ParseCertificate(leaf2.Bytes)
	if got, want := metric(t, admin, "tailor_tls_certificate_expiry_timestamp_seconds"), float64(cert2.NotAfter.Unix()); got != want {
		t.Errorf("tailor_tls_certificate_expiry_timestamp_seconds = %v, want the renewed certificate's %v", got, want)
	}

	// A broken certificate (a half-written file): counted, and the last
	// good certificate keeps serving.
	errorsBefore := metric(t, admin, `tailor_tls_reloads_total{result="error"}`)
	testkit.ReplaceFile(t, certFile, certPEM2[:len(certPEM2)/2])
	if !testkit.Within(5*time.Second, 50*time.Millisecond, func() bool {
		return metric(t, admin, `tailor_tls_reloads_total{result="error"}`) > errorsBefore
	}) {
		t.Fatal(`a broken certificate file was not counted in tailor_tls_reloads_total{result="error"}`)
	}
	if body, s, err := servedSerial(client, base); err != nil || s != 2 || body != "hello from the origin" {
		t.Errorf("after a broken certificate: %q, certificate %d, %v; want the page with certificate 2", body, s, err)
	}
}

// TestTLSListenerIsUnderTheConnectionLimits: TLS sits on the visitor
// listener, so the limits count both listeners' connections together, a
// connection over them is closed before its handshake, and
// limits.header_timeout cuts a client that never completes one.
func TestTLSListenerIsUnderTheConnectionLimits(t *testing.T) {
	origin := newRawOrigin(t, map[string]string{"/": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"})
	ca := testkit.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, 1, time.Hour)
	certFile, keyFile := writeFile(t, "tls.crt", string(certPEM)), writeFile(t, "tls.key", string(keyPEM))
	tlsAddr := freeAddr(t)
	addr := serveTailor(t, origin.ln.Addr().String(), fmt.Sprintf(
		"listen_tls: %q\ntls: { cert_file: %q, key_file: %q }\nlimits: { max_conns_per_ip: 2, header_timeout: 1s }\n",
		tlsAddr, certFile, keyFile), "")

	// The handshake is part of the header's time.
	c := dialFrom(t, "127.0.0.2", tlsAddr)
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if took := time.Since(start); n != 0 || err != io.EOF || took < 900*time.Millisecond || took > 2500*time.Millisecond {
		t.Errorf("a client that never sends its ClientHello: read %d, %v after %v; want closed after about 1s", n, err, took)
	}

	// One plain and one TLS connection fill 127.0.0.3's two slots.
	plain := dialFrom(t, "127.0.0.3", addr)
	if !served(plain) {
		t.Fatal("a plain connection under the cap was not served")
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}, Timeout: 2 * time.Second}
	tc, err := tls.DialWithDialer(d, "tcp", tlsAddr, &tls.Config{RootCAs: ca.Pool})
	if err != nil {
		t.Fatalf("a TLS connection under the cap: %v", err)
	}
	defer tc.Close()
	if !served(tc) {
		t.Fatal("a TLS connection under the cap was not served")
	}
	if !closedAtOnce(dialFrom(t, "127.0.0.3", tlsAddr)) {
		t.Error("a third connection from 127.0.0.3, on the TLS listener, was not closed at once")
	}
}

// TestCheckAndServeReportABadKeyPairAtItsKey: tailor check and tailor
// serve load the certificate alike, and say what is wrong with it at the
// key that names the file.
func TestCheckAndServeReportABadKeyPairAtItsKey(t *testing.T) {
	ca := testkit.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, 1, time.Hour)
	_, otherKey := ca.Issue(t, 2, time.Hour)
	dir := t.TempDir()
	for name, data := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM, "other.key": otherKey} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write := func(tlsSection string) string {
		path := filepath.Join(dir, "tailor.yaml")
		if err := os.WriteFile(path, []byte("listen: \"127.0.0.1:0\"\nadmin: { listen: \"127.0.0.1:0\" }\nlisten_tls: \"127.0.0.1:0\"\n"+tlsSection), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		name, tls string
		want      []string
	}{
		{"a key of another certificate", "tls:\n  cert_file: tls.crt\n  key_file: other.key\n", []string{
			`tailor.yaml:6:13: tls.key_file: .*other.key is not the private key of the certificate in .*tls.crt: tls: private key does not match public key$`}},
		{"missing files", "tls: { cert_file: missing.crt, key_file: missing.key }\n", []string{
			`tailor.yaml:4:19: tls.cert_file: open .*missing.crt: no such file or directory$`,
			`tailor.yaml:4:42: tls.key_file: open .*missing.key: no such file or directory$`}},
		{"a key for a certificate", "tls: { cert_file: other.key, key_file: tls.crt }\n", []string{
			`tailor.yaml:4:19: tls.cert_file: .*other.key: no PEM certificate in it`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := write(tc.tls)
			for _, cmd := range []string{"check", "serve"} {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				code, _, stderr := run(t, ctx, cmd, "--config", path)
				cancel()
				if code != exitInvalid {
					t.Errorf("tailor %s exit code = %d, want %d\n%s", cmd, code, exitInvalid, stderr)
				}
				var lines []string // serve's log lines left out
				for l := range strings.SplitSeq(strings.TrimSpace(stderr), "\n") {
					if !strings.HasPrefix(l, "time=") {
						lines = append(lines, l)
					}
				}
				if len(lines) != len(tc.want) {
					t.Fatalf("tailor %s printed %d lines, want %d:\n%s", cmd, len(lines), len(tc.want), stderr)
				}
				for i, want := range tc.want {
					if !regexp.MustCompile("^" + regexp.QuoteMeta(dir) + "/" + want).MatchString(lines[i]) {
						t.Errorf("tailor %s line %d = %q, want %q", cmd, i+1, lines[i], want)
					}
				}
			}
		})
	}

	// A good pair: check says whom the certificate is for, and until when.
	path := write("tls: { cert_file: tls.crt, key_file: " + filepath.Join(dir, "tls.key") + " }\n")
	code, stdout, stderr := run(t, context.Background(), "check", "--config", path)
	want := filepath.Join(dir, "tls.crt") + ": ok (localhost, 127.0.0.1; expires " + time.Now().Add(time.Hour).UTC().Format(time.DateOnly)
	if code != exitOK || !strings.Contains(stdout, want) {
		t.Errorf("check with a good pair: exit %d, printed %q %q; want a line %q…", code, stdout, stderr, want)
	}
}

// TestTLSListenerDrainsOnShutdown: SIGTERM stops both listeners and lets
// a request in flight over TLS finish.
func TestTLSListenerDrainsOnShutdown(t *testing.T) {
	slow, arrived := slowly("slow page")
	origin := httptest.NewServer(slow)
	defer origin.Close()
	ca := testkit.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, 1, time.Hour)
	certFile, keyFile := writeFile(t, "tls.crt", string(certPEM)), writeFile(t, "tls.key", string(keyPEM))
	listen, tlsAddr, admin := freeAddr(t), freeAddr(t), freeAddr(t)
	path := writeFile(t, "tailor.yaml", fmt.Sprintf("listen: %q\nlisten_tls: %q\norigin: %q\nadmin: { listen: %q }\ntls: { cert_file: %q, key_file: %q }\n",
		listen, tlsAddr, origin.URL, admin, certFile, keyFile))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var stderr syncBuffer
	go func() { done <- NewMain(io.Discard, &stderr).Run(ctx, []string{"serve", "--config", path}) }()
	waitReady(t, admin, 5*time.Second, stderr.String)

	answer := make(chan string, 1)
	go func() {
		body, _, err := servedSerial(tlsClient(ca.Pool), "https://"+tlsAddr+"/")
		if err != nil {
			body = err.Error()
		}
		answer <- body
	}()
	awaitArrival(t, arrived)
	cancel()
	if got := <-answer; got != "slow page" {
		t.Errorf("a request in flight over TLS at shutdown got %q", got)
	}
	if code := <-done; code != exitOK {
		t.Errorf("serve exit code = %d, want 0\n%s", code, stderr.String())
	}
	for _, addr := range []string{listen, tlsAddr} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after shutdown", addr)
		}
	}
}

// TestWebSocketOverTLSListener: wss:// through the TLS listener is
// spliced to the origin as ws:// is on the plain one, closing handshake
// included, and the origin is told the visitor came over https.
func TestWebSocketOverTLSListener(t *testing.T) {
	origin := startWSEchoOrigin(t, "")
	ca := testkit.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, 1, time.Hour)
	certFile, keyFile := writeFile(t, "tls.crt", string(certPEM)), writeFile(t, "tls.key", string(keyPEM))
	tlsAddr := freeAddr(t)
	startServe(t, origin.URL, fmt.Sprintf("listen_tls: %q\ntls: { cert_file: %q, key_file: %q }\n", tlsAddr, certFile, keyFile))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "wss://"+tlsAddr+"/echo", &websocket.DialOptions{HTTPClient: tlsClient(ca.Pool)})
	if err != nil {
		t.Fatalf("dial wss through tailor: %v", err)
	}
	defer c.CloseNow()
	for i := range 100 {
		msg := fmt.Appendf(nil, "message %d", i)
		if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if _, got, err := c.Read(ctx); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("read %d = %q, %v; want %q", i, got, err, msg)
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Errorf("closing handshake over TLS: %v", err)
	}
	if hs := origin.handshakes(); len(hs) != 1 || hs[0].Get("X-Forwarded-Proto") != "https" {
		t.Errorf("origin's handshakes %v, want one with X-Forwarded-Proto: https", hs)
	}
}
