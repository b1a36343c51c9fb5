package rules

import (
	"math"
	"slices"
	"time"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/match"
)

// JourneyStep is what a page view means for the visitor's journey: the
// stage it moves the visitor to and the goal it counts as, either may be
// "".
type JourneyStep struct {
	// Stage is a declared stage, or "".
	Stage string
	// Goal names a conversion ("purchase"), or "".
	Goal string
	// Value is the goal's value; 0 without one.
	Value float64
}

type journeyEntry struct {
	globs []match.Glob
	step  JourneyStep
}

// Journey returns the step of the first journey entry whose path matches,
// in file order; ok is false when none does.
func (s *Set) Journey(path string) (step JourneyStep, ok bool) {
	for i := range s.journey {
		if match.AnyGlob(s.journey[i].globs, path) {
			return s.journey[i].step, true
		}
	}
	return JourneyStep{}, false
}

var journeyKeys = []string{"path", "stage", "goal", "value"}

func (l *loader) journey(f *file, e entry) {
	for it, entries := range f.mappings(e.value, "journey") {
		var j journeyEntry
		var hasPath, good, hasValue = false, true, false
		for _, p := range entries {
			key := "journey." + p.name
			switch p.name {
			case "path":
				hasPath = true
				var ok bool
				j.globs, ok = l.globs(f.fileReader, p.value, key)
				good = good && ok
			case "stage":
				s, ok := f.str(p.value, key)
				if ok = ok && l.checkStage(f.fileReader, p.value, key, s); ok {
					j.step.Stage = s
				}
				good = good && ok
			case "goal":
				s, ok := l.name(f.fileReader, p.value, key)
				j.step.Goal = s
				good = good && ok
			case "value":
				hasValue = true
				v, ok := f.number(p.value, key)
				j.step.Value = v
				good = good && ok
			default:
				f.unknownKey(p, "journey", journeyKeys)
				good = false
			}
		}
		switch {
		case !good:
		case !hasPath:
			f.invalid(it, "journey", "an entry needs a path")
		case j.step.Stage == "" && j.step.Goal == "":
			f.invalid(it, "journey", "an entry needs a stage, a goal or both")
		case hasValue && j.step.Goal == "":
			f.invalid(it, "journey", "a value needs a goal to count for")
		default:
			l.set.journey = append(l.set.journey, j)
		}
	}
}

// InterestRule adds interest scores to a visitor who views a page under
// its path.
type InterestRule struct {
	// Paths are the path globs as written.
	Paths []string
	// Add maps interest tags to the score a page view adds.
	Add map[string]float64

	globs []match.Glob
}

// Goals returns the declared goals, in file order, once each: those of
// goals: first, then those the journey names.
func (s *Set) Goals() []string {
	var out []string
	for _, g := range s.goals {
		out = append(out, g.Name)
	}
	for _, e := range s.journey {
		if g := e.step.Goal; g != "" && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// HasInterests reports whether the rule files declare interests rules.
func (s *Set) HasInterests() bool { return len(s.interests) > 0 }

// InterestHalfLife is how fast interest scores decay: a score is worth
// half as much after this long. 0 when the rule files declare none (no
// decay).
func (s *Set) InterestHalfLife() time.Duration { return s.halfLife }

// Interests returns the interest scores a view of path adds: the sum over
// every interests rule whose path matches, or nil when none does.
func (s *Set) Interests(path string) map[string]float64 {
	var out map[string]float64
	for i := range s.interests {
		r := &s.interests[i]
		if !match.AnyGlob(r.globs, path) {
			continue
		}
		if out == nil {
			out = make(map[string]float64, len(r.Add))
		}
		for tag, v := range r.Add {
			out[tag] += v
		}
	}
	return out
}

var interestKeys = []string{"half_life", "rules"}

func (l *loader) interests(f *file, e entry) {
	entries, ok := f.mapping(e.value, "interests")
	if !ok {
		return
	}
	for _, p := range entries {
		key := "interests." + p.name
		switch p.name {
		case "half_life":
			s, ok := f.str(p.value, key)
			if !ok {
				continue
			}
			d, err := config.ParseDuration(s)
			switch {
			case err != nil:
				f.invalid(p.value, key, "%v", err)
			case d <= 0:
				f.invalid(p.value, key, "must be more than 0, not %s", s)
			case l.set.halfLife != 0 && l.set.halfLife != d:
				f.invalid(p.value, key, "half_life is already declared as %v; declare it once", l.set.halfLife)
			default:
				l.set.halfLife = d
			}
		case "rules":
			l.interestRules(f, p)
		default:
			f.unknownKey(p, "interests", interestKeys)
		}
	}
}

func (l *loader) interestRules(f *file, e entry) {
	for it, entries := range f.mappings(e.value, "interests.rules") {
		var r InterestRule
		good := true
		for _, p := range entries {
			key := "interests.rules." + p.name
			switch p.name {
			case "path":
				var ok bool
				r.globs, ok = l.globs(f.fileReader, p.value, key)
				good = good && ok
				r.Paths = globSources(r.globs)
			case "add":
				adds, ok := f.mapping(p.value, key)
				if !ok {
					good = false
					continue
				}
				r.Add = make(map[string]float64, len(adds))
				for _, a := range adds {
					if !nameRe.MatchString(a.name) {
						f.invalid(a.key, key, "%q is not a tag name: use letters, digits, _, . and -", truncate(a.name, 40))
						good = false
						continue
					}
					v, ok := f.number(a.value, key+"."+a.name)
					good = good && ok
					r.Add[a.name] = v
				}
			default:
				f.unknownKey(p, "interests.rules", []string{"path", "add"})
				good = false
			}
		}
		switch {
		case !good:
		case r.globs == nil:
			f.invalid(it, "interests.rules", "a rule needs a path")
		case len(r.Add) == 0:
			f.invalid(it, "interests.rules", "a rule needs add: {tag: score}")
		default:
			l.set.interests = append(l.set.interests, r)
		}
	}
}

// Persona is a declared persona: the interest profile it stands for.
type Persona struct {
	Name string
	// Weights maps interest tags to their weight in the persona.
	Weights map[string]float64
}

// defaultMinScore is the similarity below which a visitor has no persona,
// unless personas: sets min_score.
const defaultMinScore = 0.5

// IsInterestTag reports whether an interests rule adds to tag or a
// persona weighs it: a profile score of that name is an interest.
func (s *Set) IsInterestTag(tag string) bool { return s.interestTags[tag] }

// indexInterestTags fills interestTags once the rules are loaded.
func (s *Set) indexInterestTags() {
	s.interestTags = map[string]bool{}
	for _, r := range s.interests {
		for tag := range r.Add {
			s.interestTags[tag] = true
		}
	}
	for _, p := range s.personas {
		for tag := range p.Weights {
			s.interestTags[tag] = true
		}
	}
}

// Personas returns the declared personas, in file order.
func (s *Set) Personas() []Persona { return slices.Clone(s.personas) }

// PersonaMinScore is the least similarity for a visitor to get a persona.
func (s *Set) PersonaMinScore() float64 { return s.personaMinScore }

// NearestPersona returns the persona whose weights are nearest to the
// interest scores, by cosine similarity (so only the scores' proportions
// matter, not their size), or "" when none reaches PersonaMinScore. Ties
// go to the persona declared first.
func (s *Set) NearestPersona(interests map[string]float64) string {
	var norm float64
	for _, v := range interests {
		norm += v * v
	}
	if norm == 0 {
		return ""
	}
	norm = math.Sqrt(norm)
	best, bestScore := "", s.personaMinScore
	for _, p := range s.personas {
		var dot, pn float64
		for tag, w := range p.Weights {
			dot += w * interests[tag]
			pn += w * w
		}
		if pn == 0 {
			continue
		}
		score := dot / (norm * math.Sqrt(pn))
		if score > bestScore || score == bestScore && best == "" {
			best, bestScore = p.Name, score
		}
	}
	return best
}

func (l *loader) personaDecls(f *file, e entry) {
	entries, ok := f.mapping(e.value, "personas")
	if !ok {
		return
	}
	for _, p := range entries {
		key := "personas." + p.name
		if p.name == "min_score" {
			v, ok := f.number(p.value, key)
			if !ok {
				continue
			}
			if v < 0 || v > 1 {
				f.invalid(p.value, key, "want a similarity from 0 to 1, not %v", v)
				continue
			}
			l.set.personaMinScore = v
			continue
		}
		if !f.checkName(p.key, "personas", p.name) {
			continue
		}
		if l.personas[p.name] {
			f.errorAt(p.key, config.ErrDuplicateKey, "persona %q is declared twice", p.name)
			continue
		}
		l.personas[p.name] = true
		weights, ok := f.mapping(p.value, key)
		if !ok {
			continue
		}
		per := Persona{Name: p.name, Weights: make(map[string]float64, len(weights))}
		good := true
		for _, w := range weights {
			v, ok := f.number(w.value, key+"."+w.name)
			if ok && v < 0 {
				f.invalid(w.value, key+"."+w.name, "a weight must not be negative")
				ok = false
			}
			good = good && ok
			per.Weights[w.name] = v
		}
		if good && len(per.Weights) == 0 {
			f.invalid(p.value, key, "a persona needs at least one tag: weight")
			good = false
		}
		if good {
			l.set.personas = append(l.set.personas, per)
		}
	}
}
