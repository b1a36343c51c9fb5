package main

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// tourStep is one command of the README's tour and what it must print.
type tourStep struct {
	cmd  string
	want string
}

// readmeTour returns the console commands between the README's tour
// markers, each with the output the README shows for it.
func readmeTour(t *testing.T) []tourStep {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, tour, ok := strings.Cut(string(b), "<!-- tour:begin -->")
	if ok {
		tour, _, ok = strings.Cut(tour, "<!-- tour:end -->")
	}
	if !ok {
		t.Fatal("README.md has no <!-- tour:begin --> … <!-- tour:end --> section")
	}
	var steps []tourStep
	inBlock := false
	sc := bufio.NewScanner(strings.NewReader(tour))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "```console":
			inBlock = true
		case line == "```":
			inBlock = false
		case !inBlock:
		case strings.HasPrefix(line, "$ "):
			steps = append(steps, tourStep{cmd: strings.TrimPrefix(line, "$ ")})
		case len(steps) > 0:
			steps[len(steps)-1].want += line + "\n"
		}
	}
	return steps
}

// TestReadmeTourPrintsWhatItSays runs every command of the README's tour
// of the demo, as a reader would paste it, against a running demo, and
// compares what it prints with what the README shows.
func TestReadmeTourPrintsWhatItSays(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the README's tour needs curl on the PATH")
	}
	steps := readmeTour(t)
	if len(steps) < 5 {
		t.Fatalf("found %d tour commands in README.md; the markers or the console blocks moved", len(steps))
	}
	listen, admin, _ := startDemo(t)
	dir := t.TempDir() // where the commands keep their cookie jar
	for _, s := range steps {
		cmd := strings.NewReplacer("127.0.0.1:8080", listen, "127.0.0.1:9090", admin).Replace(s.cmd)
		c := exec.Command("bash", "-o", "pipefail", "-c", cmd)
		c.Dir = dir
		got, err := c.Output()
		if err != nil {
			t.Errorf("$ %s\nfailed: %v", s.cmd, err)
			continue
		}
		if string(got) != s.want {
			t.Errorf("$ %s\nprinted:\n%s\nthe README says:\n%s", s.cmd, got, s.want)
		}
	}
}
