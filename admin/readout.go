package admin

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

// readoutTimeout bounds the console's read of the readout.
const readoutTimeout = 5 * time.Second

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
		reportEvent(&e, &re)
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

// consoleReadout returns the readout the edges fold from the events
// stream (nats.readouts_bucket), broken down by by when it is not "": one
// read of a KV key, whatever the stream's size; a note says how far
// behind the stream it is, or why there is none.
// Every view reads the latest (the console's ?refresh link is a reload).
func (a *Admin) consoleReadout(by report.Dimension) (*report.Report, string) {
	if a.opts.Events == nil || a.cfg.NATS.EventsStream == "" {
		return nil, "Events are off (no NATS, or nats.events_stream is empty): no experiment readout."
	}
	ctx, cancel := context.WithTimeout(context.Background(), readoutTimeout)
	defer cancel()
	ro, agg, err := ReadAggregate(ctx, a.opts.Events, a.cfg.NATS.ReadoutsBucket, a.cfg.NATS.EventsStream)
	if errors.Is(err, natsync.ErrNoReadout) {
		return nil, "No readout yet: the edges fold the events stream into one (nats.fold_readouts) within seconds of its first events; tailor report makes one too."
	}
	if err != nil {
		return nil, "Could not read the readout: " + err.Error()
	}
	r := agg.Report
	if by != "" {
		if r = agg.By[by]; r == nil {
			r = agg.Report
		}
	}
	note := fmt.Sprintf("%s events since %s, folded %s ago", report.Thousands(r.Events),
		ro.First.Format("2006-01-02 15:04 MST"), time.Since(ro.At).Round(time.Second))
	if last, err := a.opts.Events.StreamLast(ctx, a.cfg.NATS.EventsStream); err == nil && ro.Behind(last) > 0 {
		note += fmt.Sprintf("; %s events behind the stream (catching up)", report.Thousands(int64(ro.Behind(last))))
	}
	return r, note + "."
}

// ReadoutReader reads the readouts the edges fold; *sync.Store is one.
type ReadoutReader interface {
	ReadReadout(ctx context.Context, bucket, stream string) (*natsync.Readout, error)
	StreamLast(ctx context.Context, stream string) (uint64, error)
}

var _ ReadoutReader = (*natsync.Store)(nil)

// Aggregate is what the readout folder publishes: the readout of every
// event folded, and each of its breakdowns (--by).
type Aggregate struct {
	Report *report.Report                      `json:"report"`
	By     map[report.Dimension]*report.Report `json:"by"`
}

// maxAggregateBytes bounds an aggregate once unpacked.
const maxAggregateBytes = 256 << 20

// ReadAggregate reads the latest readout of stream in bucket:
// natsync.ErrNoReadout when no folder has published one.
func ReadAggregate(ctx context.Context, r ReadoutReader, bucket, stream string) (*natsync.Readout, *Aggregate, error) {
	ro, err := r.ReadReadout(ctx, bucket, stream)
	if err != nil {
		return nil, nil, err
	}
	agg, err := DecodeAggregate(ro)
	if err != nil {
		return nil, nil, err
	}
	return ro, agg, nil
}

// DecodeAggregate reads the Aggregate a readout carries.
func DecodeAggregate(ro *natsync.Readout) (*Aggregate, error) {
	zr, err := gzip.NewReader(bytes.NewReader(ro.Data))
	if err != nil {
		return nil, fmt.Errorf("read the readout: %w", err)
	}
	var agg Aggregate
	if err := json.NewDecoder(io.LimitReader(zr, maxAggregateBytes)).Decode(&agg); err != nil {
		return nil, fmt.Errorf("read the readout: %w", err)
	}
	if agg.Report == nil {
		return nil, errors.New("read the readout: it holds no report")
	}
	return &agg, nil
}

// FolderOptions configure NewFolder.
type FolderOptions struct {
	Stream, Bucket string
	// Rules returns the rules serving now, for the experiments' weights
	// and the journey's goals; nil, or a nil set, for none.
	Rules func() *rules.Set
	// Holder names the folder in the lease ("" for host:pid).
	Holder string
	Logger *slog.Logger
	// Sync's own settings; zero values are its defaults.
	SnapshotEvery    uint64
	SnapshotInterval time.Duration
	LeaseTTL         time.Duration
}

// NewFolder returns the readout folder of the events stream on store:
// it folds events into a report.Builder and publishes an Aggregate (see
// natsync.Folder). Run it (tailor serve) or CatchUp with it (tailor
// report).
func NewFolder(store *natsync.Store, o FolderOptions) (*natsync.Folder, error) {
	config := func() ([]report.Experiment, []string) {
		if o.Rules == nil {
			return nil, nil
		}
		if set := o.Rules(); set != nil {
			return set.Experiments(), set.Goals()
		}
		return nil, nil
	}
	return store.Folder(natsync.FolderOptions{
		Stream: o.Stream, Bucket: o.Bucket, Holder: o.Holder, Logger: o.Logger,
		SnapshotEvery: o.SnapshotEvery, SnapshotInterval: o.SnapshotInterval, LeaseTTL: o.LeaseTTL,
		New: func() natsync.Fold {
			x, g := config()
			return &builderFold{b: report.New(x, g), config: config, conf: fingerprint(x, g)}
		},
		Load: func(r io.Reader) (natsync.Fold, error) {
			x, g := config()
			b, err := report.ReadBuilder(r, x, g)
			if err != nil {
				return nil, err
			}
			return &builderFold{b: b, config: config, conf: fingerprint(x, g)}, nil
		},
	})
}

// builderFold is a report.Builder as a natsync.Fold.
type builderFold struct {
	b      *report.Builder
	re     report.Event
	config func() ([]report.Experiment, []string)
	conf   string // fingerprint of the configuration b was made with
}

func (f *builderFold) Add(e *natsync.Event) {
	reportEvent(e, &f.re)
	f.b.Add(&f.re)
}

func (f *builderFold) WriteTo(w io.Writer) (int64, error) { return f.b.WriteTo(w) }

// Readout makes the Aggregate, gzipped JSON. When the rules' experiments
// or goals have changed since the builder was made, it is made again with
// them first (through its snapshot: the counts are kept).
func (f *builderFold) Readout(first time.Time) ([]byte, error) {
	if x, g := f.config(); fingerprint(x, g) != f.conf {
		var buf bytes.Buffer
		if _, err := f.b.WriteTo(&buf); err != nil {
			return nil, err
		}
		b, err := report.ReadBuilder(&buf, x, g)
		if err != nil {
			return nil, err
		}
		f.b, f.conf = b, fingerprint(x, g)
	}
	agg := Aggregate{Report: f.b.Report(first), By: make(map[report.Dimension]*report.Report, len(report.Dimensions))}
	for _, d := range report.Dimensions {
		agg.By[d] = f.b.ReportBy(first, d)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err := json.NewEncoder(zw).Encode(&agg); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func fingerprint(x []report.Experiment, g []string) string {
	b, _ := json.Marshal(struct {
		X []report.Experiment
		G []string
	}{x, g})
	return string(b)
}

// reportEvent is what a readout needs of an event, in re (its Segments
// shared with e's).
func reportEvent(e *natsync.Event, re *report.Event) {
	*re = report.Event{Type: e.Type, Time: e.Time, Visitor: e.Visitor, AnonymousID: e.AnonymousID, Segments: e.Segments, Stage: e.Stage,
		Persona: e.Persona, Goal: e.Goal, Value: e.Value, Experiment: e.Experiment, Variant: e.Variant,
		Device: e.Device, Country: e.Country, UTMSource: e.UTMSource, UTMCampaign: e.UTMCampaign, Bot: e.Bot}
}
