package rules

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/identity"
	"github.com/tailor-edge/tailor/internal/testkit/fixtures"
)

// benchRules is a realistic home page: seven rules, among them a map, an
// experiment, templates and an expression, over three edge segments.
const benchRules = `
stages: [awareness, interest, intent, purchase, retention]
segments:
  mobile:      { device: mobile }
  spring-sale: { query: { utm_campaign: spring-sale } }
  returning:   { visits: ">= 2" }
pages:
  - match: ["/", "/index.html"]
    rules:
      - id: hero-vip
        when: { segment: [vip] }
        select: "#hero"
        replace: '<section id="hero" class="vip"><h1>{{ .Traits.first_name }}, your VIP preview is open</h1></section>'
      - id: greet
        when: { known: true }
        select: ".greeting"
        text: "Welcome back, {{ .Traits.first_name }}!"
      - id: cta-by-stage
        select: ".cta"
        map:
          by: stage
          interest: { inner: '<a href="/guide">Read the buyer''s guide</a>' }
          intent:   { inner: '<a href="/cart">Finish your order — free shipping today</a>' }
          purchase: { inner: '<a href="/accessories">Accessories for your new phone</a>' }
      - ` + fixtures.HeroExperiment + `
      - id: de-promo
        if: 'profile.scores.engagement > 50 && request.country in ["DE", "AT"]'
        select: "footer .promo"
        remove: true
      - id: sale-promo
        when: { segment: spring-sale }
        select: "footer .promo"
        text: "Spring sale: 20% off"
      - id: picks-running
        when: { interest: running, time: "Mon-Fri 06:00-22:00 Europe/Paris" }
        select: ".picks"
        prepend: '<li><a href="/products/running/new">New in running</a></li>'
`

func benchDecide(b *testing.B, v *Visitor, r *Request) {
	s := mustLoad(b, map[string]string{"a.yaml": benchRules})
	p := s.Match(r.Path)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.Decide(p, v, r)
	}
}

// BenchmarkDecideKnown is a known VIP: every rule is evaluated, two
// templates render, the expression runs.
func BenchmarkDecideKnown(b *testing.B) {
	benchDecide(b, &Visitor{
		ID: "cust-42", Known: true, Segments: []string{"vip", "runner"}, Stage: "intent",
		Traits: map[string]any{"first_name": "Jane", "city": "Lyon"}, Scores: map[string]float64{"engagement": 60},
		Visits: 4, TopInterest: "running", Persona: "runner",
	}, &Request{
		Path: "/", Query: url.Values{"utm_campaign": {"spring-sale"}}, Country: "DE", Language: "de-DE,de;q=0.9",
		UserAgent: iPhoneUA, Referrer: "https://www.google.com/", Time: time.Date(2026, 6, 2, 10, 0, 0, 0, time.UTC),
	})
}

// BenchmarkDecideAnonymous is a first visit: most rules do not fire.
func BenchmarkDecideAnonymous(b *testing.B) {
	benchDecide(b, &Visitor{ID: "v1.Zm9vYmFyYmF6cXV4", Visits: 1, NewVisitor: true},
		&Request{Path: "/", UserAgent: firefox, Time: time.Date(2026, 6, 2, 10, 0, 0, 0, time.UTC)})
}

// BenchmarkDecideExamples is the example site's home page: 24 rules over
// 11 edge segments.
func BenchmarkDecideExamples(b *testing.B) {
	s, err := Load("../examples/rules")
	if err != nil {
		b.Fatal(err)
	}
	p := s.Match("/")
	v := &Visitor{ID: "cust-42", Known: true, Segments: []string{"runner"}, Stage: "interest", Traits: map[string]any{"first_name": "Jane"}, Visits: 3}
	r := &Request{Path: "/", UserAgent: firefox, Country: "FR", Language: "fr-FR", Time: time.Date(2026, 6, 2, 18, 0, 0, 0, time.UTC)}
	b.ReportAllocs()
	for b.Loop() {
		s.Decide(p, v, r)
	}
}

func BenchmarkMatch(b *testing.B) {
	s, err := Load("../examples/rules")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Match("/products/running/road-racer")
	}
}

func BenchmarkLoadExamples(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load("../examples/rules"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDeviceOf(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		DeviceOf(iPhoneUA)
	}
}

// BenchmarkDecideKeptVariant is BenchmarkDecideExamples for a visitor
// whose state keeps their variants (identity.State, 32 entries): what
// sticky assignment adds to a decision.
func BenchmarkDecideKeptVariant(b *testing.B) {
	s, err := Load("../examples/rules")
	if err != nil {
		b.Fatal(err)
	}
	p := s.Match("/")
	st := &identity.State{}
	for i := range identity.MaxSticky - 1 {
		st.Keep("other-"+strconv.Itoa(i), "a")
	}
	v := &Visitor{ID: "cust-42", Known: true, Segments: []string{"runner"}, Stage: "interest", Traits: map[string]any{"first_name": "Jane"}, Visits: 3}
	r := &Request{Path: "/", UserAgent: firefox, Country: "FR", Language: "fr-FR", Time: time.Date(2026, 6, 2, 18, 0, 0, 0, time.UTC)}
	// The variant the hash gives, kept: the same work but the look-up.
	xs := s.Decide(p, v, r).Exposures
	if len(xs) == 0 {
		b.Fatal("no experiment on the page")
	}
	st.Keep(xs[0].Experiment, xs[0].Variant)
	v.Assigned = st
	if d := s.Decide(p, v, r); len(d.Exposures) == 0 || d.Exposures[0] != xs[0] {
		b.Fatalf("exposures %v, want the kept %v", d.Exposures, xs[0])
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Decide(p, v, r)
	}
}
