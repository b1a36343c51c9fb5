package rewrite

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/andybalholm/cascadia"
)

var update = flag.Bool("update", false, "rewrite the golden files testdata/*.expected.html")

// goldenEdit is one edit in a testdata/<case>.edits.json file.
type goldenEdit struct {
	Select string `json:"select"`
	Op     string `json:"op"`
	Name   string `json:"name"`
	Value  string `json:"value"`
}

func parseOp(s string) (Op, bool) {
	for o := Replace; o <= RemoveClass; o++ {
		if o.String() == s {
			return o, true
		}
	}
	return 0, false
}

// loadCase reads testdata/<name>.src.html and its edits; it returns the
// page, the selectors (one per distinct select string, in order) and the
// edits.
func loadCase(t *testing.T, name string) ([]byte, []cascadia.Matcher, []string, []Edit) {
	t.Helper()
	page, err := os.ReadFile(filepath.Join("testdata", name+".src.html"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("testdata", name+".edits.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ges []goldenEdit
	if err := json.Unmarshal(raw, &ges); err != nil {
		t.Fatalf("%s.edits.json: %v", name, err)
	}
	var (
		sels  []cascadia.Matcher
		names []string
		edits []Edit
		index = map[string]int{}
	)
	for _, g := range ges {
		i, ok := index[g.Select]
		if !ok {
			m, err := cascadia.Compile(g.Select)
			if err != nil {
				t.Fatalf("%s.edits.json: selector %q: %v", name, g.Select, err)
			}
			i = len(sels)
			index[g.Select] = i
			sels = append(sels, m)
			names = append(names, g.Select)
		}
		op, ok := parseOp(g.Op)
		if !ok {
			t.Fatalf("%s.edits.json: unknown op %q", name, g.Op)
		}
		edits = append(edits, Edit{Sel: i, Op: op, Name: g.Name, Value: []byte(g.Value)})
	}
	return page, sels, names, edits
}

// TestGolden renders testdata/<case>.src.html with the edits of
// <case>.edits.json and compares the result with <case>.expected.html
// (go test -run Golden -update rewrites those).
func TestGolden(t *testing.T) {
	srcs, err := filepath.Glob("testdata/*.src.html")
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) == 0 {
		t.Fatal("no golden cases")
	}
	for _, src := range srcs {
		name := strings.TrimSuffix(filepath.Base(src), ".src.html")
		t.Run(name, func(t *testing.T) {
			page, sels, names, edits := loadCase(t, name)
			tpl, err := Compile(page, sels)
			if err != nil {
				t.Fatal(err)
			}
			if got := tpl.Render(nil, nil); !bytes.Equal(got, page) {
				t.Fatal("Render(nil) differs from the page")
			}
			for i, n := range names {
				t.Logf("%-24q matched %d, skipped %d; start tags: matched %d, skipped %d",
					n, tpl.Matched(i), tpl.Skipped(i), tpl.TagMatched(i), tpl.TagSkipped(i))
			}
			got := tpl.Render(nil, edits)
			path := filepath.Join("testdata", name+".expected.html")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Render differs from %s:\n--- got\n%s\n--- want\n%s", path, got, want)
			}
		})
	}
}
