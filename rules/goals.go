package rules

import (
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/match"
)

// Goal is a goal the browser may report to the beacon (config
// beacon_path): one declared under goals:. A goal the journey names is
// confirmed by the page view the server sends; the browser may report it
// too only when goals: declares it as well.
type Goal struct {
	// Name is the goal's name, as events carry it.
	Name string
	// Value is what a report that sends no value counts; 0 without one.
	Value float64
	// MaxValue is the most a page may send: a value outside
	// [0, MaxValue] is refused. It is Value unless max_value says more.
	MaxValue float64
	// Click lists CSS selectors: a click on an element that matches one
	// (or inside one) reports the goal, through the goal script.
	Click []string
	// Paths are the path globs of the pages the goal script is added to
	// for Click, as written; nil means every page.
	Paths []string

	globs []match.Glob
}

// ClickGoal is one click goal of a page: the goal and its selectors.
type ClickGoal struct {
	Goal  string
	Click []string
}

// maxGoals bounds the goals a rule set declares: each is a label value
// in the readout and a row in the console.
const maxGoals = 256

var goalKeys = []string{"value", "max_value", "click", "path"}

// Goal returns the goal name as goals: declares it; ok is false for a
// goal goals: does not declare. A journey's goal is not reportable by
// this alone: anyone could post {"goal":"purchase"} and count a purchase
// that no page view confirmed.
func (s *Set) Goal(name string) (g Goal, ok bool) {
	if s == nil {
		return Goal{}, false
	}
	for i := range s.goals {
		if s.goals[i].Name == name {
			return s.goals[i], true
		}
	}
	return Goal{}, false
}

// ClickGoals returns the click goals of the page at path, in declaration
// order: those whose path matches (or that have none). nil when there are
// none: such a page gets no goal script.
func (s *Set) ClickGoals(path string) []ClickGoal {
	if s == nil {
		return nil
	}
	var out []ClickGoal
	for i := range s.goals {
		g := &s.goals[i]
		if len(g.Click) == 0 || g.globs != nil && !match.AnyGlob(g.globs, path) {
			continue
		}
		out = append(out, ClickGoal{Goal: g.Name, Click: g.Click})
	}
	return out
}

// HasClickGoal reports whether the page at path has a click goal (what
// ClickGoals would list, without listing it).
func (s *Set) HasClickGoal(path string) bool {
	if s == nil {
		return false
	}
	for i := range s.goals {
		g := &s.goals[i]
		if len(g.Click) > 0 && (g.globs == nil || match.AnyGlob(g.globs, path)) {
			return true
		}
	}
	return false
}

// HasClickGoals reports whether any declared goal has click selectors.
func (s *Set) HasClickGoals() bool {
	return s != nil && slices.ContainsFunc(s.goals, func(g Goal) bool { return len(g.Click) > 0 })
}

// goalDecls reads a file's goals: {name: {value, max_value, click, path}}.
func (l *loader) goalDecls(f *file, e entry) {
	entries, ok := f.mapping(e.value, "goals")
	if !ok {
		return
	}
	for _, p := range entries {
		key := "goals." + p.name
		if !f.checkName(p.key, "goals", p.name) {
			continue
		}
		if at, dup := l.goals[p.name]; dup {
			f.errorAt(p.key, config.ErrDuplicateKey, "goal %q is already declared at %s", p.name, at)
			continue
		}
		l.goals[p.name] = where(f.fileReader, p.key)
		if len(l.goals) > maxGoals {
			f.invalid(p.key, "goals", "at most %d goals may be declared", maxGoals)
			continue
		}
		fields, ok := f.mapping(p.value, key)
		if !ok {
			continue
		}
		g := Goal{Name: p.name}
		good, hasMax := true, false
		maxAt := p.key
		for _, fp := range fields {
			fkey := key + "." + fp.name
			switch fp.name {
			case "value":
				v, ok := f.number(fp.value, fkey)
				if ok && v < 0 {
					f.invalid(fp.value, fkey, "a goal's value must not be negative")
					ok = false
				}
				g.Value = v
				good = good && ok
			case "max_value":
				v, ok := f.number(fp.value, fkey)
				if ok && v < 0 {
					f.invalid(fp.value, fkey, "must not be negative")
					ok = false
				}
				g.MaxValue, hasMax, maxAt = v, true, fp.value
				good = good && ok
			case "click":
				sels, ok := parseEach(f.fileReader, fp.value, fkey, func(at *yaml.Node, s string) (string, bool) {
					if strings.TrimSpace(s) == "" {
						f.invalid(at, fkey, "want a CSS selector, not an empty string")
						return "", false
					}
					if _, err := compileSelector(s); err != nil {
						f.errorAt(at, ErrSelector, "%s: invalid selector %q: %v", fkey, truncate(s, 80), err)
						return "", false
					}
					return s, true
				})
				g.Click = sels
				good = good && ok
			case "path":
				globs, ok := l.globs(f.fileReader, fp.value, fkey)
				g.globs, g.Paths = globs, globSources(globs)
				good = good && ok
			default:
				f.unknownKey(fp, "goals."+p.name, goalKeys)
				good = false
			}
		}
		if !hasMax {
			g.MaxValue = g.Value
		}
		switch {
		case !good:
		case g.MaxValue < g.Value:
			f.invalid(maxAt, key+".max_value", "%v is less than the goal's value, %v", g.MaxValue, g.Value)
		case g.globs != nil && len(g.Click) == 0:
			f.invalid(p.value, key, "path: says where the goal script goes for click:; a goal without click: needs none")
		default:
			l.set.goals = append(l.set.goals, g)
		}
	}
}
