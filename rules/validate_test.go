package rules

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/tailor-edge/tailor/config"
)

// TestValidationPositions loads testdata/invalid, whose files hold one of
// every kind of mistake, and checks each is reported at its file:line:col,
// all of them at once, in file order.
func TestValidationPositions(t *testing.T) {
	_, err := LoadFS(os.DirFS("testdata"), "invalid")
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("LoadFS = %v, want config.Errors", err)
	}
	want := []string{
		`invalid/bad.yaml:2:1: unknown key "colours" in rule file; want one of stages, segments, journey, goals, interests, personas, pages, experiments`,
		`invalid/bad.yaml:4:21: segments.mobile.device: unknown device "phone" (want mobile, tablet, desktop, bot)`,
		`invalid/bad.yaml:5:17: segments.late.time: time window "Mon-Fry 22:00-06:00": unknown day "Fry" (want Mon, Tue, Wed, Thu, Fri, Sat, Sun, a range such as Mon-Fri, or daily)`,
		`invalid/bad.yaml:6:19: segments.many.visits: invalid comparison "> = 2" (want an operator and a number: ">= 2", "< 10", "== 0", "!= 3")`,
		`invalid/bad.yaml:7:30: unknown key "colour" in segments.sale`,
		`invalid/bad.yaml:8:18: segments.de.country: "Germany" is not a two-letter country code such as DE or FR`,
		`invalid/bad.yaml:8:37: segments.de.language: "de_DE" is not a language tag such as de or pt-BR`,
		`invalid/bad.yaml:9:20: segments.odd.header: "X Bad" is not a valid header name`,
		`invalid/bad.yaml:9:46: segments.odd.referrer: "https://google.com/": want a host glob such as *.google.com, not a URL`,
		`invalid/bad.yaml:10:10: segments.empty: a segment needs at least one condition`,
		`invalid/bad.yaml:14:13: journey.path: path glob "products/*" must start with /`,
		`invalid/bad.yaml:15:29: journey.stage: undeclared stage "intnt"; stages: awareness, interest`,
		`invalid/bad.yaml:16:5: journey: an entry needs a stage, a goal or both`,
		`invalid/bad.yaml:18:14: interests.half_life: invalid duration "2 weeks" (want a number with a unit: 150ms, 2s, 10m, 8760h, 14d)`,
		`invalid/bad.yaml:20:34: interests.rules.add.a: want a number, not "lots"`,
		`invalid/bad.yaml:22:18: match: path glob "/a**": ** must be a whole segment, as in /a/**/b`,
		`invalid/bad.yaml:25:17: select: invalid selector "#hero >": expected selector, found EOF instead`,
		`invalid/bad.yaml:27:13: id: rule id "hero" is already used at invalid/bad.yaml:24`,
		`invalid/bad.yaml:29:26: replace.file: read fragment invalid/fragments/nope.html: no such file or directory`,
		`invalid/bad.yaml:30:9: rule: a rule needs select: with the CSS selector of the block it changes`,
		`invalid/bad.yaml:31:9: unknown key "selct" in rule (did you mean "select"?)`,
		`invalid/bad.yaml:32:15: text: template: rule greet text:1: unclosed action`,
		`invalid/bad.yaml:35:13: if: request has no field contry (did you mean request.country?) (1:9)`,
		`invalid/bad.yaml:36:24: when.stage: undeclared stage "intent"; stages: awareness, interest`,
		`invalid/bad.yaml:36:41: when.persona: undeclared persona "walker"; personas: runner`,
		`invalid/bad.yaml:36:61: when.engagement: invalid comparison "lots" (want an operator and a number: ">= 2", "< 10", "== 0", "!= 3")`,
		`invalid/bad.yaml:36:74: when.known: want true or false, not "maybe"`,
		`invalid/bad.yaml:39:33: map.interest: one action only: "inner" is already given at line 39 (write another rule for another change)`,
		`invalid/bad.yaml:40:11: map: undeclared stage "purchase"; stages: awareness, interest`,
		`invalid/bad.yaml:46:13: experiment.variants: weights add up to 90, not 100`,
		`invalid/bad.yaml:51:9: rule: one action only: "text" is already given at line 50 (write another rule for another change)`,
		`invalid/bad.yaml:52:9: rule: no action: want one of replace, inner, text, attr, add_class, remove_class, prepend, append, before, after, remove, map, experiment`,
		`invalid/bad.yaml:56:13: if: expected bool, but got string`,
		`invalid/bad.yaml:57:17: remove: remove takes true; to keep the element, leave the rule out`,
		`invalid/bad.yaml:60:29: attr: attribute "href" is already set at line 60`,
		`invalid/bad.yaml:63:20: add_class: "two classes" is not a class name (one name, without spaces)`,
		`invalid/bad.yaml:66:16: inner: html/template:rule context inner: ends in a non-text context (an unclosed tag, attribute, quote or comment)`,
		`invalid/bad.yaml:69:15: text: template: {{range}} over a number is not allowed; range over visitor data`,
		`invalid/bad.yaml:72:20: map.by: want one or two of segment, stage, persona, interest, not "colour"`,
		`invalid/bad.yaml:75:29: map: "inner" is an action; a map's cases are segments, each with its own action, as in vip: {inner: ...}`,
		`invalid/bad.yaml:78:32: experiment.holdout: want a percentage from 0 up to (not including) 100, not 100`,
		`invalid/bad.yaml:78:49: experiment.variants: "holdout" names the holdout; set holdout: to a percentage instead`,
		`invalid/bad.yaml:78:87: experiment.variants.b: a variant needs a weight (a percentage of the visitors outside the holdout)`,
		`invalid/bad.yaml:81:24: inner.file: read fragment ../../etc/passwd: outside the rule file system`,
		`invalid/other.yaml:1:1: stages: stages are already declared at invalid/bad.yaml:1 as [awareness, interest]; declare them once`,
		`invalid/other.yaml:3:3: segment "mobile" is already defined at invalid/bad.yaml:4`,
		`invalid/other.yaml:5:3: persona "runner" is declared twice`,
		`invalid/other.yaml:9:15: id: rule id "cta" is already used at invalid/bad.yaml:33`,
		`invalid/other.yaml:9:28: select: invalid selector "div[": expected identifier, found EOF instead`,
		`invalid/other.yaml:9:44: attr: "bad name" is not an attribute name`,
		`invalid/syntax.yaml:4:1: invalid YAML: did not find expected '-' indicator`,
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("error %d:\n got %s\nwant %s", i, g, w)
		}
	}
}

func TestValidationKinds(t *testing.T) {
	_, err := LoadFS(os.DirFS("testdata"), "invalid")
	for _, kind := range []error{
		config.ErrSyntax, config.ErrUnknownKey, config.ErrDuplicateKey, config.ErrInvalid,
		ErrDuplicateID, ErrSelector, ErrExpression, ErrTemplate, ErrFragment, ErrUndeclared,
	} {
		if !errors.Is(err, kind) {
			t.Errorf("errors.Is(err, %v) = false", kind)
		}
	}
}

func TestValidation(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"not a mapping", "- a\n", []string{"rules/a.yaml:1:1: a rule file is a mapping of stages, segments, journey, goals, interests, personas, pages, experiments, not a list"}},
		{"two documents", "pages: []\n---\npages: []\n", []string{"rules/a.yaml:2:1: a rule file holds one YAML document; a second one starts here"}},
		{"duplicate key", "pages: []\npages: []\n", []string{`rules/a.yaml:2:1: duplicate key "pages" in rule file (first written at line 1)`}},
		{"tab", "pages:\n\t- a\n", []string{"rules/a.yaml:2:1: invalid YAML: found character that cannot start any token"}},
		{"unknown anchor", "pages: *nope\n", []string{"rules/a.yaml:1:8: invalid YAML: unknown anchor 'nope' referenced"}},
		{"stages twice in a list", "stages: [a, b, a]\n", []string{`rules/a.yaml:1:16: stages: stage "a" is listed twice`}},
		{"stage with a space", "stages: [a b]\n", []string{`rules/a.yaml:1:10: stages: "a b" is not a name: use letters, digits, _, . and - (at most 128), starting with a letter or digit`}},
		{"stage undeclared without stages", "pages: [{match: /, rules: [{id: r, select: p, when: {stage: x}, remove: true}]}]\n",
			[]string{`rules/a.yaml:1:61: when.stage: undeclared stage "x"; declare the journey's stages with stages: [...]`}},
		{"page without match", "pages: [{rules: []}]\n", []string{"rules/a.yaml:1:9: page: a page needs match: with the paths it is for"}},
		{"rule without id", "pages: [{match: /, rules: [{select: p, remove: true}]}]\n", []string{"rules/a.yaml:1:28: rule: a rule needs an id"}},
		{"rule id with a slash", "pages: [{match: /, rules: [{id: a/b, select: p, remove: true}]}]\n", []string{`rules/a.yaml:1:33: id: "a/b" is not a name: use letters, digits, _, . and - (at most 128), starting with a letter or digit`}},
		{"pseudo-element", "pages: [{match: /, rules: [{id: r, select: 'p::before', remove: true}]}]\n", []string{`rules/a.yaml:1:44: select: invalid selector "p::before"`}},
		{"when as a list", "pages: [{match: /, rules: [{id: r, select: p, when: [vip], remove: true}]}]\n", []string{`rules/a.yaml:1:53: when: want a mapping, not a list`}},
		{"unknown condition", "pages: [{match: /, rules: [{id: r, select: p, when: {segmnt: vip}, remove: true}]}]\n", []string{`rules/a.yaml:1:54: unknown key "segmnt" in when (did you mean "segment"?)`}},
		{"if inside when", "pages: [{match: /, rules: [{id: r, select: p, when: {if: 'true'}, remove: true}]}]\n", []string{`rules/a.yaml:1:54: unknown key "if" in when: write if: beside when:, in the rule`}},
		{"empty expression", "pages: [{match: /, rules: [{id: r, select: p, if: ' ', remove: true}]}]\n", []string{`rules/a.yaml:1:51: if: empty expression`}},
		{"now() in an expression", "pages: [{match: /, rules: [{id: r, select: p, if: 'now().Hour() > 3', remove: true}]}]\n", []string{`rules/a.yaml:1:51: if: unknown name now`}},
		{"map without cases", "stages: [a]\npages: [{match: /, rules: [{id: r, select: p, map: {by: stage, default: {remove: true}}}]}]\n", []string{`rules/a.yaml:2:52: map: a map needs at least one stage case beside default`}},
		{"map without by", "pages: [{match: /, rules: [{id: r, select: p, map: {a: {remove: true}}}]}]\n", []string{`rules/a.yaml:1:52: map: a map needs by: with what it is by: one or two of segment, stage, persona, interest`}},
		{"map case with two actions", "pages: [{match: /, rules: [{id: r, select: p, map: {by: segment, a: {remove: true, text: x}}}]}]\n", []string{`rules/a.yaml:1:84: map.a: one action only: "remove" is already given at line 1`}},
		{"map by three", "pages: [{match: /, rules: [{id: r, select: p, map: {by: [segment, stage, persona], a: {}}}]}]\n", []string{`rules/a.yaml:1:57: map.by: want one or two of segment, stage, persona, interest (rows, then columns), not 3`}},
		{"map by an unknown dimension", "pages: [{match: /, rules: [{id: r, select: p, map: {by: [segment, device], a: {}}}]}]\n", []string{`rules/a.yaml:1:57: map.by: want one or two of segment, stage, persona, interest, not "device"`}},
		{"map by one thing twice", "pages: [{match: /, rules: [{id: r, select: p, map: {by: [stage, stage], a: {}}}]}]\n", []string{`rules/a.yaml:1:57: map.by: "stage" twice: a map's rows and columns are by different things`}},
		{"grid with an undeclared stage", "stages: [new, interest]\npages: [{match: /, rules: [{id: r, select: p, map: {by: [segment, stage], vip: {intrest: {remove: true}}}}]}]\n",
			[]string{`rules/a.yaml:2:81: map.vip: undeclared stage "intrest" (did you mean "interest"?); stages: new, interest`}},
		{"grid with an undeclared persona", "stages: [a]\npersonas: {runner: {running: 1}}\npages: [{match: /, rules: [{id: r, select: p, map: {by: [persona, stage], hiker: {a: {remove: true}}}}]}]\n",
			[]string{`rules/a.yaml:3:75: map: undeclared persona "hiker"; personas: runner`}},
		{"grid row twice", "stages: [a]\npages: [{match: /, rules: [{id: r, select: p, map: {by: [segment, stage], vip: {a: {}}, vip: {a: {}}}}]}]\n",
			[]string{`rules/a.yaml:2:89: duplicate key "vip" in map (first written at line 2)`}},
		{"grid row not a mapping", "stages: [a]\npages: [{match: /, rules: [{id: r, select: p, map: {by: [segment, stage], vip: [a]}}]}]\n",
			[]string{`rules/a.yaml:2:80: map.vip: want a mapping, not a list`}},
		{"grid row with an action", "stages: [a]\npages: [{match: /, rules: [{id: r, select: p, map: {by: [segment, stage], vip: {text: x}}}]}]\n",
			[]string{`rules/a.yaml:2:81: map.vip: "text" is an action; a row's cells are stages, each with its own action, as in vip: {a: {inner: ...}}`}},
		{"experiment in a cell without variants", "stages: [a]\npages: [{match: /, rules: [{id: r, select: p, map: {by: [segment, stage], vip: {a: {experiment: {holdout: 5}}}}}]}]\n",
			[]string{`rules/a.yaml:2:97: experiment: an experiment needs variants: with their weights and actions`}},
		{"experiment without variants", "pages: [{match: /, rules: [{id: r, select: p, experiment: {holdout: 5}}]}]\n", []string{`rules/a.yaml:1:59: experiment: an experiment needs variants: with their weights and actions`}},
		{"negative weight", "pages: [{match: /, rules: [{id: r, select: p, experiment: {variants: {a: {weight: -10, remove: true}, b: {weight: 110, remove: true}}}}]}]\n",
			[]string{`rules/a.yaml:1:83: experiment.variants.a.weight: a weight must not be negative`}},
		{"content of the wrong shape", "pages: [{match: /, rules: [{id: r, select: p, inner: [a]}]}]\n", []string{`rules/a.yaml:1:54: inner: want content (a string, or {file: path}), not a list`}},
		{"fragment with another key", "pages: [{match: /, rules: [{id: r, select: p, inner: {path: x}}]}]\n", []string{`rules/a.yaml:1:55: unknown key "path" in inner; want one of file`}},
		{"duplicate segment in one file", "segments:\n  a: {known: true}\n  a: {known: false}\n", []string{`rules/a.yaml:3:3: duplicate key "a" in segments (first written at line 2)`}},
		{"segment if", "segments:\n  a: {if: 'visitor.vists > 1'}\n", []string{`rules/a.yaml:2:11: if: visitor has no field vists (did you mean visitor.visits?) (1:9)`}},
		{"journey value without goal", "stages: [a]\njourney: [{path: /, stage: a, value: 3}]\n", []string{`rules/a.yaml:2:11: journey: a value needs a goal to count for`}},
		{"persona with a negative weight", "personas: {a: {x: -1}}\n", []string{`rules/a.yaml:1:19: personas.a.x: a weight must not be negative`}},
		{"persona min_score", "personas: {min_score: 2}\n", []string{`rules/a.yaml:1:23: personas.min_score: want a similarity from 0 to 1, not 2`}},
		{"time window in Local", "segments: {a: {time: 'Mon Local'}}\n", []string{`rules/a.yaml:1:22: segments.a.time: time window "Mon Local": time zone "Local": name a zone such as Europe/Paris or UTC; the server's zone would make rules differ between machines`}},
		{"alias cycle", "a: &a [*a]\n", []string{`rules/a.yaml:1:1: unknown key "a" in rule file; want one of stages, segments, journey, goals, interests, personas, pages, experiments`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := loadErrors(t, map[string]string{"a.yaml": tt.src})
			if len(got) != len(tt.want) {
				t.Fatalf("Load errors =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("Load error %d =\n%s\nwant\n%s", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestLoadEmptyAndHiddenFiles(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": "", "b.yaml": "# only a comment\n", ".#c.yaml": "not: [valid", "d.yml": "x", "e.yaml": "pages:\nsegments:\n"})
	if s.Match("/") != nil || len(s.Stages()) != 0 {
		t.Errorf("empty set matches or has stages")
	}
	d := s.Decide(nil, &Visitor{Segments: []string{"a"}}, nil)
	if d.Stage != "" || !slices.Equal(d.Segments, []string{"a"}) {
		t.Errorf("Decide = %+v", d)
	}
}

func TestLoadMissingDir(t *testing.T) {
	if _, err := Load(t.TempDir() + "/nope"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want a not-exist error", err)
	}
}

func TestLoadFromDisk(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(dir+"/rules", 0o755))
	must(os.MkdirAll(dir+"/fragments", 0o755))
	must(os.WriteFile(dir+"/fragments/hero.html", []byte("<h1>{{ .Persona }}</h1>"), 0o644))
	// A fragment relative to the rule file, one by absolute path.
	found := `
pages:
  - match: "/"
    rules:
      - { id: a, select: "#hero", inner: { file: ../fragments/hero.html } }
      - { id: b, select: "#x", inner: { file: ` + dir + `/fragments/hero.html } }
`
	must(os.WriteFile(dir+"/rules/a.yaml", []byte(found+`      - { id: c, select: "#y", inner: { file: ../fragments/missing.html } }
`), 0o644))
	got := []string{}
	_, err := Load(dir + "/rules")
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load = %v", err)
	}
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := dir + "/rules/a.yaml:7:47: inner.file: read fragment " + dir + "/fragments/missing.html: no such file or directory"
	if len(got) != 1 || got[0] != want {
		t.Fatalf("Load errors = %q, want %q", got, want)
	}
	must(os.Remove(dir + "/rules/a.yaml"))
	must(os.WriteFile(dir+"/rules/a.yaml", []byte(found), 0o644))
	s, err := Load(dir + "/rules")
	must(err)
	d := s.Decide(s.Match("/"), &Visitor{Persona: "runner"}, nil)
	if len(d.Actions) != 2 || string(d.Actions[0].Value) != "<h1>runner</h1>" {
		t.Errorf("Decide = %+v", d.Actions)
	}
}

func TestCostlySelectorsAreWarningsAtTheirPosition(t *testing.T) {
	s := mustLoad(t, map[string]string{"home.yaml": `pages:
  - match: ["/"]
    rules:
      - id: cheap
        select: "#hero h1"
        text: x
      - id: deep
        select: "main .grid .card"
        text: y
      - id: again
        select: "main  .grid  .card"
        add_class: z
      - id: has
        select: "li:has(a b)"
        remove: true
`})
	var got []string
	for _, w := range s.Warnings() {
		if !errors.Is(w, ErrCostlySelector) {
			t.Errorf("warning %v is not ErrCostlySelector", w)
		}
		msg, _, _ := strings.Cut(w.Error(), ": matching")
		msg, _, _ = strings.Cut(msg, ": every element")
		got = append(got, msg)
	}
	want := []string{
		`rules/home.yaml:8:17: warning: select: "main .grid .card" has 2 descendant or sibling combinators in a row`,
		`rules/home.yaml:14:17: warning: select: :has(a b) has a descendant combinator`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("Warnings() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
