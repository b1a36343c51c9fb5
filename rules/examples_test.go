package rules

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/net/html"
	"gopkg.in/yaml.v3"
)

// The example rule files are the demo's and the documentation's: they
// must load, use every condition and every action, and select elements
// that exist on the demo site.
func TestExampleRulesLoad(t *testing.T) {
	s, err := Load("../examples/rules")
	if err != nil {
		t.Fatalf("Load(examples/rules):\n%v", err)
	}
	// The demo's home page: its layout with the home template in it (the
	// template actions left are text to the parser).
	layout, err := os.ReadFile("../examples/site/templates/layout.html")
	if err != nil {
		t.Fatal(err)
	}
	home, err := os.ReadFile("../examples/site/templates/home.html")
	if err != nil {
		t.Fatal(err)
	}
	site := bytes.Replace(layout, []byte(`{{ template "content" . }}`), home, 1)
	doc, err := html.Parse(bytesReader(site))
	if err != nil {
		t.Fatal(err)
	}
	p := s.Match("/")
	if p == nil {
		t.Fatal("no page for /")
	}
	for i, sel := range p.Selectors() {
		found := false
		walk([]*html.Node{doc}, func(n *html.Node) {
			if n.Type == html.ElementNode && sel.Match(n) {
				found = true
			}
		})
		if !found {
			t.Errorf("selector %q matches nothing on the demo's home page (examples/site/templates)", p.SelectorText(i))
		}
	}

	jane := &Visitor{
		ID: "cust-42", Known: true, Segments: []string{"vip", "runner"}, Stage: "intent",
		Traits: map[string]any{"first_name": "Jane"}, Scores: map[string]float64{"engagement": 60},
		Visits: 4, Persona: "runner", TopInterest: "running",
	}
	d := s.Decide(p, jane, &Request{Path: "/", Country: "DE", UserAgent: iPhoneUA})
	fired := map[string]bool{}
	for _, a := range d.Actions {
		fired[a.Rule] = true
	}
	for _, id := range []string{"hero-vip", "greet-known", "cta-by-stage", "picks-by-segment", "promo-de"} {
		if !fired[id] {
			t.Errorf("for Jane, rule %s did not fire; trace %+v", id, d.Trace)
		}
	}
	if !slices.Contains(d.Segments, "mobile") || !slices.Contains(d.Segments, "returning") {
		t.Errorf("Jane's segments = %v, want mobile and returning among them", d.Segments)
	}
}

func TestExampleRulesCoverEverything(t *testing.T) {
	keys := map[string]bool{}
	files, _ := filepath.Glob("../examples/rules/*.yaml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var root yaml.Node
		if err := yaml.Unmarshal(b, &root); err != nil {
			t.Fatal(err)
		}
		var visit func(n *yaml.Node)
		visit = func(n *yaml.Node) {
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					keys[n.Content[i].Value] = true
				}
			}
			for _, c := range n.Content {
				visit(c)
			}
		}
		visit(&root)
	}
	want := slices.Concat(whenKeys, actionKeys, topKeys, []string{"if", "map", "experiment", "default", "holdout", "file", "min_score", "half_life", "goal", "value"})
	for _, k := range want {
		if !keys[k] {
			t.Errorf("examples/rules never use %q", k)
		}
	}
}

// The rule file of SPEC.md, verbatim, loads and decides as SPEC says.
func TestSpecExampleLoads(t *testing.T) {
	s, err := LoadFS(os.DirFS("testdata"), ".")
	if err != nil {
		t.Fatalf("LoadFS(testdata/spec.yaml):\n%v", err)
	}
	p := s.Match("/index.html")
	d := s.Decide(p, &Visitor{ID: "cust-42", Known: true, Segments: []string{"vip"}, Stage: "intent",
		Traits: map[string]any{"first_name": "Jane"}, Scores: map[string]float64{"engagement": 51}},
		&Request{Path: "/index.html", Country: "AT"})
	var got []string
	for _, a := range d.Actions {
		got = append(got, a.Rule+" "+a.Op.String()+" "+string(a.Value))
	}
	want := []string{
		"hero-vip replace <section id=\"hero\" class=\"vip\"><h1>Hello Jane</h1></section>",
		"greet inner Welcome back, Jane!",
		"cta-by-stage inner <a href=\"/cart\">Finish your order — free shipping today</a>",
		"hero-copy-test inner Run further",
		"de-promo remove ",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Decide =\n%q\nwant\n%q", got, want)
	}
	if step, ok := s.Journey("/checkout/done"); !ok || step != (JourneyStep{Stage: "purchase", Goal: "purchase", Value: 100}) {
		t.Errorf("Journey(/checkout/done) = %+v, %v", step, ok)
	}
	if got := s.NearestPersona(s.Interests("/blog/trail/x")); got != "hiker" {
		t.Errorf("persona after a trail blog post = %q, want hiker", got)
	}
}
