package listen

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailor-edge/tailor/config"
)

// Limits caps the visitor connections open at once, in all and per
// client address (trusted proxies exempt: every visitor behind a load
// balancer shares its address). A connection over the per-address cap is
// closed as it is accepted, before it holds a buffer or a goroutine.
//
// At the cap in all, a newcomer takes the place of the connection that has
// waited longest without a request under way: idle between two requests,
// or still sending its header (as nginx reuses keep-alive connections when
// it runs out), once it has waited a second (evictAfter). A slowloris
// flood holds its connections in that state, so it is what gives way, and
// visitors still get in. Connections with a
// request under way (a handler running, a body streaming, a WebSocket) are
// never closed for another; when there is none to close, the newcomer is.
type Limits struct {
	max, perIP int
	trusted    []netip.Prefix

	open atomic.Int64
	mu   sync.Mutex
	byIP map[netip.Addr]int

	// waitMu guards the list of connections without a request under
	// way, oldest wait first: head is the one to close for a newcomer.
	waitMu     sync.Mutex
	head, tail *Conn
	// overshoot counts connections admitted in place of one closed that
	// has not yet let go of its slot.
	overshoot atomic.Int64

	refusedMax, refusedIP, evicted prometheus.Counter
}

// ConnLimits returns the connection caps cfg asks for; a 0 in
// limits.max_conns is sized from the open-files limit nofile, leaving room
// for originConns connections to the origin, NATS and files; a 0 in max_conns_per_ip is a
// tenth of max_conns (at least 32).
func ConnLimits(l config.Limits, nofile uint64, originConns int) (maxConns, perIP int) {
	maxConns, perIP = l.MaxConns, l.MaxConnsPerIP
	if maxConns == 0 {
		n := int(min(nofile, 1<<30))
		reserve := max(64, min(n/2, originConns+256))
		maxConns = max(n-reserve, n/2, 1)
	}
	if perIP == 0 {
		perIP = max(32, maxConns/10)
	}
	return maxConns, perIP
}

// OpenFilesLimit is the process's soft RLIMIT_NOFILE (Go raises it to
// the hard limit at start), or a large number when it cannot be read.
func OpenFilesLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur == 0 {
		return 1 << 20
	}
	return r.Cur
}

func NewLimits(cfg *config.Config, trusted []netip.Prefix, originConns int, reg prometheus.Registerer) *Limits {
	l := &Limits{trusted: trusted, byIP: make(map[netip.Addr]int)}
	l.max, l.perIP = ConnLimits(cfg.Limits, OpenFilesLimit(), originConns)
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_connections_refused_total",
		Help: "Visitor connections closed as they were accepted, by the limit they were over: max_conns or per_ip (limits.max_conns_per_ip).",
	}, []string{"limit"})
	l.refusedMax, l.refusedIP = refused.WithLabelValues("max_conns"), refused.WithLabelValues("per_ip")
	l.evicted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tailor_connections_evicted_total",
		Help: "Connections without a request under way (idle, or still sending a header) closed at max_conns so that a newcomer could get in.",
	})
	reg.MustRegister(refused, l.evicted,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tailor_open_connections",
			Help: "Visitor connections open now.",
		}, func() float64 { return float64(l.open.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tailor_connection_limit",
			Help: "The most visitor connections tailor keeps open at once (limits.max_conns, or sized from the open-files limit).",
		}, func() float64 { return float64(l.max) }))
	return l
}

// Max is the cap on connections in all.
func (l *Limits) Max() int { return l.max }

// PerIP is the cap on one client address's connections.
func (l *Limits) PerIP() int { return l.perIP }

// IsTrusted reports whether addr belongs to one of the trusted proxies.
func IsTrusted(nets []netip.Prefix, addr netip.Addr) bool {
	for _, n := range nets {
		if n.Contains(addr) {
			return true
		}
	}
	return false
}

// admit takes a slot for a connection from addr and returns what frees
// it, or nil when the connection is over a limit and must be closed.
func (l *Limits) admit(addr net.Addr) (release func()) {
	ip := netip.Addr{}
	if ta, ok := addr.(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(ta.IP)
		ip = ip.Unmap()
	}
	if ip.Is6() {
		// One IPv6 host has a /64 to pick addresses from.
		ip = netip.PrefixFrom(ip, 64).Masked().Addr()
	}
	perIP := ip.IsValid() && !IsTrusted(l.trusted, ip)
	if perIP {
		// The address's own cap first: a client over it is refused
		// before it can make anyone else give way.
		l.mu.Lock()
		n := l.byIP[ip]
		if n >= l.perIP {
			l.mu.Unlock()
			l.refusedIP.Inc()
			return nil
		}
		l.byIP[ip] = n + 1
		l.mu.Unlock()
	}
	if l.open.Add(1) > int64(l.max)+l.overshoot.Load() {
		// Room is made by closing the longest waiting connection; its
		// slot comes back when its goroutine sees the close, a moment
		// later, so the newcomer overshoots until then (at most a
		// sixty-fourth of the cap).
		if l.overshoot.Load() >= int64(l.max/64+16) || !l.evictOldest() {
			l.open.Add(-1)
			if perIP {
				l.leave(ip)
			}
			l.refusedMax.Inc()
			return nil
		}
	}
	if !perIP {
		return func() { l.open.Add(-1) }
	}
	return func() {
		l.leave(ip)
		l.open.Add(-1)
	}
}

// leave gives back a slot of ip's.
func (l *Limits) leave(ip netip.Addr) {
	l.mu.Lock()
	if l.byIP[ip] <= 1 {
		delete(l.byIP, ip)
	} else {
		l.byIP[ip]--
	}
	l.mu.Unlock()
}

// waiting lists c (again, at the tail) among the connections without a
// request under way.
func (l *Limits) waiting(c *Conn) {
	l.waitMu.Lock()
	l.unlink(c)
	c.prev, c.next, c.listed = l.tail, nil, true
	c.waitSince = time.Now()
	if l.tail != nil {
		l.tail.next = c
	} else {
		l.head = c
	}
	l.tail = c
	l.waitMu.Unlock()
}

// busy takes c off the list: a request is under way, or c is closing.
func (l *Limits) busy(c *Conn) {
	l.waitMu.Lock()
	l.unlink(c)
	l.waitMu.Unlock()
}

func (l *Limits) unlink(c *Conn) {
	if !c.listed {
		return
	}
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.tail = c.prev
	}
	c.prev, c.next, c.listed = nil, nil, false
}

// evictAfter is how long a connection must have waited without a request
// under way before a newcomer may take its place: a visitor's browser
// sends its request at once, and one just connected, or between two
// requests of a page, is not pushed out by the next.
const evictAfter = time.Second

// evictOldest closes the connection that has waited longest without a
// request under way, if it has waited evictAfter, and reports whether
// there was one. Its slot is released when its own goroutine closes it
// (see overshoot).
func (l *Limits) evictOldest() bool {
	l.waitMu.Lock()
	c := l.head
	if c != nil && time.Since(c.waitSince) >= evictAfter {
		l.unlink(c)
	} else {
		c = nil
	}
	l.waitMu.Unlock()
	if c == nil {
		return false
	}
	if c.state.CompareAndSwap(connOpen, connEvicted) {
		l.overshoot.Add(1)
		c.Conn.Close() // its pending read fails; fasthttp then closes c
		l.evicted.Inc()
	}
	// Else c closed by itself meanwhile, and its slot is free already.
	return true
}
