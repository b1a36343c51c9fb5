package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/internal/testkit"
)

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
