// Package watch calls a function when files in a directory change, for the
// parts of tailor that re-read their input while serving: rule files,
// certificates and JWKS documents.
package watch

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Dir calls reload, wait after the last of a burst of changes,
// whenever something in dir changes, until ctx ends. Watching the
// directory rather than a file catches editors' rename-on-save and
// Kubernetes' ConfigMap symlink swaps. With recursive, subdirectories are
// watched too, also those created later. A mode change alone does not
// count: backup and indexing tools touch modes, the bytes did not change.
// started, when not nil, runs once the watch is in place: a change made
// before it would otherwise go unseen.
func Dir(ctx context.Context, dir string, recursive bool, wait time.Duration, log *slog.Logger, started, reload func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if recursive {
		err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			return w.Add(path)
		})
	} else {
		err = w.Add(dir)
	}
	if err != nil {
		return err
	}
	if started != nil {
		started()
	}
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			if recursive && ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					w.Add(ev.Name)
				}
			}
			timer = time.After(wait)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			log.Warn("watch files", "dir", dir, "err", err)
		case <-timer:
			timer = nil
			reload()
		}
	}
}
