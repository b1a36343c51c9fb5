package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/tailor-edge/tailor/config"
)

// Exit codes, per the CLI contract.
const (
	exitOK      = 0
	exitInvalid = 1 // invalid input: config, rules, profile file
	exitUsage   = 2
	exitRuntime = 3
)

// Version is set at build time with -ldflags "-X main.Version=…".
var Version = "dev"

// Main holds what every subcommand shares: where to print.
type Main struct {
	Stdout, Stderr io.Writer
}

// NewMain returns a Main printing to the given writers.
func NewMain(stdout, stderr io.Writer) *Main { return &Main{Stdout: stdout, Stderr: stderr} }

const usage = `tailor — edge personalization proxy

Usage:
  tailor serve   [--config tailor.yaml]   run the proxy
  tailor check   [--config tailor.yaml]   validate the configuration and rule files
  tailor explain [--config tailor.yaml] --url URL [--profile FILE|JSON] [--header 'K: V']... [--cookie 'k=v']...
                                          show which rules fire on a page and the diff they make
  tailor import  [--config tailor.yaml] [--format jsonl|csv] FILE
                                          bulk-load profiles (JSON Lines or CSV, - for stdin) into the profile bucket
  tailor report  [--config tailor.yaml] [--since 24h] [--json]
                                          read the events: experiment readouts, visitors per segment, stage, persona
  tailor rules push [--config tailor.yaml] [--message TEXT]
                                          validate the rules directory as check does and publish it as one numbered version
  tailor rules history [--config tailor.yaml]
                                          list the published versions: number, time, author, checksum, message
  tailor rules rollback [--config tailor.yaml] N
                                          publish version N again as the newest
  tailor demo    [--listen 127.0.0.1:8080] run the example site with tailor in front
  tailor health  [--config tailor.yaml]   exit 0 when the proxy on admin.listen is ready (for container health checks)
  tailor version                          print the version

--config defaults to $TAILOR_CONFIG, then ./tailor.yaml.
Exit codes: 0 ok, 1 invalid input, 2 usage, 3 runtime failure.
`

// Run runs the subcommand named by args[0] and returns the exit code.
func (m *Main) Run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return m.serve(ctx, args[1:])
	case "demo":
		return m.demo(ctx, args[1:])
	case "check":
		return m.check(args[1:])
	case "explain":
		return m.explain(args[1:])
	case "import":
		return m.importProfiles(ctx, args[1:])
	case "report":
		return m.reportCmd(ctx, args[1:])
	case "health":
		return m.health(ctx, args[1:])
	case "rules":
		return m.rulesCmd(ctx, args[1:])
	case "version", "--version", "-version":
		fmt.Fprintf(m.Stdout, "tailor %s\n", Version)
		return exitOK
	case "help", "-h", "--help", "-help":
		fmt.Fprint(m.Stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(m.Stderr, "tailor: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

// commonFlags are the flags every config-reading subcommand takes.
type commonFlags struct {
	config    string
	logFormat string
	logLevel  string
}

func (m *Main) flagSet(name string, c *commonFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("tailor "+name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	def := os.Getenv("TAILOR_CONFIG")
	if def == "" {
		def = "tailor.yaml"
	}
	fs.StringVar(&c.config, "config", def, "configuration file")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return fs
}

// parseFlags parses args; ok is false when the caller should return code.
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitUsage, false
	}
	return exitOK, true
}

func (c *commonFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(c.logFormat) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", c.logFormat)
}

// configure parses args into fs, made by flagSet with c, and loads the
// config that --config names, printing what is wrong; cfg is nil when the
// subcommand should return code.
func (m *Main) configure(fs *flag.FlagSet, c *commonFlags, args []string) (cfg *config.Config, code int) {
	if code, ok := parseFlags(fs, args); !ok {
		return nil, code
	}
	return m.loadConfig(c.config)
}

// loggedConfig returns the logger that c's log flags ask for and then the
// config that --config names, printing what is wrong; cfg is nil when the
// subcommand should return code.
func (m *Main) loggedConfig(c *commonFlags) (cfg *config.Config, log *slog.Logger, code int) {
	log, err := c.logger(m.Stderr)
	if err != nil {
		fmt.Fprintln(m.Stderr, err)
		return nil, nil, exitUsage
	}
	cfg, code = m.loadConfig(c.config)
	return cfg, log, code
}

// loadConfig loads and validates the config, printing every problem.
func (m *Main) loadConfig(path string) (*config.Config, int) {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(m.Stderr, err)
		return nil, exitInvalid
	}
	return cfg, exitOK
}
