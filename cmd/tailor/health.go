package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// healthTimeout bounds a health check: a container runtime runs it every
// few seconds.
const healthTimeout = 2 * time.Second

// health asks the admin listener of the proxy that cfg describes whether
// it is ready (GET /readyz): exit 0 when it answers 200, 3 otherwise. A
// distroless image has no curl; this is its health check.
func (m *Main) health(ctx context.Context, args []string) int {
	var c commonFlags
	cfg, code := m.configure(m.flagSet("health", &c), &c, args)
	if cfg == nil {
		return code
	}
	host, port, err := net.SplitHostPort(cfg.Admin.Listen)
	if err != nil {
		fmt.Fprintf(m.Stderr, "tailor health: admin.listen %q: %v\n", cfg.Admin.Listen, err)
		return exitInvalid
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1" // listening on every address: ask on loopback
	}
	url := "http://" + net.JoinHostPort(host, port) + "/readyz"
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(m.Stderr, "tailor health: %v\n", err)
		return exitRuntime
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(m.Stderr, "tailor health: %v\n", err)
		return exitRuntime
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(m.Stderr, "tailor health: %s answered %s\n", url, resp.Status)
		return exitRuntime
	}
	fmt.Fprintf(m.Stdout, "ready (%s)\n", url)
	return exitOK
}
