package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/regular"
	"github.com/tailor-edge/tailor/rules"
	natsync "github.com/tailor-edge/tailor/sync"
)

const rulesUsage = `Usage:
  tailor rules push     [--config tailor.yaml] [--message TEXT]
                        validate rules.dir as tailor check does and publish it, fragments
                        included, as the newest numbered version in rules.bucket
  tailor rules history  [--config tailor.yaml]
                        list the versions, oldest first: number, time, author, checksum, message
  tailor rules rollback [--config tailor.yaml] N
                        publish version N's files again as the newest version
`

// rulesCmd runs "tailor rules push|history|rollback".
func (m *Main) rulesCmd(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, rulesUsage)
		return exitUsage
	}
	switch args[0] {
	case "push":
		return m.rulesPush(ctx, args[1:])
	case "history":
		return m.rulesHistory(ctx, args[1:])
	case "rollback":
		return m.rulesRollback(ctx, args[1:])
	case "help", "-h", "--help", "-help":
		fmt.Fprint(m.Stdout, rulesUsage)
		return exitOK
	}
	fmt.Fprintf(m.Stderr, "tailor rules: unknown command %q\n\n%s", args[0], rulesUsage)
	return exitUsage
}

// rulesFlagSet is flagSet for "tailor rules <name>"; connection notices
// are noise for a command that prints one line: warnings only.
func (m *Main) rulesFlagSet(name string, c *commonFlags) *flag.FlagSet {
	fs := m.flagSet("rules "+name, c)
	if f := fs.Lookup("log-level"); f != nil {
		f.Value.Set("warn")
		f.DefValue = "warn"
	}
	return fs
}

// ruleBucket connects cmd to rules.bucket, creating it when create is
// set (push and rollback: the first push makes the bucket, with one
// replica, unless the operator made it first); nil comes with the exit
// code, its reason printed. A bucket that does not exist (create unset)
// comes as nil with exitOK: no versions yet, the caller says so.
func (m *Main) ruleBucket(ctx context.Context, c *commonFlags, cfg *config.Config, cmd string, create bool) (*natsync.RuleBucket, func(), int) {
	if cfg.Rules.Bucket == "" {
		fmt.Fprintf(m.Stderr, "%s: %v\n", cmd, cfg.ErrorAt("rules.bucket", "is not set: no bucket to publish rule versions to"))
		return nil, nil, exitInvalid
	}
	log, err := c.logger(m.Stderr)
	if err != nil {
		fmt.Fprintln(m.Stderr, err)
		return nil, nil, exitUsage
	}
	store, code := m.natsStore(ctx, cfg, log, cmd)
	if store == nil {
		return nil, nil, code
	}
	bctx, cancel := context.WithTimeout(ctx, bucketWait)
	defer cancel()
	open := store.RuleBucket
	if create {
		open = store.CreateRuleBucket
	}
	b, err := open(bctx, cfg.Rules.Bucket)
	if errors.Is(err, natsync.ErrNoBucket) {
		store.Close()
		return nil, nil, exitOK
	}
	if err != nil {
		store.Close()
		fmt.Fprintf(m.Stderr, "%s: %v\n", cmd, err)
		return nil, nil, exitRuntime
	}
	return b, store.Close, exitOK
}

// rulesPush validates rules.dir as check does (the same rules.Load; its
// problems printed as file:line:col, exit 1, nothing published), then
// publishes the files the rules load, fragments included, as one version.
func (m *Main) rulesPush(ctx context.Context, args []string) int {
	var c commonFlags
	flags := m.rulesFlagSet("push", &c)
	message := flags.String("message", "", "why: shown by tailor rules history")
	cfg, code := m.configure(flags, &c, args)
	if cfg == nil {
		return code
	}
	dir := cfg.Resolve(cfg.Rules.Dir)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(m.Stderr, "%s: no rules directory: nothing to push\n", dir)
		return exitInvalid
	}
	if _, code := m.loadRules(dir); code != exitOK {
		return code
	}
	v, err := packRules(dir, author(), *message)
	if err != nil {
		fmt.Fprintf(m.Stderr, "tailor rules push: %v\n", err)
		return exitInvalid
	}
	return m.publish(ctx, &c, cfg, "tailor rules push", v)
}

// publish pushes v and says which number it got.
func (m *Main) publish(ctx context.Context, c *commonFlags, cfg *config.Config, cmd string, v natsync.RuleVersion) int {
	b, closeStore, code := m.ruleBucket(ctx, c, cfg, cmd, true)
	if b == nil {
		return code
	}
	defer closeStore()
	pctx, cancel := context.WithTimeout(ctx, bucketWait)
	defer cancel()
	v, err := b.Push(pctx, v)
	if err != nil {
		fmt.Fprintf(m.Stderr, "%s: %v\n", cmd, err)
		return exitRuntime
	}
	fmt.Fprintf(m.Stdout, "pushed version %d to %s (sha256 %s)\n", v.Number, cfg.Rules.Bucket, v.Checksum)
	return exitOK
}

// loadRules loads the rules directory as tailor check does, printing its
// problems and warnings.
func (m *Main) loadRules(dir string) (*rules.Set, int) {
	set, err := rules.Load(dir)
	if err != nil {
		fmt.Fprintln(m.Stderr, err)
		return nil, exitInvalid
	}
	for _, w := range set.Warnings() { // they load: no failure
		fmt.Fprintln(m.Stderr, w)
	}
	return set, exitOK
}

// packRules makes a version of the files the rules in dir load: the rule
// files and the fragments they name, wherever those are, at their paths
// relative to the deepest directory holding them all. Loading the packed
// version as an edge will proves it needs nothing else.
func packRules(dir, author, message string) (natsync.RuleVersion, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return natsync.RuleVersion{}, err
	}
	// Load once more from the root, noting every file read.
	rec := &recordingFS{FS: os.DirFS("/"), read: map[string]bool{}}
	root := strings.TrimPrefix(filepath.ToSlash(abs), "/")
	if _, err := rules.LoadFS(rec, root); err != nil {
		return natsync.RuleVersion{}, fmt.Errorf("collect the files the rules load: %w", err)
	}
	base := root
	for name := range rec.read {
		for !strings.HasPrefix(name, base+"/") && base != "." {
			base = path.Dir(base)
		}
	}
	files := map[string][]byte{}
	for name := range rec.read {
		data, err := regular.ReadFS(rec.FS, name, maxPushedFile)
		if err != nil {
			return natsync.RuleVersion{}, err
		}
		files[relTo(base, name)] = data
	}
	v, err := natsync.NewRuleVersion(files, relTo(base, root), author, message)
	if err != nil {
		return natsync.RuleVersion{}, err
	}
	fsys, err := v.Files()
	if err == nil {
		_, err = rules.LoadFS(fsys, v.Dir)
	}
	if err != nil {
		return natsync.RuleVersion{}, fmt.Errorf("the packed rules do not load as an edge would load them (a fragment at an absolute path?): %w", err)
	}
	return v, nil
}

// maxPushedFile bounds a file read for a push; the rules loaded it, so it
// is within the rules' own limits already.
const maxPushedFile = 64 << 20

func relTo(base, name string) string {
	if base == "." {
		return name
	}
	if name == base {
		return "."
	}
	return strings.TrimPrefix(name, base+"/")
}

// recordingFS notes the regular files opened through it.
type recordingFS struct {
	fs.FS
	read map[string]bool
}

func (r *recordingFS) Open(name string) (fs.File, error) {
	f, err := r.FS.Open(name)
	if err == nil {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			r.read[name] = true
		}
	}
	return f, err
}

// author is who pushes: $USER, as git and most tools take it.
func author() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

// rulesHistory lists the versions, oldest first, so that the newest is
// the line nearest the prompt.
func (m *Main) rulesHistory(ctx context.Context, args []string) int {
	var c commonFlags
	cfg, code := m.configure(m.rulesFlagSet("history", &c), &c, args)
	if cfg == nil {
		return code
	}
	b, closeStore, code := m.ruleBucket(ctx, &c, cfg, "tailor rules history", false)
	if b == nil && code == exitOK {
		fmt.Fprintf(m.Stdout, "no versions in %s yet: tailor rules push publishes one\n", cfg.Rules.Bucket)
		return exitOK
	}
	if b == nil {
		return code
	}
	defer closeStore()
	hctx, cancel := context.WithTimeout(ctx, bucketWait)
	defer cancel()
	vs, err := b.Versions(hctx)
	if err != nil {
		fmt.Fprintf(m.Stderr, "tailor rules history: %v\n", err)
		return exitRuntime
	}
	if len(vs) == 0 {
		fmt.Fprintf(m.Stdout, "no versions in %s yet: tailor rules push publishes one\n", cfg.Rules.Bucket)
		return exitOK
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tTIME\tAUTHOR\tBYTES\tSHA256\tMESSAGE")
	for _, v := range vs {
		if v.Unreadable != "" {
			fmt.Fprintf(tw, "%d\t-\t-\t-\t-\t(unreadable: %s)\n", v.Number, oneLine(v.Unreadable))
			continue
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", v.Number, v.Time.UTC().Format(time.RFC3339), v.Author, v.Size, v.Checksum, oneLine(v.Message))
	}
	tw.Flush()
	return exitOK
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// rulesRollback publishes version N's files again, as a new version: edges
// only ever move forward, and the history keeps what happened.
func (m *Main) rulesRollback(ctx context.Context, args []string) int {
	var c commonFlags
	flags := m.rulesFlagSet("rollback", &c)
	// N may come before the flags or after them.
	var rest []string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		rest, args = args[:1], args[1:]
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	rest = append(rest, flags.Args()...)
	if len(rest) != 1 {
		fmt.Fprintf(m.Stderr, "tailor rules rollback: want one version number, not %q\n", rest)
		return exitUsage
	}
	n, err := strconv.ParseUint(rest[0], 10, 64)
	if err != nil || n == 0 {
		fmt.Fprintf(m.Stderr, "tailor rules rollback: %q is not a version number\n", rest[0])
		return exitUsage
	}
	cfg, code := m.loadConfig(c.config)
	if cfg == nil {
		return code
	}
	b, closeStore, code := m.ruleBucket(ctx, &c, cfg, "tailor rules rollback", false)
	if b == nil && code == exitOK {
		fmt.Fprintf(m.Stderr, "tailor rules rollback: %s has no versions yet (tailor rules push publishes one)\n", cfg.Rules.Bucket)
		return exitUsage
	}
	if b == nil {
		return code
	}
	defer closeStore()
	rctx, cancel := context.WithTimeout(ctx, bucketWait)
	defer cancel()
	v, err := b.Version(rctx, n)
	if errors.Is(err, natsync.ErrNoVersion) {
		// A wrong argument, not an invalid file: usage (exit 1 is for a
		// config, rules or profile file that does not load).
		fmt.Fprintf(m.Stderr, "tailor rules rollback: %s has no version %d (tailor rules history lists them)\n", cfg.Rules.Bucket, n)
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(m.Stderr, "tailor rules rollback: %v\n", err)
		return exitRuntime
	}
	v.Author, v.Message = author(), fmt.Sprintf("rollback to %d", n)
	v, err = b.Push(rctx, v)
	if err != nil {
		fmt.Fprintf(m.Stderr, "tailor rules rollback: %v\n", err)
		return exitRuntime
	}
	fmt.Fprintf(m.Stdout, "pushed version %d to %s: rollback to %d (sha256 %s)\n", v.Number, cfg.Rules.Bucket, n, v.Checksum)
	return exitOK
}
