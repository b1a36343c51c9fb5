package admin

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tailor-edge/tailor/report"
	"github.com/tailor-edge/tailor/rules"
	natsync "github.com/tailor-edge/tailor/sync"
)

// EventReader reads the events stream; *sync.Store is one.
type EventReader interface {
	ReadEvents(ctx context.Context, stream string, since time.Time, progress func(read, total uint64), fn func(data []byte)) (uint64, error)
}

var _ EventReader = (*natsync.Store)(nil)

const (
	// readoutTTL is how long the console reuses a readout: reading the
	// stream costs a few seconds per million events.
	readoutTTL = 30 * time.Second
	// readoutMinAge is how often ?refresh may read the stream again.
	readoutMinAge = 2 * time.Second
	// readoutWindow is how far back the console's readout reads.
	readoutWindow = 7 * 24 * time.Hour
	// readoutTimeout bounds one read of the stream.
	readoutTimeout = 20 * time.Second
)

// ReadoutResult is a readout and what reading it took.
type ReadoutResult struct {
	Report *report.Report
	// Builder holds the fold Report was computed from: ReportBy gives
	// the same readout broken down (tailor report --by, the console's ?by).
	Builder *report.Builder
	// Read is how many events were read; Bad how many of them could not
	// be decoded (skipped), the first with FirstBad.
	Read     uint64
	Bad      int64
	FirstBad error
	// Partial is set when ctx ended the read: Report counts the events
	// read until then.
	Partial bool
}

// Readout reads the events stream from since to its end into a readout
// (tailor report, and the console), with the experiments and goals of
// set (nil: none configured; the readout then counts what the events
// say, without a sample-ratio check).
func Readout(ctx context.Context, r EventReader, stream string, set *rules.Set, since time.Time, progress func(read, total uint64)) (*ReadoutResult, error) {
	var experiments []report.Experiment
	var goals []string
	if set != nil {
		experiments, goals = set.Experiments(), set.Goals()
	}
	b := report.New(experiments, goals)
	res := &ReadoutResult{}
	dec := natsync.EventDecoder{Lean: true}
	var e natsync.Event
	var re report.Event
	n, err := r.ReadEvents(ctx, stream, since, progress, func(data []byte) {
		if err := dec.Decode(data, &e); err != nil {
			if res.Bad++; res.FirstBad == nil {
				res.FirstBad = err
			}
			return
		}
		re = report.Event{Type: e.Type, Time: e.Time, Visitor: e.Visitor, AnonymousID: e.AnonymousID, Segments: e.Segments, Stage: e.Stage,
			Persona: e.Persona, Goal: e.Goal, Value: e.Value, Experiment: e.Experiment, Variant: e.Variant}
		b.Add(&re)
	})
	res.Read = n
	if err != nil && ctx.Err() != nil && n > 0 {
		// Out of time: what was read still says something.
		res.Partial, err = true, nil
	}
	if err != nil {
		return res, err
	}
	res.Report, res.Builder = b.Report(since), b
	return res, nil
}

// readoutCache is the console's last readout, kept between requests.
type readoutCache struct {
	mu      sync.Mutex
	readout *report.Report
	// builder is what readout was computed from, read from since: the
	// breakdowns (?by) are cut from it. nil when there were no events.
	builder *report.Builder
	since   time.Time
	partial bool
	err     error
	at      time.Time
	took    time.Duration
}

// consoleReadout returns the readout of the last readoutWindow of events,
// read again at most every readoutTTL, or readoutMinAge when refresh is
// asked for (?refresh), broken down by by when it is not ""; a note says
// why there is none.
func (a *Admin) consoleReadout(refresh bool, by report.Dimension) (*report.Report, string) {
	if a.opts.Events == nil || a.cfg.NATS.EventsStream == "" {
		return nil, "Events are off (no NATS, or nats.events_stream is empty): no experiment readout."
	}
	rc := &a.readout
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if age := time.Since(rc.at); rc.at.IsZero() || age > readoutTTL || refresh && age > readoutMinAge {
		start := time.Now()
		rc.since = start.Add(-readoutWindow)
		rc.readout, rc.builder, rc.partial, rc.err = a.readEvents(rc.since)
		rc.at, rc.took = time.Now(), time.Since(start)
	}
	if rc.err != nil {
		return nil, "Could not read the events: " + rc.err.Error()
	}
	readout := rc.readout
	if by != "" && rc.builder != nil {
		readout = rc.builder.ReportBy(rc.since, by) // the builder is not shared: rc.mu is held
	}
	note := fmt.Sprintf("%s events of the last %d days, read %s ago in %s.",
		report.Thousands(rc.readout.Events), int(readoutWindow.Hours()/24), time.Since(rc.at).Round(time.Second), rc.took.Round(time.Millisecond))
	if rc.partial {
		note = fmt.Sprintf("Partial: only the first %s events of the last %d days could be read in %s; tailor report reads them all.",
			report.Thousands(rc.readout.Events), int(readoutWindow.Hours()/24), readoutTimeout)
	}
	return readout, note
}

// readEvents reads the events stream since then into a readout, with the
// experiments and goals of the rules serving now.
func (a *Admin) readEvents(since time.Time) (*report.Report, *report.Builder, bool, error) {
	set, _ := a.proxy.Rules()
	ctx, cancel := context.WithTimeout(context.Background(), readoutTimeout)
	defer cancel()
	r, err := Readout(ctx, a.opts.Events, a.cfg.NATS.EventsStream, set, since, nil)
	if errors.Is(err, natsync.ErrNoStream) {
		return report.New(nil, nil).Report(since), nil, false, nil // no events yet
	}
	if err != nil {
		return nil, nil, false, err
	}
	return r.Report, r.Builder, r.Partial, nil
}
