package rules

import (
	"bytes"
	"fmt"
	"testing"
)

// TestMemoizedContentIsTheTemplatesOutput: a template that reads only
// scalar visitor fields is executed once per distinct value and gives, for
// every visitor, what executing it gives, in every context html/template
// escapes differently (text, markup, URL and plain attributes, class);
// one that reads anything else is not memoized; and the memo is bounded.
func TestMemoizedContentIsTheTemplatesOutput(t *testing.T) {
	cases := []struct {
		src      string
		mode     contentMode
		attr     string
		memoized bool
	}{
		{"for the {{ .Stage }} stage", modeText, "", true},
		{`<p title="{{ .Persona }}">{{ .Stage }}</p><script>var s = {{ .Stage }};</script>`, modeHTML, "", true},
		{"/search?q={{ .TopInterest }}&v={{ .Visits }}", modeAttr, "href", true},
		{"{{ .Stage }}-{{ .NewVisitor }}-{{ .Known }}", modeAttr, "data-x", true},
		{"s-{{ .Stage }}", modeClass, "", true},
		{"Hi {{ .Traits.first_name }}", modeText, "", false},
		{"{{ if .Known }}k{{ end }}", modeText, "", false},
		{"{{ .Stage | printf \"%q\" }}", modeText, "", false},
		{"{{ .ID }}", modeText, "", false},
	}
	stages := []string{"", "awareness", "intent", `"><script>x</script>`, "a b&c", "javascript:alert(1)"}
	for _, tc := range cases {
		ct, err := compileContent("t", tc.src, tc.mode, tc.attr)
		if err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		if got := ct.keys != nil; got != tc.memoized {
			t.Errorf("%q: memoized %v, want %v", tc.src, got, tc.memoized)
		}
		for round := range 2 { // the second round reads the memo
			for i, st := range stages {
				v := &Visitor{ID: fmt.Sprint("v", i), Stage: st, Persona: st, TopInterest: st, Visits: i, NewVisitor: i%2 == 0, Known: i%3 == 0,
					Traits: map[string]any{"first_name": st}}
				got, err := ct.render(v)
				if err != nil {
					t.Fatalf("%q: %v", tc.src, err)
				}
				want, err := ct.execute(v)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%q, stage %q, round %d: %q, want %q", tc.src, st, round, got, want)
				}
			}
		}
		kept := 0
		ct.memo.Range(func(any, any) bool { kept++; return true })
		if tc.memoized && kept != len(stages) {
			t.Errorf("%q: %d outputs kept for %d distinct visitors", tc.src, kept, len(stages))
		}
	}

	ct, err := compileContent("t", "visit {{ .Visits }}", modeText, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 * maxMemo {
		got, err := ct.render(&Visitor{Visits: i})
		if err != nil || string(got) != fmt.Sprint("visit ", i) {
			t.Fatalf("visit %d: %q, %v", i, got, err)
		}
	}
	kept := 0
	ct.memo.Range(func(any, any) bool { kept++; return true })
	if kept != maxMemo {
		t.Errorf("memo holds %d outputs, want the bound %d", kept, maxMemo)
	}
}
