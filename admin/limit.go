package admin

import (
	"errors"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/prometheus/client_golang/prometheus"
)

// Failed admin logins are limited per client address (issue 15): after
// maxLoginFailures wrong tokens within loginWindow, an address gets 429
// with Retry-After for every token it presents until the window that
// began with its first failure ends. The admin token is a bearer secret
// with no lockout of its own; 10 guesses a minute make guessing even a
// short one hopeless, and an operator who mistypes waits a minute.
const (
	maxLoginFailures = 10
	loginWindow      = time.Minute
	// loginClients bounds the addresses remembered (some 100 bytes each):
	// an attacker with more addresses than this pushes the oldest out,
	// and gets maxLoginFailures guesses per address it still has.
	loginClients = 16384
)

// Values of tailor_admin_auth_failures_total's result label.
const (
	authWrongToken  = "wrong_token"
	authRateLimited = "rate_limited"
)

// loginLimiter counts failed admin logins per client. It is safe for
// concurrent use.
type loginLimiter struct {
	mu  sync.Mutex
	lru *simplelru.LRU[netip.Addr, loginFailures]
	now func() time.Time
}

// loginFailures are one client's failures in its current window.
type loginFailures struct {
	n     int
	since time.Time // the window's first failure
}

func newLoginLimiter(now func() time.Time) *loginLimiter {
	if now == nil {
		now = time.Now
	}
	lru, _ := simplelru.NewLRU[netip.Addr, loginFailures](loginClients, nil) // errors only for size <= 0
	return &loginLimiter{lru: lru, now: now}
}

// clientKey is what failures are counted by: the address, or for IPv6 its
// /64, which one host usually has all of.
func clientKey(a netip.Addr) netip.Addr {
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// wait returns how long the client must wait before its next try; 0 when
// it may try now.
func (l *loginLimiter) wait(a netip.Addr) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.lru.Peek(clientKey(a))
	if !ok || f.n < maxLoginFailures {
		return 0
	}
	return max(0, f.since.Add(loginWindow).Sub(l.now()))
}

// failed counts a wrong token from the client.
func (l *loginLimiter) failed(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k, now := clientKey(a), l.now()
	f, ok := l.lru.Get(k)
	if !ok || now.Sub(f.since) >= loginWindow {
		f = loginFailures{since: now}
	}
	f.n++
	l.lru.Add(k, f)
}

// authMetrics count the admin requests refused for their token.
type authMetrics struct {
	wrongToken, rateLimited prometheus.Counter
}

// registerAuthMetrics adds tailor_admin_auth_failures_total to reg, or
// takes the one there: a second Admin for one proxy counts into the
// same series.
func registerAuthMetrics(reg prometheus.Registerer) authMetrics {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_admin_auth_failures_total",
		Help: "Admin requests refused for their token: wrong_token (a wrong bearer token or console login), rate_limited (429 to an address after too many wrong ones).",
	}, []string{"result"})
	if err := reg.Register(vec); err != nil {
		var already prometheus.AlreadyRegisteredError
		if !errors.As(err, &already) {
			panic(err) // another metric of that name: a bug, as MustRegister says
		}
		vec = already.ExistingCollector.(*prometheus.CounterVec)
	}
	return authMetrics{wrongToken: vec.WithLabelValues(authWrongToken), rateLimited: vec.WithLabelValues(authRateLimited)}
}

// limited answers 429 when the client has failed too often, and reports
// whether it did.
func (a *Admin) limited(w http.ResponseWriter, r *http.Request) bool {
	wait := a.logins.wait(clientAddr(r))
	if wait <= 0 {
		return false
	}
	a.auth.rateLimited.Inc()
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	apiError(w, http.StatusTooManyRequests, "too many wrong tokens from this address; try again later")
	return true
}

// loginFailed counts a wrong token from the client.
func (a *Admin) loginFailed(r *http.Request) {
	a.auth.wrongToken.Inc()
	a.logins.failed(clientAddr(r))
}
