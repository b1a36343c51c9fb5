package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/internal/testkit"
)

// TestMain lets the README's commands run this test binary as the tailor
// command: with TAILOR_TEST_MAIN=1 it is the CLI, as main() is.
func TestMain(m *testing.M) {
	if os.Getenv("TAILOR_TEST_MAIN") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := NewMain(os.Stdout, os.Stderr).Run(ctx, os.Args[1:])
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// consoleStep is one command of a README console block and what it must
// print.
type consoleStep struct {
	cmd  string
	want string
}

// readmeSection returns the README's text between <!-- name:begin --> and
// <!-- name:end -->.
func readmeSection(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "<!-- "+name+":begin -->")
	if ok {
		sec, _, ok = strings.Cut(sec, "<!-- "+name+":end -->")
	}
	if !ok {
		t.Fatalf("README.md has no <!-- %s:begin --> … <!-- %s:end --> section", name, name)
	}
	return sec
}

// fencedBlocks calls f with the lines of every fenced block of the given
// language in text, indented blocks (inside a list item) included.
func fencedBlocks(text, lang string, f func(lines []string)) {
	var (
		lines  []string
		indent string
		in     bool
	)
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		switch {
		case !in && trimmed == "```"+lang:
			in, lines, indent = true, nil, line[:len(line)-len(trimmed)]
		case in && trimmed == "```":
			in = false
			f(lines)
		case in:
			lines = append(lines, strings.TrimPrefix(line, indent))
		}
	}
}

// consoleSteps returns the commands of a section's console blocks, each
// with the output the README shows for it.
func consoleSteps(t *testing.T, section string) []consoleStep {
	t.Helper()
	var steps []consoleStep
	fencedBlocks(section, "console", func(lines []string) {
		for _, line := range lines {
			if cmd, ok := strings.CutPrefix(line, "$ "); ok {
				if strings.HasSuffix(cmd, "\\") {
					// Its next line would read as output: keep
					// README commands on one line.
					t.Fatalf("README.md: a console command continues on the next line: %s", cmd)
				}
				steps = append(steps, consoleStep{cmd: cmd})
			} else if len(steps) > 0 {
				steps[len(steps)-1].want += line + "\n"
			}
		}
	})
	return steps
}

// runConsole runs steps in one bash in dir, as a reader pasting them into
// a terminal would, with the README's addresses replaced, and checks each
// step's exit status and output. After a command that starts tailor in the
// background, it waits for the admin listener's /readyz, as a reader does
// by glancing at the log. Whatever the steps leave running is killed.
func runConsole(t *testing.T, steps []consoleStep, dir string, addrs *strings.Replacer, admin string) {
	t.Helper()
	const mark = "@@tailor-readme-step@@"
	var script strings.Builder
	script.WriteString("set -o pipefail\n")
	for _, s := range steps {
		cmd := addrs.Replace(s.cmd)
		script.WriteString(cmd + "\n")
		fmt.Fprintf(&script, "printf '\\n%s %%d\\n' $?\n", mark)
		if strings.HasSuffix(cmd, "&") {
			// Until it answers, or its process is gone.
			fmt.Fprintf(&script, "bg=$!; for i in $(seq 300); do curl -sf -o /dev/null http://%s/readyz && break; kill -0 $bg 2>/dev/null || break; sleep 0.1; done\n", admin)
		}
	}
	// Output goes to files, not pipes: a server left in the background
	// would hold a pipe open after bash has exited.
	files := t.TempDir()
	out, err := os.Create(filepath.Join(files, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	errs, err := os.Create(filepath.Join(files, "err"))
	if err != nil {
		t.Fatal(err)
	}
	defer errs.Close()
	stderr := func() string { b, _ := os.ReadFile(errs.Name()); return string(b) }
	c := exec.Command("bash", "-c", script.String())
	c.Dir, c.Stdout, c.Stderr = dir, out, errs
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer killGroup(c.Process.Pid)
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the README's commands ran over 2 minutes; stderr:\n%s", stderr())
	}
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, stderr())
	}
	b, _ := os.ReadFile(out.Name())
	chunks := strings.Split(string(b), "\n"+mark+" ")
	if len(chunks) != len(steps)+1 {
		t.Fatalf("%d of %d commands ran; stderr:\n%s", len(chunks)-1, len(steps), stderr())
	}
	for i, s := range steps {
		got := chunks[i]
		if i > 0 {
			status, rest, _ := strings.Cut(chunks[i], "\n")
			if status != "0" {
				t.Errorf("$ %s\nexited %s", steps[i-1].cmd, status)
			}
			got = rest
		}
		if got != s.want {
			t.Errorf("$ %s\nprinted:\n%s\nthe README says:\n%s", s.cmd, got, s.want)
		}
	}
	if status, _, _ := strings.Cut(chunks[len(steps)], "\n"); status != "0" {
		t.Errorf("$ %s\nexited %s", steps[len(steps)-1].cmd, status)
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", stderr())
	}
}

// killGroup kills the process group pgid and waits, up to 10 s, until it
// is gone, so that nothing it left behind still writes into the test's
// folders as they are removed.
func killGroup(pgid int) {
	syscall.Kill(-pgid, syscall.SIGKILL)
	testkit.Within(10*time.Second, 10*time.Millisecond, func() bool { return syscall.Kill(-pgid, 0) == syscall.ESRCH })
}

func needCommands(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			t.Fatalf("the README's commands need %s on the PATH", name)
		}
	}
}

// TestReadmeTourPrintsWhatItSays runs every command of the README's tour
// of the demo, as a reader would paste it, against a running demo, and
// compares what it prints with what the README shows.
func TestReadmeTourPrintsWhatItSays(t *testing.T) {
	needCommands(t, "bash", "curl")
	steps := consoleSteps(t, readmeSection(t, "tour"))
	if len(steps) < 5 {
		t.Fatalf("found %d tour commands in README.md; the markers or the console blocks moved", len(steps))
	}
	listen, admin, _ := startDemo(t)
	runConsole(t, steps, t.TempDir(), strings.NewReplacer("127.0.0.1:8080", listen, "127.0.0.1:9090", admin), admin)
}

// TestReadmeWalkthroughPrintsWhatItSays follows "Put it in front of a
// site": it writes the README's tailor.yaml and rule file, and runs its
// commands (this test binary standing in for ./tailor) in front of a
// small site on loopback.
func TestReadmeWalkthroughPrintsWhatItSays(t *testing.T) {
	needCommands(t, "bash", "curl", "openssl", "awk")
	section := readmeSection(t, "walkthrough")
	origin := httptestSite(t)
	listen, admin, natsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	addrs := strings.NewReplacer(
		`":8080"`, `"`+listen+`"`, "127.0.0.1:8080", listen,
		"127.0.0.1:9090", admin, "127.0.0.1:3000", origin, "127.0.0.1:4222", natsAddr)

	dir := t.TempDir()
	files := 0
	fencedBlocks(section, "yaml", func(lines []string) {
		name, ok := strings.CutPrefix(lines[0], "# ")
		if !ok {
			t.Fatalf("a yaml block of the walkthrough does not start with # <file name>: %q", lines[0])
		}
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(addrs.Replace(strings.Join(lines, "\n")+"\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		files++
	})
	if files != 2 {
		t.Fatalf("found %d files in the walkthrough, want tailor.yaml and rules/home.yaml", files)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	wrapper := "#!/bin/sh\nTAILOR_TEST_MAIN=1 exec '" + strings.ReplaceAll(self, "'", `'\''`) + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "tailor"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}

	steps := consoleSteps(t, section)
	if len(steps) < 8 {
		t.Fatalf("found %d walkthrough commands in README.md; the markers or the console blocks moved", len(steps))
	}
	runConsole(t, steps, dir, addrs, admin)
	if t.Failed() {
		if log, err := os.ReadFile(filepath.Join(dir, "tailor.log")); err == nil {
			t.Logf("tailor.log:\n%s", log)
		}
	}
}

// httptestSite serves a one-page site on loopback, as "your site" of the
// walkthrough, and returns its address.
func httptestSite(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!DOCTYPE html>\n<html><head><title>Your site</title></head>\n<body>\n<p class=\"greeting\">Welcome!</p>\n<main>Our shop.</main>\n</body></html>\n")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
