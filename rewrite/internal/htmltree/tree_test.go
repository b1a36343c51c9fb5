package htmltree

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/net/html"

	"github.com/tailor-edge/tailor/rewrite/internal/html5lib"
)

// testDocs returns the html5lib tree-construction documents and the
// rewrite package's test pages (the benchmark page among them).
func testDocs(t *testing.T) []html5lib.Doc {
	t.Helper()
	dir := html5lib.Dir("../..")
	if dir == "" {
		t.Fatal("html5lib corpus not found in rewrite/internal/html5lib/testdata; set TAILOR_HTML5LIB_CORPUS")
	}
	docs, err := html5lib.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	pages, _ := filepath.Glob("../../testdata/*.html")
	if len(pages) == 0 {
		t.Fatal("no test pages in rewrite/testdata")
	}
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, html5lib.Doc{Name: filepath.Base(p), Data: b})
	}
	return docs
}

// TestTreeMatchesHTMLParse checks that the fork builds, node for node, the
// tree golang.org/x/net/html builds: selectors must see the same document.
func TestTreeMatchesHTMLParse(t *testing.T) {
	docs := testDocs(t)
	for _, d := range docs {
		want, werr := html.Parse(bytes.NewReader(d.Data))
		got, gerr := Parse(d.Data)
		if (werr != nil) != (gerr != nil) {
			t.Errorf("%s: Parse error %v, html.Parse error %v", d.Name, gerr, werr)
			continue
		}
		if werr != nil {
			continue
		}
		if w, g := html5lib.Tree(want), html5lib.Tree(got.Doc); w != g {
			t.Errorf("%s: tree differs from html.Parse\n--- html.Parse\n%s--- Parse\n%s", d.Name, w, g)
		}
		if int(got.Elems[len(got.Elems)-1].End) > len(d.Data) {
			t.Errorf("%s: offsets past the input", d.Name)
		}
	}
	t.Logf("%d documents", len(docs))
}

func BenchmarkHTMLParse(b *testing.B) {
	p, _ := os.ReadFile("../../testdata/bench-page.html")
	b.ReportAllocs()
	for b.Loop() {
		html.Parse(bytes.NewReader(p))
	}
}

func BenchmarkParse(b *testing.B) {
	p, _ := os.ReadFile("../../testdata/bench-page.html")
	b.ReportAllocs()
	for b.Loop() {
		Parse(p)
	}
}
