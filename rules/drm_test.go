package rules

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// gridRules is a segment × stage Digital Relevancy Map whose "*" row's
// purchase cell runs an experiment, and an experiment one of whose
// variants is a map by stage.
const gridRules = `
stages: [awareness, interest, intent, purchase]
pages:
  - match: ["/"]
    rules:
      - id: hero-drm
        select: "#hero"
        map:
          by: [segment, stage]
          vip:
            interest: { text: "vip interest" }
            purchase: { text: "vip purchase" }
            default:  { text: "vip any" }
          new:
            awareness: { text: "new awareness" }
            intent: { }
          "*":
            intent: { text: "cart waiting" }
            purchase:
              experiment:
                variants:
                  a: { weight: 50, text: "thanks a" }
                  b: { weight: 50, text: "thanks b" }
          default: { text: "anyone" }
      - id: cta-test
        select: ".cta"
        experiment:
          variants:
            plain: { weight: 50, text: "Shop" }
            staged:
              weight: 50
              map:
                by: stage
                intent: { text: "Finish your order" }
`

func TestTwoDimensionalMapPicksRowThenCell(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": gridRules})
	p := s.Match("/")
	tests := []struct {
		segs      []string
		stage     string
		want      string // the hero's text, "" for none
		cell      string
		reasonHas string
	}{
		{[]string{"vip"}, "interest", "vip interest", "vip/interest", "map cell segment vip × stage interest"},
		{[]string{"vip", "new"}, "purchase", "vip purchase", "vip/purchase", "segment vip × stage purchase"},
		{[]string{"vip"}, "intent", "vip any", "vip/default", "map row segment vip, default (no cell for stage intent)"},
		{[]string{"new"}, "awareness", "new awareness", "new/awareness", ""},
		{[]string{"new"}, "intent", "", "new/intent", "empty, the block is left"},
		{[]string{"new"}, "purchase", "anyone", "default", "map default (row new has no cell for stage purchase)"},
		{nil, "intent", "cart waiting", "*/intent", ""},
		{nil, "awareness", "anyone", "default", ""},
	}
	for _, tt := range tests {
		d := s.Decide(p, &Visitor{ID: "v1", Segments: tt.segs, Stage: tt.stage}, nil)
		got := ""
		for _, a := range d.Actions {
			if a.Rule == "hero-drm" {
				got = string(a.Value)
			}
		}
		if got != tt.want {
			t.Errorf("Decide(%v, %s) hero = %q, want %q (trace %q)", tt.segs, tt.stage, got, tt.want, d.Trace[0].Reason)
		}
		// An empty cell is marked so: it applies nothing, yet counts.
		if want := []MapChoice{{Rule: "hero-drm", Map: "hero-drm", Case: tt.cell, Empty: tt.want == ""}}; !slices.Contains(d.Cases, want[0]) {
			t.Errorf("Decide(%v, %s) cases = %v, want %v among them", tt.segs, tt.stage, d.Cases, want)
		}
		if !strings.Contains(d.Trace[0].Reason, tt.reasonHas) {
			t.Errorf("Decide(%v, %s) trace = %q, want it to say %q", tt.segs, tt.stage, d.Trace[0].Reason, tt.reasonHas)
		}
	}
}

func TestExperimentInACellBucketsAsItsOwnExperiment(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": gridRules})
	p := s.Match("/")
	seen := map[string]int{}
	for i := range 400 {
		id := fmt.Sprintf("visitor-%d", i)
		d := s.Decide(p, &Visitor{ID: id, Stage: "purchase"}, nil)
		var x *Exposure
		for j := range d.Exposures {
			if d.Exposures[j].Experiment == "hero-drm[*/purchase]" {
				x = &d.Exposures[j]
			}
		}
		if x == nil {
			t.Fatalf("Decide(%s at purchase) exposures = %v, want one to hero-drm[*/purchase]", id, d.Exposures)
		}
		if got := string(d.Actions[0].Value); got != "thanks "+x.Variant {
			t.Fatalf("Decide(%s) hero = %q with variant %s", id, got, x.Variant)
		}
		if !strings.Contains(d.Trace[0].Reason, "experiment variant "+x.Variant) {
			t.Errorf("trace %q does not name variant %s", d.Trace[0].Reason, x.Variant)
		}
		again := s.Decide(p, &Visitor{ID: id, Stage: "purchase"}, nil)
		if !reflect.DeepEqual(again.Exposures, d.Exposures) {
			t.Fatalf("Decide(%s) twice: %v then %v", id, d.Exposures, again.Exposures)
		}
		seen[x.Variant]++
	}
	if seen["a"] < 150 || seen["b"] < 150 {
		t.Errorf("400 visitors split %v, want about 200 each", seen)
	}
	var ids []string
	for _, x := range s.Experiments() {
		ids = append(ids, x.ID)
	}
	if want := []string{"hero-drm[*/purchase]", "cta-test"}; !slices.Equal(ids, want) {
		t.Errorf("Experiments() = %v, want %v", ids, want)
	}
}

func TestMapInAVariantReportsItsCase(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": gridRules})
	p := s.Match("/")
	for i := range 100 {
		d := s.Decide(p, &Visitor{ID: fmt.Sprintf("visitor-%d", i), Stage: "intent"}, nil)
		var variant string
		for _, x := range d.Exposures {
			if x.Experiment == "cta-test" {
				variant = x.Variant
			}
		}
		cta := d.Trace[1]
		switch variant {
		case "plain":
			if !cta.Fired || slices.ContainsFunc(d.Cases, func(c MapChoice) bool { return c.Rule == "cta-test" }) {
				t.Errorf("plain variant: trace %+v, cases %v", cta, d.Cases)
			}
		case "staged":
			want := MapChoice{Rule: "cta-test", Map: "cta-test[staged]", Case: "intent"}
			if !cta.Fired || !slices.Contains(d.Cases, want) {
				t.Errorf("staged variant: trace %+v, cases %v, want %v", cta, d.Cases, want)
			}
		default:
			t.Fatalf("exposures %v name no variant of cta-test", d.Exposures)
		}
	}
}

func TestGridDescribesItsRows(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": gridRules})
	got := s.Pages()[0].Rules()[0]
	want := RuleInfo{ID: "hero-drm", Selector: "#hero", Kind: "map", By: "segment", Across: "stage",
		Cases: []CaseInfo{{Key: "default", Action: "text: anyone"}},
		Rows: []RowInfo{
			{Key: "vip", Cells: []CaseInfo{{Key: "interest", Action: "text: vip interest"}, {Key: "purchase", Action: "text: vip purchase"}, {Key: "default", Action: "text: vip any"}}},
			{Key: "new", Cells: []CaseInfo{{Key: "awareness", Action: "text: new awareness"}, {Key: "intent"}}},
			{Key: "*", Cells: []CaseInfo{{Key: "intent", Action: "text: cart waiting"}, {Key: "purchase", Action: "experiment a 50%, b 50%"}}},
		}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Rules()[0] =\n%+v\nwant\n%+v", got, want)
	}
}

// TestReadmeGridLoads loads the two-dimensional map the README plans, and
// checks a cell of each of its rows.
func TestReadmeGridLoads(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, _ := strings.Cut(string(b), "<!-- drm:begin -->")
	sec, _, _ = strings.Cut(sec, "<!-- drm:end -->")
	_, src, _ := strings.Cut(sec, "```yaml\n")
	src, _, _ = strings.Cut(src, "```")
	var indented strings.Builder
	for line := range strings.Lines(src) {
		indented.WriteString("      " + line)
	}
	s := mustLoad(t, map[string]string{"a.yaml": "stages: [awareness, interest, intent, purchase]\npages:\n  - match: [/]\n    rules:\n" + indented.String()})
	p := s.Match("/")
	for _, tt := range []struct {
		segs        []string
		stage, want string
	}{
		{[]string{"vip"}, "intent", "<h1>Free express shipping</h1>"},
		{[]string{"new"}, "interest", "<h1>Our buyer's guide</h1>"},
		{[]string{"new"}, "purchase", ""},
		{nil, "awareness", ""},
	} {
		d := s.Decide(p, &Visitor{ID: "v", Segments: tt.segs, Stage: tt.stage}, nil)
		got := ""
		if len(d.Actions) > 0 {
			got = string(d.Actions[0].Value)
		}
		if got != tt.want {
			t.Errorf("Decide(%v, %s) = %q, want %q", tt.segs, tt.stage, got, tt.want)
		}
	}
}

// A map composes with other rules on its element like any rule: an
// earlier rule's content change overrides the cell's (and the cell is then
// not reported as chosen), while an attribute rule applies beside the
// cell's content.
func TestMapsComposeWithOtherRules(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": `stages: [awareness, intent]
pages:
  - match: ["/first"]
    rules:
      - { id: plain, select: "#hero", text: "plain" }
      - id: grid
        select: "#hero"
        map:
          by: [segment, stage]
          "*": { intent: { text: "cell" } }
  - match: ["/attr"]
    rules:
      - { id: link, select: "#hero", attr: { data-x: "1" } }
      - id: grid2
        select: "#hero"
        map:
          by: [segment, stage]
          "*": { intent: { text: "cell" } }
`})
	d := s.Decide(s.Match("/first"), &Visitor{ID: "v1", Stage: "intent"}, nil)
	if len(d.Actions) != 1 || d.Actions[0].Rule != "plain" {
		t.Errorf("/first at intent: actions %+v, want plain's text alone", d.Actions)
	}
	if len(d.Cases) != 0 || d.Trace[1].Fired || !strings.Contains(d.Trace[1].Reason, "overridden by rule plain") {
		t.Errorf("/first at intent: cases %+v, grid trace %+v; want no case and grid overridden by plain", d.Cases, d.Trace[1])
	}
	d = s.Decide(s.Match("/attr"), &Visitor{ID: "v1", Stage: "intent"}, nil)
	var rulesSeen []string
	for _, a := range d.Actions {
		rulesSeen = append(rulesSeen, a.Rule)
	}
	if !slices.Equal(rulesSeen, []string{"link", "grid2"}) || len(d.Cases) != 1 || d.Cases[0].Case != "*/intent" {
		t.Errorf("/attr at intent: actions by %v, cases %+v; want link and grid2, the cell */intent", rulesSeen, d.Cases)
	}
}
