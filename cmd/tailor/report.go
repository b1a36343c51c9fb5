package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/tailor-edge/tailor/admin"
	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/report"
	"github.com/tailor-edge/tailor/rules"
	natsync "github.com/tailor-edge/tailor/sync"
)

// reportCmd reads the events stream and prints the readout (SPEC "tailor
// report"): experiments, then visitors per segment, stage and persona.
func (m *Main) reportCmd(ctx context.Context, args []string) int {
	var c commonFlags
	fs := m.flagSet("report", &c)
	sinceFlag := fs.String("since", "", "read the events stream from this far back (a duration: 90m, 24h, 14d) or from a time (2026-11-28T10:00:00Z) instead of answering from the readout the edges fold of every event")
	asJSON := fs.Bool("json", false, "print the readout as one JSON object")
	byFlag := fs.String("by", "", "break each experiment down by the visitors' segment, device, stage, persona or country (as at their first exposure)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	var by report.Dimension
	if *byFlag != "" {
		d, err := report.ParseDimension(*byFlag)
		if err != nil {
			fmt.Fprintf(m.Stderr, "tailor report: --by: %v\n", err)
			return exitUsage
		}
		by = d
	}
	log, err := c.logger(m.Stderr)
	if err != nil {
		fmt.Fprintf(m.Stderr, "tailor report: %v\n", err)
		return exitUsage
	}
	var since time.Time
	if *sinceFlag != "" {
		if since, err = parseSince(*sinceFlag, time.Now()); err != nil {
			fmt.Fprintf(m.Stderr, "tailor report: --since %q: %v\n", *sinceFlag, err)
			return exitUsage
		}
	}
	cfg, code := m.loadConfig(c.config)
	if code != exitOK {
		return code
	}
	if cfg.NATS.EventsStream == "" {
		fmt.Fprintln(m.Stderr, "tailor report: nats.events_stream is empty: events are turned off, there is nothing to read")
		return exitInvalid
	}
	set, code := m.reportRules(cfg)
	if code != exitOK {
		return code
	}
	if os.Getenv("GOGC") == "" {
		// A batch read of short-lived messages: collecting less often
		// costs memory this run can spare and saves a fifth of its CPU.
		debug.SetGCPercent(400)
	}
	store, code := m.natsStore(ctx, cfg, log, "tailor report")
	if code != exitOK {
		return code
	}
	defer store.Close()

	var r *report.Report
	if *sinceFlag == "" {
		r, code = m.aggregateReadout(ctx, store, cfg, set, by, log)
	} else {
		r, code = m.fullReadout(ctx, store, cfg, set, since, by)
	}
	if r == nil {
		return code
	}
	if *asJSON {
		enc := json.NewEncoder(m.Stdout)
		if err := enc.Encode(r); err != nil {
			fmt.Fprintf(m.Stderr, "tailor report: %v\n", err)
			return exitRuntime
		}
		return exitOK
	}
	label := *sinceFlag
	if label == "" {
		label = "every event folded"
	}
	writeReport(m.Stdout, r, label)
	return exitOK
}

// fullReadout reads the events stream from since (--since) into a
// readout, as the stream holds them now.
func (m *Main) fullReadout(ctx context.Context, store *natsync.Store, cfg *config.Config, set *rules.Set, since time.Time, by report.Dimension) (*report.Report, int) {
	bar := m.countBar("reading events")
	progress := func(read, total uint64) {
		if bar != nil {
			bar.ChangeMax64(int64(total))
			bar.Set64(int64(read))
		}
	}
	start := time.Now()
	res, err := admin.Readout(ctx, store, cfg.NATS.EventsStream, set, since, progress)
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		return m.readoutFailed(err)
	}
	n := res.Read
	elapsed := time.Since(start)
	if res.Bad > 0 {
		fmt.Fprintf(m.Stderr, "tailor report: %d events could not be read and were skipped (the first: %v)\n", res.Bad, res.FirstBad)
	}
	fmt.Fprintf(m.Stderr, "read %s events in %s (%s/s)\n", report.Thousands(int64(n)), elapsed.Round(time.Millisecond),
		report.Thousands(int64(float64(n)/max(elapsed.Seconds(), 1e-9))))
	if by != "" {
		return res.Builder.ReportBy(since, by), exitOK
	}
	return res.Report, exitOK
}

// readoutFailed says why there is no readout: exit 3.
func (m *Main) readoutFailed(err error) (*report.Report, int) {
	if errors.Is(err, natsync.ErrNoStream) {
		fmt.Fprintf(m.Stderr, "tailor report: %v: no proxy has published events to this NATS yet\n", err)
	} else {
		fmt.Fprintf(m.Stderr, "tailor report: %v\n", err)
	}
	return nil, exitRuntime
}

// aggregateReadout answers from the readout the edges fold
// (nats.readouts_bucket), in constant time; it says on stderr how far
// behind the stream the readout is. When no folder holds the lease and
// the readout is behind (or there is none), it takes the lease itself,
// folds the rest of the stream from the last snapshot, stores a new one
// and answers from that.
func (m *Main) aggregateReadout(ctx context.Context, store *natsync.Store, cfg *config.Config, set *rules.Set, by report.Dimension, log *slog.Logger) (*report.Report, int) {
	n := cfg.NATS
	start := time.Now()
	fail := m.readoutFailed
	last, err := store.StreamLast(ctx, n.EventsStream)
	if err != nil {
		return fail(err)
	}
	ro, agg, err := admin.ReadAggregate(ctx, store, n.ReadoutsBucket, n.EventsStream)
	if err != nil && !errors.Is(err, natsync.ErrNoReadout) {
		return fail(err)
	}
	holder := ""
	if ro == nil || ro.Behind(last) > 0 {
		if holder, err = store.LeaseHolder(ctx, n.ReadoutsBucket, n.EventsStream); err != nil {
			return fail(err)
		}
	}
	folded := false
	var foldedNow uint64 // events folded by this run
	var foldTook time.Duration
	if (ro == nil || ro.Behind(last) > 0) && holder == "" {
		// No edge is folding: catch up here, from the last snapshot.
		host, _ := os.Hostname()
		f, err := admin.NewFolder(store, admin.FolderOptions{Stream: n.EventsStream, Bucket: n.ReadoutsBucket, Logger: log,
			Holder: fmt.Sprintf("%s:%d (tailor report)", host, os.Getpid()),
			Rules:  func() *rules.Set { return set }})
		if err != nil {
			return fail(err)
		}
		bar := m.countBar("folding events")
		foldStart := time.Now()
		r, err := f.CatchUp(ctx, func(done, total uint64) {
			foldedNow = done
			if bar != nil {
				bar.ChangeMax64(int64(total))
				bar.Set64(int64(done))
			}
		})
		if bar != nil {
			bar.Finish()
		}
		switch {
		case errors.Is(err, natsync.ErrLeaseHeld): // an edge took it meanwhile: its readout follows
		case err != nil:
			return fail(err)
		default:
			a, err := admin.DecodeAggregate(r)
			if err != nil {
				return fail(err)
			}
			ro, agg, folded = r, a, true
			last = max(last, r.Folded)
			foldTook = time.Since(foldStart)
		}
	}
	if ro == nil {
		fmt.Fprintf(m.Stderr, "tailor report: no readout yet: %s is folding the events stream into the first one; try again in a moment\n", holder)
		return nil, exitRuntime
	}
	r := agg.Report
	if by != "" {
		if r = agg.By[by]; r == nil {
			fmt.Fprintf(m.Stderr, "tailor report: the readout has no breakdown by %s (folded by an older tailor?)\n", by)
			return nil, exitRuntime
		}
	}
	how := fmt.Sprintf("folded by %s %s ago", ro.Holder, time.Since(ro.At).Round(time.Second))
	if folded {
		how = fmt.Sprintf("folded here (%s events caught up in %s, %s/s, snapshot stored)", report.Thousands(int64(foldedNow)),
			foldTook.Round(time.Millisecond), report.Thousands(int64(float64(foldedNow)/max(foldTook.Seconds(), 1e-9))))
	}
	behind := "up to date"
	if b := ro.Behind(last); b > 0 {
		behind = fmt.Sprintf("%s events behind the stream", report.Thousands(int64(b)))
		if holder != "" {
			behind += " (" + holder + " is folding them)"
		}
	}
	fmt.Fprintf(m.Stderr, "readout of %s events to stream sequence %s, %s; %s; answered in %s\n",
		report.Thousands(int64(ro.Events)), report.Thousands(int64(ro.Folded)), how, behind, time.Since(start).Round(time.Millisecond))
	return r, exitOK
}

// parseSince reads --since: a duration back from now, or a time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := config.ParseDuration(s)
	if err != nil {
		return time.Time{}, errors.New("want a duration (24h, 14d) or an RFC 3339 time")
	}
	if d < 0 {
		return time.Time{}, errors.New("a duration back from now is not negative")
	}
	return now.Add(-d), nil
}

// reportRules loads the rule files, for the experiments' weights (the
// sample-ratio check) and the journey's goals; nil without a rules
// directory: the readout then counts what the events say.
func (m *Main) reportRules(cfg *config.Config) (*rules.Set, int) {
	dir := cfg.Resolve(cfg.Rules.Dir)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, exitOK
	}
	set, err := rules.Load(dir)
	if err != nil {
		fmt.Fprintln(m.Stderr, err)
		return nil, exitInvalid
	}
	return set, exitOK
}

// countBar is a progress bar of events, or nil when stderr is not a
// terminal.
func (m *Main) countBar(name string) *progressbar.ProgressBar {
	return m.terminalBar(name, -1,
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("events"),
	)
}

// writeReport prints the readout for people.
func writeReport(w io.Writer, r *report.Report, since string) {
	fmt.Fprintf(w, "%s events since %s (%s)\n", report.Thousands(r.Events), r.Since.Format("2006-01-02 15:04 MST"), since)
	if len(r.Experiments) == 0 {
		fmt.Fprintln(w, "\nno experiment exposures")
	}
	for _, x := range r.Experiments {
		fmt.Fprintf(w, "\nexperiment %s: ", x.ID)
		switch {
		case x.SRM == nil:
			fmt.Fprintln(w, "not in the rules any more, so its split is not checked")
		case x.SRM.Flag && len(x.SRM.Unknown) > 0:
			fmt.Fprintf(w, "SAMPLE RATIO MISMATCH: visitors saw variants the rules do not have (%s); do not trust this readout\n", strings.Join(x.SRM.Unknown, ", "))
		case x.SRM.Flag:
			fmt.Fprintf(w, "SAMPLE RATIO MISMATCH (chi² %.1f, p = %.2g): the split is not what the weights say; do not trust this readout\n", x.SRM.ChiSquare, x.SRM.P)
		default:
			fmt.Fprintf(w, "split as configured (chi² %.2f, p = %.2f)\n", x.SRM.ChiSquare, x.SRM.P)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "variant\texposed\tshare\texpected\tvalue/visitor\t")
		for _, v := range x.Variants {
			expected := "-"
			if v.Expected > 0 {
				expected = pct(v.Expected)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t\n", v.Name, report.Thousands(int64(v.Exposed)), pct(v.Share), expected, v.ValuePerVisitor)
		}
		tw.Flush()
		if len(x.Variants) == 0 {
			continue
		}
		base := baseline(x.Variants)
		for _, g := range x.GoalNames() {
			fmt.Fprintf(w, "  goal %s\n", g)
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintf(tw, "variant\tconverted\trate\t95%% interval\tuplift vs %s\t95%% interval\talways valid\t\n", base)
			for _, v := range x.Variants {
				gr := v.Goals[g]
				fmt.Fprintf(tw, "%s\t%s\t%s\t[%s, %s]\t%s\t\n", v.Name, report.Thousands(int64(gr.Converted)), pct(gr.Rate),
					pct(gr.CI[0]), pct(gr.CI[1]), upliftCells(gr.Uplift, 100, " pts"))
			}
			tw.Flush()
		}
		writeValues(w, x.Variants, base)
		writeBreakdown(w, x)
	}
	sizes := func(title string, m map[string]int) {
		fmt.Fprintf(w, "\nvisitors by %s\n", title)
		if len(m) == 0 {
			fmt.Fprintln(w, "  (none)")
			return
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			if m[a] != m[b] {
				return m[b] - m[a]
			}
			return strings.Compare(a, b)
		})
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		for _, k := range keys {
			fmt.Fprintf(tw, "  %s\t%s\t\n", k, report.Thousands(int64(m[k])))
		}
		tw.Flush()
	}
	sizes("stage (as last seen)", r.Stages)
	sizes("segment (as last seen)", r.Segments)
	sizes("persona (as last seen)", r.Personas)
	fmt.Fprintln(w, "\n* the interval excludes 0: a difference unlikely to be chance. The 95% intervals hold when the")
	fmt.Fprintln(w, "  readout is looked at once, at a size chosen in advance; the always-valid ones however often it is.")
}

// baseline names the variant the others' uplift is against.
func baseline(variants []report.VariantResult) string {
	for _, v := range variants {
		if v.Baseline {
			return v.Name
		}
	}
	if len(variants) > 0 {
		return variants[0].Name
	}
	return ""
}

// upliftCells writes an uplift's value and its two intervals as three
// tab-separated cells, scaled (100 for points) and with a unit; a star
// marks an interval that excludes 0.
func upliftCells(u *report.Uplift, scale float64, unit string) string {
	if u == nil {
		return "-\t-\t-"
	}
	interval := func(ci [2]float64) string {
		s := fmt.Sprintf("[%+.2f, %+.2f]", scale*ci[0], scale*ci[1])
		if report.Excludes0(ci) {
			s += " *"
		}
		return s
	}
	seq := "-"
	if u.SeqCI != nil {
		seq = interval(*u.SeqCI)
	}
	return fmt.Sprintf("%+.2f%s\t%s\t%s", scale*u.Value, unit, interval(u.CI), seq)
}

// writeValues prints the value per visitor of each variant with its
// interval, and its difference from the baseline's.
func writeValues(w io.Writer, variants []report.VariantResult, base string) {
	fmt.Fprintln(w, "  value per visitor")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "variant\tvalue/visitor\t95%% interval\tvs %s\t95%% interval\talways valid\t\n", base)
	for _, v := range variants {
		ci := "-"
		if v.ValueCI != nil {
			ci = fmt.Sprintf("[%.2f, %.2f]", v.ValueCI[0], v.ValueCI[1])
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%s\t%s\t\n", v.Name, v.ValuePerVisitor, ci, upliftCells(v.ValueUplift, 1, ""))
	}
	tw.Flush()
}

// writeBreakdown prints an experiment's readout per group of its
// breakdown (--by): per goal, each group's variants with their rate and
// uplift; then their value per visitor.
func writeBreakdown(w io.Writer, x report.ExperimentResult) {
	if x.By == "" {
		return
	}
	group := func(v string) string {
		if v == "" {
			return "(none)"
		}
		return v
	}
	if len(x.Groups) == 0 {
		fmt.Fprintf(w, "  by %s: no groups\n", x.By)
		return
	}
	base := baseline(x.Variants)
	for _, g := range x.GoalNames() {
		fmt.Fprintf(w, "  goal %s by %s\n", g, x.By)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "%s\tvariant\texposed\tconverted\trate\tuplift vs %s\t95%% interval\talways valid\t\n", x.By, base)
		for _, gr := range x.Groups {
			for _, v := range gr.Variants {
				r := v.Goals[g]
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", group(gr.Value), v.Name, report.Thousands(int64(v.Exposed)),
					report.Thousands(int64(r.Converted)), pct(r.Rate), upliftCells(r.Uplift, 100, " pts"))
			}
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "  value per visitor by %s\n", x.By)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tvariant\tvalue/visitor\tvs %s\t95%% interval\talways valid\t\n", x.By, base)
	for _, gr := range x.Groups {
		for _, v := range gr.Variants {
			fmt.Fprintf(tw, "%s\t%s\t%.2f\t%s\t\n", group(gr.Value), v.Name, v.ValuePerVisitor, upliftCells(v.ValueUplift, 1, ""))
		}
	}
	tw.Flush()
}

// pct writes a fraction as a percentage.
func pct(f float64) string { return fmt.Sprintf("%.2f%%", 100*f) }
