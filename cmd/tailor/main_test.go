package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/internal/testkit"
)

// syncBuffer is a bytes.Buffer safe to write from the serving goroutine
// while the test reads it.
type syncBuffer = testkit.Buffer

func run(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb syncBuffer
	code = NewMain(&out, &errb).Run(ctx, args)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckReportsEveryProblemWithPosition(t *testing.T) {
	os.Unsetenv("TAILOR_TEST_UNSET_VARIABLE")
	path := writeFile(t, "tailor.yaml", `listen: ":8080"
origin: "http://127.0.0.1:3000"
listn: ":9000"
timeouts:
  connect: 2 seconds
admin:
  token: "${TAILOR_TEST_UNSET_VARIABLE}"
`)
	code, _, stderr := run(t, context.Background(), "check", "--config", path)
	if code != exitInvalid {
		t.Errorf("check exit code = %d, want %d", code, exitInvalid)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 3 {
		t.Fatalf("check printed %d lines, want one per problem (3):\n%s", len(lines), stderr)
	}
	for i, want := range []string{
		regexp.QuoteMeta(path) + `:3:1: .*unknown key "listn"`,
		regexp.QuoteMeta(path) + `:5:12: .*duration`,
		regexp.QuoteMeta(path) + `:7:\d+: .*TAILOR_TEST_UNSET_VARIABLE`,
	} {
		if !regexp.MustCompile(want).MatchString(lines[i]) {
			t.Errorf("line %d = %q, want match for %q", i+1, lines[i], want)
		}
	}
}

func TestCheckAcceptsTheExampleConfigs(t *testing.T) {
	t.Setenv("TAILOR_COOKIE_KEY", "a-cookie-key-for-the-check-0123456789")
	for _, path := range []string{"../../examples/tailor.yaml", "../../examples/compose/tailor.yaml"} {
		code, stdout, stderr := run(t, context.Background(), "check", "--config", path)
		if code != exitOK {
			t.Errorf("check %s = %d, want 0\n%s", path, code, stderr)
		}
		if !strings.Contains(stdout, "rules: ok") {
			t.Errorf("check %s printed %q, want the rules ok", path, stdout)
		}
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, exitUsage},
		{[]string{"frobnicate"}, exitUsage},
		{[]string{"check", "--no-such-flag"}, exitUsage},
		{[]string{"check", "--config", "/nonexistent/tailor.yaml"}, exitInvalid},
		{[]string{"version"}, exitOK},
	} {
		if code, _, _ := run(t, context.Background(), tc.args...); code != tc.want {
			t.Errorf("tailor %q exit code = %d, want %d", tc.args, code, tc.want)
		}
	}
}

// slowly answers body 300 ms after a request comes, long enough for a
// test to shut down while it is in flight; arrived tells the test that it
// has come.
func slowly(body string) (h http.HandlerFunc, arrived <-chan struct{}) {
	came := make(chan struct{}, 1)
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case came <- struct{}{}:
		default:
		}
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, body)
	}, came
}

// awaitArrival waits for a request to reach the origin of slowly.
func awaitArrival(t *testing.T, arrived <-chan struct{}) {
	t.Helper()
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the request did not reach the origin within 5s")
	}
}

func TestServeProxiesAndDrainsOnSignal(t *testing.T) {
	slow, arrived := slowly("hello from the origin")
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			slow(w, r)
			return
		}
		io.WriteString(w, "hello from the origin")
	}))
	defer origin.Close()
	addr, admin := freeAddr(t), freeAddr(t)
	path := writeFile(t, "tailor.yaml", fmt.Sprintf("listen: %q\norigin: %q\nadmin: { listen: %q }\n", addr, origin.URL, admin))

	// The container health check: nothing listens yet.
	if code, _, _ := run(t, context.Background(), "health", "--config", path); code != exitRuntime {
		t.Errorf("tailor health with no proxy running: exit %d, want %d", code, exitRuntime)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var stderr syncBuffer
	go func() {
		done <- NewMain(io.Discard, &stderr).Run(ctx, []string{"serve", "--config", path, "--log-format", "json"})
	}()

	waitReady(t, admin, 5*time.Second, stderr.String)
	if code, out, errs := run(t, context.Background(), "health", "--config", path); code != exitOK || !strings.Contains(out, "ready") {
		t.Errorf("tailor health with the proxy ready: exit %d, %q %q", code, out, errs)
	}
	answer := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			answer <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answer <- string(b)
	}()
	awaitArrival(t, arrived)
	cancel() // what SIGTERM does
	if got := <-answer; got != "hello from the origin" {
		t.Errorf("in-flight request during SIGTERM got %q", got)
	}
	if code := <-done; code != exitOK {
		t.Errorf("serve exit code = %d, want 0\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), `"msg":"tailor serving"`) {
		t.Errorf("--log-format json did not log JSON:\n%s", stderr.String())
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(testkit.FreePort(t))
}

func TestSIGHUPReloadsRules(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, `<p class="greeting">Welcome!</p>`)
	}))
	defer origin.Close()
	dir := t.TempDir()
	rulesDir := filepath.Join(dir, "rules")
	os.Mkdir(rulesDir, 0o755)
	writeRule := func(text string) {
		if err := os.WriteFile(filepath.Join(rulesDir, "home.yaml"), []byte(
			"pages:\n  - match: [\"/\"]\n    rules:\n      - id: greet\n        select: .greeting\n        text: \""+text+"\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeRule("first")
	addr, admin := freeAddr(t), freeAddr(t)
	path := filepath.Join(dir, "tailor.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf("listen: %q\norigin: %q\nadmin: { listen: %q }\nrules: { dir: rules, watch: false }\n", addr, origin.URL, admin)), 0o644)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- NewMain(io.Discard, io.Discard).Run(ctx, []string{"serve", "--config", path}) }()
	defer func() { cancel(); <-done }()

	home := "http://" + addr + "/"
	testkit.CheckFor(t, 5*time.Second, 20*time.Millisecond, pageContains(home, "", ">first<"))
	writeRule("second")
	// Time for a watch, were there one, to reload: nothing to wait for.
	time.Sleep(100 * time.Millisecond)
	if err := pageContains(home, "", ">first<")(); err != nil {
		t.Fatalf("rules changed without SIGHUP while watch is off: %v", err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testkit.CheckFor(t, 5*time.Second, 20*time.Millisecond, pageContains(home, "", ">second<"))
}
