package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
	dir, err := os.MkdirTemp("", "tailor-demo-")
	if err != nil {
		log.Error("demo rules", "err", err)
		return exitRuntime
	}
	defer os.RemoveAll(dir)
	if err := extractRules(dir); err != nil {
		log.Error("demo rules", "err", err)
		return exitRuntime
	}

	cfg := config.Default()
	cfg.Listen = *listen
	cfg.Admin.Listen = *adminListen
	cfg.Rules.Dir = filepath.Join(dir, "rules")
	cfg.Debug.DecisionHeader = true
	cfg.Identity.Cookie.Secure = false // the demo is plain http on loopback
	cfg.Admin.Token = "demo"
	// A persona's first page waits for their profile rather than showing
	// the anonymous page: on a busy laptop a first fetch can take longer
	// than the 20 ms a production edge allows.
	cfg.Profiles.MissBudget = 500 * time.Millisecond
	// The console's preview links; a real deployment keeps its own secret.
	cfg.Preview.Key = "demo-preview-key-0123456789abcdef0123"
	stopStore, tokens, err := startDemoStore(ctx, dir, cfg, log)
	if err != nil {
		log.Error("start the demo's NATS server", "err", err)
		return exitRuntime
	}
	defer stopStore()
	switches := demoSwitches(tokens)
	shop, err := newDemoSite(switches)
	if err != nil {
		log.Error("demo site", "err", err)
		return exitRuntime
	}
	site, err := startDemoOrigin(shop)
	if err != nil {
		log.Error("start demo origin", "err", err)
		return exitRuntime
	}
	defer site.Close()
	cfg.Origin = "http://" + site.Addr().String()
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(m.Stderr, err)
		return exitUsage
	}
	fmt.Fprintf(m.Stdout, `tailor demo: the example shop, personalized, is at http://%[1]s/
Open it in a browser and switch visitors with the bar at the foot of each page, or here:
`, *listen)
	for _, sw := range switches {
		fmt.Fprintf(m.Stdout, "  %-44s http://%s/demo/as/%s\n", sw.Label+":", *listen, sw.Key)
	}
	fmt.Fprintf(m.Stdout, `Or with curl (X-Tailor-Decision says which rules fired):
  curl -si http://%[1]s/ -H 'Accept-Language: fr-FR'
  curl -si 'http://%[1]s/?utm_campaign=spring-sale'
  curl -si http://%[1]s/ -H 'User-Agent: Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148'
`, *listen)
	for i, p := range demoPersonas {
		fmt.Fprintf(m.Stdout, "As %s (a profile in the demo's NATS bucket):\n  curl -si http://%s/ -H 'Authorization: Bearer %s'\n", p.who, *listen, tokens[i])
	}
	fmt.Fprintf(m.Stdout, `Change a profile and reload, e.g. make Sam a VIP:
  curl -X PUT -H 'Authorization: Bearer demo' http://%[1]s/v1/profiles/cust-sam \
       -d '{"id":"cust-sam","segments":["vip"],"stage":"purchase","traits":{"first_name":"Sam"}}'
Metrics at http://%[1]s/metrics. Ctrl-C stops.
`, *adminListen)
	return m.run(ctx, cfg, log)
}

// extractRules writes the example rules and fragments under dir, keeping
// their layout (rules refer to ../fragments/).
func extractRules(dir string) error {
	return fs.WalkDir(examples.Files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == "." || path == "site" || strings.HasPrefix(path, "site/") {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(path))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := examples.Files.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}
