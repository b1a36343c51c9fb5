package bots

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
)

// crawlerList is the crawler-user-agents list as published (see doc.go).
//
//go:embed crawler-user-agents.json
var crawlerList []byte

// Crawler is one entry of the crawler-user-agents list.
type Crawler struct {
	// Pattern is a Go regular expression (RE2 syntax) that a crawler's
	// User-Agent matches, in its case unless it says (?i).
	Pattern string `json:"pattern"`
	// Instances are User-Agents the crawler sent, as examples.
	Instances []string `json:"instances"`
}

// List returns the crawler-user-agents list (a new slice each call).
func List() []Crawler {
	var list []Crawler
	if err := json.Unmarshal(crawlerList, &list); err != nil {
		// The embedded file is checked by the tests: unreachable.
		return nil
	}
	return list
}

// MaxLen is how much of a User-Agent is matched: the first MaxLen bytes.
// The longest example in the list is 285 bytes; the bound keeps what a
// hostile User-Agent of many kilobytes costs within that of a few
// ordinary ones.
const MaxLen = 1024

// Matcher tells crawlers' User-Agents from people's by a list of
// patterns. It is safe for concurrent use and never changes once built.
//
// Running some 1,500 regular expressions on every page view, or one made
// of all of them, costs tens of microseconds. A Matcher reads the
// User-Agent once instead, three bytes at a time in ASCII lower case,
// looking for the literals the patterns require (every text a pattern
// matches contains one of its literals; regexp/syntax tells which); only
// a pattern whose literal occurs is run. A browser's User-Agent, which
// holds none, costs that one pass.
type Matcher struct {
	patterns []pattern
	literals []literal
	// byKey lists, by the lower-case first three bytes of a literal, the
	// literals that start with them.
	byKey map[uint32][]int32
	// filter has the bit hashKey(k) set for every key of byKey: most
	// windows of a User-Agent start no literal and cost one bit test.
	filter [filterBits / 64]uint64
	// unindexed are the patterns that require no literal of minLiteral
	// bytes: they run on every User-Agent.
	unindexed []int32
}

type pattern struct {
	source string
	re     *regexp.Regexp // nil when exact says it all
	// exact, when not nil, is every string the pattern matches, anywhere
	// and in their case: containing one of them is matching.
	exact []string
}

type literal struct {
	text     string // in ASCII lower case
	patterns []int32
}

const filterBits = 1 << 16

// hashKey spreads the three bytes of k over the filter's bits.
func hashKey(k uint32) uint32 { return (k * 0x9E3779B1) >> (32 - 16) }

// New builds a Matcher from patterns (Go regular expressions). A pattern
// that does not compile is left out and reported in the error, with the
// Matcher built from the others.
func New(patterns []string) (*Matcher, error) {
	m := &Matcher{byKey: map[uint32][]int32{}}
	index := map[string]int32{}
	var errs []error
	for _, src := range patterns {
		parsed, err := syntax.Parse(src, syntax.Perl)
		if err != nil {
			errs = append(errs, fmt.Errorf("pattern %q: %w", src, err))
			continue
		}
		re, err := regexp.Compile(src)
		if err != nil {
			errs = append(errs, fmt.Errorf("pattern %q: %w", src, err))
			continue
		}
		id := int32(len(m.patterns))
		p := pattern{source: src}
		an := analyze(parsed)
		if plain(parsed) && an.exactOK && !slices.Contains(an.exact, "") {
			// The strings are all it takes: the compiled expression,
			// most of a Matcher's memory, is not kept for the garbage
			// collector to go through.
			p.exact = an.exact
		} else {
			p.re = re
		}
		m.patterns = append(m.patterns, p)
		req := an.required()
		if req == nil || shortest(req) < minLiteral {
			m.unindexed = append(m.unindexed, id)
			continue
		}
		for _, s := range minimal(dedupe(lowerAll(req))) {
			li, ok := index[s]
			if !ok {
				li = int32(len(m.literals))
				index[s] = li
				m.literals = append(m.literals, literal{text: s})
				k := key(s)
				m.byKey[k] = append(m.byKey[k], li)
				h := hashKey(k)
				m.filter[h/64] |= 1 << (h % 64)
			}
			m.literals[li].patterns = append(m.literals[li].patterns, id)
		}
	}
	return m, errors.Join(errs...)
}

// Match reports whether userAgent (its first MaxLen bytes) matches a
// pattern. It does not allocate, but for a User-Agent holding more than
// 64 of the literals.
func (m *Matcher) Match(userAgent string) bool {
	ua := userAgent
	if len(ua) > MaxLen {
		ua = ua[:MaxLen]
	}
	for _, id := range m.unindexed {
		if m.confirm(id, ua) {
			return true
		}
	}
	if len(ua) < minLiteral {
		return false
	}
	var seen seenSet
	k := uint32(lowerByte[ua[0]])<<8 | uint32(lowerByte[ua[1]])
	for i := 2; i < len(ua); i++ {
		k = (k<<8 | uint32(lowerByte[ua[i]])) & 0xffffff
		if h := hashKey(k); m.filter[h/64]&(1<<(h%64)) == 0 {
			continue
		}
		start := i - 2
		for _, li := range m.byKey[k] {
			l := &m.literals[li]
			if len(ua)-start < len(l.text) || !hasPrefixFold(ua[start:], l.text) || seen.add(li, len(m.literals)) {
				continue
			}
			for _, id := range l.patterns {
				if m.confirm(id, ua) {
					return true
				}
			}
		}
	}
	return false
}

// confirm runs pattern id on ua: a look for its strings when it is plain,
// else its regular expression.
func (m *Matcher) confirm(id int32, ua string) bool {
	p := &m.patterns[id]
	if p.exact != nil {
		for _, s := range p.exact {
			if strings.Contains(ua, s) {
				return true
			}
		}
		return false
	}
	return p.re.MatchString(ua)
}

// seenSet holds the literals a Match has already followed up, so that a
// literal repeated all over a User-Agent runs its patterns once: a few
// inline, then a bit per literal.
type seenSet struct {
	few  [64]int32
	n    int
	bits []uint64
}

// add marks li and reports whether it was marked already.
func (s *seenSet) add(li int32, total int) bool {
	if s.bits != nil {
		if s.bits[li/64]&(1<<(li%64)) != 0 {
			return true
		}
		s.bits[li/64] |= 1 << (li % 64)
		return false
	}
	for _, x := range s.few[:s.n] {
		if x == li {
			return true
		}
	}
	if s.n < len(s.few) {
		s.few[s.n] = li
		s.n++
		return false
	}
	s.bits = make([]uint64, (total+63)/64)
	for _, x := range s.few {
		s.bits[x/64] |= 1 << (x % 64)
	}
	s.bits[li/64] |= 1 << (li % 64)
	return false
}

// lowerByte maps ASCII upper-case letters to lower case and every other
// byte to itself.
var lowerByte = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if 'A' <= i && i <= 'Z' {
			t[i] = byte(i) + 'a' - 'A'
		}
	}
	return t
}()

func key(s string) uint32 {
	return uint32(s[0])<<16 | uint32(s[1])<<8 | uint32(s[2])
}

// hasPrefixFold reports whether s starts with the lower-case prefix,
// ignoring ASCII case in s.
func hasPrefixFold(s, prefix string) bool {
	for j := 0; j < len(prefix); j++ {
		if lowerByte[s[j]] != prefix[j] {
			return false
		}
	}
	return true
}

func lowerAll(set []string) []string {
	out := make([]string, len(set))
	for i, s := range set {
		b := []byte(s)
		for j, c := range b {
			b[j] = lowerByte[c]
		}
		out[i] = string(b)
	}
	return out
}

// Patterns returns the patterns Default matches: the crawler list's (as
// Narrowed has them), then tailor's own (Extra).
func Patterns() []string {
	list := List()
	out := make([]string, 0, len(list)+len(Extra))
	for _, c := range list {
		if n, ok := Narrowed[c.Pattern]; ok {
			out = append(out, n)
			continue
		}
		out = append(out, c.Pattern)
	}
	for _, e := range Extra {
		out = append(out, e.Pattern)
	}
	return out
}

// Default returns the Matcher of Patterns, built on first use (some
// milliseconds: call it at start-up to spare the first visitor).
var Default = sync.OnceValue(func() *Matcher {
	m, _ := New(Patterns()) // the tests check that every pattern compiles
	return m
})

// Is reports whether userAgent is a crawler's, a headless browser's, a
// monitor's or an HTTP library's by Default. An empty User-Agent matches
// nothing here; rules.DeviceOf counts it as a bot.
func Is(userAgent string) bool { return Default().Match(userAgent) }
