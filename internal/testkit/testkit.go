// Package testkit holds the helpers that tests in several packages share,
// so that each is written once: a real JetStream server (one, or a
// cluster) on loopback, a client of it and a key-value bucket on it, a
// free port, waiting for a condition instead of sleeping a fixed time (as
// nats-server's own tests poll), a log buffer and a list of lines
// goroutines may write (what an origin was sent), replacing a file as editors do, and reading a registry's metrics as
// /metrics serves them. It is for tests only.
package testkit

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tailor-edge/tailor/internal/testkit/fixtures"
)

// BrowserUA is an ordinary desktop browser's User-Agent. Tests that
// expect a visitor to be tracked (cookies, events, experiment variants)
// send it: Go's own "Go-http-client" and fasthttp's agents are on the
// crawler lists, and bots are kept out of experiments.
const BrowserUA = fixtures.BrowserUA

// Browser wraps rt (nil: http.DefaultTransport) to send BrowserUA with
// every request that names no User-Agent: an HTTP client of a test that
// expects to be tracked. A request with an empty User-Agent sends none.
func Browser(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return browserTransport{rt}
}

type browserTransport struct{ http.RoundTripper }

func (b browserTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if _, ok := r.Header["User-Agent"]; !ok {
		r = r.Clone(r.Context())
		r.Header.Set("User-Agent", BrowserUA)
	}
	return b.RoundTripper.RoundTrip(r)
}

// JetStream starts a JetStream server on loopback, on port (-1: any),
// keeping its files in dir ("" for a new temporary directory). A server
// started again on the same dir and port finds its streams as they were.
// It stops when the test ends.
func JetStream(tb testing.TB, dir string, port int) *server.Server {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	return start(tb, &server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
}

// Cluster starts n JetStream servers on loopback, routed to each other.
// They stop when the test ends.
func Cluster(tb testing.TB, n int) []*server.Server {
	tb.Helper()
	ports := make([]int, n)
	var routes []string
	for i := range ports {
		ports[i] = FreePort(tb)
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(ports[i]))
	}
	servers := make([]*server.Server, n)
	for i := range servers {
		servers[i] = start(tb, &server.Options{
			ServerName: fmt.Sprint("n", i), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: tb.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "tailor-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
	}
	return servers
}

func start(tb testing.TB, o *server.Options) *server.Server {
	tb.Helper()
	s, err := server.NewServer(o)
	if err != nil {
		tb.Fatal(err)
	}
	go s.Start()
	tb.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		tb.Fatal("nats server not ready within 10s")
	}
	return s
}

// Client connects to the server at url as a process of its own would (the
// central store's writer, a consumer of events) and returns its
// JetStream. The connection reconnects every 20 ms for as long as the
// test runs, across a server's restart, and closes when the test ends.
func Client(tb testing.TB, url string) jetstream.JetStream {
	tb.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

// Bucket returns the key-value bucket name on the server at url, over a
// Client connection, creating it with replicas copies when it is missing.
// It tries for 30 s: a cluster elects the bucket's leader first, and a
// store under test may be creating the bucket at the same moment.
func Bucket(tb testing.TB, url, name string, replicas int) jetstream.KeyValue {
	tb.Helper()
	js := Client(tb, url)
	var kv jetstream.KeyValue
	CheckFor(tb, 30*time.Second, 100*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		if kv, err = js.KeyValue(ctx, name); errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, Replicas: replicas})
		}
		return err
	})
	return kv
}

// FreePort returns a loopback port nothing listens on now, and one it
// has not returned before in this process: the kernel may hand the same
// ephemeral port to two listeners opened and closed in a row, and a test
// that asks for two ports (a listener and an admin listener) must get two.
func FreePort(tb testing.TB) int {
	tb.Helper()
	issuedMu.Lock()
	defer issuedMu.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !issued[port] {
			issued[port] = true
			return port
		}
	}
	tb.Fatal("no loopback port that was not handed out already in 100 tries")
	return 0
}

var (
	issuedMu sync.Mutex
	issued   = map[int]bool{} // ports FreePort returned
)

// CheckFor calls fn every `every` until it returns nil, and fails the
// test with fn's last error once total has passed.
func CheckFor(tb testing.TB, total, every time.Duration, fn func() error) {
	tb.Helper()
	deadline := time.Now().Add(total)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("still failing after %v: %v", total, err)
		}
		time.Sleep(every)
	}
}

// Within polls cond every `every` until it holds, and reports whether it
// did within total.
func Within(total, every time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(total); ; time.Sleep(every) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// Buffer is a bytes.Buffer that a server or watcher goroutine may write,
// as its log, while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what has been written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines is a list of lines that server goroutines add to, one for each
// request they were sent, while the test reads it.
type Lines struct {
	mu sync.Mutex
	l  []string
}

// Add appends line.
func (s *Lines) Add(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.l = append(s.l, line)
}

// All returns the lines so far, oldest first.
func (s *Lines) All() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.l)
}

// Last returns the latest line, "" when there is none.
func (s *Lines) Last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.l) == 0 {
		return ""
	}
	return s.l[len(s.l)-1]
}

// Len returns how many lines there are.
func (s *Lines) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.l)
}

// Reset forgets the lines so far.
func (s *Lines) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.l = nil
}

// ReplaceFile puts data at path as editors and certificate managers do:
// written beside it, then renamed over it, so that no reader sees half a
// file and a watcher sees the rename.
func ReplaceFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// MetricsText is reg in Prometheus's text format, as the admin listener's
// /metrics serves it.
func MetricsText(t testing.TB, reg *prometheus.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics = %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// CounterValue sums the counters (or gauges) named name in reg whose
// labels include every name=value pair of labels.
func CounterValue(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// CA is a self-signed certificate authority that issues leaf
// certificates for 127.0.0.1 and localhost.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// Pool trusts the CA: a client given it accepts what Issue issues.
	Pool *x509.CertPool
}

// NewCA makes a CA valid for a day.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tailor test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{cert: cert, key: key, Pool: pool}
}

// Issue returns a PEM leaf certificate for 127.0.0.1 and localhost, with
// serial and lifetime, and its PEM private key.
func (ca *CA) Issue(t testing.TB, serial int64, lifetime time.Duration) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(lifetime).Truncate(time.Second),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
}

// Differs describes where got and want part, for a failure message.
func Differs(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("%d bytes, want %d; they part at %d: %q vs %q", len(got), len(want), i,
		got[i:min(len(got), i+60)], want[i:min(len(want), i+60)])
}
