package bots

import (
	"strings"
	"testing"
)

func BenchmarkMatch(b *testing.B) {
	m := Default()
	hostile := strings.Repeat("GOOGLEBOT/ Yandex ", 60) // literals everywhere, in a case no pattern matches
	// Every literal of a pattern that needs its regexp run, in upper
	// case: each one runs a regexp that fails.
	var mixed strings.Builder
	for _, l := range m.literals {
		if m.patterns[l.patterns[0]].exact == nil && mixed.Len() < MaxLen {
			mixed.WriteString(strings.ToUpper(l.text) + " ")
		}
	}
	for _, bc := range []struct{ name, ua string }{
		{"browser", browsers[0]},
		{"mobile", browsers[4]},
		{"googlebot", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
		{"curl", "curl/8.5.0"},
		{"hostile", hostile},
		{"hostile-regexps", mixed.String()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.ua)))
			for b.Loop() {
				m.Match(bc.ua)
			}
		})
	}
}

// BenchmarkAlternation is what Match replaces: every pattern as one
// regular expression.
func BenchmarkAlternation(b *testing.B) {
	re := compileOne(b)
	b.ReportAllocs()
	for b.Loop() {
		re.MatchString(browsers[0])
	}
}

func BenchmarkNew(b *testing.B) {
	patterns := Patterns()
	b.ReportAllocs()
	for b.Loop() {
		New(patterns)
	}
}
