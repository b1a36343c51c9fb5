package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// Fast-ingest batches (nats-server 2.14 and later, stream setting
// allow_batched): the events of a batch go out as plain messages whose
// reply subjects number them; the server stores each as it comes,
// acknowledges only every few dozen and the last, and reports a gap in
// the numbering. Without an acknowledgement per message to send, route
// and match, a full batch costs the client and the server together about
// a quarter less CPU per event (BenchmarkPublisherThroughput); the
// server's batch bookkeeping per message takes back part of what the
// acknowledgements cost.
//
// The batches are sent in gap mode "fail": the server stores a batch in
// order up to its first missing or failing message and no further, so an
// acknowledgement of batch sequence n means that the batch's first n
// events are stored (or were already, as duplicates by Nats-Msg-Id, which
// the server drops within fast batches too). Everything after the last
// acknowledged sequence is tried again, in order, with the same ids.

// minFastBatch is the fewest events sent as a fast batch; a smaller batch
// is published message by message. A fast batch has a fixed cost that
// per-message publishing has not: it subscribes to its acknowledgements,
// waits for the first before sending the second message, and waits again
// for the commit. On a 2-core machine the two cost the same CPU per event
// at some 16 to 64 events a batch (BenchmarkPublisherThroughput with
// Batch set to those sizes); at 256, fast batches cost a quarter less.
// The queue holds that many when events come faster than they are
// published, which is when the CPU counts.
const minFastBatch = 32

// fastBatchLinger is how long the publisher lets a batch fill when fast
// batches are on and fewer events wait than make a full one: at a few
// thousand events a second a batch then holds a hundred or more and goes
// out as a fast batch, where without the wait each event would be
// published alone, at a third more CPU. Events reach the stream up to
// this much later; readouts do not notice.
const fastBatchLinger = 50 * time.Millisecond

// fastFlow is what fast batches of up to batch events ask of the server:
// an acknowledgement every quarter batch (at most the server's 500), and
// room for a whole batch unacknowledged, as with per-message publishing.
// The server may ask for acknowledgements more often when other
// publishers send fast batches to the stream at the same time; the
// library then lets fewer go unacknowledged.
func fastFlow(batch int) jetstreamext.FastPublishFlowControl {
	flow := min(max(batch/4, 1), 500)
	return jetstreamext.FastPublishFlowControl{
		Flow:               uint16(flow),
		MaxOutstandingAcks: uint16(min((batch+flow-1)/flow+1, 1<<15)),
		AckTimeout:         ackWait,
	}
}

// errFastBatchStopped ends a fast batch that the publisher no longer waits
// for.
var errFastBatchStopped = errors.New("fast batch abandoned")

// fastBatch is one fast batch on its way. The run goroutine builds its
// messages and hands them to a goroutine of the batch's own, because the
// library waits without a context for the first acknowledgement and when
// too many are outstanding; the run goroutine waits for that goroutine,
// for the server reporting the batch failed, or for Close giving up,
// whichever comes first. The batch's goroutine touches nothing of the
// Publisher's, and ends within ackWait once left alone.
type fastBatch struct {
	msgs  []*nats.Msg
	acked atomic.Uint64 // msgs[:acked] are stored
	tried atomic.Int64  // msgs[:tried] were handed to the connection
	stop  atomic.Bool   // the run goroutine stopped waiting: send no more
	done  chan error    // the outcome, buffered

	failOnce sync.Once
	failed   chan struct{} // closed when the server reports the batch failing
	failErr  error         // why; written before failed is closed
}

// publish sends the batch, the last message committing it, and reports
// the outcome on b.done.
func (b *fastBatch) publish(ctx context.Context, js jetstream.JetStream, flow jetstreamext.FastPublishFlowControl) {
	b.done <- b.send(ctx, js, flow)
}

func (b *fastBatch) send(ctx context.Context, js jetstream.JetStream, flow jetstreamext.FastPublishFlowControl) error {
	// The library's ping to recover a lost acknowledgement goes to the
	// subject of the first message, which it learns only from AddMsg:
	// a batch is never committed by its first message.
	if len(b.msgs) < 2 {
		return fmt.Errorf("fast batch of %d: want 2 or more", len(b.msgs))
	}
	fp, err := jetstreamext.NewFastPublisher(js, flow, jetstreamext.WithFastPublisherErrorHandler(b.fail))
	if err != nil {
		return err
	}
	last := len(b.msgs) - 1
	for i, m := range b.msgs[:last] {
		if b.stop.Load() {
			return errFastBatchStopped
		}
		b.tried.Store(int64(i + 1))
		ack, err := fp.AddMsg(m)
		if err != nil {
			return err
		}
		b.ack(ack.AckSequence)
	}
	if b.stop.Load() {
		return errFastBatchStopped
	}
	b.tried.Store(int64(len(b.msgs)))
	ack, err := fp.CommitMsg(ctx, b.msgs[last])
	if err != nil {
		return err
	}
	// In gap mode "fail" the server commits what it stored before a gap
	// or a failing message, and says how much.
	b.ack(ack.BatchSize)
	if n := uint64(len(b.msgs)); ack.BatchSize != n {
		return fmt.Errorf("commit fast batch: %d of %d events stored", min(ack.BatchSize, n), n)
	}
	return nil
}

// ack records that the batch is stored up to sequence seq.
func (b *fastBatch) ack(seq uint64) {
	for {
		had := b.acked.Load()
		if seq <= had || b.acked.CompareAndSwap(had, seq) {
			return
		}
	}
}

// fail is the library's handler of what the server reports on its own: a
// gap, a message it could not store, an error closing the batch. In gap
// mode "fail" each means that the batch will not be stored whole. It runs
// under the library's lock, so it only takes note.
func (b *fastBatch) fail(err error) {
	if _, ok := errors.AsType[*json.SyntaxError](err); ok {
		// The library reads a no-responders status as a reply.
		err = fmt.Errorf("reply not understood, as when no stream stores the subject: %w", err)
	}
	b.failOnce.Do(func() {
		b.failErr = err
		close(b.failed)
	})
}

// sendFast publishes the pending batch as one fast batch and waits for
// its commit. The events up to the last acknowledged batch sequence are
// counted and released; the others stay pending, in their order, for the
// next try. An event larger than the server takes is dropped, as by
// sendAsync. It returns why the batch was not stored whole.
func (p *Publisher) sendFast(ctx context.Context) error {
	batch, retrying := p.pending, p.retrying
	arena := p.arena[:0]
	kept := p.sent[:0]
	maxPayload := p.nc.MaxPayload()
	retries := 0 // of kept: retrying events come first
	for i, e := range batch {
		start := len(arena)
		arena = e.AppendJSON(arena)
		m := p.batchMsg(len(kept))
		m.Subject, m.Data, m.Reply = e.Subject(), arena[start:len(arena):len(arena)], ""
		m.Header[jetstream.MsgIDHeader][0] = e.ID
		// As the client checks it: header and data (Size adds the
		// subject).
		if size := int64(m.Size() - len(m.Subject)); maxPayload > 0 && size > maxPayload {
			p.dropUnsendable(e, size, nats.ErrMaxPayload)
			arena = arena[:start]
			continue
		}
		if i < retrying {
			retries++
		}
		kept = append(kept, e)
	}
	if len(kept) < 2 {
		// Dropping left one event, or none: publish it on its own.
		p.pending = append(batch[:0], kept...)
		clear(batch[len(p.pending):])
		p.retrying = retries
		clear(kept)
		p.sent = kept[:0]
		p.held.Store(int64(len(p.pending)))
		if len(p.pending) == 0 {
			return nil
		}
		return p.sendAsync(ctx)
	}

	b := &fastBatch{msgs: p.msgs[:len(kept)], done: make(chan error, 1), failed: make(chan struct{})}
	bctx, cancel := context.WithCancel(ctx)
	go b.publish(bctx, p.js, p.flow)
	var err error
	finished := true
	select {
	case err = <-b.done:
	case <-b.failed:
		select {
		case err = <-b.done: // it ended meanwhile: that says more
		default:
			err, finished = b.failErr, false
		}
	case <-ctx.Done():
		err, finished = ctx.Err(), false
	}
	if !finished {
		b.stop.Store(true)
	}
	cancel()

	acked := int(min(b.acked.Load(), uint64(len(kept))))
	if err == nil && acked < len(kept) {
		err = fmt.Errorf("commit fast batch: %d of %d events acknowledged", acked, len(kept))
	}
	p.published.Add(uint64(acked))
	for _, e := range kept[:acked] {
		p.release(e)
	}
	p.retried.Add(uint64(min(int(b.tried.Load()), retries)))
	next := append(p.spare[:0], kept[acked:]...)
	clear(kept)
	p.sent = kept[:0]
	p.requeue(batch, next)
	if finished {
		p.arena = arena
	} else {
		// The batch's goroutine may still read the messages.
		p.arena, p.msgs = nil, nil
	}
	if err != nil {
		return fmt.Errorf("fast batch of %d events, %d stored: %w", len(kept), acked, err)
	}
	return nil
}

// batchMsg returns the i-th reusable message of a fast batch, with its
// Nats-Msg-Id and Nats-Expected-Stream headers in place: the connection
// copies a message when it is published, so the messages (and their
// headers) serve batch after batch.
func (p *Publisher) batchMsg(i int) *nats.Msg {
	for len(p.msgs) <= i {
		p.msgs = append(p.msgs, &nats.Msg{Header: nats.Header{
			jetstream.MsgIDHeader:          {""},
			jetstream.ExpectedStreamHeader: {p.stream.Name},
		}})
	}
	return p.msgs[i]
}
