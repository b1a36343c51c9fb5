package listen

import (
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// Conn bounds the time between two successive reads and between two
// successive writes on a connection, the way nginx's proxy_read_timeout and
// send_timeout do. A fixed deadline for a whole response would cut a long
// download that is making progress; an inactivity deadline cuts only a peer
// that went silent.
//
// A deadline is pushed forward only once less than timeout-slack of it is
// left, so a burst of small reads costs one timer update; the effective
// timeout is therefore between timeout-slack and timeout, with slack an
// eighth of the timeout and at most a second.
type Conn struct {
	net.Conn
	readTimeout, writeTimeout time.Duration
	readSlack, writeSlack     time.Duration
	readUntil, writeUntil     time.Time
	// ownerRead is set when the connection's owner chose the deadline for
	// the next read itself (fasthttp does for its keep-alive wait).
	ownerRead bool

	// headerTimeout, when set, bounds a whole request header: from the
	// accept, or from a request's first byte after a keep-alive wait,
	// until headerDone. headerUntil is that deadline while it runs (zero
	// otherwise); the inactivity deadline does not push it back, so a
	// header trickled a byte at a time is cut (slowloris).
	headerTimeout time.Duration
	headerUntil   time.Time

	// release, when set, gives the connection's slot back to the
	// listener's limits, once, on Close.
	release func()

	// limits, when set, lists the connection among those it may close
	// for a newcomer while it waits for a request or reads its header
	// (see Limits.admit); prev and next link it there, under
	// limits.mu.
	limits     *Limits
	prev, next *Conn
	listed     bool
	pinned     bool      // a switched protocol: never listed again (KeepOpen)
	waitSince  time.Time // when it was listed
	// state is connOpen, then connClosed, or connEvicted when the limits
	// closed it for a newcomer first.
	state atomic.Int32
}

const (
	connOpen int32 = iota
	connClosed
	connEvicted
)

// NetConn returns the connection c wraps (as tls.Conn's does), for a
// half-close.
func (c *Conn) NetConn() net.Conn { return c.Conn }

func slack(timeout time.Duration) time.Duration {
	return min(timeout/8, time.Second)
}

func NewConn(c net.Conn, read, write time.Duration) *Conn {
	return &Conn{Conn: c, readTimeout: read, writeTimeout: write, readSlack: slack(read), writeSlack: slack(write)}
}

// SetTimeouts changes the inactivity timeouts, from the next read or
// write on. Not safe while another goroutine reads or writes c.
func (c *Conn) SetTimeouts(read, write time.Duration) {
	c.readTimeout, c.writeTimeout = read, write
	c.readSlack, c.writeSlack = slack(read), slack(write)
	// The next read and write arm the new timeouts, even when a deadline
	// from the old ones is further away.
	c.readUntil, c.writeUntil = time.Time{}, time.Time{}
}

func (c *Conn) Read(p []byte) (int, error) {
	if c.ownerRead {
		c.ownerRead = false
		n, err := c.Conn.Read(p)
		if n > 0 && c.headerTimeout > 0 {
			// The first byte after a keep-alive wait: a request begins.
			c.armHeader(time.Now())
		}
		return n, err
	}
	if !c.headerUntil.IsZero() {
		return c.Conn.Read(p) // under the header's deadline
	}
	if extend(&c.readUntil, c.readTimeout, c.readSlack) {
		if err := c.Conn.SetReadDeadline(c.readUntil); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

func (c *Conn) Write(p []byte) (int, error) {
	if extend(&c.writeUntil, c.writeTimeout, c.writeSlack) {
		if err := c.Conn.SetWriteDeadline(c.writeUntil); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
}

// extend pushes the inactivity deadline until to timeout from now when
// less than timeout-slack of it is left, and reports whether it did: the
// deadline on the connection is then to be set again. A timeout of 0 is
// none.
func extend(until *time.Time, timeout, slack time.Duration) bool {
	if timeout <= 0 {
		return false
	}
	now := time.Now()
	if until.Sub(now) >= timeout-slack {
		return false
	}
	*until = now.Add(timeout)
	return true
}

// SetReadDeadline lets the owner of the connection choose the deadline of
// the next read (fasthttp does for its idle keep-alive wait); the
// inactivity deadline takes over again on the read after. A zero t hands
// the deadline back to the inactivity timeout at once.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if !t.IsZero() && time.Until(t) > bodyDeadlineMark/2 {
		// The server's HeaderReceived hook (see BodyDeadline): the
		// header is in, the body reads under the inactivity timeout.
		c.headerDone()
		return nil
	}
	if t.IsZero() && c.ownerRead && c.headerUntil.IsZero() && c.headerTimeout > 0 {
		// The next request's first byte was already buffered (a
		// pipelined request), so no read saw it: its header starts now.
		c.armHeader(time.Now())
	}
	if t.IsZero() && !c.headerUntil.IsZero() {
		// fasthttp lifts its keep-alive deadline once a request's
		// first byte is in; the header's own deadline stands.
		c.ownerRead = false
		return c.Conn.SetReadDeadline(c.headerUntil)
	}
	c.readUntil = t
	c.ownerRead = !t.IsZero()
	if c.ownerRead && c.limits != nil && !c.pinned {
		c.limits.waiting(c) // a keep-alive wait begins
	}
	return c.Conn.SetReadDeadline(t)
}

// armHeader starts the whole-header deadline at now.
func (c *Conn) armHeader(now time.Time) {
	if c.pinned {
		return
	}
	if c.limits != nil {
		c.limits.waiting(c)
	}
	c.headerUntil = now.Add(c.headerTimeout)
	c.readUntil = c.headerUntil
	c.Conn.SetReadDeadline(c.headerUntil)
}

// headerDone ends the header's deadline: the request header is in, and
// its body (an upload may take long) reads under the inactivity timeout.
func (c *Conn) headerDone() {
	if c.limits != nil {
		c.limits.busy(c)
	}
	if c.headerUntil.IsZero() {
		return
	}
	c.headerUntil = time.Time{}
	c.readUntil = time.Time{} // the next Read sets the inactivity deadline
}

// KeepOpen takes the visitor connection under c (hijacked by fasthttp,
// perhaps under TLS) off the list of those the limits may close for a
// newcomer: after a protocol switch, its deadlines are the splice's, not
// a keep-alive wait.
func KeepOpen(c net.Conn) {
	for {
		switch x := c.(type) {
		case interface{ UnsafeConn() net.Conn }:
			c = x.UnsafeConn()
		case *tls.Conn:
			c = x.NetConn()
		case *Conn:
			if x.limits != nil {
				x.limits.busy(x)
			}
			// No header deadline either: the splice's reads are not
			// requests.
			x.pinned = true
			x.headerTimeout, x.headerUntil = 0, time.Time{}
			return
		default:
			return
		}
	}
}

// Close closes the connection and frees its slot in the listener's
// limits.
func (c *Conn) Close() error {
	// fasthttp may close a connection from two goroutines (its own, and
	// Shutdown's for idle ones): the slot is freed by the first Close.
	prev := c.state.Swap(connClosed)
	if prev == connClosed {
		return c.Conn.Close()
	}
	if c.limits != nil {
		c.limits.busy(c)
		if prev == connEvicted {
			c.limits.overshoot.Add(-1) // the newcomer has its slot now
		}
	}
	if c.release != nil {
		c.release()
	}
	return c.Conn.Close()
}

// bodyDeadlineMark is the read timeout BodyDeadline asks for: a century,
// which nothing else sets, so the connection knows the call.
const bodyDeadlineMark = 100 * 365 * 24 * time.Hour

// BodyDeadline is the server's HeaderReceived hook: called once a
// request header is parsed, before any of its body is read (fasthttp reads
// a small body whole before the handler runs). The read deadline it has
// fasthttp set, bodyDeadlineMark away, tells the Conn that the header
// is done; the deadline itself is not set.
func BodyDeadline(*fasthttp.RequestHeader) fasthttp.RequestConfig {
	return fasthttp.RequestConfig{ReadTimeout: bodyDeadlineMark}
}

// SetWriteDeadline is the write-side twin of SetReadDeadline.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.writeUntil = t
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.readUntil, c.writeUntil = t, t
	return c.Conn.SetDeadline(t)
}

// Listener wraps every accepted connection in an Conn. It also
// rides out accept errors that pass (see retryAccept): fasthttp's Serve
// returns on any accept error but a timeout, and the process would exit
// when file descriptors run out.
type Listener struct {
	net.Listener
	// Read and Write are the inactivity timeouts of every connection.
	Read, Write time.Duration
	// Header bounds a whole request header (limits.header_timeout); 0:
	// none.
	Header time.Duration
	// Limits caps the connections; nil: none.
	Limits *Limits
	// Failed counts and logs an accept error that is retried; nil: none.
	Failed func(err error, wait time.Duration)
}

func (l Listener) Accept() (net.Conn, error) {
	var wait time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			var release func()
			if l.Limits != nil {
				if release = l.Limits.admit(c.RemoteAddr()); release == nil {
					c.Close() // over a limit: the slot is not taken
					continue
				}
			}
			ic := NewConn(c, l.Read, l.Write)
			ic.release, ic.limits = release, l.Limits
			if l.Header > 0 {
				ic.headerTimeout = l.Header
				ic.armHeader(time.Now())
			}
			return ic, nil
		}
		if !retryAccept(err) {
			return nil, err
		}
		// As net/http's Server does: 5 ms, doubling, at most 1 s.
		wait = min(max(2*wait, 5*time.Millisecond), time.Second)
		if l.Failed != nil {
			l.Failed(err, wait)
		}
		time.Sleep(wait)
	}
}

// retryAccept reports whether an accept error passes: out of file
// descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), or a connection
// the client gave up on before it was accepted (ECONNABORTED, EPROTO,
// EPERM from a firewall). A closed listener does not.
func retryAccept(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EPROTO, syscall.EPERM, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
