//go:build unix

package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestNamedPipeInRulesDirIsSkippedWithAWarning(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.yaml"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	rule := "pages:\n  - match: [\"/\"]\n    rules:\n      - { id: a, select: p, remove: true }\n"
	if err := os.WriteFile(filepath.Join(dir, "home.yaml"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if set.RuleCount() != 1 {
		t.Errorf("RuleCount() = %d, want 1", set.RuleCount())
	}
	w := set.Warnings()
	if len(w) != 1 || !errors.Is(w[0], ErrSkippedFile) || !strings.Contains(w[0].Error(), "pipe.yaml: warning: skipped: a named pipe") {
		t.Errorf("Warnings() = %v, want one saying pipe.yaml was skipped", w)
	}
}
