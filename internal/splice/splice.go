// Package splice copies bytes both ways between two connections until
// both directions have ended: a visitor's connection after a protocol
// switch (a WebSocket) and the origin's. A direction that reaches end of
// file half-closes its destination, so that the other can finish (a
// WebSocket's closing handshake, RFC 6455 section 7.1.1); an error, the
// pair's idle limit (no byte either way) or Set.CloseAll ends both at once.
package splice

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Why a pair ended.
const (
	ByVisitor  = "visitor"  // the visitor closed, or its connection failed
	ByOrigin   = "origin"   // the origin closed, or its connection failed
	Idle       = "idle"     // no byte either way for the idle limit, or a side stopped reading that long
	ByShutdown = "shutdown" // CloseAll
)

// bufferSize is each direction's copy buffer: a 1 MiB WebSocket message
// crosses in 32 reads, and 10,000 quiet sockets hold 640 MB of buffers
// less than they would at 64 KiB.
const bufferSize = 32 << 10

// Run relays head to the visitor, then splices visitor and origin until
// both directions have ended, or idle passes with no byte either way, and
// calls ended with why the pair ended, before CloseAll may return: what
// ended counts is counted once Shutdown is done. toOrigin and toVisitor
// count the bytes each way. origin is closed when Run returns; visitor,
// hijacked from fasthttp, is closed by fasthttp then.
func (ss *Set) Run(visitor, origin net.Conn, head []byte, idle time.Duration, toOrigin, toVisitor prometheus.Counter, ended func(reason string)) {
	s := &pair{visitor: visitor, origin: origin, idle: idle}
	defer origin.Close()
	if !ss.add(s) {
		s.end(ByShutdown)
		ended(ByShutdown)
		return
	}
	defer ss.remove(s) // after ended: CloseAll waits for it
	s.touch()
	if _, err := visitor.Write(head); err != nil {
		s.end(ByVisitor)
	} else {
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.pipe(origin, visitor, toOrigin, ByVisitor, ByOrigin)
		}()
		s.pipe(visitor, origin, toVisitor, ByOrigin, ByVisitor)
		<-done
	}
	ended(s.reason())
}

// isTimeout reports a deadline passed.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// pair is a visitor's connection spliced to the origin's.
type pair struct {
	visitor, origin net.Conn
	idle            time.Duration
	last            atomic.Int64 // when a byte last moved, either way (Unix nanoseconds)

	mu     sync.Mutex
	why    string // the first reason a direction ended
	closed bool   // both connections are closed
}

func (s *pair) touch() { s.last.Store(time.Now().UnixNano()) }

// pipe copies src to dst until src ends. srcSide and dstSide name the
// side to blame when reading src or writing dst fails.
func (s *pair) pipe(dst, src net.Conn, n prometheus.Counter, srcSide, dstSide string) {
	buf := make([]byte, bufferSize)
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			s.touch()
			nw, werr := dst.Write(buf[:nr])
			n.Add(float64(nw))
			if werr != nil {
				s.end(failedSide(werr, dstSide))
				return
			}
			s.touch()
		}
		switch {
		case rerr == nil:
		case errors.Is(rerr, io.EOF):
			// A clean end of one direction: pass it on, let the other
			// direction finish.
			if s.halfClose(dst, srcSide) {
				return
			}
			s.end(srcSide)
			return
		case isTimeout(rerr) && !s.isClosed():
			// This direction was quiet for its read timeout; the pair is
			// idle only if the other was quiet as well.
			if left := s.idle - time.Duration(time.Now().UnixNano()-s.last.Load()); left > 0 {
				src.SetReadDeadline(time.Now().Add(left))
				continue
			}
			s.end(Idle)
			return
		default:
			s.end(failedSide(rerr, srcSide))
			return
		}
	}
}

// failedSide is the reason a read or write error ends the pair: idle for
// a timeout (a side that stopped reading, or silence), else the side.
func failedSide(err error, side string) string {
	if isTimeout(err) {
		return Idle
	}
	return side
}

// halfClose shuts down the writing side of dst after its peer ended
// cleanly, and records why if it is the first direction to end. It
// reports false when dst cannot be half-closed.
func (s *pair) halfClose(dst net.Conn, why string) bool {
	if closeWrite(dst) != nil {
		return false
	}
	s.mu.Lock()
	if s.why == "" {
		s.why = why
	}
	s.mu.Unlock()
	return true
}

// end closes both connections, which ends both directions, and records
// why unless a reason came first.
func (s *pair) end(why string) {
	s.mu.Lock()
	if s.why == "" {
		s.why = why
	}
	closed := s.closed
	s.closed = true
	s.mu.Unlock()
	if !closed {
		underlying(s.visitor).Close()
		s.origin.Close()
	}
}

func (s *pair) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *pair) reason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.why
}

// underlying returns the connection under fasthttp's hijacked one, whose
// Close does nothing (fasthttp closes the connection when the hijack
// handler returns; closing it before that is how a direction blocked in a
// read is ended). Closing twice is harmless.
func underlying(c net.Conn) net.Conn {
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		return u.UnsafeConn()
	}
	return c
}

// closeWrite half-closes c: a FIN on TCP, close_notify on TLS.
func closeWrite(c net.Conn) error {
	for {
		switch x := c.(type) {
		case interface{ CloseWrite() error }:
			return x.CloseWrite()
		case interface{ UnsafeConn() net.Conn }:
			c = x.UnsafeConn()
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return errors.ErrUnsupported
		}
	}
}

// Set holds the pairs open now, so that a shutdown can end them (fasthttp
// forgets a connection once it is hijacked). Its zero value is ready.
type Set struct {
	mu     sync.Mutex
	open   map[*pair]struct{}
	closed bool
	wg     sync.WaitGroup
}

// add records s, or reports false once closeAll has run.
func (ss *Set) add(s *pair) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return false
	}
	if ss.open == nil {
		ss.open = make(map[*pair]struct{})
	}
	ss.open[s] = struct{}{}
	ss.wg.Add(1)
	return true
}

func (ss *Set) remove(s *pair) {
	ss.mu.Lock()
	delete(ss.open, s)
	ss.mu.Unlock()
	ss.wg.Done()
}

// CloseAll ends every spliced pair, and any spliced later, and waits
// until their goroutines are done or ctx ends.
func (ss *Set) CloseAll(ctx context.Context) error {
	ss.mu.Lock()
	ss.closed = true
	open := make([]*pair, 0, len(ss.open))
	for s := range ss.open {
		open = append(open, s)
	}
	ss.mu.Unlock()
	for _, s := range open {
		s.end(ByShutdown)
	}
	done := make(chan struct{})
	go func() { ss.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
