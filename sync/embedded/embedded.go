// Package embedded starts the in-process NATS server with JetStream that
// nats.embedded asks for (and that tests and the demo use). It is apart
// from package sync so that what only talks to NATS does not link the
// whole server.
package embedded

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Start starts a server keeping JetStream's files in dataDir, listening on
// addr ("host:port"; port -1 picks a free one), and waits until it takes
// connections. log may be nil.
func Start(dataDir, addr string, log *slog.Logger) (*server.Server, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: address %q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: port %q: %w", port, err)
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
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("start embedded nats on %s: not ready after 10s (is the port in use?)", addr)
	}
	if log != nil {
		log.Info("embedded nats started", "addr", srv.ClientURL(), "data_dir", dataDir)
	}
	return srv, nil
}
