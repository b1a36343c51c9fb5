package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tailor-edge/tailor/cache"
	"github.com/tailor-edge/tailor/internal/testkit"
)

func profileIDs(t *testing.T, kv jetstream.KeyValue) []string {
	t.Helper()
	keys, err := kv.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for k := range keys.Keys() {
		e, err := kv.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		p, err := cache.ParseProfile(e.Value())
		if err != nil {
			t.Fatalf("profile under %q: %v", k, err)
		}
		ids = append(ids, p.ID)
	}
	return ids
}

var summaryLine = regexp.MustCompile(`^imported (\d+) profiles? from (\S+) in \d+\.\ds \([\d,]+/s\); (\d+) bad lines?\n$`)

func TestImportLoadsProfilesAndExitsByBadLines(t *testing.T) {
	url := testkit.JetStream(t, "", -1).ClientURL()
	cfg := writeFile(t, "tailor.yaml", fmt.Sprintf("nats:\n  url: %q\n  bucket: imported\n", url))
	dir := t.TempDir()
	good := filepath.Join(dir, "good.jsonl")
	os.WriteFile(good, []byte(`{"id":"cust-1","segments":["vip"]}`+"\n"+`{"id":"jane@example.com","stage":"interest"}`+"\n"), 0o644)
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("id,segments,scores.engagement\ncust-2,runner,1.5\ncust-3,vip\ncust-4,,lots\n"), 0o644)

	code, stdout, stderr := run(t, context.Background(), "import", "--config", cfg, good)
	if code != exitOK {
		t.Fatalf("import good.jsonl exit code = %d, want 0\n%s", code, stderr)
	}
	m := summaryLine.FindStringSubmatch(stdout)
	if m == nil || m[1] != "2" || m[2] != good || m[3] != "0" {
		t.Errorf("import good.jsonl printed %q, want the summary of 2 profiles and 0 bad lines", stdout)
	}

	// Flags after FILE work too.
	code, stdout, stderr = run(t, context.Background(), "import", bad, "--config", cfg, "--format", "csv")
	if code != exitInvalid {
		t.Errorf("import bad.csv exit code = %d, want %d", code, exitInvalid)
	}
	if m := summaryLine.FindStringSubmatch(stdout); m == nil || m[1] != "1" || m[3] != "2" {
		t.Errorf("import bad.csv printed %q, want the summary of 1 profile and 2 bad lines", stdout)
	}
	for _, want := range []string{bad + ":3: ", bad + ":4: "} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr = %q, want a line starting %q", stderr, want)
		}
	}

	got := profileIDs(t, testkit.Bucket(t, url, "imported", 1))
	want := map[string]bool{"cust-1": true, "jane@example.com": true, "cust-2": true}
	if len(got) != len(want) {
		t.Errorf("bucket holds %q, want the ids %v", got, want)
	}
	for _, id := range got {
		if !want[id] {
			t.Errorf("bucket holds unexpected profile %q", id)
		}
	}
}

func TestImportStartsTheEmbeddedServerWhenNoProxyRuns(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "tailor.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("nats:\n  embedded: true\n  url: nats://%s\n  data_dir: nats-data\n", addr)), 0o644)
	file := writeFile(t, "p.jsonl", `{"id":"cust-1"}`+"\n")

	code, stdout, stderr := run(t, context.Background(), "import", "--config", cfg, file)
	if code != exitOK || !summaryLine.MatchString(stdout) {
		t.Fatalf("import = %d, %q, want 0 and a summary\n%s", code, stdout, stderr)
	}
	// The server is gone with the import; the profile stayed in data_dir,
	// relative to the config file.
	url := testkit.JetStream(t, filepath.Join(dir, "nats-data"), -1).ClientURL()
	if got := profileIDs(t, testkit.Bucket(t, url, "tailor_profiles", 1)); len(got) != 1 || got[0] != "cust-1" {
		t.Errorf("data_dir bucket holds %q, want [cust-1]", got)
	}
}

func TestImportUsesTheRunningProxysEmbeddedServer(t *testing.T) {
	url := testkit.JetStream(t, "", -1).ClientURL() // stands for the one a running "tailor serve" with embedded: true started
	cfg := writeFile(t, "tailor.yaml", fmt.Sprintf("nats:\n  embedded: true\n  url: %q\n  data_dir: %q\n", url, t.TempDir()))
	file := writeFile(t, "p.jsonl", `{"id":"cust-1"}`+"\n")
	if code, stdout, stderr := run(t, context.Background(), "import", "--config", cfg, file); code != exitOK {
		t.Fatalf("import = %d, %q\n%s", code, stdout, stderr)
	}
	if got := profileIDs(t, testkit.Bucket(t, url, "tailor_profiles", 1)); len(got) != 1 {
		t.Errorf("running server's bucket holds %q, want [cust-1]", got)
	}
}

func TestImportRefusesBadUsageAndConfig(t *testing.T) {
	nowhere := writeFile(t, "tailor.yaml", "nats: { url: \"\" }\n")
	csvFile := writeFile(t, "p.csv", "id,colour\ncust-1,red\n")
	url := testkit.JetStream(t, "", -1).ClientURL()
	withNATS := writeFile(t, "tailor.yaml", fmt.Sprintf("nats: { url: %q }\n", url))
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"import", "--config", withNATS}, exitUsage, "missing FILE"},
		{[]string{"import", "--config", withNATS, "a.jsonl", "b.jsonl"}, exitUsage, "one FILE"},
		{[]string{"import", "--config", withNATS, "--format", "xml", csvFile}, exitUsage, `--format "xml"`},
		{[]string{"import", "--config", nowhere, csvFile}, exitInvalid, "tailor import: nats has no url and embedded is false: no NATS to use"},
		{[]string{"import", "--config", withNATS, "/nonexistent/p.jsonl"}, exitInvalid, "no such file"},
		{[]string{"import", "--config", withNATS, csvFile}, exitInvalid, csvFile + `:1: csv header: unknown column "colour"`},
	} {
		code, _, stderr := run(t, context.Background(), tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("tailor %q = %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.stderr)
		}
	}
}

func TestImportExitsRuntimeWhenNATSIsDown(t *testing.T) {
	cfg := writeFile(t, "tailor.yaml", fmt.Sprintf("nats: { url: %q }\n", "nats://"+freeAddr(t)))
	file := writeFile(t, "p.jsonl", `{"id":"cust-1"}`+"\n")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	code, _, stderr := run(t, ctx, "import", "--config", cfg, file)
	if code != exitRuntime || !strings.Contains(stderr, "no profile bucket") {
		t.Errorf("import with NATS down = %d, %q; want %d and a message about the bucket", code, stderr, exitRuntime)
	}
}
