package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/internal/testkit"
)

// dialFrom connects to addr from the loopback address local (127.0.0.0/8
// is all loopback on Linux: one machine, several client addresses).
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// served reports whether a GET on c is answered 200.
func served(c net.Conn) bool {
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == 200
}

// closedAtOnce reports whether the server closes c without a word.
func closedAtOnce(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := c.Read(make([]byte, 1))
	return n == 0 && err == io.EOF
}

// trickle writes s to c a byte every gap until the server closes c (or
// s ends), and returns how long the server let it go on and whether it
// was cut before s ended.
func trickle(c net.Conn, s string, gap time.Duration) (time.Duration, bool) {
	start := time.Now()
	closed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, c) // a 408, then EOF
		close(closed)
	}()
	for i := range len(s) {
		select {
		case <-closed:
			return time.Since(start), true
		case <-time.After(gap):
		}
		if _, err := io.WriteString(c, s[i:i+1]); err != nil {
			return time.Since(start), true
		}
	}
	select {
	case <-closed:
		return time.Since(start), true
	case <-time.After(time.Second):
		return time.Since(start), false
	}
}

// TestSlowlorisHeaderIsCutAtHeaderTimeout (issue 15): a header trickled
// at a byte a second stayed open indefinitely (only the time between two
// reads was bounded). limits.header_timeout bounds the whole header, from
// the accept or from a request's first byte after a keep-alive wait; the
// wait itself, and a slow request body, are not cut by it.
func TestSlowlorisHeaderIsCutAtHeaderTimeout(t *testing.T) {
	origin := newRawOrigin(t, map[string]string{"/": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"})
	addr, admin := serveTailorAdmin(t, origin.ln.Addr().String(), "limits: { header_timeout: 1s }\n", "")
	header := "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 100) + "\r\n\r\n"

	c := dialFrom(t, "127.0.0.1", addr)
	took, cut := trickle(c, header, 100*time.Millisecond)
	if !cut || took < 900*time.Millisecond || took > 2500*time.Millisecond {
		t.Errorf("a header trickled from the accept: cut %v after %v, want cut after about 1s", cut, took)
	}

	// After a request, the keep-alive wait is the idle timeout's (90s):
	// a pause longer than header_timeout is fine; the next header gets
	// its own second from its first byte.
	c = dialFrom(t, "127.0.0.1", addr)
	if !served(c) {
		t.Fatal("the first request on a connection was not served")
	}
	time.Sleep(1500 * time.Millisecond)
	if !served(c) {
		t.Fatal("a request after a 1.5s keep-alive pause was not served (header_timeout must not cover the wait)")
	}
	c.SetDeadline(time.Time{})
	took, cut = trickle(c, header, 100*time.Millisecond)
	if !cut || took < 900*time.Millisecond || took > 2500*time.Millisecond {
		t.Errorf("a header trickled after a keep-alive wait: cut %v after %v, want cut after about 1s", cut, took)
	}

	// A pipelined request whose first byte came with the previous one:
	// its header is under the deadline too.
	c = dialFrom(t, "127.0.0.1", addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\nG")
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the first of two pipelined requests: %v", err)
	} else {
		io.Copy(io.Discard, resp.Body)
	}
	c.SetReadDeadline(time.Time{})
	took, cut = trickle(c, header[1:], 100*time.Millisecond)
	if !cut || took > 2500*time.Millisecond {
		t.Errorf("a pipelined header trickled: cut %v after %v, want cut within about 1s", cut, took)
	}

	if n := metric(t, admin, `tailor_rejected_requests_total{reason="timeout"}`); n < 3 {
		t.Errorf("cut headers counted %v times, want 3", n)
	}
}

// TestSlowUploadBodyReachesTheOrigin: header_timeout ends with the
// header; a body sent slower than it (2.4s against 1s) reaches the origin
// whole.
func TestSlowUploadBodyReachesTheOrigin(t *testing.T) {
	got := make(chan string, 1)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
		io.WriteString(w, "ok")
	}))
	defer origin.Close()
	addr := serveTailor(t, origin.Listener.Addr().String(), "limits: { header_timeout: 1s }\n", "")
	c := dialFrom(t, "127.0.0.1", addr)
	body := "0123456789ab"
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n")
	for i := range len(body) {
		time.Sleep(200 * time.Millisecond)
		io.WriteString(c, body[i:i+1])
	}
	c.SetDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a slow upload: %v %v", resp, err)
	}
	if b := <-got; b != body {
		t.Errorf("the origin got %q, want %q", b, body)
	}
}

// TestConnectionsPerIPAreCapped (issue 15): there was no per-client limit,
// so one address could hold every connection. Over max_conns_per_ip, a
// connection is closed as it is accepted; other addresses, and trusted
// proxies, still get in; closing frees the slots.
func TestConnectionsPerIPAreCapped(t *testing.T) {
	origin := newRawOrigin(t, map[string]string{"/": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"})
	addr, admin := serveTailorAdmin(t, origin.ln.Addr().String(), "limits: { max_conns_per_ip: 5 }\n", "")
	var held []net.Conn
	for range 5 {
		c := dialFrom(t, "127.0.0.2", addr)
		if !served(c) {
			t.Fatal("a connection under the cap was not served")
		}
		held = append(held, c)
	}
	if !closedAtOnce(dialFrom(t, "127.0.0.2", addr)) {
		t.Error("a 6th connection from 127.0.0.2 was not closed at once")
	}
	if !served(dialFrom(t, "127.0.0.3", addr)) {
		t.Error("another address was refused too")
	}
	if n := metric(t, admin, `tailor_connections_refused_total{limit="per_ip"}`); n != 1 {
		t.Errorf("per-IP refusals counted: %v, want 1", n)
	}
	for _, c := range held {
		c.Close()
	}
	if !testkit.Within(3*time.Second, 50*time.Millisecond, func() bool { return served(dialFrom(t, "127.0.0.2", addr)) }) {
		t.Error("closed connections did not free their slots")
	}

	// A trusted proxy carries every visitor behind it: no per-IP cap.
	addr = serveTailor(t, origin.ln.Addr().String(), "limits: { max_conns_per_ip: 2 }\ntrusted_proxies: [127.0.0.4]\n", "")
	for i := range 6 {
		if c := dialFrom(t, "127.0.0.4", addr); !served(c) {
			t.Fatalf("connection %d from a trusted proxy was refused", i+1)
		}
	}
}

// TestMaxConnsCapsOpenConnections (issue 15): past limits.max_conns, a
// newcomer takes the place of the connection that has waited longest
// without a request under way (idle, or trickling a header), instead of
// descriptors running out; when every connection has a request under way,
// the newcomer is closed. The gauge shows how many are open.
func TestMaxConnsCapsOpenConnections(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(1500 * time.Millisecond)
		}
		io.WriteString(w, "ok")
	}))
	defer origin.Close()
	addr, admin := serveTailorAdmin(t, origin.Listener.Addr().String(), "limits: { max_conns: 3 }\n", "")

	// Three idle keep-alive connections: a fourth takes the oldest's place.
	var held []net.Conn
	for i := range 3 {
		c := dialFrom(t, "127.0.0."+string(rune('5'+i)), addr)
		if !served(c) {
			t.Fatal("a connection under the cap was not served")
		}
		held = append(held, c)
	}
	if n := metric(t, admin, "tailor_open_connections"); n != 3 {
		t.Errorf("tailor_open_connections = %v, want 3", n)
	}
	if !closedAtOnce(dialFrom(t, "127.0.0.9", addr)) {
		t.Error("a newcomer took the place of a connection idle for less than a second")
	}
	time.Sleep(1100 * time.Millisecond) // they have waited long enough
	if !served(dialFrom(t, "127.0.0.9", addr)) {
		t.Error("a newcomer at max_conns was not served in place of an idle connection")
	}
	if !closedAtOnce(held[0]) {
		t.Error("the longest idle connection was not the one closed")
	}
	if served(held[0]) || !served(held[1]) || !served(held[2]) {
		t.Error("the other idle connections should have stayed")
	}
	if n := metric(t, admin, "tailor_connections_evicted_total"); n != 1 {
		t.Errorf("tailor_connections_evicted_total = %v, want 1", n)
	}

	// Three connections with requests under way: a fourth is refused.
	time.Sleep(1100 * time.Millisecond)
	var wg sync.WaitGroup
	for i := range 3 {
		c := dialFrom(t, "127.0.0."+string(rune('5'+i)), addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
				t.Errorf("a request under way was cut: %v", err)
			}
		}()
	}
	if !testkit.Within(3*time.Second, 20*time.Millisecond, func() bool { return metric(t, admin, "tailor_in_flight_requests") >= 3 }) {
		t.Fatal("the three slow requests are not under way after 3s")
	}
	if !closedAtOnce(dialFrom(t, "127.0.0.9", addr)) {
		t.Error("a newcomer was let in although every connection had a request under way")
	}
	wg.Wait()
	if n := metric(t, admin, `tailor_connections_refused_total{limit="max_conns"}`); n < 1 {
		t.Errorf("max_conns refusals counted: %v", n)
	}
}

// TestSlowlorisFloodDoesNotLockVisitorsOut (issue 15): connections that
// trickle headers fill limits.max_conns; a visitor arriving then still gets
// the page (a trickling connection gives way), within the time an ordinary
// request takes.
func TestSlowlorisFloodDoesNotLockVisitorsOut(t *testing.T) {
	origin := newRawOrigin(t, map[string]string{"/": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"})
	addr, admin := serveTailorAdmin(t, origin.ln.Addr().String(), "limits: { max_conns: 50 }\n", "")
	for i := range 80 {
		c := dialFrom(t, "127.0.0."+fmt.Sprint(2+i%10), addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: a")
	}
	if !testkit.Within(3*time.Second, 20*time.Millisecond, func() bool { return metric(t, admin, "tailor_open_connections") >= 50 }) {
		t.Fatal("the flood does not hold max_conns' 50 connections after 3s")
	}
	time.Sleep(1100 * time.Millisecond) // the flood has waited a second: it gives way
	for i := range 20 {
		start := time.Now()
		if !served(dialFrom(t, "127.0.0.1", addr)) {
			t.Fatalf("visitor %d was locked out by the flood", i+1)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("visitor %d waited %v", i+1, d)
		}
	}
	if n := metric(t, admin, "tailor_connections_evicted_total"); n < 20 {
		t.Errorf("tailor_connections_evicted_total = %v, want at least 20 (30 floods past the cap, 20 visitors)", n)
	}
}

// TestServeSurvivesRunningOutOfFileDescriptors (issue 15): idle
// connections past the open-files limit made accept fail with EMFILE, and
// fasthttp's Serve returned: `tailor serve` exited 3. The real binary (this
// test binary as the CLI) runs under `ulimit -n 64`; 150 idle connections
// exhaust its descriptors; it must keep running, count the errors, and
// serve again once they close.
func TestServeSurvivesRunningOutOfFileDescriptors(t *testing.T) {
	needCommands(t, "bash")
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from the origin")
	}))
	defer origin.Close()
	addr, admin := freeAddr(t), freeAddr(t)
	// max_conns is set past the descriptors: sized from the limit, it
	// would close the extra connections before accept ever failed.
	path := writeFile(t, "tailor.yaml", fmt.Sprintf("listen: %q\norigin: %q\nadmin: { listen: %q }\nlimits: { max_conns: 1000 }\n", addr, origin.URL, admin))
	var stderr syncBuffer
	cmd := exec.Command("bash", "-c", `ulimit -n 64 && exec "$0" serve --config "$1"`, os.Args[0], path)
	cmd.Env = append(os.Environ(), "TAILOR_TEST_MAIN=1")
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		killGroup(cmd.Process.Pid)
		<-exited
	}()
	waitReady(t, admin, 10*time.Second, stderr.String)

	var conns []net.Conn
	for range 150 {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break // the listen backlog is full: the point is made
		}
		conns = append(conns, c)
	}
	// Accept fails, and is retried: tailor says so once and goes on.
	testkit.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if !strings.Contains(stderr.String(), "accepting connections failed") {
			return fmt.Errorf("no accept error logged with %d connections open", len(conns))
		}
		return nil
	})
	select {
	case <-exited:
		t.Fatalf("tailor exited with %d connections open: %v\n%s", len(conns), waitErr, stderr.String())
	default:
	}
	for _, c := range conns {
		c.Close()
	}

	// Served again, within the retry's back-off (at most 1 s a try).
	var body string
	if !testkit.Within(10*time.Second, 100*time.Millisecond, func() bool {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		return body == "hello from the origin"
	}) {
		t.Fatalf("after the connections closed: %q\n%s", body, stderr.String())
	}
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	line := ""
	for _, l := range strings.Split(string(metrics), "\n") {
		if strings.HasPrefix(l, "tailor_accept_errors_total ") {
			line = l
		}
	}
	if line == "" || line == "tailor_accept_errors_total 0" {
		t.Errorf("tailor_accept_errors_total after %d idle connections past ulimit -n 64: %q", len(conns), line)
	}
	if n := strings.Count(stderr.String(), "accepting connections failed"); n != 1 {
		t.Errorf("the accept error was logged %d times, want once (rate-limited)\n%s", n, stderr.String())
	}
	t.Logf("%d idle connections; %s", len(conns), line)
}
