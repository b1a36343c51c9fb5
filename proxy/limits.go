package proxy

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailor-edge/tailor/config"
)

// connLimits caps the visitor connections open at once, in all and per
// client address (trusted proxies exempt: every visitor behind a load
// balancer shares its address). A connection over a cap is closed as it is
// accepted, before it holds a buffer or a goroutine: under a slowloris
// flood from a few addresses, everyone else still gets in.
type connLimits struct {
	max, perIP int
	trusted    []netip.Prefix

	open atomic.Int64
	mu   sync.Mutex
	byIP map[netip.Addr]int

	refusedMax, refusedIP prometheus.Counter
}

// ConnLimits returns the connection caps cfg asks for; a 0 in
// limits.max_conns is sized from the open-files limit nofile, leaving room
// for origin connections, NATS and files; a 0 in max_conns_per_ip is a
// tenth of max_conns (at least 32).
func ConnLimits(l config.Limits, nofile uint64) (maxConns, perIP int) {
	maxConns, perIP = l.MaxConns, l.MaxConnsPerIP
	if maxConns == 0 {
		n := int(min(nofile, 1<<30))
		reserve := max(64, min(n/2, defaultMaxOriginConns+256))
		maxConns = max(n-reserve, n/2, 1)
	}
	if perIP == 0 {
		perIP = max(32, maxConns/10)
	}
	return maxConns, perIP
}

// openFilesLimit is the process's soft RLIMIT_NOFILE (Go raises it to
// the hard limit at start), or a large number when it cannot be read.
func openFilesLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur == 0 {
		return 1 << 20
	}
	return r.Cur
}

func newConnLimits(cfg *config.Config, trusted []netip.Prefix, reg prometheus.Registerer) *connLimits {
	l := &connLimits{trusted: trusted, byIP: make(map[netip.Addr]int)}
	l.max, l.perIP = ConnLimits(cfg.Limits, openFilesLimit())
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_connections_refused_total",
		Help: "Visitor connections closed as they were accepted, by the limit they were over: max_conns or per_ip (limits.max_conns_per_ip).",
	}, []string{"limit"})
	l.refusedMax, l.refusedIP = refused.WithLabelValues("max_conns"), refused.WithLabelValues("per_ip")
	reg.MustRegister(refused,
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

// admit takes a slot for a connection from addr and returns what frees
// it, or nil when the connection is over a limit and must be closed.
func (l *connLimits) admit(addr net.Addr) (release func()) {
	if l.open.Add(1) > int64(l.max) {
		l.open.Add(-1)
		l.refusedMax.Inc()
		return nil
	}
	ip := netip.Addr{}
	if ta, ok := addr.(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(ta.IP)
		ip = ip.Unmap()
	}
	if !ip.IsValid() || isTrusted(l.trusted, ip) {
		return func() { l.open.Add(-1) }
	}
	l.mu.Lock()
	n := l.byIP[ip]
	if n >= l.perIP {
		l.mu.Unlock()
		l.open.Add(-1)
		l.refusedIP.Inc()
		return nil
	}
	l.byIP[ip] = n + 1
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		if l.byIP[ip] <= 1 {
			delete(l.byIP, ip)
		} else {
			l.byIP[ip]--
		}
		l.mu.Unlock()
		l.open.Add(-1)
	}
}
