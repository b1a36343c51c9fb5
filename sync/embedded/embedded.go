// Package embedded starts the in-process NATS server with JetStream that
// nats.embedded asks for (and that tests and the demo use). It is apart
// from package sync so that what only talks to NATS does not link the
// whole server.
package embedded

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Start starts a server keeping JetStream's files in dataDir, listening on
// addr ("host:port"; port -1 picks a free one), and waits until it takes
// connections. log may be nil. When the server does not start, the error
// says why, as the server logged it (the port is taken, JetStream cannot
// use dataDir).
func Start(dataDir, addr string, log *slog.Logger) (*server.Server, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: address %q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: port %q: %w", port, err)
	}
	if err := CheckDataDir(dataDir); err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "tailor-embedded",
		Host:       host,
		Port:       p,
		JetStream:  true,
		StoreDir:   dataDir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	errs := &errorLog{}
	srv.SetLoggerV2(errs, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		if why := errs.last(); why != "" {
			return nil, fmt.Errorf("start embedded nats on %s: %s", addr, why)
		}
		return nil, fmt.Errorf("start embedded nats on %s: not ready after 10s", addr)
	}
	if log != nil {
		log.Info("embedded nats started", "addr", srv.ClientURL(), "data_dir", dataDir)
	}
	return srv, nil
}

// CheckDataDir reports whether dir can hold JetStream's files: it is a
// directory, or it does not exist yet and its nearest existing parent is
// one (the server creates the rest). It creates nothing.
func CheckDataDir(dir string) error {
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		switch {
		case err == nil && fi.IsDir():
			return nil
		case err == nil && p == filepath.Clean(dir):
			return fmt.Errorf("data_dir %q is a file, not a directory", dir)
		case err == nil:
			return fmt.Errorf("data_dir %q: %q is a file, not a directory", dir, p)
		case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
			return fmt.Errorf("data_dir %q: %w", dir, err)
		}
		if filepath.Dir(p) == p {
			return nil
		}
	}
}

// errorLog is the server's logger: it keeps the last error the server
// logged, which says why it did not start.
type errorLog struct {
	mu  sync.Mutex
	msg string
}

func (l *errorLog) keep(format string, v []any) {
	l.mu.Lock()
	l.msg = fmt.Sprintf(format, v...)
	l.mu.Unlock()
}

func (l *errorLog) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.msg
}

func (l *errorLog) Noticef(string, ...any)         {}
func (l *errorLog) Warnf(string, ...any)           {}
func (l *errorLog) Debugf(string, ...any)          {}
func (l *errorLog) Tracef(string, ...any)          {}
func (l *errorLog) Errorf(format string, v ...any) { l.keep(format, v) }
func (l *errorLog) Fatalf(format string, v ...any) { l.keep(format, v) }
