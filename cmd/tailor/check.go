package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tailor-edge/tailor/internal/listen"
)

// check validates the configuration, the TLS certificate and key when
// listen_tls is set, and the rule files (selectors, fragments,
// expressions, stages, weights), loads every key file serve loads and
// compares the caches with the machine's memory (preflight), and prints
// every problem as file:line:col: message, and every warning (selectors
// whose matching costs more as pages grow, an admin listener open to
// other hosts without a token, visitor values written into scripts,
// click goals with the beacon off) as
// file:line:col: warning: message, which does not make it fail.
func (m *Main) check(args []string) int {
	var c commonFlags
	cfg, code := m.configure(m.flagSet("check", &c), &c, args)
	if cfg == nil {
		return code
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(m.Stderr, w)
	}
	// The certificate is loaded as serve loads it, with the same messages.
	var cert *tls.Certificate
	if cfg.ListenTLS != "" {
		var err error
		if cert, err = listen.LoadCertificate(cfg); err != nil {
			fmt.Fprintln(m.Stderr, err)
			return exitInvalid
		}
	}
	// What serve meets on this machine: key files, data_dir, memory.
	if err := preflight(cfg); err != nil {
		fmt.Fprintln(m.Stderr, err)
		code = exitInvalid
	} else {
		fmt.Fprintf(m.Stdout, "%s: ok\n", c.config)
	}
	if cert != nil {
		m.checkedCertificate(cfg.Resolve(cfg.TLS.CertFile), cert.Leaf)
	}
	dir := cfg.Resolve(cfg.Rules.Dir)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if cfg.Rules.Bucket != "" { // an edge: its rules come from the bucket
			fmt.Fprintf(m.Stdout, "%s: no rules directory: serve loads the versions pushed to %s\n", dir, cfg.Rules.Bucket)
			return code
		}
		fmt.Fprintf(m.Stdout, "%s: no rules directory: tailor will pass every page through\n", dir)
		return code
	}
	// The same load, and messages, as tailor rules push.
	set, rcode := m.loadRules(dir)
	if set == nil {
		return rcode
	}
	warnings := set.Warnings()
	if cfg.BeaconPath == "" && set.HasClickGoals() {
		// Not a rule's problem: the rules load, and their click goals
		// wait for a beacon.
		e := cfg.ErrorAt("beacon_path", `"" turns the beacon off, so the click goals of the rules are never reported: no page gets the goal script`)
		e.Msg = "warning: " + e.Msg
		fmt.Fprintln(m.Stderr, e)
	}
	pages, rules := int64(set.PageCount()), int64(set.RuleCount())
	fmt.Fprintf(m.Stdout, "%s: ok (%d %s, %d %s", dir, pages, plural(pages, "page", "pages"), rules, plural(rules, "rule", "rules"))
	if n := int64(len(warnings)); n > 0 {
		fmt.Fprintf(m.Stdout, ", %d %s", n, plural(n, "warning", "warnings"))
	}
	fmt.Fprintln(m.Stdout, ")")
	return code
}

// checkedCertificate says whom the TLS certificate is for and until when,
// and warns when browsers would refuse it for its dates (it still loads:
// serving an expired certificate beats serving none).
func (m *Main) checkedCertificate(path string, leaf *x509.Certificate) {
	names := slices.Clone(leaf.DNSNames)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		names = []string{leaf.Subject.CommonName}
	}
	fmt.Fprintf(m.Stdout, "%s: ok (%s; expires %s)\n", path, strings.Join(names, ", "), leaf.NotAfter.UTC().Format(time.DateOnly))
	switch now := time.Now(); {
	case now.After(leaf.NotAfter):
		fmt.Fprintf(m.Stderr, "%s: warning: the certificate expired on %s: browsers refuse it\n", path, leaf.NotAfter.UTC().Format(time.DateTime))
	case now.Before(leaf.NotBefore):
		fmt.Fprintf(m.Stderr, "%s: warning: the certificate is not valid before %s: browsers refuse it until then\n", path, leaf.NotBefore.UTC().Format(time.DateTime))
	}
}
