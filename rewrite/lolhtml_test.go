package rewrite

import (
	"bytes"
	"os"
	"testing"
)

// TestRenderIsLolHTMLsOutput: the five rewrites of the benchmarks give,
// byte for byte, the page lol-html gives for them (bench/lolhtml/
// rewrite.mjs --out, kept in testdata), so that the two benchmarks compare
// the same work.
func TestRenderIsLolHTMLsOutput(t *testing.T) {
	want, err := os.ReadFile("testdata/bench-page.lolhtml.out")
	if err != nil {
		t.Fatal(err)
	}
	got := benchTemplate(t).Render(nil, benchEdits)
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("Render gives %d bytes, lol-html %d; they part at %d: %q vs %q", len(got), len(want), i,
			got[i:min(len(got), i+80)], want[i:min(len(want), i+80)])
	}
}
