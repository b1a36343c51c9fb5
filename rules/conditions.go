package rules

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/match"
)

// test is one compiled condition. It returns whether the request passes
// and, when it does not, a sentence saying why for the trace.
type test func(c *evalCtx) (ok bool, reason string)

// condition is a rule's (or an edge segment's) when: and if:, ANDed.
type condition []test

// eval runs the tests in order, stopping at the first that fails.
func (cond condition) eval(c *evalCtx) (bool, string) {
	for _, t := range cond {
		if ok, reason := t(c); !ok {
			return false, reason
		}
	}
	return true, ""
}

// whenKeys are the keys of a when: mapping (and of an edge segment).
var whenKeys = []string{
	"segment", "not_segment", "stage", "known", "device", "country", "language",
	"path", "query", "referrer", "header", "cookie", "visits", "engagement",
	"new_visitor", "time", "interest", "persona",
}

var (
	headerName = regexp.MustCompile(`^[!#$%&'*+.^_|~0-9A-Za-z-]+$`)
	countryRe  = regexp.MustCompile(`^[A-Za-z]{2}$`)
	langRe     = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$`)
)

// when compiles the when: mapping n into tests, in the order written.
// what names n in messages ("when", "segments.mobile").
func (l *loader) when(f *fileReader, n *yaml.Node, what string) condition {
	entries, ok := f.mapping(n, what)
	if !ok {
		return nil
	}
	var cond condition
	for _, e := range entries {
		key := what + "." + e.name
		var t test
		switch e.name {
		case "segment", "not_segment":
			t = l.segmentTest(f, e, key)
		case "stage":
			t = l.stageTest(f, e, key)
		case "known":
			t = flagTest(f, e, key, "known", "anonymous", func(v *Visitor) bool { return v.Known })
		case "new_visitor":
			t = flagTest(f, e, key, "new", "returning", func(v *Visitor) bool { return v.NewVisitor })
		case "device":
			t = l.deviceTest(f, e, key)
		case "country":
			t = l.countryTest(f, e, key)
		case "language":
			t = l.languageTest(f, e, key)
		case "path":
			t = l.pathTest(f, e, key)
		case "query", "header", "cookie":
			t = l.pairsTest(f, e, key)
		case "referrer":
			t = l.referrerTest(f, e, key)
		case "visits", "engagement":
			t = l.compareTest(f, e, key)
		case "time":
			t = l.timeTest(f, e, key)
		case "interest":
			t = l.equalTest(f, e, key, "top interest", func(c *evalCtx) string { return c.v.TopInterest })
		case "persona":
			t = l.personaTest(f, e, key)
		case "if":
			// Segments take if: among their conditions (segmentCondition
			// takes it out); a rule's goes beside when:.
			f.errorAt(e.key, config.ErrUnknownKey, "unknown key \"if\" in %s: write if: beside when:, in the rule", what)
			continue
		default:
			f.unknownKey(e, what, whenKeys)
			continue
		}
		if t != nil {
			cond = append(cond, t)
		}
	}
	return cond
}

// flagTest compiles a true or false that is must equal; yes and no name
// the visitor for the trace ("known", "anonymous").
func flagTest(f *fileReader, e entry, key, yes, no string, is func(*Visitor) bool) test {
	want, ok := f.boolean(e.value, key)
	if !ok {
		return nil
	}
	return func(c *evalCtx) (bool, string) {
		switch got := is(c.v); {
		case got == want:
			return true, ""
		case want:
			return false, "visitor is " + no + ", want " + yes
		default:
			return false, "visitor is " + yes + ", want " + no
		}
	}
}

func (l *loader) segmentTest(f *fileReader, e entry, key string) test {
	names, ok := f.strs(e.value, key)
	if !ok {
		return nil
	}
	if e.name == "not_segment" {
		return func(c *evalCtx) (bool, string) {
			for _, s := range names {
				if slices.Contains(c.segs, s) {
					return false, "visitor is in segment " + s
				}
			}
			return true, ""
		}
	}
	return func(c *evalCtx) (bool, string) {
		for _, s := range names {
			if slices.Contains(c.segs, s) {
				return true, ""
			}
		}
		return false, "segment " + oneOf(names) + " not in [" + strings.Join(c.segs, " ") + "]"
	}
}

func (l *loader) stageTest(f *fileReader, e entry, key string) test {
	stages, ok := parseEach(f, e.value, key, func(at *yaml.Node, s string) (string, bool) {
		return s, l.checkStage(f, at, key, s)
	})
	if !ok {
		return nil
	}
	return func(c *evalCtx) (bool, string) {
		if slices.Contains(stages, c.stage) {
			return true, ""
		}
		return false, "stage " + orNone(c.stage) + " is not " + oneOf(stages)
	}
}

func (l *loader) deviceTest(f *fileReader, e entry, key string) test {
	devices, ok := parseEach(f, e.value, key, func(at *yaml.Node, s string) (string, bool) {
		if !slices.Contains(Devices, s) {
			f.invalid(at, key, "unknown device %q (want %s)", truncate(s, 40), strings.Join(Devices, ", "))
			return "", false
		}
		return s, true
	})
	if !ok {
		return nil
	}
	return func(c *evalCtx) (bool, string) {
		d := c.device()
		if slices.Contains(devices, d) {
			return true, ""
		}
		return false, "device " + d + " is not " + oneOf(devices)
	}
}

func (l *loader) countryTest(f *fileReader, e entry, key string) test {
	codes, ok := parseEach(f, e.value, key, func(at *yaml.Node, s string) (string, bool) {
		if !countryRe.MatchString(s) {
			f.invalid(at, key, "%q is not a two-letter country code such as DE or FR", truncate(s, 40))
			return "", false
		}
		return strings.ToUpper(s), true
	})
	if !ok {
		return nil
	}
	return func(c *evalCtx) (bool, string) {
		for _, code := range codes {
			if strings.EqualFold(c.r.Country, code) {
				return true, ""
			}
		}
		return false, "country " + orNone(c.r.Country) + " is not " + oneOf(codes)
	}
}

// languageTest matches language tags by prefix: "de" matches de, de-AT
// and de-CH; "de-AT" only de-AT.
func (l *loader) languageTest(f *fileReader, e entry, key string) test {
	tags, ok := parseEach(f, e.value, key, func(at *yaml.Node, s string) (string, bool) {
		if !langRe.MatchString(s) {
			f.invalid(at, key, "%q is not a language tag such as de or pt-BR", truncate(s, 40))
			return "", false
		}
		return s, true
	})
	if !ok {
		return nil
	}
	return func(c *evalCtx) (bool, string) {
		lang := c.language()
		for _, t := range tags {
			if len(lang) >= len(t) && strings.EqualFold(lang[:len(t)], t) && (len(lang) == len(t) || lang[len(t)] == '-') {
				return true, ""
			}
		}
		return false, "language " + orNone(lang) + " is not " + oneOf(tags)
	}
}

func (l *loader) pathTest(f *fileReader, e entry, key string) test {
	globs, ok := l.globs(f, e.value, key)
	if !ok {
		return nil
	}
	return func(c *evalCtx) (bool, string) {
		if match.AnyGlob(globs, c.r.Path) {
			return true, ""
		}
		return false, "path " + c.r.Path + " does not match " + oneOf(globSources(globs))
	}
}

// globs compiles the path glob or list of globs n.
func (l *loader) globs(f *fileReader, n *yaml.Node, key string) ([]match.Glob, bool) {
	items, ok := f.values(n, key)
	if !ok {
		return nil, false
	}
	globs := make([]match.Glob, 0, len(items))
	good := true
	for _, it := range items {
		s, ok := f.str(it, key)
		if !ok {
			good = false
			continue
		}
		g, err := match.CompileGlob(s)
		if err != nil {
			f.invalid(it, key, "%v", err)
			good = false
			continue
		}
		globs = append(globs, g)
	}
	return globs, good
}

func globSources(globs []match.Glob) []string {
	out := make([]string, len(globs))
	for i, g := range globs {
		out[i] = g.String()
	}
	return out
}

// valueMatch is one name of a query:, header: or cookie: mapping with the
// values it accepts.
type valueMatch struct {
	name string
	// present is true for "*": any value, as long as there is one.
	present bool
	values  []match.Wildcard
}

func (m *valueMatch) match(vals ...string) bool {
	for _, v := range vals {
		if m.present {
			return true
		}
		for _, w := range m.values {
			if w.Match(v) {
				return true
			}
		}
	}
	return false
}

// pairsTest compiles query:, header: and cookie:, mappings of a name to a
// value or a list of values (any of them; * in a value matches any run of
// characters, and "*" alone any value at all). All names must match.
func (l *loader) pairsTest(f *fileReader, e entry, key string) test {
	entries, ok := f.mapping(e.value, key)
	if !ok {
		return nil
	}
	if len(entries) == 0 {
		f.invalid(e.value, key, "want at least one name: value")
		return nil
	}
	var ms []valueMatch
	for _, p := range entries {
		pkey := key + "." + p.name
		switch {
		case e.name == "header" && !headerName.MatchString(p.name):
			f.invalid(p.key, key, "%q is not a valid header name", truncate(p.name, 40))
			continue
		case e.name == "cookie" && !headerName.MatchString(p.name):
			f.invalid(p.key, key, "%q is not a valid cookie name", truncate(p.name, 40))
			continue
		case p.name == "":
			f.invalid(p.key, key, "an empty name never matches")
			continue
		}
		vals, ok := f.strs(p.value, pkey)
		if !ok {
			continue
		}
		m := valueMatch{name: p.name}
		for _, v := range vals {
			if v == "*" {
				m.present = true
				continue
			}
			w, err := match.CompileWildcard(v, false)
			if err != nil {
				f.invalid(p.value, pkey, "%v", err)
				continue
			}
			m.values = append(m.values, w)
		}
		ms = append(ms, m)
	}
	switch e.name {
	case "query":
		return func(c *evalCtx) (bool, string) {
			for i := range ms {
				m := &ms[i]
				vals, ok := c.r.Query[m.name]
				if !ok {
					return false, "query has no " + m.name
				}
				if !m.match(vals...) {
					return false, "query " + m.name + "=" + strings.Join(vals, ",") + " does not match " + m.describe()
				}
			}
			return true, ""
		}
	case "header":
		return oneValueTest(ms, "header", ": ", (*Request).header)
	}
	return oneValueTest(ms, "cookie", "=", (*Request).cookie)
}

// oneValueTest tests header: and cookie:, whose names have one value
// each, which get returns ("" for none); noun and sep write a value for
// the trace ("header Accept: text/html", "cookie ab=b").
func oneValueTest(ms []valueMatch, noun, sep string, get func(r *Request, name string) string) test {
	return func(c *evalCtx) (bool, string) {
		for i := range ms {
			m := &ms[i]
			v := get(c.r, m.name)
			if v == "" {
				return false, "no " + noun + " " + m.name
			}
			if !m.match(v) {
				return false, noun + " " + m.name + sep + truncate(v, 60) + " does not match " + m.describe()
			}
		}
		return true, ""
	}
}

func (m *valueMatch) describe() string {
	srcs := make([]string, len(m.values))
	for i, w := range m.values {
		srcs[i] = w.String()
	}
	return oneOf(srcs)
}

// referrerTest matches the Referer's host against host globs, case
// insensitively; "" matches a request without a referrer.
func (l *loader) referrerTest(f *fileReader, e entry, key string) test {
	hosts, ok := f.strs(e.value, key)
	if !ok {
		return nil
	}
	var ws []match.Wildcard
	for _, h := range hosts {
		if strings.Contains(h, "/") {
			f.invalid(e.value, key, "%q: want a host glob such as *.google.com, not a URL", truncate(h, 60))
			return nil
		}
		w, err := match.CompileWildcard(h, true)
		if err != nil {
			f.invalid(e.value, key, "%v", err)
			return nil
		}
		ws = append(ws, w)
	}
	return func(c *evalCtx) (bool, string) {
		host := c.referrerHost()
		for _, w := range ws {
			if w.Match(host) {
				return true, ""
			}
		}
		return false, "referrer host " + orNone(host) + " does not match " + oneOf(hosts)
	}
}

func (l *loader) compareTest(f *fileReader, e entry, key string) test {
	cmps, ok := parseEach(f, e.value, key, func(at *yaml.Node, s string) (match.Comparison, bool) {
		cmp, err := match.ParseComparison(s)
		if err != nil {
			f.invalid(at, key, "%v", err)
		}
		return cmp, err == nil
	})
	if !ok {
		return nil
	}
	srcs := make([]string, len(cmps))
	for i, cmp := range cmps {
		srcs[i] = cmp.String()
	}
	visits := e.name == "visits"
	return func(c *evalCtx) (bool, string) {
		v := c.v.Engagement
		if visits {
			v = float64(c.v.Visits)
		}
		for _, cmp := range cmps {
			if cmp.Test(v) {
				return true, ""
			}
		}
		return false, e.name + " " + strconv.FormatFloat(v, 'g', -1, 64) + " is not " + oneOf(srcs)
	}
}

func (l *loader) timeTest(f *fileReader, e entry, key string) test {
	ws, ok := parseEach(f, e.value, key, func(at *yaml.Node, s string) (match.Window, bool) {
		w, err := match.ParseWindow(s)
		if err != nil {
			f.invalid(at, key, "time window %q: %v", truncate(s, 60), err)
		}
		return w, err == nil
	})
	if !ok {
		return nil
	}
	return func(c *evalCtx) (bool, string) {
		for i := range ws {
			if ws[i].Contains(c.r.Time) {
				return true, ""
			}
		}
		srcs := make([]string, len(ws))
		for i, w := range ws {
			srcs[i] = w.String()
		}
		return false, "time " + c.r.Time.In(ws[0].Location()).Format("Mon 15:04 MST") + " is outside " + oneOf(srcs)
	}
}

func (l *loader) personaTest(f *fileReader, e entry, key string) test {
	names, ok := parseEach(f, e.value, key, func(at *yaml.Node, s string) (string, bool) {
		return s, checkDeclared(f, at, key, "persona", s, sortedKeys(l.personas), "declare it under personas:")
	})
	if !ok {
		return nil
	}
	return func(c *evalCtx) (bool, string) {
		if slices.Contains(names, c.v.Persona) {
			return true, ""
		}
		return false, "persona " + orNone(c.v.Persona) + " is not " + oneOf(names)
	}
}

// equalTest compiles a value or list of values that get must equal.
func (l *loader) equalTest(f *fileReader, e entry, key, noun string, get func(*evalCtx) string) test {
	want, ok := f.strs(e.value, key)
	if !ok {
		return nil
	}
	return func(c *evalCtx) (bool, string) {
		v := get(c)
		if slices.Contains(want, v) {
			return true, ""
		}
		return false, noun + " " + orNone(v) + " is not " + oneOf(want)
	}
}

// oneOf writes a list for a trace: "vip" or "any of vip, gold".
func oneOf(list []string) string {
	if len(list) == 1 {
		return list[0]
	}
	return "any of " + strings.Join(list, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
