package proxy

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// idleConn bounds the time between two successive reads and between two
// successive writes on a connection, the way nginx's proxy_read_timeout and
// send_timeout do. A fixed deadline for a whole response would cut a long
// download that is making progress; an inactivity deadline cuts only a peer
// that went silent.
//
// A deadline is pushed forward only once less than timeout-slack of it is
// left, so a burst of small reads costs one timer update; the effective
// timeout is therefore between timeout-slack and timeout, with slack an
// eighth of the timeout and at most a second.
type idleConn struct {
	net.Conn
	readTimeout, writeTimeout time.Duration
	readSlack, writeSlack     time.Duration
	readUntil, writeUntil     time.Time
	// ownerRead is set when the connection's owner chose the deadline for
	// the next read itself (fasthttp does for its keep-alive wait).
	ownerRead bool
}

func slack(timeout time.Duration) time.Duration {
	return min(timeout/8, time.Second)
}

func newIdleConn(c net.Conn, read, write time.Duration) *idleConn {
	return &idleConn{Conn: c, readTimeout: read, writeTimeout: write, readSlack: slack(read), writeSlack: slack(write)}
}

// setTimeouts changes the inactivity timeouts, from the next read or
// write on. Not safe while another goroutine reads or writes c.
func (c *idleConn) setTimeouts(read, write time.Duration) {
	c.readTimeout, c.writeTimeout = read, write
	c.readSlack, c.writeSlack = slack(read), slack(write)
	// The next read and write arm the new timeouts, even when a deadline
	// from the old ones is further away.
	c.readUntil, c.writeUntil = time.Time{}, time.Time{}
}

func (c *idleConn) Read(p []byte) (int, error) {
	if c.ownerRead {
		c.ownerRead = false
		return c.Conn.Read(p)
	}
	if c.readTimeout > 0 {
		now := time.Now()
		if c.readUntil.Sub(now) < c.readTimeout-c.readSlack {
			c.readUntil = now.Add(c.readTimeout)
			if err := c.Conn.SetReadDeadline(c.readUntil); err != nil {
				return 0, err
			}
		}
	}
	return c.Conn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	if c.writeTimeout > 0 {
		now := time.Now()
		if c.writeUntil.Sub(now) < c.writeTimeout-c.writeSlack {
			c.writeUntil = now.Add(c.writeTimeout)
			if err := c.Conn.SetWriteDeadline(c.writeUntil); err != nil {
				return 0, err
			}
		}
	}
	return c.Conn.Write(p)
}

// SetReadDeadline lets the owner of the connection choose the deadline of
// the next read (fasthttp does for its idle keep-alive wait); the
// inactivity deadline takes over again on the read after. A zero t hands
// the deadline back to the inactivity timeout at once.
func (c *idleConn) SetReadDeadline(t time.Time) error {
	c.readUntil = t
	c.ownerRead = !t.IsZero()
	return c.Conn.SetReadDeadline(t)
}

// SetWriteDeadline is the write-side twin of SetReadDeadline.
func (c *idleConn) SetWriteDeadline(t time.Time) error {
	c.writeUntil = t
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline sets both deadlines.
func (c *idleConn) SetDeadline(t time.Time) error {
	c.readUntil, c.writeUntil = t, t
	return c.Conn.SetDeadline(t)
}

// idleListener wraps every accepted connection in an idleConn. It also
// rides out accept errors that pass (see retryAccept): fasthttp's Serve
// returns on any accept error but a timeout, and the process would exit
// when file descriptors run out.
type idleListener struct {
	net.Listener
	read, write time.Duration
	failed      func(err error, wait time.Duration) // counts and logs a retried accept error
}

func (l idleListener) Accept() (net.Conn, error) {
	var wait time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			return newIdleConn(c, l.read, l.write), nil
		}
		if !retryAccept(err) {
			return nil, err
		}
		// As net/http's Server does: 5 ms, doubling, at most 1 s.
		wait = min(max(2*wait, 5*time.Millisecond), time.Second)
		if l.failed != nil {
			l.failed(err, wait)
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
