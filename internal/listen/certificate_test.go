package listen

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/testkit"
)

// selfSigned returns a PEM certificate for localhost with serial, and its
// PEM key, issued by a test CA.
func selfSigned(t *testing.T, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	return testkit.NewCA(t).Issue(t, serial, time.Hour)
}

// A reload for a change in the files' directory loads them only when
// they read differently: tailor's own log beside them, written on every
// failed load, would otherwise make each failure the cause of the next.
// SIGHUP always loads.
func TestCertificateReloadsOnlyChangedFiles(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.ListenTLS = "127.0.0.1:0"
	cfg.TLS = config.TLS{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cert1, key1 := selfSigned(t, 1)
	write("tls.crt", cert1)
	write("tls.key", key1)
	reg := prometheus.NewRegistry()
	c, err := NewCertificate(cfg, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	serial := func() int64 {
		cert, _ := c.TLSConfig().GetCertificate(nil)
		return cert.Leaf.SerialNumber.Int64()
	}
	counts := func() (ok, failed float64) {
		return testkit.CounterValue(t, reg, "tailor_tls_reloads_total", "result", "ok"),
			testkit.CounterValue(t, reg, "tailor_tls_reloads_total", "result", "error")
	}

	steps := []struct {
		name         string
		change       func()
		onChange     bool
		serial       int64
		okN, failedN float64
	}{
		{"nothing changed", func() {}, true, 1, 0, 0},
		{"a half-written certificate", func() { write("tls.crt", cert1[:len(cert1)/2]) }, true, 1, 0, 1},
		{"the same broken files again", func() {}, true, 1, 0, 1},
		{"SIGHUP on the broken files", func() {}, false, 1, 0, 2},
		{"a new pair", func() { cert2, key2 := selfSigned(t, 2); write("tls.crt", cert2); write("tls.key", key2) }, true, 2, 1, 2},
		{"SIGHUP on the same pair", func() {}, false, 2, 1, 2},
	}
	for _, s := range steps {
		s.change()
		c.Reload(s.name, s.onChange)
		if ok, failed := counts(); serial() != s.serial || ok != s.okN || failed != s.failedN {
			t.Errorf("after %s: serving certificate %d, reloads ok %v, error %v; want %d, %v, %v",
				s.name, serial(), ok, failed, s.serial, s.okN, s.failedN)
		}
	}
	if got, want := testkit.CounterValue(t, reg, "tailor_tls_certificate_expiry_timestamp_seconds"), float64(c.cur.Load().Leaf.NotAfter.Unix()); got != want {
		t.Errorf("tailor_tls_certificate_expiry_timestamp_seconds = %v, want %v", got, want)
	}
}
