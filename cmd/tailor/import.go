package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/report"
	natsync "github.com/tailor-edge/tailor/sync"
	"github.com/tailor-edge/tailor/sync/embedded"
)

// Waits of tailor import: for the running proxy's embedded server, which
// answers at once when it is up, and for the bucket of a remote server.
const (
	probeDial   = 500 * time.Millisecond
	probeBucket = 2 * time.Second
	bucketWait  = 10 * time.Second
)

// maxBadPrinted is how many bad lines tailor import prints; a file that is
// wrong throughout would otherwise bury the summary.
const maxBadPrinted = 100

// importProfiles bulk-loads profiles from FILE ("-" for standard input),
// JSON Lines or CSV, into the profile bucket: each bad line is printed as
// FILE:LINE: message and skipped, then one summary line goes to stdout.
// Exit 0 when every line was good, 1 when some were bad or the file is
// unusable, 3 when NATS failed.
func (m *Main) importProfiles(ctx context.Context, args []string) int {
	var c commonFlags
	fs := m.flagSet("import", &c)
	format := fs.String("format", "", "input format: jsonl or csv (default: jsonl when the file starts with '{', else csv)")
	// Connection notices would tear the progress bar: warnings only.
	if f := fs.Lookup("log-level"); f != nil {
		f.Value.Set("warn")
		f.DefValue = "warn"
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tailor import [--config tailor.yaml] [--format jsonl|csv] FILE\n\n"+
			"Bulk-load profiles (JSON Lines or CSV; FILE - reads standard input) into the profile bucket.\n\n")
		fs.PrintDefaults()
	}
	file, code, ok := parseImportArgs(fs, args)
	if !ok {
		return code
	}
	switch *format {
	case "", natsync.FormatJSONL, natsync.FormatCSV:
	default:
		fmt.Fprintf(m.Stderr, "tailor import: --format %q: want jsonl or csv\n", *format)
		return exitUsage
	}
	cfg, log, code := m.loggedConfig(&c)
	if cfg == nil {
		return code
	}

	name, in, size := file, io.Reader(os.Stdin), int64(-1)
	if file == "-" {
		name = "stdin"
	} else {
		f, err := os.Open(file)
		if err != nil {
			fmt.Fprintf(m.Stderr, "tailor import: %v\n", err)
			return exitInvalid
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > 0 {
			size = st.Size()
		}
		in = f
	}

	store, code := m.natsStore(ctx, cfg, log, "tailor import")
	if store == nil {
		return code
	}
	defer store.Close()

	bar := m.progressBar(name, size)
	var printed int64
	opts := natsync.ImportOptions{
		Format: *format,
		Bad: func(line int, err error) {
			if printed++; printed > maxBadPrinted {
				return
			}
			if bar != nil {
				bar.Clear()
			}
			fmt.Fprintf(m.Stderr, "%s:%d: %v\n", name, line, err)
		},
	}
	if bar != nil {
		opts.Progress = func(lines, bytes int64) {
			bar.Describe(fmt.Sprintf("%s: %s profiles", name, report.Thousands(lines)))
			bar.Set64(bytes)
		}
	}
	res, err := store.Import(ctx, in, opts)
	if bar != nil {
		bar.Finish()
		bar.Clear()
	}
	if printed > maxBadPrinted {
		fmt.Fprintf(m.Stderr, "... and %d more bad lines\n", printed-maxBadPrinted)
	}
	fmt.Fprintln(m.Stdout, importSummary(name, res))

	var ie *natsync.InputError
	switch {
	case errors.As(err, &ie):
		if ie.Line > 0 {
			fmt.Fprintf(m.Stderr, "%s:%d: %v\n", name, ie.Line, ie.Err)
		} else {
			fmt.Fprintf(m.Stderr, "%s: %v\n", name, ie.Err)
		}
		return exitInvalid
	case err != nil:
		fmt.Fprintf(m.Stderr, "tailor import: %v\n", err)
		return exitRuntime
	case res.Bad > 0:
		return exitInvalid
	}
	return exitOK
}

// parseImportArgs parses flags placed before or after the one FILE
// argument; parseFlags refuses arguments.
func parseImportArgs(fs *flag.FlagSet, args []string) (file string, code int, ok bool) {
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", exitOK, false
			}
			return "", exitUsage, false
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) != 1 {
		if len(files) == 0 {
			fmt.Fprintf(fs.Output(), "%s: missing FILE (- for standard input)\n", fs.Name())
		} else {
			fmt.Fprintf(fs.Output(), "%s: one FILE at a time, got %q\n", fs.Name(), files)
		}
		return "", exitUsage, false
	}
	return files[0], exitOK, true
}

// natsStore connects a command (cmd names it in messages and to NATS)
// to the central store the configuration names. With nats.embedded it
// first looks for the running proxy's embedded server and otherwise
// starts one on nats.data_dir for as long as the command runs. A nil
// store comes with the exit code, its reason printed.
func (m *Main) natsStore(ctx context.Context, cfg *config.Config, log *slog.Logger, cmd string) (*natsync.Store, int) {
	n := cfg.NATS
	opts := natsync.Options{
		URL:    n.URL,
		Creds:  cfg.Resolve(n.Creds),
		Bucket: n.Bucket,
		Name:   cmd,
		Logger: log,
	}
	where := natsync.Redact(n.URL)
	switch {
	case n.Embedded:
		addr, err := natsync.EmbeddedAddr(n.URL)
		if err != nil {
			fmt.Fprintf(m.Stderr, "%s: nats.url %q: %v\n", cmd, where, err)
			return nil, exitInvalid
		}
		if s := probeEmbedded(ctx, addr, opts); s != nil {
			return s, exitOK
		}
		dataDir := cfg.Resolve(n.DataDir)
		srv, err := embedded.Start(dataDir, addr, log)
		if err != nil {
			fmt.Fprintf(m.Stderr, "%s: %v\n", cmd, err)
			return nil, exitRuntime
		}
		opts.Server = srv
		where = "the embedded server on " + addr + " (data in " + dataDir + ")"
	case n.URL == "":
		fmt.Fprintf(m.Stderr, "%s: nats has no url and embedded is false: no NATS to use\n", cmd)
		return nil, exitInvalid
	}
	s, err := natsync.Open(ctx, opts)
	if err != nil {
		fmt.Fprintf(m.Stderr, "%s: %v\n", cmd, err)
		return nil, exitRuntime
	}
	wctx, cancel := context.WithTimeout(ctx, bucketWait)
	defer cancel()
	if _, err := s.KV(wctx); err != nil {
		s.Close()
		fmt.Fprintf(m.Stderr, "%s: no profile bucket after %s at %s (is NATS up, with JetStream?): %v\n",
			cmd, bucketWait, where, err)
		return nil, exitRuntime
	}
	return s, exitOK
}

// probeEmbedded returns a store on the embedded server of a running proxy
// at addr, or nil when none answers there with the bucket.
func probeEmbedded(ctx context.Context, addr string, opts natsync.Options) *natsync.Store {
	d := net.Dialer{Timeout: probeDial}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil
	}
	conn.Close()
	opts.URL = "nats://" + addr
	s, err := natsync.Open(ctx, opts)
	if err != nil {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, probeBucket)
	defer cancel()
	if _, err := s.KV(pctx); err != nil {
		s.Close()
		return nil
	}
	return s
}

// progressBar returns a bar sized by the file's bytes (a spinner for size
// -1), or nil when stderr is not a terminal.
func (m *Main) progressBar(name string, size int64) *progressbar.ProgressBar {
	return m.terminalBar(name, size,
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionSetPredictTime(true),
	)
}

// terminalBar is a progress bar of max (-1: unknown) on stderr with opts,
// or nil when stderr is not a terminal: piped or logged, tailor prints
// only its result line.
func (m *Main) terminalBar(name string, max int64, opts ...progressbar.Option) *progressbar.ProgressBar {
	f, ok := m.Stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(max, append([]progressbar.Option{
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription(name),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionClearOnFinish(),
	}, opts...)...)
}

// importSummary is the line tailor import ends with, such as
// "imported 999998 profiles from x.jsonl in 12.3s (81,234/s); 2 bad lines".
func importSummary(name string, r natsync.ImportResult) string {
	rate := 0.0
	if s := r.Elapsed.Seconds(); s > 0 {
		rate = float64(r.Written) / s
	}
	line := fmt.Sprintf("imported %d %s from %s in %.1fs (%s/s); %d bad %s",
		r.Written, plural(r.Written, "profile", "profiles"), name, r.Elapsed.Seconds(),
		report.Thousands(int64(rate)), r.Bad, plural(r.Bad, "line", "lines"))
	if r.Failed > 0 {
		line += fmt.Sprintf("; %d not stored", r.Failed)
	}
	return line
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
