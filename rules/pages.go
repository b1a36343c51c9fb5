package rules

import (
	"math"
	"slices"

	"github.com/andybalholm/cascadia"
	"gopkg.in/yaml.v3"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/selector"
)

var (
	pageKeys       = []string{"match", "rules"}
	ruleKeys       = append([]string{"id", "when", "if", "select", "map", "experiment"}, actionKeys...)
	ruleActionKeys = append(slices.Clone(actionKeys), "map", "experiment")
)

func (l *loader) pages(f *file, e entry) {
	for it, entries := range f.mappings(e.value, "pages") {
		p := &Page{}
		l.pageSels = map[string]int{}
		l.pageChanges = map[change]shadowing{}
		var rules *yaml.Node
		hasMatch := false
		for _, pe := range entries {
			switch pe.name {
			case "match":
				hasMatch = true
				p.globs, _ = l.globs(f.fileReader, pe.value, "match")
			case "rules":
				rules = pe.value
			default:
				f.unknownKey(pe, "page", pageKeys)
			}
		}
		if !hasMatch {
			f.invalid(it, "page", "a page needs match: with the paths it is for")
		}
		if rules != nil {
			ruleItems, ok := f.list(rules, "rules")
			if ok {
				for _, rn := range ruleItems {
					l.rule(f.fileReader, p, rn)
				}
			}
		}
		p.matchers = make([]cascadia.Matcher, len(p.sels))
		for i, s := range p.sels {
			p.matchers[i] = s
		}
		l.set.pages = append(l.set.pages, p)
	}
}

// rule compiles one rule of page p.
func (l *loader) rule(f *fileReader, p *Page, n *yaml.Node) {
	entries, ok := f.mapping(n, "rule")
	if !ok {
		return
	}
	var idNode, selNode, whenNode, ifNode *yaml.Node
	var act oneAction
	for _, e := range entries {
		switch e.name {
		case "id":
			idNode = e.value
		case "select":
			selNode = e.value
		case "when":
			whenNode = e.value
		case "if":
			ifNode = e.value
		default:
			if e.name == "map" || e.name == "experiment" || isActionKey(e.name) {
				act.add(f, e, "rule")
				continue
			}
			f.unknownKey(e, "rule", ruleKeys)
		}
	}
	r := &rule{}
	good := true
	if idNode == nil {
		f.invalid(n, "rule", "a rule needs an id")
		good = false
	} else if id, ok := l.name(f, idNode, "id"); !ok {
		good = false
	} else if at, dup := l.ids[id]; dup {
		f.errorAt(idNode, ErrDuplicateID, "id: rule id %q is already used at %s", id, at)
		good = false
	} else {
		l.ids[id] = where(f, idNode)
		r.id = id
	}
	if selNode == nil {
		f.invalid(n, "rule", "a rule needs select: with the CSS selector of the block it changes")
		good = false
	} else if sel, ok := l.selector(f, p, selNode); ok {
		r.sel = sel
		l.target = p.selText[sel]
		defer func() { l.target = "" }()
	} else {
		good = false
	}
	cond, ok := l.ruleCondition(f, whenNode, ifNode)
	r.cond = cond
	good = good && ok
	if !act.ok(f, n, "rule", ruleActionKeys) {
		good = false
	} else {
		e := act.first
		switch e.name {
		case "map":
			r.kind = kindMap
		case "experiment":
			r.kind = kindExperiment
		default:
			r.kind = kindAction
		}
		good = l.choice(f, &r.choice, r.id, *e, 0) && good
		r.act = r.choice.act
	}
	if !good {
		return
	}
	l.shadowed(f, p, r, act.first.key, whenNode != nil || ifNode != nil)
	l.rules[r.id] = r
	p.rules = append(p.rules, r)
}

var ruleSetKeys = []string{"holdout", "rules"}

// ruleSets compiles a rule file's experiments: (SPEC "Rule files"):
// NAME: {holdout: 10, rules: [id, ...]}, each a set of rules, anywhere in
// the rule files, whose holdout sees the origin's blocks for all of them.
// A rule is in one set at most, and a name is no rule's id.
func (l *loader) ruleSets(f *fileReader, e entry) {
	sets, ok := f.mapping(e.value, "experiments")
	if !ok {
		return
	}
	for _, se := range sets {
		key := "experiments." + se.name
		if !f.checkName(se.key, "experiments", se.name) {
			continue
		}
		if at, ok := l.ids[se.name]; ok {
			f.invalid(se.key, "experiments", "%q is the id of the rule at %s: an experiment's name and a rule's id name one experiment in events and readouts; choose another name", se.name, at)
			continue
		}
		if at, ok := l.setsAt[se.name]; ok {
			f.invalid(se.key, "experiments", "experiment %q is already declared at %s", se.name, at)
			continue
		}
		l.setsAt[se.name] = where(f, se.key)
		entries, ok := f.mapping(se.value, key)
		if !ok {
			continue
		}
		rs := &ruleSet{name: se.name, holdout: math.NaN()}
		var rulesNode *yaml.Node
		good := true
		for _, re := range entries {
			switch re.name {
			case "holdout":
				h, ok := f.number(re.value, key+".holdout")
				switch {
				case !ok:
					good = false
				case !(h > 0 && h < 100):
					f.invalid(re.value, key+".holdout", "want a percentage above 0 and below 100 (the visitors who see the origin for every rule of the set), not %v", h)
					good = false
				default:
					rs.holdout = h
				}
			case "rules":
				rulesNode = re.value
			default:
				f.unknownKey(re, key, ruleSetKeys)
				good = false
			}
		}
		if math.IsNaN(rs.holdout) && good {
			f.invalid(se.value, key, "a rule-set experiment needs holdout: the percentage of visitors who see the origin for all its rules")
			good = false
		}
		if rulesNode == nil {
			f.invalid(se.value, key, "a rule-set experiment needs rules: the ids of its rules (maps, experiments or plain rules)")
			continue
		}
		items, ok := f.list(rulesNode, key+".rules")
		if !ok {
			continue
		}
		if len(items) == 0 {
			f.invalid(rulesNode, key+".rules", "want at least one rule id")
			continue
		}
		var members []*rule
		for _, it := range items {
			id, ok := f.str(it, key+".rules")
			if !ok {
				good = false
				continue
			}
			if _, declared := l.ids[id]; !declared {
				f.errorAt(it, ErrUndeclared, "%s.rules: no rule has id %q", key, truncate(id, 40))
				good = false
				continue
			}
			if other, ok := l.inSet[id]; ok {
				if other == se.name {
					f.invalid(it, key+".rules", "rule %q is listed twice", id)
				} else {
					f.invalid(it, key+".rules", "rule %q is already in experiment %q (%s): a rule is in one rule-set experiment at most", id, other, l.setsAt[other])
				}
				good = false
				continue
			}
			l.inSet[id] = se.name
			rs.rules = append(rs.rules, id)
			// A rule that did not compile has its own error.
			if r := l.rules[id]; r != nil {
				members = append(members, r)
			}
		}
		if !good {
			continue
		}
		for _, r := range members {
			r.set = rs
		}
		l.set.experiments = append(l.set.experiments, Experiment{ID: rs.name, Holdout: rs.holdout,
			Variants: []Variant{{Name: TreatedVariant, Weight: 100}}})
	}
}

// selector compiles the selector at n into page p's list, reusing an
// equal selector of an earlier rule. A text is compiled once per load,
// and found again by a map: scanning the page's selectors for an equal
// one, each turned back into text, made a page of 8,000 rules take 25 s
// to load (issue 15).
func (l *loader) selector(f *fileReader, p *Page, n *yaml.Node) (int, bool) {
	s, ok := f.str(n, "select")
	if !ok {
		return 0, false
	}
	c, seen := l.sels[s]
	if !seen {
		c.sel, c.err = compileSelector(s)
		if c.err == nil {
			c.key = c.sel.String()
		}
		l.sels[s] = c
	}
	if c.err != nil {
		f.errorAt(n, ErrSelector, "select: invalid selector %q: %v", truncate(s, 80), c.err)
		return 0, false
	}
	if i, ok := l.pageSels[c.key]; ok {
		return i, true
	}
	for _, w := range c.sel.Costly() {
		f.warnAt(f.file, n, ErrCostlySelector, "select: %s; pages on which matching it takes too long are served unchanged", w)
	}
	p.sels = append(p.sels, c.sel)
	p.selText = append(p.selText, s)
	p.keys = append(p.keys, c.key)
	l.pageSels[c.key] = len(p.sels) - 1
	return len(p.sels) - 1, true
}

// compiledSelector is a selector text as the loader compiled it.
type compiledSelector struct {
	sel *selector.Selector
	key string // sel.String(): equal selectors written differently share it
	err error
}

// compileSelector compiles a CSS selector or a comma-separated group of
// them, as goquery's Find does, into a selector whose matching cannot take
// exponential time (issue 14; see internal/selector). Pseudo-elements
// (::before) are rejected: they are not elements that can be rewritten.
func compileSelector(s string) (*selector.Selector, error) {
	return selector.Compile(s)
}

var experimentKeys = []string{"holdout", "variants"}

// experiment compiles an A/B test: a holdout share that keeps the origin's
// block, and variants whose weights add up to 100.
func (l *loader) experiment(f *fileReader, ch *choice, id string, n *yaml.Node, depth int) bool {
	entries, ok := f.mapping(n, "experiment")
	if !ok {
		return false
	}
	x := &experiment{}
	good := true
	var variants *yaml.Node
	for _, e := range entries {
		switch e.name {
		case "holdout":
			h, ok := f.number(e.value, "experiment.holdout")
			switch {
			case !ok:
				good = false
			case h < 0 || h >= 100:
				f.invalid(e.value, "experiment.holdout", "want a percentage from 0 up to (not including) 100, not %v", h)
				good = false
			default:
				x.holdout = h
			}
		case "variants":
			variants = e.value
		default:
			f.unknownKey(e, "experiment", experimentKeys)
			good = false
		}
	}
	if variants == nil {
		f.invalid(n, "experiment", "an experiment needs variants: with their weights and actions")
		return false
	}
	vs, ok := f.mapping(variants, "experiment.variants")
	if !ok {
		return false
	}
	var sum float64
	weightsGood := true
	for _, v := range vs {
		key := "experiment.variants." + v.name
		if !f.checkName(v.key, "experiment.variants", v.name) {
			good = false
			continue
		}
		if v.name == HoldoutVariant {
			f.invalid(v.key, "experiment.variants", "%q names the holdout; set holdout: to a percentage instead", HoldoutVariant)
			good = false
			continue
		}
		ventries, ok := f.mapping(v.value, key)
		if !ok {
			good = false
			continue
		}
		va := variant{name: v.name, weight: math.NaN(), reason: "experiment variant " + v.name}
		var act oneAction
		for _, e := range ventries {
			switch {
			case e.name == "weight":
				w, ok := f.number(e.value, key+".weight")
				switch {
				case !ok:
					weightsGood = false
				case w < 0:
					f.invalid(e.value, key+".weight", "a weight must not be negative")
					weightsGood = false
				default:
					va.weight = w
				}
			case isActionKey(e.name) || e.name == "map" || e.name == "experiment":
				act.add(f, e, key)
			default:
				f.unknownKey(e, key, append([]string{"weight"}, ruleActionKeys...))
				good = false
			}
		}
		if math.IsNaN(va.weight) {
			if weightsGood {
				f.invalid(v.value, key, "a variant needs a weight (a percentage of the visitors outside the holdout)")
			}
			weightsGood = false
		} else {
			sum += va.weight
		}
		if act.ok(f, v.value, key, ruleActionKeys) {
			good = l.choice(f, &va.choice, id+"["+v.name+"]", *act.first, depth+1) && good
		} else {
			good = false
		}
		x.variants = append(x.variants, va)
	}
	if len(vs) == 0 {
		f.invalid(variants, "experiment.variants", "an experiment needs at least one variant")
		return false
	}
	if weightsGood && math.Abs(sum-100) > 1e-9 {
		f.errorAt(variants, config.ErrInvalid, "experiment.variants: weights add up to %v, not 100", sum)
		good = false
	}
	ch.exp = x
	return good && weightsGood
}
