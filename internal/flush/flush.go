// Package flush copies a streamed body to the visitor as nginx does: in
// large writes while the origin keeps sending, and what has arrived as
// soon as the origin pauses (see below). Copier can also hold what it
// reads, writing only the bytes before a point that a probe moves, for a
// page whose first change is still to come.
package flush

import (
	"bufio"
	"io"
	"reflect"
	"strconv"
	"sync"
	"time"
)

// Flushing like nginx: a streamed body is written to the visitor in large
// writes while the origin keeps sending, and what has arrived is written
// out as soon as the origin pauses. fasthttp, left to itself, does neither:
// it writes a chunked body one origin chunk at a time, each with its own
// flush (a system call per 4 KiB chunk of a dynamic page), and a body of
// known length only when its 128 KiB buffer fills (the first byte of a
// slow download arrives seconds late).
//
// Go cannot ask a socket whether more is ready without blocking, so a
// pause is a flushDelay without a read completing: one goroutine for the
// whole process (flushes, alive only while some copy has bytes pending)
// then writes what is pending while the copy goroutine waits for the
// origin. A timer per response would cost more than the copy: arming one
// wakes the network poller, a futex call per request (a quarter of a
// pass-through's CPU in BenchmarkPersonalizeDynamicPage).

// flushDelay is how long bytes that arrived may wait for more before they
// are written out: long enough that a page arriving in bursts on a fast
// network is written in few large writes, short enough that a visitor
// sees no delay.
const flushDelay = time.Millisecond

// streamBufSize is the copy buffer: a full buffer is written at once.
const streamBufSize = 64 << 10

var streamBufs = sync.Pool{New: func() any { b := make([]byte, streamBufSize); return &b }}

// Copy copies r to w, as described above. w is the body writer
// fasthttp hands to a BodyWriterTo.
func Copy(w io.Writer, r io.Reader) (int64, error) {
	if bw := fixedBufferOf(w); bw != nil {
		c := Copier{bw: bw, Hold: -1}
		n, err := c.runDirect(r)
		c.Stop()
		return n, err
	}
	bp := streamBufs.Get().(*[]byte)
	defer streamBufs.Put(bp)
	c := Copier{W: w, Buf: *bp, Hold: -1}
	_, err := c.Run(r)
	c.Stop()
	return c.Total, err
}

// Copier copies a reader to a body writer through buf. With hold < 0
// it writes everything, reusing buf; with hold >= 0 it keeps every byte it
// reads in buf (growing it, up to limit) and writes only those before hold.
type Copier struct {
	W     io.Writer
	Buf   []byte
	bw    *bufio.Writer // for runDirect, instead of W and Buf
	Hold  int           // see above
	Limit int           // with Hold >= 0: Run stops once Buf holds more
	// probe, when set, moves hold forward when the origin pauses: it is
	// given what has arrived and says how much of it may be written, and
	// whether more can never move that point. It runs under mu, when what
	// is held has doubled since the last probe (probed), so that probing
	// costs at most twice the held bytes.
	Probe  func(held []byte) (hold int, final bool)
	probed int

	mu sync.Mutex
	// buf[written:pending] has arrived and may be written, up to hold; the
	// copy goroutine reads into buf[pending:] without the lock.
	Written, pending int
	Total            int64
	err              error // the first write error
	armed, stopped   bool
	// reading is set while the copy goroutine waits in Read; armedRound is
	// the flushList round in which bytes started waiting.
	reading    bool
	armedRound uint64
}

// How writeLocked writes: the buffer's bytes as they come, pushed to the
// connection (the origin paused), or as the body's last (WriteLast).
const (
	writeMore = iota
	writeFlush
	writeEnd
)

// flushes is the process's list of copies with bytes waiting.
var flushes flushList

// flushList hands copies with bytes waiting to a goroutine that writes
// them out once the origin has paused: the bytes have waited a whole
// round (flushDelay) and the copy goroutine waits in Read. A copy whose
// goroutine is busy (not in Read: on a saturated CPU it may not have run
// for a while) writes by itself when its buffer fills or its body ends,
// so a loaded proxy does not add a write per response. The goroutine runs
// while the list is not empty, and ends when it is.
type flushList struct {
	mu      sync.Mutex
	copiers []*Copier
	spare   []*Copier
	round   uint64
	running bool
}

func (l *flushList) add(c *Copier) {
	l.mu.Lock()
	c.armedRound = l.round // c.mu is held: flush reads it under c.mu
	l.copiers = append(l.copiers, c)
	if !l.running {
		l.running = true
		go l.run()
	}
	l.mu.Unlock()
}

func (l *flushList) run() {
	var keep []*Copier
	for {
		time.Sleep(flushDelay)
		l.mu.Lock()
		l.round++
		round, batch := l.round, l.copiers
		if len(batch) == 0 {
			l.running = false
			l.mu.Unlock()
			return
		}
		l.copiers, l.spare = l.spare[:0], nil
		l.mu.Unlock()
		keep = keep[:0]
		for i, c := range batch {
			if c.flush(round) {
				keep = append(keep, c)
			}
			batch[i] = nil
		}
		l.mu.Lock()
		l.copiers = append(l.copiers, keep...)
		l.spare = batch[:0]
		l.mu.Unlock()
		clear(keep)
	}
}

// Run copies until r ends (eof true) or, when holding, Buf holds more than
// limit (eof false). It returns the first read or write error.
func (c *Copier) Run(r io.Reader) (eof bool, err error) {
	for {
		c.mu.Lock()
		if c.pending == len(c.Buf) {
			if c.Hold < 0 {
				c.writeLocked(writeMore)
				c.Written, c.pending = 0, 0
			} else {
				c.Buf = append(c.Buf, 0)[:c.pending]
				c.Buf = c.Buf[:cap(c.Buf)]
			}
		}
		err := c.err
		c.reading = true
		c.mu.Unlock()
		if err != nil {
			return false, err
		}
		n, rerr := r.Read(c.Buf[c.pending:])
		c.mu.Lock()
		c.reading = false
		c.pending += n
		if rerr != nil || (c.Hold >= 0 && c.pending > c.Limit) {
			if c.Hold < 0 {
				how := writeMore
				if rerr == io.EOF {
					how = writeEnd // fasthttp's final flush carries it
				}
				c.writeLocked(how)
			}
			werr := c.err
			c.mu.Unlock()
			switch {
			case werr != nil:
				return false, werr
			case rerr == io.EOF:
				return true, nil
			}
			return false, rerr
		}
		if (c.ready() > c.Written || c.probeDue()) && !c.armed {
			c.armed = true
			flushes.add(c)
		}
		c.mu.Unlock()
	}
}

// probeDue reports whether probe should run at the next pause.
func (c *Copier) probeDue() bool {
	return c.Probe != nil && c.pending > 2*c.probed
}

// probeLocked runs probe on what is held and moves hold.
func (c *Copier) probeLocked() {
	hold, final := c.Probe(c.Buf[:c.pending])
	c.probed = c.pending
	c.Hold = max(c.Hold, min(hold, c.pending))
	if final {
		c.Probe = nil
	}
}

// runDirect copies r into bw, the connection's own buffer under a body of
// known length (fasthttp's fixedSizeBodyWriter), with no buffer between:
// each Read fills bw's free space, as bufio.Writer.ReadFrom does, and bw
// is flushed when full, at the end (by fasthttp), or by flushes when the
// origin pauses. Under c.mu the flusher may flush bw while a Read fills its
// free space: the flush writes only the bytes before it, and the Write
// after the Read moves the new bytes to where the flush left bw's end.
func (c *Copier) runDirect(r io.Reader) (int64, error) {
	for {
		c.mu.Lock()
		if c.bw.Available() == 0 {
			if err := c.bw.Flush(); err != nil {
				c.mu.Unlock()
				return c.Total, err
			}
		}
		free := c.bw.AvailableBuffer()
		free = free[:cap(free)]
		c.reading = true
		c.mu.Unlock()
		n, rerr := r.Read(free)
		c.mu.Lock()
		c.reading = false
		var werr error
		if n > 0 {
			_, werr = c.bw.Write(free[:n])
			c.Total += int64(n)
			if !c.armed {
				c.armed = true
				flushes.add(c)
			}
		}
		c.mu.Unlock()
		switch {
		case werr != nil:
			return c.Total, werr
		case rerr == io.EOF:
			return c.Total, nil
		case rerr != nil:
			return c.Total, rerr
		}
	}
}

// ready is the end of what may be written now.
func (c *Copier) ready() int {
	if c.Hold >= 0 {
		return min(c.pending, c.Hold)
	}
	return c.pending
}

// Stop ends the flushes from flushes; after it, the caller owns Buf and W.
func (c *Copier) Stop() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
}

// Held returns the bytes read so far; call it after Stop.
func (c *Copier) Held() []byte { return c.Buf[:c.pending] }

// flush runs from flushes in the given round: when the bytes waiting
// have waited a whole round and the copy goroutine waits for the origin,
// it writes them out. It reports whether the copy should stay on the list.
func (c *Copier) flush(round uint64) (keep bool) {
	// Never wait for one copy here: its goroutine may hold c.mu in a write
	// to a visitor who does not read, and every other copy would wait too.
	if !c.mu.TryLock() {
		return true
	}
	switch {
	case c.stopped || !c.armed:
		c.armed = false
		c.mu.Unlock()
		return false
	case c.armedRound+1 >= round || !c.reading:
		c.mu.Unlock()
		return true
	}
	c.armed = false
	c.mu.Unlock()
	// The write itself may block on a slow visitor: not in this goroutine.
	go func() {
		c.mu.Lock()
		if !c.stopped {
			if c.probeDue() {
				c.probeLocked()
			}
			c.writeLocked(writeFlush)
		}
		c.mu.Unlock()
	}()
	return false
}

// writeLocked writes what may be written, as how says.
func (c *Copier) writeLocked(how int) {
	if c.bw != nil {
		if c.err == nil && c.bw.Buffered() > 0 {
			c.err = c.bw.Flush()
		}
		return
	}
	end := c.ready()
	if c.err != nil || end <= c.Written {
		return
	}
	var n int
	var err error
	if how == writeEnd {
		n, err = WriteLast(c.W, c.Buf[c.Written:end])
	} else {
		n, err = c.W.Write(c.Buf[c.Written:end])
	}
	c.Written += n
	c.Total += int64(n)
	if err == nil && how == writeFlush {
		if bw := bufferOf(c.W); bw != nil {
			err = bw.Flush()
		}
	}
	if err != nil {
		c.err = err
	}
}

var bufioWriterType = reflect.TypeFor[*bufio.Writer]()

// WriteLast writes p, the last bytes of a body, to fasthttp's body writer
// w without flushing them: fasthttp flushes after the body's end, and for a
// chunked body its writer flushes every chunk, so the last chunk and the
// end marker would go out in two writes (two system calls per response
// where one does). For the chunked writer the chunk is framed here, into
// its buffer, as fasthttp frames it (RFC 9112 section 7.1: size in hex,
// CRLF, data, CRLF).
func WriteLast(w io.Writer, p []byte) (int, error) {
	bw := chunkedBufferOf(w)
	if bw == nil || len(p) == 0 {
		return w.Write(p)
	}
	var size [18]byte
	bw.Write(strconv.AppendInt(size[:0], int64(len(p)), 16))
	bw.WriteString("\r\n")
	n, err := bw.Write(p)
	if err == nil {
		_, err = bw.WriteString("\r\n")
	}
	return n, err
}

// chunkedBufferOf is bufferOf for fasthttp's writer of a chunked body
// only.
func chunkedBufferOf(w io.Writer) *bufio.Writer { return bufferOfType(w, "chunkedBodyWriter") }

// fixedBufferOf is bufferOf for fasthttp's writer of a body of known
// length only (a chunked body's writer frames each write: its buffer must
// not be written to directly).
func fixedBufferOf(w io.Writer) *bufio.Writer { return bufferOfType(w, "fixedSizeBodyWriter") }

// bufferOfType is bufferOf when w is fasthttp's body writer of type name.
func bufferOfType(w io.Writer, name string) *bufio.Writer {
	t := reflect.TypeOf(w)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Name() != name ||
		t.Elem().PkgPath() != "github.com/valyala/fasthttp" {
		return nil
	}
	return bufferOf(w)
}

// bufferOf returns the *bufio.Writer behind fasthttp's body writer, whose
// first field it is (fixedSizeBodyWriter.w, chunkedBodyWriter.w), or nil
// when w is not such a writer. fasthttp has no exported way to flush a
// streamed body of known length; the field is checked by name and type on
// every call, so a fasthttp that changes it loses only the early flush
// (TestSlowDownloadFirstByteIsFlushed fails then).
func bufferOf(w io.Writer) *bufio.Writer {
	if bw, ok := w.(*bufio.Writer); ok {
		return bw
	}
	v := reflect.ValueOf(w)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	s := v.Elem()
	if s.NumField() == 0 || s.Type().Field(0).Name != "w" || s.Field(0).Type() != bufioWriterType || s.Field(0).IsNil() {
		return nil
	}
	return (*bufio.Writer)(s.Field(0).UnsafePointer())
}
