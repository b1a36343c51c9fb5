package listen

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/watch"
)

// certDebounce lets a renewal finish before the files are read: certbot
// swaps two symlinks, a hand copy writes the certificate and then the key.
// A read between the two finds a pair that does not match; it is counted
// as an error, and the write that completes the pair reloads again.
const certDebounce = 250 * time.Millisecond

// LoadCertificate reads the certificate chain and private key named by
// cfg's tls section (relative to the config file) and checks that they
// make a pair tailor can serve. Problems are config.Errors at the place
// of the key they concern, as tailor check prints them. An expired
// certificate loads: the caller decides what to say about it.
func LoadCertificate(cfg *config.Config) (*tls.Certificate, error) {
	return parseCertificate(cfg, readKeyPair(cfg))
}

// keyPairFiles are the bytes of tls.cert_file and tls.key_file, or why
// they could not be read.
type keyPairFiles struct {
	cert, key       []byte
	certErr, keyErr error
}

func readKeyPair(cfg *config.Config) keyPairFiles {
	var f keyPairFiles
	f.cert, f.certErr = os.ReadFile(cfg.Resolve(cfg.TLS.CertFile))
	f.key, f.keyErr = os.ReadFile(cfg.Resolve(cfg.TLS.KeyFile))
	return f
}

// same reports whether f and g read the same: same bytes, or failed the
// same way.
func (f keyPairFiles) same(g keyPairFiles) bool {
	sameErr := func(a, b error) bool { return (a == nil) == (b == nil) && (a == nil || a.Error() == b.Error()) }
	return bytes.Equal(f.cert, g.cert) && bytes.Equal(f.key, g.key) && sameErr(f.certErr, g.certErr) && sameErr(f.keyErr, g.keyErr)
}

// parseCertificate is LoadCertificate on files already read.
func parseCertificate(cfg *config.Config, f keyPairFiles) (*tls.Certificate, error) {
	certPath, keyPath := cfg.Resolve(cfg.TLS.CertFile), cfg.Resolve(cfg.TLS.KeyFile)
	var errs config.Errors
	if f.certErr != nil {
		errs = append(errs, cfg.KeyError("tls.cert_file", "%v", f.certErr))
	} else if err := checkChain(f.cert); err != nil {
		errs = append(errs, cfg.KeyError("tls.cert_file", "%s: %v", certPath, err))
	}
	if f.keyErr != nil {
		errs = append(errs, cfg.KeyError("tls.key_file", "%v", f.keyErr))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	cert, err := tls.X509KeyPair(f.cert, f.key)
	if err != nil {
		// The chain parsed: what is wrong is the key, or the two do not
		// go together.
		return nil, config.Errors{cfg.KeyError("tls.key_file", "%s is not the private key of the certificate in %s: %v", keyPath, certPath, err)}
	}
	if cert.Leaf == nil { // x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, config.Errors{cfg.KeyError("tls.cert_file", "%s: %v", certPath, err)}
		}
	}
	return &cert, nil
}

// checkChain reports what is wrong with a PEM certificate chain, for a
// better message than tls.X509KeyPair's.
func checkChain(certPEM []byte) error {
	n := 0
	for rest := certPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		n++
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("certificate %d of the chain does not parse: %w", n, err)
		}
	}
	if n == 0 {
		return fmt.Errorf("no PEM certificate in it (-----BEGIN CERTIFICATE-----)")
	}
	return nil
}

// Certificate is what the TLS listener serves: the pair last loaded from
// tls.cert_file and tls.key_file, swapped for the new one when they
// change. A pair that does not load leaves the one in force serving.
type Certificate struct {
	cfg *config.Config
	log *slog.Logger
	cur atomic.Pointer[tls.Certificate]

	mu   sync.Mutex   // serialises reloads
	last keyPairFiles // the files as the last load read them

	reloadOK, reloadError prometheus.Counter
}

// NewCertificate loads the pair, and registers its metrics with reg.
func NewCertificate(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (*Certificate, error) {
	files := readKeyPair(cfg)
	cert, err := parseCertificate(cfg, files)
	if err != nil {
		return nil, err
	}
	c := &Certificate{cfg: cfg, log: log, last: files}
	c.cur.Store(cert)
	c.loaded("tls certificate loaded", "start", cert)

	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_tls_reloads_total",
		Help: "TLS certificate reloads after a change to its files or SIGHUP, by result: ok (a new certificate serves), error (the files did not load: the previous certificate keeps serving). A reload that finds the certificate unchanged is not counted.",
	}, []string{"result"})
	c.reloadOK, c.reloadError = reloads.WithLabelValues("ok"), reloads.WithLabelValues("error")
	reg.MustRegister(reloads, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tailor_tls_certificate_expiry_timestamp_seconds",
		Help: "When the TLS certificate serving now expires (its NotAfter), in Unix seconds.",
	}, func() float64 { return float64(c.cur.Load().Leaf.NotAfter.Unix()) }))
	return c, nil
}

// tlsConfig is the TLS listener's: TLS 1.2 and later, Go's default cipher
// suites (forward secret, AEAD only), HTTP/1.1 (fasthttp speaks no h2),
// and the certificate in force at each handshake.
func (c *Certificate) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.cur.Load(), nil },
	}
}

// reload loads the pair again and swaps it in if it changed; why says
// what triggered it. With onChange, files that read as they did the last
// time are not loaded again: the change was to another file in their
// directory — perhaps the log tailor writes, whose every line about a
// pair that does not load would otherwise load it again.
func (c *Certificate) Reload(why string, onChange bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	files := readKeyPair(c.cfg)
	if onChange && files.same(c.last) {
		return
	}
	c.last = files
	cert, err := parseCertificate(c.cfg, files)
	if err != nil {
		c.reloadError.Inc()
		c.log.Error("tls certificate reload failed; the previous certificate keeps serving", "trigger", why, "err", err.Error())
		return
	}
	if slices.EqualFunc(cert.Certificate, c.cur.Load().Certificate, bytes.Equal) {
		c.log.Info("tls certificate unchanged", "trigger", why)
		return
	}
	c.cur.Store(cert)
	c.reloadOK.Inc()
	c.loaded("tls certificate reloaded", why, cert)
}

// loaded logs a certificate that now serves, and warns when browsers
// will refuse it for its dates.
func (c *Certificate) loaded(msg, why string, cert *tls.Certificate) {
	leaf := cert.Leaf
	args := []any{"trigger", why, "subject", leaf.Subject.String(), "names", leaf.DNSNames,
		"serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter.UTC()}
	c.log.Info(msg, args...)
	switch now := time.Now(); {
	case now.After(leaf.NotAfter):
		c.log.Warn("the tls certificate has expired: browsers refuse it", args...)
	case now.Before(leaf.NotBefore):
		c.log.Warn("the tls certificate is not valid yet: browsers refuse it", append(args, "not_before", leaf.NotBefore.UTC())...)
	}
}

// watch reloads the pair when the directories of its files change, until
// ctx ends. Directories, not files: certbot renews by swapping symlinks,
// Kubernetes updates a mounted Secret by swapping a symlink beside the
// files, and a watch on a file follows neither.
func (c *Certificate) Watch(ctx context.Context) error {
	dirs := []string{filepath.Dir(c.cfg.Resolve(c.cfg.TLS.CertFile))}
	if d := filepath.Dir(c.cfg.Resolve(c.cfg.TLS.KeyFile)); d != dirs[0] {
		dirs = append(dirs, d)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changed := func() { c.Reload("file change", true) }
	errc := make(chan error, len(dirs))
	for _, dir := range dirs {
		go func() {
			// A reload once the watch is in place: the files may have
			// changed since they were loaded.
			if err := watch.Dir(ctx, dir, false, certDebounce, c.log, changed, changed); err != nil {
				errc <- fmt.Errorf("watch %s: %w", dir, err)
				return
			}
			errc <- nil
		}()
	}
	var first error
	for range dirs {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel() // one directory unwatched: SIGHUP is the way for both
		}
	}
	return first
}
