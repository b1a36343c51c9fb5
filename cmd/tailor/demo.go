package main

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"time"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/examples"
)

// demo runs the example site on a loopback port and tailor in front of it,
// so a newcomer sees tailor work with one command and nothing else.
func (m *Main) demo(ctx context.Context, args []string) int {
	var c commonFlags
	fs := m.flagSet("demo", &c)
	listen := fs.String("listen", "127.0.0.1:8080", "address for the proxy")
	adminListen := fs.String("admin", "127.0.0.1:9090", "address for the admin listener")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	log, err := c.logger(m.Stderr)
	if err != nil {
		fmt.Fprintln(m.Stderr, err)
		return exitUsage
	}
	site, err := startDemoOrigin()
	if err != nil {
		log.Error("start demo origin", "err", err)
		return exitRuntime
	}
	defer site.Close()

	cfg := config.Default()
	cfg.Listen = *listen
	cfg.Admin.Listen = *adminListen
	cfg.Origin = "http://" + site.Addr().String()
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(m.Stderr, err)
		return exitUsage
	}
	fmt.Fprintf(m.Stdout, "tailor demo: the example site is at http://%s/ — open it through tailor.\n"+
		"Metrics at http://%s/metrics. Ctrl-C stops.\n", *listen, *adminListen)
	return m.run(ctx, cfg, log)
}

// demoOrigin serves examples/site over HTTP on a loopback port.
type demoOrigin struct {
	ln  net.Listener
	srv *http.Server
}

func startDemoOrigin() (*demoOrigin, error) {
	root, err := fs.Sub(examples.Site, "site")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.FileServerFS(root), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return &demoOrigin{ln: ln, srv: srv}, nil
}

func (o *demoOrigin) Addr() net.Addr { return o.ln.Addr() }
func (o *demoOrigin) Close() error   { return o.srv.Close() }
