package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/tailor-edge/tailor/admin"
	"github.com/tailor-edge/tailor/cache"
	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/metrics"
	"github.com/tailor-edge/tailor/proxy"
	"github.com/tailor-edge/tailor/rules"
	natsync "github.com/tailor-edge/tailor/sync"
	"github.com/tailor-edge/tailor/sync/embedded"
)

// drainTimeout bounds how long SIGTERM waits for in-flight requests.
const drainTimeout = 30 * time.Second

// serve runs the proxy and the admin listener until ctx ends (SIGTERM or
// SIGINT), then drains in-flight requests.
func (m *Main) serve(ctx context.Context, args []string) int {
	var c commonFlags
	fs := m.flagSet("serve", &c)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, log, code := m.loggedConfig(&c)
	if cfg == nil {
		return code
	}
	// Before anything is allocated or started: what check would refuse.
	if err := preflight(cfg); err != nil {
		fmt.Fprintln(m.Stderr, err)
		return exitInvalid
	}
	return m.run(ctx, cfg, log)
}

// run serves cfg until ctx ends, then drains.
func (m *Main) run(ctx context.Context, cfg *config.Config, log *slog.Logger) int {
	for _, w := range cfg.Warnings() { // what tailor check warns of
		log.Warn("configuration warning", "warning", w.Error())
	}
	opts := proxy.Options{Logger: log, Version: Version}
	aopts := admin.Options{Logger: log, Version: Version}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	var store *natsync.Store  // nil without NATS
	var reader *natsync.Store // the console's and the readout folder's connection; nil without events
	if cfg.NATS.URL != "" || cfg.NATS.Embedded {
		var profiles *cache.Profiles
		var urls string
		var err error
		store, profiles, urls, err = openStore(wctx, cfg, log)
		if err != nil {
			log.Error("open the central store", "err", err)
			return exitRuntime
		}
		defer func() { stopWatch(); store.Close() }()
		opts.Profiles, opts.Source = profiles, store
		aopts.Profiles = store
		if cfg.NATS.EventsStream != "" {
			pub, err := store.Events(natsync.PublisherOptions{
				Stream:   cfg.NATS.EventsStream,
				MaxAge:   cfg.NATS.EventsMaxAge,
				MaxBytes: int64(cfg.NATS.EventsMaxBytes),
				Queue:    cfg.NATS.EventsQueue,
				Logger:   log,
			})
			if err != nil {
				log.Error("start the events publisher", "err", err)
				return exitRuntime
			}
			// After the proxy has drained, the events of its last
			// requests are flushed before the connection closes.
			defer func() {
				fctx, cancel := context.WithTimeout(context.Background(), eventsFlushTimeout)
				defer cancel()
				if err := pub.Close(fctx); err != nil {
					log.Warn("events not all published before stopping", "err", err, "dropped", pub.Stats().Dropped)
				}
			}()
			opts.Events = pub
			// The console reads the events stream on a connection of its
			// own: a read pulls tens of megabytes, which must not queue
			// up in front of the profile lookups of visitors' requests.
			reader, err = natsync.Open(wctx, natsync.Options{URL: urls, Creds: cfg.Resolve(cfg.NATS.Creds),
				Bucket: cfg.NATS.Bucket, Name: "tailor console " + Version, Logger: log})
			if err != nil {
				log.Error("open the console's events reader", "err", err)
				return exitRuntime
			}
			defer reader.Close()
			aopts.Events = reader
		}
	} else {
		log.Info("nats is not configured: profiles come from tokens' claims only")
	}
	p, err := proxy.New(cfg, opts)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			fmt.Fprintln(m.Stderr, err)
			return exitInvalid
		}
		log.Error("start proxy", "err", err)
		return exitRuntime
	}
	if cfg.Rules.Bucket != "" {
		followRules(wctx, cfg, p, store, log)
	}
	if reader != nil && cfg.NATS.FoldReadouts {
		stop, err := foldReadouts(wctx, cfg, p, reader, log)
		if err != nil {
			log.Error("start the readout folder", "err", err)
			return exitRuntime
		}
		defer stop() // after the proxy has drained, before the reader closes
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		log.Error("listen", "addr", cfg.Listen, "err", err)
		return exitRuntime
	}
	aln, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		ln.Close()
		log.Error("listen admin", "addr", cfg.Admin.Listen, "err", err)
		return exitRuntime
	}
	var tln net.Listener // listen_tls; nil without
	if cfg.ListenTLS != "" {
		if tln, err = net.Listen("tcp", cfg.ListenTLS); err != nil {
			ln.Close()
			aln.Close()
			log.Error("listen tls", "addr", cfg.ListenTLS, "err", err)
			return exitRuntime
		}
	} else if cfg.TLS.CertFile != "" || cfg.TLS.KeyFile != "" {
		log.Warn("tls.cert_file or tls.key_file is set but listen_tls is not: no listener serves TLS")
	}
	adm := admin.New(cfg, p, aopts)

	errc := make(chan error, 3)
	go func() { errc <- p.Serve(ln) }()
	go func() { errc <- adm.Serve(aln) }()
	attrs := []any{"listen", ln.Addr().String(), "admin", aln.Addr().String()}
	if tln != nil {
		go func() { errc <- p.ServeTLS(tln) }()
		attrs = append(attrs, "listen_tls", tln.Addr().String())
		go func() {
			if err := p.WatchCertificate(wctx); err != nil {
				log.Warn("not watching the tls certificate files; SIGHUP still reloads them", "err", err)
			}
		}()
	}
	log.Info("tailor serving", append(attrs, "origin", cfg.Origin, "version", Version)...)

	go func() {
		if err := p.WatchKeys(wctx); err != nil {
			log.Warn("not watching the JWKS file; restart to pick up new keys", "err", err)
		}
	}()
	if cfg.Rules.Watch && cfg.Rules.Bucket == "" {
		go func() {
			if err := p.WatchRules(wctx, nil); err != nil {
				log.Warn("not watching the rules directory; SIGHUP still reloads", "err", err)
			}
		}()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

wait:
	for {
		select {
		case err := <-errc:
			log.Error("serve", "err", err)
			return exitRuntime
		case <-hup:
			p.Reload()
		case <-ctx.Done():
			break wait
		}
	}
	log.Info("shutting down: draining in-flight requests", "deadline", drainTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	code := exitOK
	if err := p.Shutdown(sctx); err != nil {
		log.Error("drain", "err", err)
		code = exitRuntime
	}
	// Shutdown closes the listeners Serve has taken; one whose Serve had
	// not begun yet would stay open.
	ln.Close()
	if tln != nil {
		tln.Close()
	}
	if err := adm.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Error("admin shutdown", "err", err)
	}
	log.Info("stopped")
	return code
}

// foldReadouts takes part in folding the events stream into the readouts
// (nats.fold_readouts): one edge at a time, by lease; see
// natsync.Folder. stop ends it, storing a snapshot and giving the lease
// up, for at most readoutStopTimeout.
func foldReadouts(ctx context.Context, cfg *config.Config, p *proxy.Proxy, reader *natsync.Store, log *slog.Logger) (stop func(), err error) {
	host, _ := os.Hostname()
	f, err := admin.NewFolder(reader, admin.FolderOptions{
		Stream: cfg.NATS.EventsStream, Bucket: cfg.NATS.ReadoutsBucket, Logger: log,
		Holder: fmt.Sprintf("%s:%d (tailor serve, admin %s)", host, os.Getpid(), cfg.Admin.Listen),
		Rules: func() *rules.Set {
			set, _ := p.Rules()
			return set
		},
	})
	if err != nil {
		return nil, err
	}
	metrics.Folder(p.Registry(), f)
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(fctx)
	}()
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(readoutStopTimeout):
			log.Warn("the readout folder did not stop in time; its lease expires by itself", "waited", readoutStopTimeout)
		}
	}, nil
}

// readoutStopTimeout bounds storing the readout's snapshot on shutdown.
const readoutStopTimeout = 30 * time.Second

// eventsFlushTimeout bounds publishing the queued events on shutdown.
const eventsFlushTimeout = 5 * time.Second

// openStore connects to the central store (or starts the embedded
// server), makes the profile cache and keeps it in sync until ctx ends. A
// server that is down is no error: the proxy serves meanwhile.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (*natsync.Store, *cache.Profiles, string, error) {
	n := cfg.NATS
	opts := natsync.Options{URL: n.URL, Creds: cfg.Resolve(n.Creds), Bucket: n.Bucket, Name: "tailor " + Version, Logger: log}
	urls := n.URL
	if n.Embedded {
		addr, err := natsync.EmbeddedAddr(n.URL)
		if err != nil {
			return nil, nil, "", fmt.Errorf("nats.url: %w", err)
		}
		if opts.Server, err = embedded.Start(cfg.Resolve(n.DataDir), addr, log); err != nil {
			return nil, nil, "", err
		}
		urls = opts.Server.ClientURL()
	}
	store, err := natsync.Open(ctx, opts)
	if err != nil {
		if opts.Server != nil {
			opts.Server.Shutdown()
		}
		return nil, nil, "", err
	}
	pc := cfg.Profiles
	profiles, err := cache.NewProfiles(pc.CacheSize, pc.TTL, pc.NegativeTTL, nil)
	if err != nil {
		store.Close()
		return nil, nil, "", err
	}
	go func() {
		if err := store.Watch(ctx, profiles); err != nil {
			log.Error("profile watch stopped; cached profiles expire after their ttl", "err", err)
		}
	}()
	// Until the watch runs, the store answers no lookup (a profile read
	// then could miss a change): give it a moment before serving, so the
	// first visitors get their profiles. NATS down is no reason to wait
	// longer; the proxy then serves without profiles, as always.
	deadline := time.Now().Add(watchGrace)
	for !store.Watching() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if !store.Watching() {
		log.Warn("profile watch not started yet; serving, profiles follow once it is", "waited", watchGrace)
	}
	return store, profiles, urls, nil
}

// followRules serves the rule versions of rules.bucket: first the one
// kept on disk, so that the edge starts with its rules while NATS is
// down, then the bucket's newest and every one pushed after it, each kept
// on disk once it serves. It waits up to watchGrace for the bucket's
// newest before the listeners open, as openStore waits for the profile
// watch: NATS down is no reason to wait longer.
func followRules(ctx context.Context, cfg *config.Config, p *proxy.Proxy, store *natsync.Store, log *slog.Logger) {
	bucket := cfg.Rules.Bucket
	log = log.With("component", "rules", "bucket", bucket)
	kept := natsync.RuleCachePath(cfg.Resolve(cfg.NATS.DataDir), bucket)
	// The bucket the version serving came from: a version of another
	// (the bucket was created again) replaces it whatever the numbers.
	servingBucket := ""
	sameBucket := func(v natsync.RuleVersion) bool {
		return servingBucket == "" || v.BucketID == servingBucket
	}
	// A version that ended the last run while it loaded (out of memory,
	// most likely) is not tried again: the edge would crash-loop on it.
	guard := natsync.NewRuleGuard(kept)
	crashed, refused, guardErr := guard.Start()
	load := func(v natsync.RuleVersion) error {
		files, err := v.Files()
		other := !sameBucket(v)
		switch {
		case err != nil:
		case !other:
			err = p.LoadRulesFS(files, v.Dir, v.Number)
		default:
			err = p.ReplaceRulesFS(files, v.Dir, v.Number)
		}
		if err == nil {
			if other && servingBucket != "" && len(refused) > 0 {
				// The numbers refused in the old bucket say nothing of
				// this one's; those refused in this one stay refused.
				var err error
				if refused, err = guard.Keep(v.BucketID, refused); err != nil {
					log.Warn("rule version guard", "err", err)
				}
			}
			servingBucket = v.BucketID
		}
		return err
	}
	switch v, err := natsync.ReadRuleVersion(kept); {
	case errors.Is(err, os.ErrNotExist):
		log.Info("no rule version kept on disk yet: pages pass through until one loads from the bucket")
	case err != nil:
		log.Warn("the rule version kept on disk does not read; waiting for the bucket's", "file", kept, "err", err)
	default:
		if err := load(v); err != nil {
			log.Warn("the rule version kept on disk does not load; waiting for the bucket's", "file", kept, "version", v.Number, "err", err)
		} else {
			log.Info("serving the rule version kept on disk until the bucket answers", "version", v.Number)
		}
	}
	if guardErr != nil {
		log.Warn("rule version guard", "err", guardErr)
	}
	if crashed.Number > 0 {
		log.Error("rule version crashed this edge while it loaded; refused from now on, the one before serves",
			"version", crashed.Number, "bucket_id", crashed.Bucket, "serving", p.RulesVersion())
		p.RulesRefused()
	}
	tryLoad := func(v natsync.RuleVersion) error {
		if slices.ContainsFunc(refused, func(r natsync.Refused) bool { return r.Of(v.BucketID, v.Number) }) {
			return fmt.Errorf("rule version %d crashed this edge while it loaded before: not tried again", v.Number)
		}
		if v.Number <= p.RulesVersion() && sameBucket(v) {
			return load(v) // refused as older, or loaded before: no risk
		}
		if err := guard.Trying(v.BucketID, v.Number); err != nil {
			log.Warn("rule version guard", "err", err)
		}
		err := load(v)
		if err := guard.Done(); err != nil {
			log.Warn("rule version guard", "err", err)
		}
		return err
	}
	caughtUp := make(chan struct{})
	go store.FollowRules(ctx, bucket, p.RulesVersion(), servingBucket, func(v natsync.RuleVersion) error {
		if err := tryLoad(v); err != nil {
			return err
		}
		log.Info("rule version loaded", "version", v.Number, "author", v.Author, "message", v.Message)
		if err := natsync.SaveRuleVersion(kept, v); err != nil {
			log.Warn("rule version serving but not kept on disk: a restart while NATS is down starts with an older one", "err", err)
		}
		return nil
	}, func() { close(caughtUp) })
	select {
	case <-caughtUp:
	case <-time.After(watchGrace):
		log.Warn("rule bucket not read yet; serving, the newest version follows once it is", "serving", p.RulesVersion(), "waited", watchGrace)
	case <-ctx.Done():
	}
}

// watchGrace bounds how long tailor waits at start for the profile watch.
const watchGrace = 3 * time.Second
