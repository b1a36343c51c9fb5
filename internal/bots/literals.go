package bots

import (
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxSet bounds the strings a literal set may hold: beyond it, a part of
// a pattern counts as unknown (no literal required).
const maxSet = 64

// minLiteral is the shortest literal the prefilter indexes: the scan
// looks at three bytes at a time.
const minLiteral = 3

// lits is what the analysis knows of one node of a pattern.
type lits struct {
	// exact, when exactOK, is every string the node can match (anchors
	// and word boundaries match ""); at most maxSet of them.
	exact   []string
	exactOK bool
	// req, when not nil, is a set of which every match contains one.
	req []string
}

// required returns the node's best set of which every match contains
// one: its exact strings when none is empty, else req.
func (l lits) required() []string {
	if l.exactOK && len(l.exact) > 0 && !slices.Contains(l.exact, "") {
		return l.exact
	}
	return l.req
}

// analyze returns what re requires of the text it matches. A set found
// here is sound: every string re matches contains one of its strings as
// a substring (for a part of re that ignores case, in some case: the
// prefilter compares in ASCII lower case, so such parts must be ASCII).
func analyze(re *syntax.Regexp) lits {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 && !isASCII(re.Rune) {
			return lits{}
		}
		s := string(re.Rune)
		return lits{exact: []string{s}, exactOK: true, req: []string{s}}
	case syntax.OpCharClass:
		var out []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			if int(hi-lo)+1+len(out) > 4 || hi > utf8.MaxRune {
				return lits{}
			}
			for r := lo; r <= hi; r++ {
				out = append(out, string(r))
			}
		}
		if len(out) == 0 {
			return lits{}
		}
		return lits{exact: out, exactOK: true, req: out}
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return lits{exact: []string{""}, exactOK: true}
	case syntax.OpCapture:
		return analyze(re.Sub[0])
	case syntax.OpQuest:
		sub := analyze(re.Sub[0])
		if sub.exactOK && len(sub.exact) < maxSet {
			return lits{exact: union(sub.exact, []string{""}), exactOK: true}
		}
		return lits{}
	case syntax.OpPlus:
		return lits{req: analyze(re.Sub[0]).required()}
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return lits{req: analyze(re.Sub[0]).required()}
		}
		return lits{}
	case syntax.OpConcat:
		return analyzeConcat(re.Sub)
	case syntax.OpAlternate:
		var out lits
		out.exactOK = true
		reqOK := true
		for _, s := range re.Sub {
			sub := analyze(s)
			if out.exactOK && sub.exactOK && len(out.exact)+len(sub.exact) <= maxSet {
				out.exact = union(out.exact, sub.exact)
			} else {
				out.exactOK, out.exact = false, nil
			}
			if r := sub.required(); reqOK && r != nil && len(out.req)+len(r) <= maxSet {
				out.req = union(out.req, r)
			} else {
				reqOK, out.req = false, nil
			}
		}
		return out
	}
	// OpAnyChar, OpAnyCharNotNL, OpStar, OpNoMatch: nothing required.
	return lits{}
}

// analyzeConcat joins neighbours whose strings are known exactly (their
// cross product, while it stays within maxSet) and picks, of those runs
// and of the other parts' required sets, the one whose shortest string
// is longest: every match contains one of its strings.
func analyzeConcat(subs []*syntax.Regexp) lits {
	var best []string
	consider := func(set []string) {
		if len(set) == 0 || slices.Contains(set, "") {
			return
		}
		if best == nil || shortest(set) > shortest(best) || shortest(set) == shortest(best) && len(set) < len(best) {
			best = set
		}
	}
	whole, wholeOK := []string{""}, true
	run := []string{""}
	for _, s := range subs {
		if rep := repeated(s); rep != nil {
			// x+ is x then x*: the run goes on into its first x and
			// a new one starts with its last.
			if sub := analyze(rep); sub.exactOK {
				wholeOK, whole = false, nil
				if r, ok := product(run, sub.exact); ok {
					consider(r)
				}
				consider(run)
				run = sub.exact
				continue
			}
		}
		sub := analyze(s)
		if wholeOK && sub.exactOK {
			if w, ok := product(whole, sub.exact); ok {
				whole = w
			} else {
				wholeOK, whole = false, nil
			}
		} else {
			wholeOK, whole = false, nil
		}
		if !sub.exactOK {
			consider(run)
			run = []string{""}
			consider(sub.req)
			continue
		}
		if r, ok := product(run, sub.exact); ok {
			run = r
			continue
		}
		consider(run)
		run = sub.exact
	}
	consider(run)
	out := lits{req: best}
	if wholeOK {
		out.exact, out.exactOK = whole, true
	}
	return out
}

// repeated returns x for x+ or x{n,} with n >= 1, else nil.
func repeated(re *syntax.Regexp) *syntax.Regexp {
	if re.Op == syntax.OpPlus || re.Op == syntax.OpRepeat && re.Min >= 1 {
		return re.Sub[0]
	}
	return nil
}

// product returns every string of a followed by one of b, or false when
// there would be more than maxSet.
func product(a, b []string) ([]string, bool) {
	if len(a)*len(b) > maxSet {
		return nil, false
	}
	out := make([]string, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, x+y)
		}
	}
	return dedupe(out), true
}

// minimal drops from a required set the strings that contain another of
// its strings: a text that contains the longer contains the shorter. The
// comparison is in ASCII lower case, as the prefilter's.
func minimal(set []string) []string {
	var out []string
	for i, s := range set {
		redundant := false
		for j, t := range set {
			if i != j && len(t) <= len(s) && strings.Contains(s, t) && (len(t) < len(s) || j < i) {
				redundant = true
				break
			}
		}
		if !redundant {
			out = append(out, s)
		}
	}
	return out
}

func union(a, b []string) []string {
	return dedupe(append(slices.Clip(a), b...))
}

func dedupe(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

func shortest(set []string) int {
	n := -1
	for _, s := range set {
		if n < 0 || len(s) < n {
			n = len(s)
		}
	}
	return n
}

func isASCII(rs []rune) bool {
	for _, r := range rs {
		if r >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// plain reports whether re is a finite set of strings matched anywhere,
// in their case: no anchor, no boundary, nothing that ignores case. A
// text then matches re exactly when it contains one of its exact strings.
func plain(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral:
		return re.Flags&syntax.FoldCase == 0
	case syntax.OpCharClass, syntax.OpEmptyMatch:
		return true
	case syntax.OpCapture, syntax.OpQuest, syntax.OpConcat, syntax.OpAlternate:
		for _, s := range re.Sub {
			if !plain(s) {
				return false
			}
		}
		return true
	}
	return false
}
