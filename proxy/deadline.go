package proxy

import (
	"net"
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

// idleListener wraps every accepted connection in an idleConn.
type idleListener struct {
	net.Listener
	read, write time.Duration
}

func (l idleListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newIdleConn(c, l.read, l.write), nil
}
