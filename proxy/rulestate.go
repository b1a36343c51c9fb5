package proxy

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"time"

	"github.com/tailor-edge/tailor/rules"
)

// ruleState is one loaded rule set. It is swapped whole, atomically, so a
// request sees either the old set or the new one, never a mix.
type ruleState struct {
	set    *rules.Set // nil: no rules directory, pure pass-through
	gen    uint64     // bumped on every successful load; part of page cache keys
	loaded time.Time  // when the load finished
}

// Rules returns the rule set serving now (nil with no rules directory:
// every page passes through) and when it was loaded. The set is shared
// and must not be changed.
func (p *Proxy) Rules() (*rules.Set, time.Time) {
	st := p.rules.Load()
	return st.set, st.loaded
}

// LoadRules (re)loads the rule files. On error the rules already serving
// stay in place, and the error, with every problem as file:line:col, is
// returned for the caller to log or print.
func (p *Proxy) LoadRules() error {
	dir := p.cfg.Resolve(p.cfg.Rules.Dir)
	var set *rules.Set
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if p.rules.Load() == nil {
			p.log.Warn("rules directory does not exist: no page will be personalized", "dir", dir)
		}
	} else {
		set, err = rules.Load(dir)
		if err != nil {
			p.m.reloads.WithLabelValues("error").Inc()
			return err
		}
	}
	var gen uint64 = 1
	if old := p.rules.Load(); old != nil {
		gen = old.gen + 1
	}
	p.rules.Store(&ruleState{set: set, gen: gen, loaded: time.Now()})
	if set != nil {
		for _, w := range set.Warnings() { // what tailor check warns of, once per load
			p.log.Warn("rules loaded with a warning", "warning", w.Error())
		}
	}
	// Old templates are keyed by the old generation; drop them now rather
	// than waiting for the LRU.
	p.pages.Purge()
	p.m.reloads.WithLabelValues("ok").Inc()
	p.m.rulesLoaded.SetToCurrentTime()
	return nil
}

// reloadDebounce lets an editor finish writing (save = truncate + write +
// rename) before the rules are read.
const reloadDebounce = 150 * time.Millisecond

// WatchRules reloads the rules whenever a file in the rules directory
// changes, until ctx ends. A bad edit is logged and the last good rules
// keep serving.
func (p *Proxy) WatchRules(ctx context.Context) error {
	// Subdirectories too: fragments often live beside the rule files.
	return watchFiles(ctx, p.cfg.Resolve(p.cfg.Rules.Dir), true, reloadDebounce, p.log, nil,
		func() { p.reload("file change") })
}

// reload loads the rules and logs the outcome; why says what triggered it.
func (p *Proxy) reload(why string) {
	if err := p.LoadRules(); err != nil {
		p.log.Error("rules reload failed; the previous rules keep serving", "trigger", why, "errors", err.Error())
		return
	}
	p.log.Info("rules reloaded", "trigger", why, "generation", p.rules.Load().gen)
}

// Reload is for SIGHUP: it reloads the rules and, with listen_tls, the
// TLS certificate.
func (p *Proxy) Reload() {
	p.reload("SIGHUP")
	if p.cert != nil {
		p.cert.reload("SIGHUP", false)
	}
}
