package main

import (
	"fmt"

	"github.com/tailor-edge/tailor/cache"
	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/identity"
	"github.com/tailor-edge/tailor/proxy"
	natsync "github.com/tailor-edge/tailor/sync"
	"github.com/tailor-edge/tailor/sync/embedded"
)

// eventBytes is about what a queued event takes, its strings included.
const eventBytes = 512

// preflight checks what cfg asks of this machine as serve will meet it —
// every key file it loads, the embedded server's data directory, the
// memory its caches take — and returns the problems as config.Errors at
// the keys' file:line:col, or nil. check runs it so that a config it
// passes is one serve starts with; serve runs it before it allocates
// anything.
func preflight(cfg *config.Config) error {
	var errs config.Errors
	add := func(err error) {
		switch e := err.(type) {
		case nil:
		case config.Errors:
			errs = append(errs, e...)
		case *config.Error:
			errs = append(errs, e)
		default:
			errs = append(errs, &config.Error{File: cfg.Path, Msg: err.Error(), Err: config.ErrInvalid})
		}
	}
	add(identity.CheckKeys(cfg))
	nats := cfg.NATS.URL != "" || cfg.NATS.Embedded
	if nats && cfg.NATS.Creds != "" {
		if err := natsync.CheckCreds(cfg.Resolve(cfg.NATS.Creds)); err != nil {
			add(cfg.ErrorAt("nats.creds", "%v", err))
		}
	}
	if cfg.NATS.Embedded {
		if err := embedded.CheckDataDir(cfg.Resolve(cfg.NATS.DataDir)); err != nil {
			add(cfg.ErrorAt("nats.data_dir", "%v", err))
		}
	}
	if nats {
		if e := checkMemory(cfg); e != nil {
			add(e)
		}
	}
	// In file order, as the config's own problems are; those not at a
	// place in the file last.
	return errs.Err()
}

// checkMemory compares what the caches take when full with the memory
// this process can have (memoryLimit): the profile cache (only made when
// NATS is configured), the compiled pages and the events queue.
func checkMemory(cfg *config.Config) *config.Error {
	limit, from := memoryLimit()
	if limit == 0 {
		return nil
	}
	others := int64(proxy.DefaultPageCacheBytes)
	if cfg.NATS.EventsStream != "" {
		others += int64(cfg.NATS.EventsQueue) * eventBytes
	}
	size := cfg.Profiles.CacheSize
	total, tables := cache.ProfilesBytes(size)
	if total+others <= limit {
		return nil
	}
	// The largest cache that fits, to suggest.
	lo, hi := 0, size
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if t, _ := cache.ProfilesBytes(mid); t+others <= limit {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	msg := fmt.Sprintf("%d profiles take about %s when the cache is full (%s of tables allocated at start, and some %d bytes a cached profile), more than the %s this process can have (%s)",
		size, bytesText(total), bytesText(tables), cache.ProfileBytes, bytesText(limit), from)
	if lo >= 64 {
		msg += fmt.Sprintf("; at most some %d fit", lo)
	}
	return cfg.ErrorAt("profiles.cache_size", "%s", msg)
}

// bytesText writes a size as people read one: 206 GB, 15.6 GB, 512 MB.
func bytesText(n int64) string {
	units := []string{"bytes", "kB", "MB", "GB", "TB", "PB"}
	f, u := float64(n), 0
	for f >= 1000 && u < len(units)-1 {
		f, u = f/1000, u+1
	}
	if u == 0 || f >= 100 {
		return fmt.Sprintf("%.0f %s", f, units[u])
	}
	return fmt.Sprintf("%.1f %s", f, units[u])
}
