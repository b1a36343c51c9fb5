package selector

import (
	"math"
	"strings"
	"testing"

	"github.com/andybalholm/cascadia"
	"golang.org/x/net/html"
)

// FuzzSelectorMatch: every selector cascadia accepts compiles, and selects
// on every node of a document what cascadia selects. Pairs on which
// cascadia itself would backtrack for long are skipped.
func FuzzSelectorMatch(f *testing.F) {
	for i, s := range testSelectors {
		f.Add(s, testDocs[i%len(testDocs)])
	}
	f.Add(`a\,b:not( x /**/ ~ y ) , [z="\"]"]>*`, `<a><x></x><y><z z='"]'></z></y></a>`)
	f.Fuzz(func(t *testing.T, src, doc string) {
		if len(src) > 200 || len(doc) > 2000 {
			return
		}
		g, want := cascadia.ParseGroup(src)
		s, err := Compile(src)
		if want != nil {
			if err == nil || err.Error() != want.Error() {
				t.Fatalf("Compile(%q) = %v, cascadia says %v", src, err, want)
			}
			return
		}
		if err != nil {
			t.Fatalf("Compile(%q): %v; cascadia compiles it", src, err)
		}
		if s.String() != g.String() {
			t.Fatalf("Compile(%q).String() = %q, cascadia's %q", src, s.String(), g.String())
		}
		root, err := html.Parse(strings.NewReader(doc))
		if err != nil {
			return
		}
		depth, width := shape(root)
		if math.Pow(float64(depth+width+1), float64(combinators(s.group))) > 1e6 {
			return // cascadia could take minutes (that is issue 14)
		}
		compare(t, s, root)
	})
}

// shape returns a tree's depth and its largest number of children.
func shape(n *html.Node) (depth, width int) {
	kids := 0
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		kids++
		d, w := shape(c)
		depth, width = max(depth, d), max(width, w)
	}
	return depth + 1, max(width, kids)
}

// combinators counts the combinators of a group, arguments included.
func combinators(g []*complexSel) int {
	n := 0
	for _, c := range g {
		n += len(c.ops) - 1
		for _, p := range c.parts {
			for _, r := range p.rel {
				n += combinators(r.arg)
			}
		}
	}
	return n
}
