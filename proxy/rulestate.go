package proxy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/tailor-edge/tailor/internal/watch"
	"github.com/tailor-edge/tailor/rules"
)

// ruleState is one loaded rule set. It is swapped whole, atomically, so a
// request sees either the old set or the new one, never a mix.
type ruleState struct {
	set    *rules.Set // nil: no rules directory, pure pass-through
	gen    uint64     // bumped on every successful load; part of page cache keys
	loaded time.Time  // when the load finished
	// version is the published version (rules.bucket) set is; 0 for
	// rules read from rules.dir.
	version uint64
}

// Rules returns the rule set serving now (nil with no rules directory:
// every page passes through) and when it was loaded. The set is shared
// and must not be changed.
func (p *Proxy) Rules() (*rules.Set, time.Time) {
	st := p.rules.Load()
	return st.set, st.loaded
}

// RulesVersion returns the published version (rules.bucket, "tailor
// rules push") serving now: 0 with rules read from rules.dir, or before
// the first version has loaded.
func (p *Proxy) RulesVersion() uint64 {
	return p.rules.Load().version
}

// LoadRules (re)loads the rule files. With rules.bucket set the rules
// come from LoadRulesFS instead: LoadRules then keeps what serves (no
// rules at all until the first version loads). On error the rules already serving
// stay in place, and the error, with every problem as file:line:col, is
// returned for the caller to log or print.
//
// Loads are serialized: SIGHUP and the file watcher may ask at once, and
// each load must get a generation of its own (page cache keys hold it)
// and never put an older reading of the files over a newer one.
func (p *Proxy) LoadRules() error {
	p.loadMu.Lock()
	defer p.loadMu.Unlock()
	if p.cfg.Rules.Bucket != "" {
		if p.rules.Load() == nil {
			p.rules.Store(&ruleState{gen: 1, loaded: time.Now()})
		}
		return nil
	}
	p.rulesReadAt.Store(time.Now().UnixNano())
	dir := p.cfg.Resolve(p.cfg.Rules.Dir)
	var set *rules.Set
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if p.rules.Load() == nil {
			p.log.Warn("rules directory does not exist: no page will be personalized", "dir", dir)
		}
	} else {
		set, err = rules.Load(dir)
		if err != nil {
			p.m.Reloads.Inc("error")
			return err
		}
	}
	p.swapRules(set, 0)
	return nil
}

// LoadRulesFS loads the rule set of version (rules.bucket) from the
// directory dir of fsys, fragments included, and serves it in place of
// the rules serving now. On error the rules serving stay, the error is
// counted as a failed reload (tailor_rules_reloads_total{result="error"})
// and returned with every problem as file:line:col. A version older than
// the one serving is refused: versions only move forward (a rollback is
// a new version).
func (p *Proxy) LoadRulesFS(fsys fs.FS, dir string, version uint64) error {
	return p.loadRulesFS(fsys, dir, version, false)
}

// ReplaceRulesFS is LoadRulesFS for a version of another bucket than the
// one serving (it was deleted and created again): its number may be
// lower, and it is loaded all the same.
func (p *Proxy) ReplaceRulesFS(fsys fs.FS, dir string, version uint64) error {
	return p.loadRulesFS(fsys, dir, version, true)
}

func (p *Proxy) loadRulesFS(fsys fs.FS, dir string, version uint64, anyNumber bool) error {
	p.loadMu.Lock()
	defer p.loadMu.Unlock()
	if old := p.rules.Load(); old != nil && old.version > version && !anyNumber {
		return fmt.Errorf("rule version %d is older than version %d, serving", version, old.version)
	}
	set, err := rules.LoadFS(fsys, dir)
	if err != nil {
		p.m.Reloads.Inc("error")
		return err
	}
	p.swapRules(set, version)
	return nil
}

// RulesRefused counts a rule version refused without loading it (one
// that crashed the edge while it loaded, before a restart) as a failed
// reload: tailor_rules_reloads_total{result="error"}.
func (p *Proxy) RulesRefused() { p.m.Reloads.Inc("error") }

// swapRules serves set, of version (0: rules.dir), from now on. The
// caller holds loadMu.
func (p *Proxy) swapRules(set *rules.Set, version uint64) {
	var gen uint64 = 1
	if old := p.rules.Load(); old != nil {
		gen = old.gen + 1
	}
	p.rules.Store(&ruleState{set: set, gen: gen, loaded: time.Now(), version: version})
	if set != nil {
		for _, w := range set.Warnings() { // what tailor check warns of, once per load
			p.log.Warn("rules loaded with a warning", "warning", w.Error())
		}
	}
	// Old templates are keyed by the old generation; drop them now rather
	// than waiting for the LRU.
	p.pages.Purge()
	p.m.Reloads.Inc("ok")
	p.m.RulesLoaded.SetToCurrentTime()
	p.m.RulesVersion.Set(float64(version))
}

// reloadDebounce lets an editor finish writing (save = truncate + write +
// rename) before the rules are read.
const reloadDebounce = 150 * time.Millisecond

// WatchRules reloads the rules whenever a file in the rules directory
// changes, until ctx ends. A bad edit is logged and the last good rules
// keep serving. started, when not nil, is called once the watch is in
// place; a file changed after the last load began but before then is
// reloaded at that point, so no edit falls between the two.
func (p *Proxy) WatchRules(ctx context.Context, started func()) error {
	dir := p.cfg.Resolve(p.cfg.Rules.Dir)
	// Subdirectories too: fragments often live beside the rule files.
	return watch.Dir(ctx, dir, true, reloadDebounce, p.log, func() {
		if changedSince(dir, time.Unix(0, p.rulesReadAt.Load())) {
			p.reload("a change before the watch started")
		}
		if started != nil {
			started()
		}
	}, func() { p.reload("file change") })
}

// changedSince reports whether a file under dir was modified at or after
// t, give or take the coarse clock file times come from (the kernel's,
// which lags the one time.Now reads by up to a tick).
func changedSince(dir string, t time.Time) bool {
	t = t.Add(-100 * time.Millisecond)
	changed := false
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || changed {
			return nil
		}
		if fi, err := d.Info(); err == nil && !fi.ModTime().Before(t) {
			changed = true
		}
		return nil
	})
	return changed
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
		p.cert.Reload("SIGHUP", false)
	}
}
