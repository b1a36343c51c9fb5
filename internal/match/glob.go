package match

import (
	"fmt"
	"regexp"
	"strings"
)

// Glob matches request paths: * and ? within a segment, ** across
// segments. Globs are compiled to RE2 regular expressions, which match in
// time linear in the path whatever the pattern: a crafted URL cannot make
// matching slow.
type Glob struct {
	src string
	// kind says how to match: the common shapes without a regexp.
	kind globKind
	// lit is the pattern (globLiteral), or the part before its final
	// "/**" or "/*" (globTree, globChildren).
	lit string
	re  *regexp.Regexp
}

type globKind uint8

const (
	globRegexp   globKind = iota
	globLiteral           // /about
	globTree              // /products/**: /products and everything below
	globChildren          // /products/*: one segment below /products/
)

// CompileGlob compiles a path glob:
//
//	/about          the path /about only
//	/products/*     /products/shoes, /products/ (not /products/a/b)
//	/products/**    /products, /products/ and everything below
//	/**/*.html      any .html page
//	/p?ge           /page, /pige
func CompileGlob(s string) (Glob, error) {
	if !strings.HasPrefix(s, "/") {
		return Glob{}, fmt.Errorf("path glob %q must start with /", s)
	}
	if !strings.ContainsAny(s, "*?") {
		return Glob{src: s, kind: globLiteral, lit: s}, nil
	}
	if base, ok := strings.CutSuffix(s, "/**"); ok && !strings.ContainsAny(base, "*?") {
		return Glob{src: s, kind: globTree, lit: base}, nil
	}
	if base, ok := strings.CutSuffix(s, "/*"); ok && !strings.ContainsAny(base, "*?") {
		return Glob{src: s, kind: globChildren, lit: base}, nil
	}
	var re strings.Builder
	re.WriteString(`^`)
	for _, seg := range strings.Split(s[1:], "/") {
		if seg == "**" {
			// "/**" also matches nothing, so /a/** matches /a and
			// /a/**/b matches /a/b.
			re.WriteString(`(?:/.*)?`)
			continue
		}
		if strings.Contains(seg, "**") {
			return Glob{}, fmt.Errorf("path glob %q: ** must be a whole segment, as in /a/**/b", s)
		}
		re.WriteString(`/`)
		for i := 0; i < len(seg); {
			j := strings.IndexAny(seg[i:], "*?")
			if j < 0 {
				re.WriteString(regexp.QuoteMeta(seg[i:]))
				break
			}
			re.WriteString(regexp.QuoteMeta(seg[i : i+j]))
			if seg[i+j] == '*' {
				re.WriteString(`[^/]*`)
			} else {
				re.WriteString(`[^/]`)
			}
			i += j + 1
		}
	}
	re.WriteString(`$`)
	rx, err := regexp.Compile(re.String())
	if err != nil {
		return Glob{}, fmt.Errorf("path glob %q: %v", s, err)
	}
	return Glob{src: s, re: rx}, nil
}

// String returns the glob as written.
func (g Glob) String() string { return g.src }

// Match reports whether the glob matches path.
func (g *Glob) Match(path string) bool {
	switch g.kind {
	case globLiteral:
		return path == g.lit
	case globTree:
		rest, ok := strings.CutPrefix(path, g.lit)
		return ok && (rest == "" || rest[0] == '/')
	case globChildren:
		rest, ok := strings.CutPrefix(path, g.lit)
		return ok && rest != "" && rest[0] == '/' && strings.IndexByte(rest[1:], '/') < 0
	}
	return g.re.MatchString(path)
}

// AnyGlob reports whether one of globs matches path.
func AnyGlob(globs []Glob, path string) bool {
	for i := range globs {
		if globs[i].Match(path) {
			return true
		}
	}
	return false
}

// Wildcard matches a value (a host, a query parameter, a header, a cookie)
// with * standing for any run of characters, dots and slashes included: a
// referrer glob *.google.com matches www.google.com and a.b.google.com.
type Wildcard struct {
	src  string
	fold bool
	re   *regexp.Regexp
}

// CompileWildcard compiles a wildcard pattern; fold makes it match
// without regard to case (host names).
func CompileWildcard(s string, fold bool) (Wildcard, error) {
	w := Wildcard{src: s, fold: fold}
	if !strings.Contains(s, "*") {
		return w, nil
	}
	var re strings.Builder
	re.WriteString(`^`)
	if fold {
		re.WriteString(`(?i)`)
	}
	for i, part := range strings.Split(s, "*") {
		if i > 0 {
			re.WriteString(`.*`)
		}
		re.WriteString(regexp.QuoteMeta(part))
	}
	re.WriteString(`$`)
	rx, err := regexp.Compile(re.String())
	if err != nil {
		return Wildcard{}, fmt.Errorf("pattern %q: %v", s, err)
	}
	w.re = rx
	return w, nil
}

// String returns the pattern as written.
func (w Wildcard) String() string { return w.src }

// Match reports whether s matches the pattern.
func (w Wildcard) Match(s string) bool {
	switch {
	case w.re != nil:
		return w.re.MatchString(s)
	case w.fold:
		return strings.EqualFold(s, w.src)
	}
	return s == w.src
}
