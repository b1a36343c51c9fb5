package rules

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/tailor-edge/tailor/config"
)

// FuzzLoad checks that no rule file makes Load panic, that every problem
// has a place, and that a set that loads decides without panicking.
func FuzzLoad(f *testing.F) {
	// The fuzzer minimizes every input that finds new code, in time
	// quadratic in its length: inputs are capped, and the seeds are the
	// example files cut into their top-level sections and rules.
	const maxFuzzInput = 1024
	comment := regexp.MustCompile(`(?m)\s+#.*$`)
	files, _ := filepath.Glob("../examples/rules/*.yaml")
	files = append(files, "testdata/spec.yaml", "testdata/invalid/bad.yaml")
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		var section strings.Builder
		for line := range strings.Lines(comment.ReplaceAllString(string(src), "")) {
			if section.Len() > 0 && (line[0] != ' ' && line[0] != '#' || strings.HasPrefix(line, "      - id:")) {
				f.Add(section.String())
				section.Reset()
				if line[0] == ' ' {
					section.WriteString("stages: [a, b]\npages:\n  - match: /\n    rules:\n")
				}
			}
			section.WriteString(line)
		}
		f.Add(section.String())
	}
	for _, src := range []string{
		"",
		"pages: [{match: /, rules: [{id: r, select: p, text: '{{ .Traits.x }}'}]}]",
		"pages: [{match: /, rules: [{id: r, select: p, attr: {href: '{{ .Traits.x }}'}}]}]",
		"pages: [{match: /, rules: [{id: r, select: p, inner: {file: fragments/f.html}}]}]",
		"pages: [{match: /, rules: [{id: r, select: p, if: 'request.header(\"x\") == \"\"', remove: true}]}]",
		"segments: {a: {time: 'Fri-Mon 22:00-02:00 Asia/Tokyo'}}",
		"a: &a [*a]\n",
		"pages: &p [{<<: *p}]\n",
	} {
		f.Add(src)
	}
	visitor := &Visitor{ID: "v", Known: true, Segments: []string{"vip"}, Traits: map[string]any{"x": `"><script>`}, Visits: 2}
	request := &Request{Path: "/", UserAgent: iPhoneUA, Country: "DE", Time: time.Date(2026, 6, 5, 23, 0, 0, 0, time.UTC)}
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > maxFuzzInput {
			return
		}
		s, err := LoadFS(fstest.MapFS{
			"rules/a.yaml":           {Data: []byte(src)},
			"rules/fragments/f.html": {Data: []byte("<b>{{ .Persona }}</b>")},
		}, "rules")
		if err != nil {
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load error is %T, not config.Errors: %v", err, err)
			}
			for _, e := range errs {
				if e.File != "rules/a.yaml" || e.Line < 1 || e.Col < 1 || e.Msg == "" || e.Err == nil {
					t.Fatalf("problem without a place or a kind: %#v", e)
				}
			}
			return
		}
		for _, path := range []string{"/", "/index.html", "/products/x"} {
			request.Path = path
			d := s.Decide(s.Match(path), visitor, request)
			for _, a := range d.Actions {
				if a.Sel < 0 || a.Sel >= len(s.Match(path).Selectors()) || a.Op < Replace || a.Op > RemoveClass {
					t.Fatalf("bad action %+v", a)
				}
			}
		}
	})
}
