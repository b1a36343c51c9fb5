package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Click goals with the beacon off load, and tailor check says they will
// never be reported, at beacon_path's place.
func TestCheckWarnsOfClickGoalsWithTheBeaconOff(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules")
	os.Mkdir(rules, 0o755)
	if err := os.WriteFile(filepath.Join(rules, "goals.yaml"), []byte("goals:\n  add_to_cart: { click: .add-to-cart }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "tailor.yaml")
	write := func(extra string) {
		if err := os.WriteFile(cfg, []byte("admin: { listen: \"127.0.0.1:0\" }\nrules: { dir: rules }\n"+extra), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	if code, stdout, stderr := run(t, context.Background(), "check", "--config", cfg); code != exitOK || strings.Contains(stderr, "warning") {
		t.Errorf("check with the beacon on: exit %d, %s%s; want 0 and no warning", code, stdout, stderr)
	}
	write("beacon_path: \"\"\n")
	code, stdout, stderr := run(t, context.Background(), "check", "--config", cfg)
	want := cfg + `:3:14: warning: beacon_path: "" turns the beacon off, so the click goals of the rules are never reported: no page gets the goal script`
	if code != exitOK || !strings.Contains(stderr, want) {
		t.Errorf("check with the beacon off: exit %d,\n%s%s\nwant 0 and %q", code, stdout, stderr, want)
	}
}
