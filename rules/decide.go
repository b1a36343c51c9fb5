package rules

import (
	"slices"
	"strings"
	"time"

	"github.com/andybalholm/cascadia"
	"github.com/expr-lang/expr/vm"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/match"
)

// Set is a compiled rule set: every rule file of a directory. It is
// immutable once loaded and safe for concurrent use.
type Set struct {
	stages          []string
	segments        []edgeSegment
	journey         []journeyEntry
	goals           []Goal // goals: declarations, in file order
	halfLife        time.Duration
	interests       []InterestRule
	personas        []Persona
	personaMinScore float64
	// interestTags are the tags interests rules add or personas weigh.
	interestTags map[string]bool
	pages        []*Page
	// combos holds the pages made for paths that several pages match.
	combos      *combos
	experiments []Experiment
	// exps are the experiment rules' experiments (nested ones too), by
	// id.
	exps     map[string]*experiment
	warnings config.Errors
}

// Warnings returns what tailor check warns about in rules that load:
// selectors whose matching costs more as pages grow (ErrCostlySelector),
// each as file:line:col: warning: message, in file order. A page on which
// such a selector runs out of its matching budget is served unchanged.
func (s *Set) Warnings() []*config.Error { return slices.Clone(s.warnings) }

type edgeSegment struct {
	name string
	cond condition
}

// Stages returns the declared journey stages in order; the first is the
// stage of a visitor without one.
func (s *Set) Stages() []string { return slices.Clone(s.stages) }

// FirstStage returns the first declared stage, the stage of a visitor
// without one; "" when the rule files declare no stages.
func (s *Set) FirstStage() string {
	if len(s.stages) == 0 {
		return ""
	}
	return s.stages[0]
}

// PageCount returns how many pages the rule files define.
func (s *Set) PageCount() int { return len(s.pages) }

// RuleCount returns how many rules the pages hold in all.
func (s *Set) RuleCount() int {
	n := 0
	for _, p := range s.pages {
		n += len(p.rules)
	}
	return n
}

// StageIndex returns the position of stage among the declared stages, or
// -1 when it is not one.
func (s *Set) StageIndex(stage string) int { return slices.Index(s.stages, stage) }

// EdgeSegments returns the names of the segments the rule files compute
// at the edge, in file order.
func (s *Set) EdgeSegments() []string {
	out := make([]string, len(s.segments))
	for i, seg := range s.segments {
		out[i] = seg.name
	}
	return out
}

// Match returns the rules for path: those of every page, in file order,
// with a match: glob that matches it, as one Page; nil when there is
// none: no rules apply, and the response should pass through untouched.
// When one page matches, it is that page; when several do, a page that
// holds their rules one after the other and their selectors once each,
// made on first use and the same for every path that matches those pages
// (up to maxCombos combinations).
func (s *Set) Match(path string) *Page {
	var small [8]int
	idx := small[:0]
	for i, p := range s.pages {
		if match.AnyGlob(p.globs, path) {
			idx = append(idx, i)
		}
	}
	switch len(idx) {
	case 0:
		return nil
	case 1:
		return s.pages[idx[0]]
	}
	return s.match(idx)
}

// Page is one pages: entry: the paths it matches and its rules, with their
// selectors compiled once.
type Page struct {
	globs    []match.Glob
	rules    []*rule
	sels     []cascadia.Sel
	matchers []cascadia.Matcher
	selText  []string
	// keys are the selectors' canonical texts (cascadia's String), by
	// which the selectors of pages that compose are merged.
	keys []string
}

// Selectors returns the page's distinct selectors; Action.Sel indexes it.
// They select what cascadia selects (String and Specificity are
// cascadia's) without its exponential backtracking, and rewrite.Compile
// matches them within a budget per page (see internal/selector). The
// slice is the page's own: do not change it.
func (p *Page) Selectors() []cascadia.Sel { return p.sels }

// Matchers returns the same selectors as Selectors, as the
// cascadia.Matcher values goquery's FindMatcher and the rewrite package
// take. The slice is the page's own: do not change it.
func (p *Page) Matchers() []cascadia.Matcher { return p.matchers }

// SelectorText returns selector i as written in the first rule that uses
// it.
func (p *Page) SelectorText(i int) string { return p.selText[i] }

// Patterns returns the page's match: globs as written.
func (p *Page) Patterns() []string { return globSources(p.globs) }

// RuleIDs returns the ids of the page's rules, in order.
func (p *Page) RuleIDs() []string {
	out := make([]string, len(p.rules))
	for i, r := range p.rules {
		out[i] = r.id
	}
	return out
}

type ruleKind uint8

const (
	kindAction ruleKind = iota
	kindMap
	kindExperiment
)

// rule is one compiled rule.
type rule struct {
	id   string
	sel  int
	cond condition
	kind ruleKind
	// act is a plain rule's action.
	act *action
	// choice is what the rule shows: its action, map or experiment.
	choice choice
	// set is the rule-set experiment the rule is in; nil for none.
	set *ruleSet
}

// Decision is what the rules decided for one request.
type Decision struct {
	// Actions are the changes to make, in the page's rule order.
	Actions []Action
	// Segments are the visitor's segments as the rules saw them: the
	// profile's, then the edge-computed ones, without repeats.
	Segments []string
	// Stage is the effective journey stage.
	Stage string
	// Persona is the visitor's nearest persona, "" for none.
	Persona string
	// Exposures are the experiments the visitor was bucketed into on
	// this page, holdouts included, that are live for them: some arm
	// would make a change for this visitor that no earlier rule made
	// (whichever arm they are in). Whether the exposure is true is known
	// once the page is rendered: when a probe of the experiment applied
	// (see Probe).
	Exposures []Exposure
	// Probes are the experiments' blocks, among the actions: render each
	// as a rewrite.Probe edit, which changes nothing but tells whether
	// the block reached the page.
	Probes []Probe
	// Cases are the Digital Relevancy Map cases chosen, in rule order:
	// those of maps nested in experiments and experiments nested in maps
	// too, and an empty case's, which leaves the block.
	Cases []MapChoice
	// Trace has one entry per rule of the page, in order.
	Trace []Trace
}

// Exposure is a visitor's bucketing into an experiment.
type Exposure struct {
	// Experiment is the experiment rule's id.
	Experiment string
	// Variant is the variant's name, or HoldoutVariant; TreatedVariant
	// for a rule-set experiment's visitors outside its holdout.
	Variant string
	// Rule is the id of the experiment's rule; "" for a rule-set
	// experiment.
	Rule string
	// set is the rule-set experiment's.
	set *ruleSet
}

// Probe stands where an experiment's change goes: the same selector, at
// the same place among the actions (it goes before Actions[At]; At ==
// len(Actions) after them all). Rendered as a rewrite.Probe edit it
// writes nothing; it applies to an element that reached the page (not
// inside content an outer change replaced or removed) and, when Content,
// whose content no earlier content change took.
//
// A probe with an Experiment tells that experiment's exposure, and is
// the one test for every arm of it (exposure truth): the visitor, in
// whichever arm, is exposed when a probe of the experiment applied. It is
// added, for every arm alike, where the experiment is live for the
// visitor: for an experiment rule, when some arm of it would make a
// change to the block for this visitor that no earlier rule made to the
// selector; for a rule-set experiment, per rule of the set that would
// make such a change for them (a map only when it has a case for them).
// It is Content when every such change is to the content, which only the
// page tells whether an earlier rule on another selector took. With Peek
// it only looks, and keeps nothing from the visitor's arm or later rules;
// a holdout's probe holds the block's content as the origin's instead
// (a holdout whose probe does not touch the content gets one more probe,
// without an Experiment, that only holds it).
type Probe struct {
	Sel        int
	At         int
	Rule       string
	Content    bool
	Experiment string
	Peek       bool
}

// MapChoice is the case a map chose.
type MapChoice struct {
	// Rule is the id of the rule the map is in.
	Rule string
	// Map names the map: the rule's id, or for a map in an experiment's
	// variant the experiment's id and "[variant]" ("hero-test[a]").
	Map string
	// Case is the chosen case: its key (a stage, a segment, a persona,
	// an interest, "*"), "default", or for a two-dimensional map the
	// cell, row and column joined by CellSep ("vip/retention",
	// "vip/default").
	Case string
	// Empty is true when the case holds nothing to apply (an empty case,
	// {}, or one whose map has no case for the visitor): it leaves the
	// origin's block, and counts as chosen whenever the page is served.
	Empty bool
}

// Trace says what one rule did for one request.
type Trace struct {
	Rule     string
	Selector string
	// Fired is true when the rule contributed an action.
	Fired bool
	// Reason says which case or variant fired, or why the rule did not.
	Reason string
	// Overridden are the changes the rule would have made that earlier
	// rules on its selector made instead (all of them when it did not
	// fire for that reason).
	Overridden []Override `json:",omitempty"`
}

// evalCtx is one Decide call's view of the visitor and the request, with
// what is derived from them computed at most once.
type evalCtx struct {
	v     *Visitor
	r     *Request
	stage string
	segs  []string

	dev      string
	lang     string
	langDone bool
	ref      string
	refDone  bool
	env      *exprEnv
	tmplData *Visitor
	machine  vm.VM
}

func (c *evalCtx) device() string {
	if c.dev == "" {
		c.dev = c.r.Device
	}
	if c.dev == "" {
		c.dev = DeviceOf(c.r.UserAgent)
	}
	return c.dev
}

func (c *evalCtx) language() string {
	if !c.langDone {
		c.lang, c.langDone = primaryLanguage(c.r.Language), true
	}
	return c.lang
}

func (c *evalCtx) referrerHost() string {
	if !c.refDone {
		c.ref, c.refDone = referrerHost(c.r.Referrer), true
	}
	return c.ref
}

// exprEnv builds the environment of if: expressions on first use, with
// request.query when query is true. Segments are read fresh: edge segments
// see the ones computed before them.
func (c *evalCtx) exprEnv(query bool) *exprEnv {
	v, r := c.v, c.r
	if c.env == nil {
		c.env = &exprEnv{
			Profile: exprProfile{ID: v.ID, Known: v.Known, Segments: v.Segments, Stage: v.Stage, Traits: v.Traits, Scores: v.Scores},
			Visitor: exprVisitor{
				ID: v.ID, Known: v.Known, Stage: c.stage, Visits: v.Visits, NewVisitor: v.NewVisitor,
				Engagement: v.Engagement, Interests: v.Interests, TopInterest: v.TopInterest, Persona: v.Persona,
				Device: c.device(),
			},
			Request: exprRequest{
				Path: r.Path, Host: r.Host, Referrer: r.Referrer, ReferrerHost: c.referrerHost(),
				Country: r.Country, Language: c.language(), UserAgent: r.UserAgent, Device: c.device(),
				Time: r.Time, Header: r.header, Cookie: r.cookie,
			},
		}
	}
	if query && c.env.Request.Query == nil && len(r.Query) > 0 {
		q := make(map[string]string, len(r.Query))
		for k, vs := range r.Query {
			if len(vs) > 0 {
				q[k] = vs[0]
			}
		}
		c.env.Request.Query = q
	}
	c.env.Visitor.Segments = c.segs
	return c.env
}

// data is the visitor as content templates see it: every segment and the
// effective stage.
func (c *evalCtx) data() *Visitor {
	if c.tmplData == nil {
		d := *c.v
		d.Segments, d.Stage = c.segs, c.stage
		c.tmplData = &d
	}
	return c.tmplData
}

// Decide decides what visitor v sees on page p for request r: a pure
// function of its arguments. With a nil page (no rules for the path) it
// still computes the visitor's segments and stage, which events report.
// A nil v is an anonymous visitor with nothing known; a nil r a request
// with no facts.
//
// The edge segments are computed first, in file order (each sees those
// before it). Then the page's rules are tried in order: a rule's
// conditions are tested and its action, map case or experiment variant
// rendered, keeping the changes no earlier rule made to its selector: per
// selector, the first matching rule makes each kind of change (the
// content, each attribute, each class; see Action.Change), so rules
// making different kinds compose. An experiment's holdout makes the
// changes its variants would, without an action, so that the control
// sees the origin's block.
func (s *Set) Decide(p *Page, v *Visitor, r *Request) Decision {
	if v == nil {
		v = &Visitor{}
	}
	if r == nil {
		r = &Request{}
	}
	c := &evalCtx{v: v, r: r, stage: v.Stage}
	if c.stage == "" && len(s.stages) > 0 {
		c.stage = s.stages[0]
	}
	c.segs = make([]string, 0, len(v.Segments)+len(s.segments))
	for _, seg := range v.Segments {
		if !slices.Contains(c.segs, seg) {
			c.segs = append(c.segs, seg)
		}
	}
	for i := range s.segments {
		es := &s.segments[i]
		if slices.Contains(c.segs, es.name) {
			continue
		}
		if ok, _ := es.cond.eval(c); ok {
			c.segs = append(c.segs, es.name)
		}
	}
	d := Decision{Segments: c.segs, Stage: c.stage, Persona: v.Persona}
	if p == nil {
		return d
	}

	d.Trace = make([]Trace, len(p.rules))
	// tk records which rule made each kind of change to each selector.
	var small [32]int
	var tk taken
	if len(p.sels) <= len(small) {
		tk.content = small[:len(p.sels)]
	} else {
		tk.content = make([]int, len(p.sels))
	}
	for i, ru := range p.rules {
		tr := &d.Trace[i]
		tr.Rule, tr.Selector = ru.id, p.selText[ru.sel]
		if ok, reason := ru.cond.eval(c); !ok {
			tr.Reason = reason
			continue
		}
		var a *action
		if rs := ru.set; rs != nil {
			held, kept := rs.holds(c.v)
			if held {
				heldBySet(c, &d, ru, rs, i, &tk, p, tr, kept)
				continue
			}
			probeSet(c, &d, ru, rs, &tk, TreatedVariant)
		}
		nc, ne := len(d.Cases), len(d.Exposures)
		// unchoose takes back the map cases the rule's choice recorded
		// when none of its changes reach the page. Its exposures stay:
		// their probes tell them, whichever arm the visitor is in.
		unchoose := func() { d.Cases = d.Cases[:nc] }
		switch ru.kind {
		case kindAction:
			a, tr.Reason = ru.act, "matched"
		default:
			var held *experiment
			a, held, tr.Reason = ru.choice.choose(c, ru.id, &d)
			for j := nc; j < len(d.Cases); j++ {
				d.Cases[j].Rule = ru.id
			}
			for j := ne; j < len(d.Exposures); j++ {
				d.Exposures[j].Rule = ru.id
			}
			// Before the rule takes its changes: every arm is judged
			// by what earlier rules took.
			s.probeArms(c, &d, ru, ne, &tk)
			if held != nil {
				// A holdout keeps the origin's block: it takes the
				// changes the experiment's variants could make,
				// unless earlier rules made them all.
				heldChoice := choice{exp: held}
				if !holdout(ru, &heldChoice, i, &tk, p, tr, "experiment holdout: ") {
					unchoose()
					continue
				}
				// The held experiment's exposure is the last the
				// choice recorded (none for a control visitor, who
				// is counted in none); while it is live, a probe
				// holds the block's content as the origin's against
				// later rules' content changes on other selectors.
				if n := len(d.Exposures); n > ne && s.exps[d.Exposures[n-1].Experiment] == held && contentChange(&heldChoice) {
					// Its own probe, the last, holds it when it is a
					// content probe: it applies alike.
					if k := len(d.Probes) - 1; d.Probes[k].Experiment == d.Exposures[n-1].Experiment && d.Probes[k].Content {
						d.Probes[k].Peek = false
					} else {
						d.Probes = append(d.Probes, Probe{Sel: ru.sel, At: len(d.Actions), Rule: ru.id, Content: true})
					}
				}
				continue
			}
			if a == nil {
				for j := nc; j < len(d.Cases); j++ {
					d.Cases[j].Empty = true
				}
				continue
			}
		}
		// Changes that earlier rules made are known before rendering,
		// but for class names that are templates.
		if tk.allTaken(a, ru.sel) {
			a.each(func(m *action) bool {
				ch, _ := m.staticChange(ru.sel)
				tr.Overridden = append(tr.Overridden, Override{Change: ch.String(), By: p.rules[tk.by(ch)-1].id})
				return true
			})
			tr.Reason = overriddenReason(tr.Overridden)
			unchoose()
			continue
		}
		n := len(d.Actions)
		var err error
		d.Actions, err = a.render(d.Actions, ru.sel, ru.id, c.data())
		if err != nil {
			tr.Reason = "render: " + firstLine(err.Error())
			unchoose()
			continue
		}
		// Keep the changes no earlier rule made.
		kept := n
		for j := n; j < len(d.Actions); j++ {
			ch := changeOf(&d.Actions[j])
			if by := tk.by(ch); by > 0 {
				tr.Overridden = append(tr.Overridden, Override{Change: ch.String(), By: p.rules[by-1].id})
				continue
			}
			d.Actions[kept] = d.Actions[j]
			kept++
		}
		clear(d.Actions[kept:])
		d.Actions = d.Actions[:kept]
		if kept == n {
			tr.Reason = overriddenReason(tr.Overridden)
			unchoose()
			continue
		}
		if len(tr.Overridden) > 0 {
			tr.Reason += "; " + overriddenReason(tr.Overridden)
		}
		for j := n; j < kept; j++ {
			tk.take(changeOf(&d.Actions[j]), i)
		}
		tr.Fired = true
	}
	return d
}

// heldBySet keeps the origin's block for rule ru (index i) of a rule-set
// experiment whose holdout the visitor is in: it takes the changes the
// rule could make, unless earlier rules made them all, and probes the
// block as probeSet does for the set's other arm, the probe holding the
// block's content as the origin's.
func heldBySet(c *evalCtx, d *Decision, ru *rule, rs *ruleSet, i int, tk *taken, p *Page, tr *Trace, kept bool) {
	prefix := "held out by experiment " + rs.name
	if kept {
		prefix += " (kept since the first exposure)"
	}
	tr.Reason = prefix + ": the origin's block is kept"
	np := len(d.Probes)
	probeSet(c, d, ru, rs, tk, HoldoutVariant) // before the holdout takes the changes
	if !holdout(ru, &ru.choice, i, tk, p, tr, prefix+": ") || np == len(d.Probes) || !contentChange(&ru.choice) {
		return
	}
	// A content probe holds the content itself; else one more does.
	if pr := &d.Probes[np]; pr.Content {
		pr.Peek = false
	} else {
		d.Probes = append(d.Probes, Probe{Sel: ru.sel, At: len(d.Actions), Rule: ru.id, Content: true})
	}
}

// probeSet judges rule ru of rule-set experiment rs for a visitor in its
// arm variant (the holdout, or TreatedVariant), by one test for both arms:
// when the rule would make a change for the visitor (a map only when it
// has a case for them; an experiment the visitor's arm of it) that no
// earlier rule made (tk, before ru takes its own), the block is probed
// where ru's changes go, and the visitor is reported in the set's arm
// (once per decision). A control visitor is probed and reported in none.
func probeSet(c *evalCtx, d *Decision, ru *rule, rs *ruleSet, tk *taken, variant string) {
	if c.v.Control {
		return
	}
	var v verdict
	v.choice(c, &ru.choice, ru.id, ru.sel, tk)
	if !v.live {
		return
	}
	d.Probes = append(d.Probes, Probe{Sel: ru.sel, At: len(d.Actions), Rule: ru.id, Content: v.content(), Experiment: rs.name, Peek: true})
	if !hasExposure(d, rs.name) {
		d.Exposures = append(d.Exposures, Exposure{Experiment: rs.name, Variant: variant, set: rs})
	}
}

// probeArms judges the exposures rule ru's choice recorded,
// d.Exposures[from:], by one test for every arm: an experiment is live
// for the visitor when some arm of it would make a change to the block
// for them that no earlier rule made (tk, before ru takes its own). A
// live experiment's exposure is kept and probed where ru's changes go,
// the same probe whichever arm the visitor is in; the others are
// dropped, in every arm alike.
func (s *Set) probeArms(c *evalCtx, d *Decision, ru *rule, from int, tk *taken) {
	kept := from
	for j := from; j < len(d.Exposures); j++ {
		x := d.Exposures[j]
		xp := s.exps[x.Experiment]
		if xp == nil {
			continue
		}
		var v verdict
		v.arms(c, xp, x.Experiment, ru.sel, tk)
		if !v.live {
			continue
		}
		d.Exposures[kept] = x
		kept++
		d.Probes = append(d.Probes, Probe{Sel: ru.sel, At: len(d.Actions), Rule: ru.id, Content: v.content(), Experiment: x.Experiment, Peek: true})
	}
	clear(d.Exposures[kept:])
	d.Exposures = d.Exposures[:kept]
}

// verdict judges the changes an arm would make to the elements of one
// selector for one visitor.
type verdict struct {
	// live: some change is not one an earlier rule made (taken).
	live bool
	// other: some such change is not to the content.
	other bool
}

// content reports whether every change judged live is to the content,
// which an earlier rule on another selector may yet take on the page: a
// Sole probe tells. A class whose name is a template is never known to
// be taken, and is not content.
func (v *verdict) content() bool { return v.live && !v.other }

// action judges the changes of a (and its further attr pairs) on sel.
func (v *verdict) action(a *action, sel int, tk *taken) {
	a.each(func(m *action) bool {
		ch, ok := m.staticChange(sel)
		if ok && tk.by(ch) > 0 {
			return true
		}
		v.live = true
		v.other = v.other || !ok || ch.kind != changeContent
		return true
	})
}

// choice judges what ch, id's, shows the visitor: its action; a map's
// case for them (none when it has none); an experiment's arm for them,
// and for its holdout what its variants show them.
func (v *verdict) choice(c *evalCtx, ch *choice, id string, sel int, tk *taken) {
	if ch.act != nil {
		v.action(ch.act, sel, tk)
		return
	}
	var scratch Decision
	a, held, _ := ch.choose(c, id, &scratch)
	if a != nil {
		v.action(a, sel, tk)
	}
	// The held experiment's id is its exposure's, the last (a control
	// visitor has none, and nothing to judge: they count in no arm).
	if n := len(scratch.Exposures); held != nil && n > 0 {
		v.arms(c, held, scratch.Exposures[n-1].Experiment, sel, tk)
	}
}

// arms judges what each variant of x, id's, shows the visitor.
func (v *verdict) arms(c *evalCtx, x *experiment, id string, sel int, tk *taken) {
	for k := range x.variants {
		va := &x.variants[k]
		v.choice(c, &va.choice, id+"["+va.name+"]", sel, tk)
	}
}

// hasExposure reports whether d reports experiment already.
func hasExposure(d *Decision, experiment string) bool {
	for i := range d.Exposures {
		if d.Exposures[i].Experiment == experiment {
			return true
		}
	}
	return false
}

// contentChange reports whether ch could change a block's content (not
// only its attributes or classes).
func contentChange(ch *choice) bool {
	content := false
	ch.eachAction(func(a *action) {
		switch a.op {
		case SetAttr, AddClass, RemoveClass:
		default:
			content = true
		}
	})
	return content
}

func joinSpace(list []string) string { return strings.Join(list, " ") }
