package rules

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// conditionSet is a rule set with one rule whose when: and if: are the
// test's.
func conditionSet(t *testing.T, when, ifExpr string) *Set {
	t.Helper()
	src := `
stages: [awareness, interest, intent]
personas: { runner: { running: 1 }, hiker: { trail: 1 } }
segments:
  edge-mobile: { device: mobile }
  edge-de:     { country: DE }
  edge-both:   { segment: edge-de, if: '"edge-mobile" in visitor.segments' }
pages:
  - match: ["/**"]
    rules:
      - id: r
        select: "#x"
`
	if when != "" {
		src += "        when: " + when + "\n"
	}
	if ifExpr != "" {
		src += "        if: '" + strings.ReplaceAll(ifExpr, "'", "''") + "'\n"
	}
	src += "        text: fired\n"
	return mustLoad(t, map[string]string{"a.yaml": src})
}

var (
	paris    = mustZone("Europe/Paris")
	iPhoneUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
	ipadUA   = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1"
	firefox  = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	bot      = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func TestConditions(t *testing.T) {
	tue10 := time.Date(2026, 6, 2, 10, 0, 0, 0, paris) // a Tuesday
	sat10 := time.Date(2026, 6, 6, 10, 0, 0, 0, paris)
	tests := []struct {
		name   string
		when   string
		ifExpr string
		v      Visitor
		r      Request
		fired  bool
		reason string // when not fired
	}{
		{name: "no conditions", fired: true},
		{name: "segment in", when: "{segment: vip}", v: Visitor{Segments: []string{"runner", "vip"}}, fired: true},
		{name: "segment out", when: "{segment: vip}", v: Visitor{Segments: []string{"runner"}}, reason: "segment vip not in [runner]"},
		{name: "segment any of", when: "{segment: [gold, vip]}", v: Visitor{Segments: []string{"vip"}}, fired: true},
		{name: "segment any of, none", when: "{segment: [gold, vip]}", reason: "segment any of gold, vip not in []"},
		{name: "edge segment", when: "{segment: edge-mobile}", r: Request{UserAgent: iPhoneUA}, fired: true},
		{name: "edge segment not computed", when: "{segment: edge-mobile}", r: Request{UserAgent: firefox}, reason: "segment edge-mobile not in []"},
		{name: "edge segment over edge segment and if", when: "{segment: edge-both}", r: Request{UserAgent: iPhoneUA, Country: "DE"}, fired: true},
		{name: "edge segment over edge segment, if false", when: "{segment: edge-both}", r: Request{UserAgent: firefox, Country: "DE"}, reason: "segment edge-both not in [edge-de]"},
		{name: "not_segment", when: "{not_segment: vip}", v: Visitor{Segments: []string{"runner"}}, fired: true},
		{name: "not_segment in", when: "{not_segment: [gold, vip]}", v: Visitor{Segments: []string{"vip"}}, reason: "visitor is in segment vip"},
		{name: "stage", when: "{stage: interest}", v: Visitor{Stage: "interest"}, fired: true},
		{name: "stage default is the first", when: "{stage: awareness}", fired: true},
		{name: "stage other", when: "{stage: [interest, intent]}", reason: "stage awareness is not any of interest, intent"},
		{name: "known", when: "{known: true}", v: Visitor{Known: true}, fired: true},
		{name: "known, anonymous", when: "{known: true}", reason: "visitor is anonymous, want known"},
		{name: "anonymous", when: "{known: false}", fired: true},
		{name: "anonymous, known", when: "{known: false}", v: Visitor{Known: true}, reason: "visitor is known, want anonymous"},
		{name: "device mobile", when: "{device: mobile}", r: Request{UserAgent: iPhoneUA}, fired: true},
		{name: "device tablet", when: "{device: [tablet]}", r: Request{UserAgent: ipadUA}, fired: true},
		{name: "device desktop", when: "{device: desktop}", r: Request{UserAgent: iPhoneUA}, reason: "device mobile is not desktop"},
		{name: "device bot", when: "{device: bot}", r: Request{UserAgent: bot}, fired: true},
		{name: "country", when: "{country: [de, AT]}", r: Request{Country: "DE"}, fired: true},
		{name: "country other", when: "{country: [DE, AT]}", r: Request{Country: "FR"}, reason: "country FR is not any of DE, AT"},
		{name: "country unknown", when: "{country: DE}", reason: "country (none) is not DE"},
		{name: "language prefix", when: "{language: de}", r: Request{Language: "de-AT,de;q=0.9,en;q=0.5"}, fired: true},
		{name: "language case", when: "{language: pt-BR}", r: Request{Language: "pt-br"}, fired: true},
		{name: "language more specific", when: "{language: pt-BR}", r: Request{Language: "pt"}, reason: "language pt is not pt-BR"},
		{name: "language not a prefix of a word", when: "{language: en}", r: Request{Language: "eng"}, reason: "language eng is not en"},
		{name: "path", when: `{path: "/products/*"}`, r: Request{Path: "/products/shoe"}, fired: true},
		{name: "path deeper", when: `{path: "/products/*"}`, r: Request{Path: "/products/a/b"}, reason: "path /products/a/b does not match /products/*"},
		{name: "path across", when: `{path: ["/blog", "/products/**"]}`, r: Request{Path: "/products/a/b"}, fired: true},
		{name: "query", when: "{query: {utm_campaign: spring-*}}", r: Request{Query: url.Values{"utm_campaign": {"spring-sale"}}}, fired: true},
		{name: "query any value", when: "{query: {utm_campaign: [x, spring-sale]}}", r: Request{Query: url.Values{"utm_campaign": {"a", "spring-sale"}}}, fired: true},
		{name: "query other", when: "{query: {utm_campaign: spring-sale}}", r: Request{Query: url.Values{"utm_campaign": {"fall"}}}, reason: "query utm_campaign=fall does not match spring-sale"},
		{name: "query missing", when: "{query: {utm_campaign: spring-sale}}", reason: "query has no utm_campaign"},
		{name: "query present", when: `{query: {ref: "*"}}`, r: Request{Query: url.Values{"ref": {""}}}, fired: true},
		{name: "query all names", when: "{query: {a: '1', b: '2'}}", r: Request{Query: url.Values{"a": {"1"}}}, reason: "query has no b"},
		{name: "referrer", when: `{referrer: "*.google.*"}`, r: Request{Referrer: "https://www.Google.de/search?q=shoes"}, fired: true},
		{name: "referrer with port and user", when: `{referrer: "shop.example.com"}`, r: Request{Referrer: "http://u:p@shop.example.com:8443/x"}, fired: true},
		{name: "referrer other", when: `{referrer: ["*.google.com"]}`, r: Request{Referrer: "https://bing.com/"}, reason: "referrer host bing.com does not match *.google.com"},
		{name: "referrer none", when: `{referrer: ""}`, fired: true},
		{name: "header", when: "{header: {X-Plan: pro}}", r: Request{Header: headers("X-Plan", "pro")}, fired: true},
		{name: "header other", when: "{header: {X-Plan: pro}}", r: Request{Header: headers("X-Plan", "free")}, reason: "header X-Plan: free does not match pro"},
		{name: "header without headers", when: "{header: {X-Plan: pro}}", reason: "no header X-Plan"},
		{name: "cookie", when: "{cookie: {beta: '1'}}", r: Request{Cookie: cookies("beta", "1")}, fired: true},
		{name: "cookie present", when: `{cookie: {beta: "*"}}`, r: Request{Cookie: cookies("beta", "yes")}, fired: true},
		{name: "cookie missing", when: "{cookie: {beta: '1'}}", r: Request{Cookie: cookies("other", "1")}, reason: "no cookie beta"},
		{name: "visits", when: `{visits: ">= 2"}`, v: Visitor{Visits: 2}, fired: true},
		{name: "visits fewer", when: `{visits: ">= 2"}`, v: Visitor{Visits: 1}, reason: "visits 1 is not >= 2"},
		{name: "visits bare number", when: `{visits: 3}`, v: Visitor{Visits: 3}, fired: true},
		{name: "visits any of", when: `{visits: ["< 2", "> 10"]}`, v: Visitor{Visits: 11}, fired: true},
		{name: "engagement", when: `{engagement: "> 10.5"}`, v: Visitor{Engagement: 11}, fired: true},
		{name: "engagement less", when: `{engagement: "!= 0"}`, reason: "engagement 0 is not != 0"},
		{name: "new visitor", when: "{new_visitor: true}", v: Visitor{NewVisitor: true}, fired: true},
		{name: "new visitor, returning", when: "{new_visitor: true}", reason: "visitor is returning, want new"},
		{name: "returning visitor", when: "{new_visitor: false}", fired: true},
		{name: "time inside", when: `{time: "Mon-Fri 09:00-17:00 Europe/Paris"}`, r: Request{Time: tue10}, fired: true},
		{name: "time inside, other zone", when: `{time: "Mon-Fri 09:00-17:00 Europe/Paris"}`, r: Request{Time: tue10.UTC()}, fired: true},
		{name: "time weekend", when: `{time: "Mon-Fri 09:00-17:00 Europe/Paris"}`, r: Request{Time: sat10}, reason: "time Sat 10:00 CEST is outside Mon-Fri 09:00-17:00 Europe/Paris"},
		{name: "time any of", when: `{time: ["Mon-Fri 09:00-17:00 Europe/Paris", "Sat,Sun"]}`, r: Request{Time: sat10}, fired: true},
		{name: "interest", when: "{interest: running}", v: Visitor{TopInterest: "running"}, fired: true},
		{name: "interest other", when: "{interest: [running, trail]}", v: Visitor{TopInterest: "camping"}, reason: "top interest camping is not any of running, trail"},
		{name: "persona", when: "{persona: runner}", v: Visitor{Persona: "runner"}, fired: true},
		{name: "persona none", when: "{persona: [runner, hiker]}", reason: "persona (none) is not any of runner, hiker"},
		{name: "all keys ANDed", when: "{known: true, segment: vip, device: mobile}", v: Visitor{Known: true, Segments: []string{"vip"}}, r: Request{UserAgent: firefox}, reason: "device desktop is not mobile"},

		{name: "if", ifExpr: `profile.scores.engagement > 50 && request.country in ["DE", "AT"]`, v: Visitor{Scores: map[string]float64{"engagement": 51}}, r: Request{Country: "AT"}, fired: true},
		{name: "if false", ifExpr: `profile.scores.engagement > 50`, reason: "if: profile.scores.engagement > 50 is false"},
		{name: "if over edge segments", ifExpr: `"edge-mobile" in visitor.segments && !("edge-mobile" in profile.segments)`, r: Request{UserAgent: iPhoneUA}, fired: true},
		{name: "if over traits", ifExpr: `profile.traits.city == "Lyon" && visitor.visits > 1`, v: Visitor{Traits: map[string]any{"city": "Lyon"}, Visits: 2}, fired: true},
		{name: "if over headers, cookies, query", ifExpr: `request.header("X-A") == "1" && request.cookie("c") == "2" && request.query.q == "3"`, r: Request{Header: headers("X-A", "1"), Cookie: cookies("c", "2"), Query: url.Values{"q": {"3"}}}, fired: true},
		{name: "if with nil header function", ifExpr: `request.header("X-A") == ""`, fired: true},
		{name: "if over time", ifExpr: `request.time.Weekday().String() == "Tuesday" && request.time.Hour() == 8`, r: Request{Time: tue10.UTC()}, fired: true},
		{name: "if over the visitor", ifExpr: `visitor.stage == "awareness" && visitor.device == "bot" && visitor.top_interest == "" && visitor.new_visitor`, v: Visitor{NewVisitor: true}, fired: true},
		{name: "if runtime error", ifExpr: `profile.traits.age > 3`, reason: "if: invalid operation: <nil> > int (1:20)"},
		{name: "when and if", when: "{known: true}", ifExpr: "true", reason: "visitor is anonymous, want known"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := conditionSet(t, tt.when, tt.ifExpr)
			r := tt.r
			if r.Path == "" {
				r.Path = "/"
			}
			d := s.Decide(s.Match(r.Path), &tt.v, &r)
			tr := d.Trace[0]
			if tr.Fired != tt.fired {
				t.Fatalf("Decide fired = %v (%q), want %v", tr.Fired, tr.Reason, tt.fired)
			}
			if !tt.fired && tr.Reason != tt.reason {
				t.Errorf("Decide reason = %q, want %q", tr.Reason, tt.reason)
			}
			if tt.fired != (len(d.Actions) == 1) {
				t.Errorf("Decide actions = %v, want fired %v", d.Actions, tt.fired)
			}
		})
	}
}

func TestDeviceOf(t *testing.T) {
	tests := []struct{ ua, want string }{
		{iPhoneUA, "mobile"},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36", "mobile"},
		{"Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36", "tablet"},
		{ipadUA, "tablet"},
		{firefox, "desktop"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15", "desktop"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0", "desktop"},
		{bot, "bot"},
		{"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot"},
		{"facebookexternalhit/1.1", "bot"},
		{"curl/8.5.0", "bot"},
		{"Go-http-client/1.1", "bot"},
		{"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)", "bot"},
		{"Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", "bot"},
		{"fasthttp", "bot"},
		{"", "bot"},
		{"Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", "mobile"},
		{"Mozilla/5.0 (Linux; Android 9; CUBOT KING KONG 3) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36", "mobile"},
	}
	for _, tt := range tests {
		if got := DeviceOf(tt.ua); got != tt.want {
			t.Errorf("DeviceOf(%q) = %q, want %q", tt.ua, got, tt.want)
		}
	}
}

func TestReferrerHost(t *testing.T) {
	for ref, want := range map[string]string{
		"https://www.google.com/search?q=x": "www.google.com",
		"https://WWW.Example.COM":           "www.example.com",
		"http://u:p@host:8080/x":            "host",
		"https://[::1]:8443/":               "::1",
		"android-app://com.google.app/":     "com.google.app",
		"":                                  "",
		"not a url":                         "",
	} {
		if got := referrerHost(ref); got != want {
			t.Errorf("referrerHost(%q) = %q, want %q", ref, got, want)
		}
	}
}

func ExampleSet_Decide() {
	s, err := LoadFS(exampleFS(), "rules")
	if err != nil {
		fmt.Println(err)
		return
	}
	p := s.Match("/")
	d := s.Decide(p, &Visitor{ID: "v1", Known: true, Traits: map[string]any{"first_name": "Jane"}}, &Request{Path: "/"})
	for _, a := range d.Actions {
		fmt.Printf("%s %s: %s\n", p.SelectorText(a.Sel), a.Op, a.Value)
	}
	for _, tr := range d.Trace {
		fmt.Printf("%s fired=%v %s\n", tr.Rule, tr.Fired, tr.Reason)
	}
	// Output:
	// .greeting inner: Welcome back, Jane!
	// greet fired=true matched
	// vip-hero fired=false segment vip not in []
}
