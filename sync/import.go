package sync

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tailor-edge/tailor/cache"
)

// DefaultImportWindow is how many puts Import keeps awaiting their
// acknowledgement when ImportOptions.Window is 0. Against a local server
// (300,000 profiles, 2 shared cores) 1024, 4096 and 16384 were alike
// within the noise of the machine; 4096 also keeps a link with 10 ms of
// round trip busy at 400,000 puts/s, with about 1 MB held in the client.
const DefaultImportWindow = 4096

// MaxImportLine is the longest JSON Lines line or CSV record Import takes.
// It matches the server's default max_payload, the largest message a put
// can carry.
const MaxImportLine = 1 << 20

// maxKeyLen bounds a profile's KV key: the subject travels in the PUB
// control line, which the server caps at 4 KiB and answers with a closed
// connection, not an error for the one message. (cache.ParseProfile takes
// ids of up to 1024 bytes, 1370 as a b64. key.)
const maxKeyLen = 2048

// Import formats.
const (
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// ImportOptions tune Import. The zero value sniffs the format and uses
// DefaultImportWindow.
type ImportOptions struct {
	// Format is FormatJSONL, FormatCSV, or "" to tell from the first
	// non-space byte: '{' is JSON Lines, anything else CSV.
	Format string
	// Window is the most puts awaiting acknowledgement at once; 0 means
	// DefaultImportWindow.
	Window int
	// Progress, when not nil, is called about ten times a second and
	// once at the end with the profile lines read so far (bad ones
	// included) and the input bytes consumed. It runs on Import's
	// goroutine: a slow Progress slows the import.
	Progress func(lines, bytes int64)
	// Bad, when not nil, is called for each line that is skipped, with its
	// 1-based line number in the input and why. For a CSV record spanning
	// several lines it is the record's first line. Nil skips bad lines
	// silently; ImportResult.Bad counts them either way.
	Bad func(line int, err error)
}

// ImportResult says what an import did. Lines = Written + Bad + Failed
// once Import returns without a context error.
type ImportResult struct {
	// Lines counts profile lines read: blank lines and the CSV header are
	// not profiles.
	Lines int64
	// Written counts profiles the server acknowledged.
	Written int64
	// Bad counts lines skipped as invalid (each one reported to Bad).
	Bad int64
	// Failed counts valid profiles the server did not take, even when
	// tried a second time.
	Failed int64
	// Elapsed is the time Import took, waiting for the bucket included.
	Elapsed time.Duration
}

// InputError is an import that cannot start or go on because of its input:
// the reader failed, or the CSV header is invalid. Line is 0 when no line
// is to blame.
type InputError struct {
	Line int
	Err  error
}

func (e *InputError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return e.Err.Error()
}

func (e *InputError) Unwrap() error { return e.Err }

// Import bulk-loads profiles from r into the bucket, one put per good line,
// and returns when every put is acknowledged or has failed twice. A JSON
// Lines line is validated with cache.ParseProfile and stored as given (less
// surrounding whitespace), unknown fields included; a CSV record is turned
// into a profile document (see parseCSVHeader for the columns) and
// validated the same way. Bad lines are reported to o.Bad and skipped; the
// rest are written in input order, so the last line of an id wins (unless
// an earlier one failed and was tried again at the end).
//
// Lines are validated on all CPUs, in batches, and published
// asynchronously, at most o.Window unacknowledged at once, on a JetStream
// context of the import's own. A put that fails is tried once more,
// synchronously, at the end; those that fail again are counted in Failed
// and make the error non-nil. An *InputError means the input is unusable:
// a bad CSV header (nothing is written) or a read error (what came before
// it is written). When ctx ends Import returns at once with the counts so
// far, without waiting for a Read of r that is blocked.
func (s *Store) Import(ctx context.Context, r io.Reader, o ImportOptions) (ImportResult, error) {
	start := time.Now()
	im := &importer{store: s, opts: o}
	if im.opts.Window <= 0 {
		im.opts.Window = DefaultImportWindow
	}
	err := im.run(ctx, r)
	if im.js != nil {
		im.js.CleanupPublisher()
	}
	im.res.Elapsed = time.Since(start)
	return im.res, err
}

// importer is the state of one Import.
type importer struct {
	store *Store
	opts  ImportOptions
	js    jetstream.JetStream
	res   ImportResult

	maxPayload int64
	consumed   int64     // input bytes published or skipped, for Progress
	nextReport time.Time // when Progress may be called again

	acked    atomic.Int64
	mu       sync.Mutex
	failed   []*nats.Msg // puts to try again
	firstErr error       // why the first put failed
}

// A batch is a run of input lines on their way through the import: read,
// validated alongside other batches, then published in input order.
type batch struct {
	// data holds the profile documents back to back. It is never reused:
	// unacknowledged puts refer to it.
	data  []byte
	recs  []record
	bytes int64         // input consumed up to the batch's end
	err   error         // why reading stopped after the batch, if it did
	done  chan struct{} // closed once validated
}

// A record is one profile line of a batch.
type record struct {
	line       int
	start, end int    // the document in data
	subject    string // where to publish it, once validated
	err        error  // why the line is bad
}

// Batch bounds: big enough to amortise the hand-offs, small enough that
// a few batches per CPU stay in the L2 cache.
const (
	batchLines = 256
	batchBytes = 64 << 10
)

func (im *importer) run(ctx context.Context, r io.Reader) error {
	br := bufio.NewReaderSize(r, MaxImportLine+2) // a full line, then \r\n
	format := im.opts.Format
	if format == "" {
		var err error
		if format, err = sniff(br); err != nil {
			return &InputError{Err: fmt.Errorf("read: %w", err)}
		}
	}
	skipped := skipBOM(br)
	var read func(*batcher) error
	switch format {
	case FormatJSONL:
		read = func(b *batcher) error { b.consumed = skipped; return readJSONL(br, b) }
	case FormatCSV:
		cr := csv.NewReader(br)
		cr.ReuseRecord = true
		cols, err := readCSVHeader(cr)
		if err != nil || cols == nil {
			return err
		}
		read = func(b *batcher) error { return readCSV(cr, cols, skipped, b) }
	default:
		return fmt.Errorf("import profiles: format %q: want %q or %q", format, FormatJSONL, FormatCSV)
	}
	if err := im.open(ctx); err != nil {
		return err
	}

	pctx, stop := context.WithCancel(ctx)
	defer stop()
	workers := runtime.GOMAXPROCS(0)
	ordered := make(chan *batch, 2*workers)
	work := make(chan *batch, 2*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case b, ok := <-work:
					if !ok {
						return
					}
					im.validate(b)
				case <-pctx.Done():
					return
				}
			}
		})
	}
	reading := make(chan struct{})
	go func() {
		defer close(reading)
		defer close(work)
		defer close(ordered)
		bt := &batcher{ctx: pctx, ordered: ordered, work: work}
		bt.flush(read(bt))
	}()
	err := im.publish(pctx, ordered)
	stop()
	wg.Wait()
	if ctx.Err() == nil {
		<-reading // a Read blocked on a cancelled import is left to end by itself
	}
	im.progress(true)
	var ie *InputError
	if err != nil && !errors.As(err, &ie) {
		im.res.Written = im.acked.Load()
		return err
	}
	// A read error still leaves the lines before it to be written.
	if ferr := im.finish(ctx); ferr != nil {
		if err != nil {
			return fmt.Errorf("%w (and the input: %v)", ferr, err)
		}
		return ferr
	}
	return err
}

// open waits for the bucket and makes the import's JetStream context, whose
// handlers count acknowledgements and collect failed puts.
func (im *importer) open(ctx context.Context) error {
	if _, err := im.store.KV(ctx); err != nil {
		return err
	}
	js, err := jetstream.New(im.store.Conn(),
		jetstream.WithPublishAsyncMaxPending(im.opts.Window),
		jetstream.WithPublishAsyncAckHandler(func(jetstream.JetStream, *nats.Msg, *jetstream.PubAck) {
			im.acked.Add(1)
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			im.fail(m, err)
		}))
	if err != nil {
		return fmt.Errorf("open jetstream: %w", err)
	}
	im.js = js
	im.maxPayload = im.store.Conn().MaxPayload()
	im.nextReport = time.Now().Add(progressEvery)
	return nil
}

// fail keeps a put to try again once the others are done. It runs on the
// connection's goroutines as well as Import's.
func (im *importer) fail(m *nats.Msg, err error) {
	im.mu.Lock()
	im.failed = append(im.failed, m)
	if im.firstErr == nil {
		im.firstErr = err
	}
	im.mu.Unlock()
}

// batcher cuts records into batches and hands each to the validators and,
// in order, to the publisher.
type batcher struct {
	ctx           context.Context
	ordered, work chan<- *batch
	b             *batch
	consumed      int64 // input bytes read so far, set by the reader
}

// add appends a record: doc, or err for a line that is bad already. It
// reports false when the import is over and reading should stop.
func (bt *batcher) add(line int, doc []byte, err error) bool {
	if bt.b == nil {
		bt.b = &batch{data: make([]byte, 0, batchBytes+batchBytes/4), recs: make([]record, 0, batchLines),
			done: make(chan struct{})}
	}
	b := bt.b
	start := len(b.data)
	b.data = append(b.data, doc...)
	b.recs = append(b.recs, record{line: line, start: start, end: len(b.data), err: err})
	if len(b.recs) < batchLines && len(b.data) < batchBytes {
		return true
	}
	return bt.flush(nil)
}

// flush hands the current batch on; err, when not nil, is why reading
// stopped after it.
func (bt *batcher) flush(err error) bool {
	b := bt.b
	if b == nil {
		b = &batch{done: make(chan struct{})}
	}
	b.bytes, b.err = bt.consumed, err
	bt.b = nil
	select {
	case bt.ordered <- b:
	case <-bt.ctx.Done():
		return false
	}
	select {
	case bt.work <- b:
		return true
	case <-bt.ctx.Done():
		return false
	}
}

// readJSONL cuts the input into lines.
func readJSONL(br *bufio.Reader, bt *batcher) error {
	line := 0
	for {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			line++
			bt.consumed += int64(len(b))
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = br.ReadSlice('\n')
				bt.consumed += int64(len(b))
			}
			if !bt.add(line, nil, fmt.Errorf("line is longer than %d bytes", MaxImportLine)) {
				return nil
			}
		} else if len(b) > 0 {
			line++
			bt.consumed += int64(len(b))
			if b = bytes.TrimSpace(b); len(b) > 0 && !bt.add(line, b, nil) {
				return nil
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &InputError{Line: line + 1, Err: fmt.Errorf("read: %w", err)}
		}
	}
}

// validate checks each record of b not already bad and works out its
// subject; it runs on one of several goroutines.
func (im *importer) validate(b *batch) {
	for i := range b.recs {
		r := &b.recs[i]
		if r.err != nil {
			continue
		}
		doc := b.data[r.start:r.end]
		p, err := cache.ParseProfile(doc)
		switch {
		case err != nil:
			r.err = err
		case len(Key(p.ID)) > maxKeyLen:
			r.err = fmt.Errorf("id is %d bytes: too long for a key", len(p.ID))
		case int64(len(doc)) > im.maxPayload:
			r.err = fmt.Errorf("profile is %d bytes; the server takes at most %d", len(doc), im.maxPayload)
		default:
			r.subject = subject(im.store.bucket, Key(p.ID))
		}
	}
	close(b.done)
}

// publish takes the validated batches in input order, reports their bad
// lines and publishes the good ones. It returns the read error that ended
// the input, or ctx's.
func (im *importer) publish(ctx context.Context, ordered <-chan *batch) error {
	for b := range ordered {
		select {
		case <-b.done:
		case <-ctx.Done():
			return fmt.Errorf("import profiles: %w", ctx.Err())
		}
		for _, r := range b.recs {
			im.res.Lines++
			if r.err != nil {
				im.bad(r.line, r.err)
				continue
			}
			im.put(ctx, r.subject, b.data[r.start:r.end:r.end])
		}
		im.consumed = b.bytes
		im.progress(false)
		if b.err != nil {
			return b.err
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("import profiles: %w", err)
		}
	}
	return nil
}

// put publishes doc on subj; a put that fails is kept for a second try.
func (im *importer) put(ctx context.Context, subj string, doc []byte) {
	for {
		_, err := im.js.PublishAsync(subj, doc)
		if err == nil {
			return
		}
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) && ctx.Err() == nil {
			continue // the window is full and the server slow: keep waiting
		}
		im.fail(&nats.Msg{Subject: subj, Data: doc}, err)
		return
	}
}

// bad counts and reports a skipped line.
func (im *importer) bad(line int, err error) {
	im.res.Bad++
	if im.opts.Bad != nil {
		im.opts.Bad(line, err)
	}
}

// progressEvery is the least time between two calls of Progress.
const progressEvery = 100 * time.Millisecond

func (im *importer) progress(final bool) {
	if im.opts.Progress == nil {
		return
	}
	now := time.Now()
	if !final && now.Before(im.nextReport) {
		return
	}
	im.nextReport = now.Add(progressEvery)
	im.opts.Progress(im.res.Lines, im.consumed)
}

// syncRetryTimeout bounds each second try of a failed put, and
// maxRetryFailures ends the second tries when the store looks gone.
const (
	syncRetryTimeout = 5 * time.Second
	maxRetryFailures = 3
)

// finish waits for the outstanding acknowledgements, tries each failed put
// once more, synchronously, and totals.
func (im *importer) finish(ctx context.Context) error {
	select {
	case <-im.js.PublishAsyncComplete():
	case <-ctx.Done():
		im.res.Written = im.acked.Load()
		return fmt.Errorf("import profiles: %w", ctx.Err())
	}
	im.res.Written = im.acked.Load()
	im.mu.Lock()
	retry, lastErr := im.failed, im.firstErr
	im.failed = nil
	im.mu.Unlock()
	failures := 0
	for _, m := range retry {
		if failures >= maxRetryFailures || ctx.Err() != nil {
			im.res.Failed++
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, syncRetryTimeout)
		_, err := im.js.Publish(rctx, m.Subject, m.Data)
		cancel()
		if err != nil {
			im.res.Failed++
			failures++
			lastErr = err
			continue
		}
		failures = 0
		im.res.Written++
	}
	if im.res.Failed > 0 {
		return fmt.Errorf("import profiles: %d not stored: %w", im.res.Failed, lastErr)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("import profiles: %w", err)
	}
	return nil
}

// sniff tells the format from the first byte that is not white space (or a
// byte order mark): '{' opens a JSON Lines file. An empty input is JSON
// Lines with no lines.
func sniff(br *bufio.Reader) (string, error) {
	for n := 64; ; n *= 2 {
		b, err := br.Peek(min(n, br.Size()))
		b = bytes.TrimPrefix(b, bom)
		if i := bytes.IndexFunc(b, func(r rune) bool { return !isSpace(r) }); i >= 0 {
			if b[i] == '{' {
				return FormatJSONL, nil
			}
			return FormatCSV, nil
		}
		if err == io.EOF {
			return FormatJSONL, nil
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return "", err
		}
		if n >= br.Size() {
			return FormatCSV, nil
		}
	}
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }

// bom is the UTF-8 byte order mark spreadsheet programs put first in CSV
// files.
var bom = []byte{0xEF, 0xBB, 0xBF}

// skipBOM skips a byte order mark and returns its length.
func skipBOM(br *bufio.Reader) int64 {
	if b, _ := br.Peek(len(bom)); bytes.Equal(b, bom) {
		n, _ := br.Discard(len(bom))
		return int64(n)
	}
	return 0
}
