package proxy

import (
	"context"
	"time"

	"github.com/tailor-edge/tailor/report"
	"github.com/tailor-edge/tailor/rules"
	natsync "github.com/tailor-edge/tailor/sync"
)

// ReadoutResult is a readout and what reading it took.
type ReadoutResult struct {
	Report *report.Report
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
		for _, x := range set.Experiments() {
			rx := report.Experiment{ID: x.ID, Holdout: x.Holdout}
			for _, v := range x.Variants {
				rx.Variants = append(rx.Variants, report.Variant{Name: v.Name, Weight: v.Weight})
			}
			experiments = append(experiments, rx)
		}
		goals = set.Goals()
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
	res.Report = b.Report(since)
	return res, nil
}
