package rewrite

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/andybalholm/cascadia"

	"github.com/tailor-edge/tailor/internal/testkit"
)

// segmentAll rewrites page with a Segmenter as the proxy does: the page
// arrives chunk bytes at a time, and once window bytes are held, Next cuts
// what it can. It returns the output and how many cuts were made.
func segmentAll(t testing.TB, page []byte, sels []cascadia.Matcher, edits []Edit, chunk, window int, every int32) ([]byte, int, error) {
	t.Helper()
	out, cuts, _, err := segmentApplied(t, page, sels, edits, chunk, window, every)
	return out, cuts, err
}

// segmentApplied is segmentAll that also returns the Segmenter, for its
// counts.
func segmentApplied(t testing.TB, page []byte, sels []cascadia.Matcher, edits []Edit, chunk, window int, every int32) ([]byte, int, *Segmenter, error) {
	t.Helper()
	s, ok := NewSegmenter(sels, edits)
	if !ok {
		t.Fatalf("selectors not local")
	}
	s.every = every
	var out, held []byte
	cuts := 0
	for off := 0; off < len(page); {
		n := min(chunk, len(page)-off)
		held = append(held, page[off:off+n]...)
		off += n
		final := off == len(page)
		if !final && len(held) < window {
			continue
		}
		o, used, err := s.Next(out, held, final)
		if err != nil {
			return nil, cuts, s, err
		}
		out = o
		if !final && used > 0 {
			cuts++
		}
		held = append(held[:0], held[used:]...)
	}
	if len(page) == 0 {
		o, _, err := s.Next(out, nil, true)
		return o, 0, s, err
	}
	return out, cuts, s, nil
}

// laterRootTag finds an <html> or <body> start tag with attributes after
// the first of its kind: the one case where the Segmenter may have sent a
// start-tag edit that Compile leaves out (see Segmenter).
var laterRootTag = regexp.MustCompile(`(?is)<(html|body)\b.*<(html|body)[\s/]+[^\s/>]`)

// TestSegmenterRendersWhatRenderRenders: on every document and on the
// test pages, with local selectors and edits of every kind, the pieces the
// Segmenter renders, cut as often as it can, are Render's output of the
// whole page.
func TestSegmenterRendersWhatRenderRenders(t *testing.T) {
	docs := diffDocs(t)
	ms, texts := selectorsWhere(t, Local, diffSelectors)
	if len(ms) < 8 {
		t.Fatalf("only %d local selectors: %q", len(ms), texts)
	}
	editsFor := func(si int) [][]Edit {
		return [][]Edit{
			{{Sel: si, Op: AddClass, Value: []byte("seg")}, {Sel: (si + 1) % len(ms), Op: Replace, Value: []byte("<i>r</i>")}},
			{{Sel: si, Op: Before, Value: []byte("[b]")}, {Sel: si, Op: After, Value: []byte("[a]")}, {Sel: si, Op: Append, Value: []byte("[z]")},
				{Sel: si, Op: SetAttr, Name: "data-s", Value: []byte("1")}, {Sel: (si + 2) % len(ms), Op: Inner, Value: []byte("[in]")}},
		}
	}
	var pairs, cutPairs, cuts, same, excused, pageCuts int
	for di, d := range docs {
		if raceOn && di%4 != 0 && len(d.Data) < 20000 {
			continue // the race detector makes parsing ~10x slower: a sample
		}
		tpl, err := Compile(d.Data, ms)
		if err != nil {
			continue
		}
		every, window, chunk := int32(16), 24, 7
		if len(d.Data) > 20000 {
			every, window, chunk = 512, 4096, 1500
		}
		for si := range ms {
			if raceOn && si%4 != 0 {
				continue
			}
			for _, edits := range editsFor(si) {
				wantApplied := make([]bool, len(edits))
				want := tpl.RenderApplied(nil, edits, wantApplied)
				got, n, seg, err := segmentApplied(t, d.Data, ms, edits, chunk, window, every)
				if err != nil {
					t.Errorf("%s %q: %v", d.Name, texts[si], err)
					continue
				}
				pairs++
				if n > 0 {
					cutPairs++
					cuts += n
				}
				if len(d.Data) > 20000 {
					pageCuts += n
				}
				switch {
				case bytes.Equal(got, want):
					same++
					for k := range edits {
						if seg.Applied(k) != wantApplied[k] {
							t.Errorf("%s %q: Segmenter.Applied(%d) = %v, RenderApplied says %v", d.Name, texts[si], k, seg.Applied(k), wantApplied[k])
						}
					}
				case laterRootTag.Match(d.Data):
					excused++
				default:
					t.Errorf("%s %q %v (%d cuts): segmented output differs: %s", d.Name, texts[si], edits[0].Op, n, testkit.Differs(string(got), string(want)))
				}
			}
		}
	}
	t.Logf("%d (document, selector, edits) triples, %d of them cut (%d cuts, %d in the large test pages): %d the same as Render, %d differ on a page with a later <html>/<body> tag with attributes",
		pairs, cutPairs, cuts, pageCuts, same, excused)
	// Most html5lib documents are tables, misnested formatting and the
	// like, with no safe point; the large pages have many.
	if cutPairs < pairs/10 || pageCuts < 20 {
		t.Errorf("only %d of %d triples were cut at all, %d cuts in the large pages: the test does not exercise the Segmenter", cutPairs, pairs, pageCuts)
	}
}

// FuzzSegmenter: on any page, cut in pieces as often as safe points allow,
// the Segmenter's output is Render's (but for the later <html>/<body> tag
// case), and it never panics.
func FuzzSegmenter(f *testing.F) {
	for _, s := range []string{
		"<!DOCTYPE html><p>a<div>b</div><ul><li>x<li>y</ul><span id=s>z</span>",
		"<div><p>one<p>two</div><div><b>x</b>y</div>", "<body class=a><p>x</p><body id=b>",
		"<p>a <<div>b</div>", "x<table><tr><td>y</table><div>z</div>", "<svg><g></g></svg><p>q",
		"\ufeff<p>bom</p><p>two</p>", "<pre>\n\nx</pre><p>y", "<a href=x>l</a><p><b>n</p>m",
	} {
		f.Add([]byte(s), uint8(3))
	}
	ms := selMatchers(f, fuzzSelectors...)
	f.Fuzz(func(t *testing.T, page []byte, chunk uint8) {
		tpl, err := Compile(page, ms)
		if err != nil {
			return
		}
		want := tpl.Render(nil, fuzzEdits)
		got, _, err := segmentAll(t, page, ms, fuzzEdits, int(chunk%32)+1, 16, 8)
		if err != nil {
			t.Fatalf("Segmenter: %v where Compile succeeds", err)
		}
		if !bytes.Equal(got, want) && !laterRootTag.Match(page) {
			t.Fatalf("segmented output differs: %s\npage %q", testkit.Differs(string(got), string(want)), page)
		}
	})
}
