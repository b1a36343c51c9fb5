package content

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"
)

// visitor stands for the data package rules renders with (rules.Visitor),
// which this package must not import.
type visitor struct {
	ID, Stage, Persona, TopInterest string
	Visits                          int
	NewVisitor, Known               bool
	Traits                          map[string]any
}

var visitorFields = map[string]func(*visitor) string{
	"Stage":       func(v *visitor) string { return v.Stage },
	"Persona":     func(v *visitor) string { return v.Persona },
	"TopInterest": func(v *visitor) string { return v.TopInterest },
	"Visits":      func(v *visitor) string { return strconv.Itoa(v.Visits) },
	"NewVisitor":  func(v *visitor) string { return strconv.FormatBool(v.NewVisitor) },
	"Known":       func(v *visitor) string { return strconv.FormatBool(v.Known) },
}

// TestMemoizedContentIsTheTemplatesOutput: a template that reads only
// scalar visitor fields is executed once per distinct value and gives, for
// every visitor, what executing it gives, in every context html/template
// escapes differently (text, markup, URL and plain attributes, class);
// one that reads anything else is not memoized; and the memo is bounded.
func TestMemoizedContentIsTheTemplatesOutput(t *testing.T) {
	cases := []struct {
		src      string
		mode     Mode
		attr     string
		memoized bool
	}{
		{"for the {{ .Stage }} stage", Text, "", true},
		{`<p title="{{ .Persona }}">{{ .Stage }}</p><script>var s = {{ .Stage }};</script>`, HTML, "", true},
		{"/search?q={{ .TopInterest }}&v={{ .Visits }}", Attr, "href", true},
		{"{{ .Stage }}-{{ .NewVisitor }}-{{ .Known }}", Attr, "data-x", true},
		{"s-{{ .Stage }}", Class, "", true},
		{"Hi {{ .Traits.first_name }}", Text, "", false},
		{"{{ if .Known }}k{{ end }}", Text, "", false},
		{"{{ .Stage | printf \"%q\" }}", Text, "", false},
		{"{{ .ID }}", Text, "", false},
	}
	stages := []string{"", "awareness", "intent", `"><script>x</script>`, "a b&c", "javascript:alert(1)"}
	for _, tc := range cases {
		ct, err := Compile("t", tc.src, tc.mode, tc.attr, visitorFields)
		if err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		if got := ct.keys != nil; got != tc.memoized {
			t.Errorf("%q: memoized %v, want %v", tc.src, got, tc.memoized)
		}
		for round := range 2 { // the second round reads the memo
			for i, st := range stages {
				v := &visitor{ID: fmt.Sprint("v", i), Stage: st, Persona: st, TopInterest: st, Visits: i, NewVisitor: i%2 == 0, Known: i%3 == 0,
					Traits: map[string]any{"first_name": st}}
				got, err := ct.Render(v)
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

	ct, err := Compile("t", "visit {{ .Visits }}", Text, "", visitorFields)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 * maxMemo {
		got, err := ct.Render(&visitor{Visits: i})
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
