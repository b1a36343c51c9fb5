package report

import (
	"math"
	"slices"
	"strings"
)

// maxGoalsPerVisitor bounds the goals kept per visitor (the first ones):
// a bot that reloads a goal page cannot grow the readout without end.
const maxGoalsPerVisitor = 256

// maxInterned bounds the strings shared between events (names of
// experiments, variants, goals, segments, stages, countries...).
const maxInterned = 1 << 16

// visitor is what the builder keeps of one visitor.
type visitor struct {
	// exposures: the first variant each experiment showed them, and when.
	exposures []exposure
	// goals reached, in event order (at most maxGoalsPerVisitor).
	goals []goalHit
	// lastSeen is the time of their latest page view or stage event, and
	// segments, stage and persona what it said.
	lastSeen int64
	segments []string
	stage    string
	persona  string
}

// exposure is a visitor's first exposure to an experiment.
type exposure struct {
	// cell names the experiment, the variant and the visitor's group, and
	// holds the tallies the exposure counts in.
	cell *cell
	at   int64
}

type goalHit struct {
	goal  int32 // in Builder.goals
	at    int64
	value int64 // in units of 1/unitsPerValue
}

// group is what breakdowns group a visitor's exposure by: what their
// first exposure event to the experiment said.
type group struct {
	segments                        []string
	device, stage, persona, country string
}

// value reads a group's value for dimension d (an index in Dimensions):
// its segments for BySegment ([""] when none).
func (g *group) values(d int, one *[1]string) []string {
	switch Dimensions[d] {
	case BySegment:
		if len(g.segments) > 0 {
			return g.segments
		}
		one[0] = ""
	case ByDevice:
		one[0] = g.device
	case ByStage:
		one[0] = g.stage
	case ByPersona:
		one[0] = g.persona
	case ByCountry:
		one[0] = g.country
	}
	return one[:]
}

// tally is what the visitors exposed to one variant add up to, overall
// or in one breakdown group.
type tally struct {
	exposed   int64
	converted []int64 // by goal, as numbered in Builder.goals
	// sum and sumSq are of each exposed visitor's value after exposure,
	// in units of 1/unitsPerValue: exact, so retracting a visitor leaves no residue.
	sum, sumSq i128
}

func (t *tally) conversions(goal int) int64 {
	if goal < len(t.converted) {
		return t.converted[goal]
	}
	return 0
}

func (t *tally) convert(goal int32, d int64) {
	if int(goal) >= len(t.converted) {
		t.converted = append(t.converted, make([]int64, int(goal)+1-len(t.converted))...)
	}
	t.converted[goal] += d
}

// cell is the tallies one exposure counts in: its variant's, then its
// group's in each breakdown. Exposures of the same experiment, variant
// and group share one.
type cell struct {
	experiment, variant string
	group               group
	tallies             []*tally
}

type cellKey struct {
	experiment, variant, segments, device, stage, persona, country string
}

// experimentTallies is one experiment's tallies: by variant, and by
// breakdown (an index in Dimensions), group value and variant.
type experimentTallies struct {
	variants map[string]*tally
	by       [5]map[string]map[string]*tally
}

// Builder accumulates events; it is not safe for concurrent use.
type Builder struct {
	experiments []Experiment
	// goals are the journey's, then those events named; goalNum numbers them.
	goals    []string
	goalNum  map[string]int32
	visitors map[string]*visitor
	// seen lists experiments and their variants in the order events
	// first named them, for those not configured.
	seen  map[string][]string
	order []string
	// alias maps an anonymous id that logged in to the visitor it became.
	alias  map[string]string
	events int64
	intern map[string]string

	tallies map[string]*experimentTallies
	cells   map[cellKey]*cell
	// sizes counts visitors by segment, stage and persona, as last seen.
	sizes [3]map[string]int
	// scratch holds a visitor's distinct goals while counting them.
	scratch []int32
}

// New returns a Builder for the configured experiments and the goals the
// journey declares (goals seen in events are added to them).
func New(experiments []Experiment, goals []string) *Builder {
	b := &Builder{
		experiments: experiments,
		goalNum:     map[string]int32{},
		visitors:    map[string]*visitor{},
		seen:        map[string][]string{},
		alias:       map[string]string{},
		intern:      map[string]string{},
		tallies:     map[string]*experimentTallies{},
		cells:       map[cellKey]*cell{},
		sizes:       [3]map[string]int{{}, {}, {}},
	}
	for _, g := range goals {
		b.goal(g)
	}
	return b
}

// str returns s, shared with every equal string added before: a million
// events name a few dozen segments.
func (b *Builder) str(s string) string {
	if v, ok := b.intern[s]; ok {
		return v
	}
	if len(b.intern) < maxInterned {
		s = strings.Clone(s)
		b.intern[s] = s
	}
	return s
}

func (b *Builder) strs(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = b.str(s)
	}
	return out
}

// goal numbers a goal's name, adding it when new.
func (b *Builder) goal(name string) int32 {
	if i, ok := b.goalNum[name]; ok {
		return i
	}
	name = b.str(name)
	i := int32(len(b.goals))
	b.goals = append(b.goals, name)
	b.goalNum[name] = i
	return i
}

// groupOf is the breakdown group of an exposure event.
func (b *Builder) groupOf(e *Event) group {
	g := group{segments: b.strs(e.Segments), device: b.str(e.Device), stage: b.str(e.Stage), persona: b.str(e.Persona), country: b.str(e.Country)}
	if e.Bot {
		g.device = "bot"
	}
	return g
}

// cellFor returns the cell of an exposure to experiment's variant by a
// visitor of group g, making it (and its tallies) when new.
func (b *Builder) cellFor(experiment, variant string, g group) *cell {
	k := cellKey{experiment, variant, strings.Join(g.segments, "\x00"), g.device, g.stage, g.persona, g.country}
	if c, ok := b.cells[k]; ok {
		return c
	}
	xt := b.tallies[experiment]
	if xt == nil {
		xt = &experimentTallies{variants: map[string]*tally{}}
		for d := range xt.by {
			xt.by[d] = map[string]map[string]*tally{}
		}
		b.tallies[experiment] = xt
	}
	get := func(m map[string]*tally) *tally {
		t := m[variant]
		if t == nil {
			t = &tally{}
			m[variant] = t
		}
		return t
	}
	c := &cell{experiment: experiment, variant: variant, group: g, tallies: []*tally{get(xt.variants)}}
	var one [1]string
	for d := range Dimensions {
		for _, value := range g.values(d, &one) {
			m := xt.by[d][value]
			if m == nil {
				m = map[string]*tally{}
				xt.by[d][value] = m
			}
			if t := get(m); !slices.Contains(c.tallies, t) { // a segment listed twice counts once
				c.tallies = append(c.tallies, t)
			}
		}
	}
	b.cells[k] = c
	return c
}

// Add counts one event. Events should come in the order they were
// published; a goal counts for an experiment when it is not earlier than
// the visitor's exposure to it.
func (b *Builder) Add(e *Event) {
	b.events++
	if e.Visitor == "" {
		return
	}
	key := e.Visitor
	if len(b.alias) > 0 {
		if k, ok := b.alias[key]; ok {
			key = k
		}
	}
	if e.Type == typeIdentify {
		b.identify(e.AnonymousID, key)
		return
	}
	switch e.Type {
	case typeExposure, typeGoal, typePageview, typeStage:
	default:
		return
	}
	v := b.visitors[key]
	if v == nil {
		v = &visitor{}
		b.visitors[strings.Clone(key)] = v
	}
	at := e.Time.UnixNano()
	switch e.Type {
	case typeExposure:
		if e.Experiment == "" || e.Variant == "" {
			return
		}
		for _, x := range v.exposures {
			if x.cell.experiment == e.Experiment {
				return // the first variant a visitor saw is theirs
			}
		}
		exp, variant := b.str(e.Experiment), b.str(e.Variant)
		if names, ok := b.seen[exp]; !ok {
			b.order = append(b.order, exp)
			b.seen[exp] = []string{variant}
		} else if !slices.Contains(names, variant) {
			b.seen[exp] = append(names, variant)
		}
		v.exposures = append(v.exposures, exposure{b.cellFor(exp, variant, b.groupOf(e)), at})
		b.count(v, &v.exposures[len(v.exposures)-1], 1)
	case typeGoal:
		if e.Goal == "" {
			return
		}
		g := b.goal(e.Goal)
		if len(v.goals) >= maxGoalsPerVisitor {
			return
		}
		h := goalHit{g, at, toUnits(e.Value)}
		for i := range v.exposures {
			b.countGoal(v, &v.exposures[i], h)
		}
		v.goals = append(v.goals, h)
	case typePageview, typeStage:
		if at < v.lastSeen {
			return
		}
		if v.lastSeen != 0 && at != 0 && v.stage == e.Stage && v.persona == e.Persona && slices.Equal(v.segments, e.Segments) {
			v.lastSeen = at
			return
		}
		b.size(v, -1)
		v.lastSeen = at
		v.stage, v.persona = b.str(e.Stage), b.str(e.Persona)
		if !slices.Equal(v.segments, e.Segments) {
			v.segments = b.strs(e.Segments)
		}
		b.size(v, 1)
	}
}

// size adds (sign 1) or retracts (-1) a visitor from the sizes by
// segment, stage and persona.
func (b *Builder) size(v *visitor, sign int) {
	for _, s := range v.segments {
		b.sizes[0][s] += sign
	}
	if v.lastSeen != 0 {
		if v.stage != "" {
			b.sizes[1][v.stage] += sign
		}
		if v.persona != "" {
			b.sizes[2][v.persona] += sign
		}
	}
}

// count adds (sign 1) or retracts (-1) what visitor v's exposure x
// counts: one exposed visitor, converting to each goal they reached at or
// after it, with the value of all those.
func (b *Builder) count(v *visitor, x *exposure, sign int64) {
	var value int64
	goals := b.scratch[:0]
	for _, h := range v.goals {
		if h.at < x.at {
			continue
		}
		value += h.value
		if !slices.Contains(goals, h.goal) {
			goals = append(goals, h.goal)
		}
	}
	b.scratch = goals
	sum, sq := i128of(sign*value), square(value)
	if sign < 0 {
		sq = sq.neg()
	}
	for _, t := range x.cell.tallies {
		t.exposed += sign
		for _, g := range goals {
			t.convert(g, sign)
		}
		t.sum = t.sum.add(sum)
		t.sumSq = t.sumSq.add(sq)
	}
}

// countGoal counts what a new goal hit h of visitor v adds to exposure
// x: a conversion when it is the first to that goal at or after the
// exposure, and its value.
func (b *Builder) countGoal(v *visitor, x *exposure, h goalHit) {
	if h.at < x.at {
		return
	}
	var before int64
	first := true
	for _, o := range v.goals {
		if o.at < x.at {
			continue
		}
		before += o.value
		if o.goal == h.goal {
			first = false
		}
	}
	if !first && h.value == 0 {
		return
	}
	after := before + h.value
	dsum, dsq := i128of(h.value), square(after).sub(square(before))
	for _, t := range x.cell.tallies {
		if first {
			t.convert(h.goal, 1)
		}
		t.sum = t.sum.add(dsum)
		t.sumSq = t.sumSq.add(dsq)
	}
}

// identify makes the anonymous visitor anon and the logged-in visitor
// known one: what anon did before logging in (an exposure, a goal) is
// known's, and so are anon's later events, counted once. Both visitors'
// contributions are retracted, merged, and the merged visitor's added.
func (b *Builder) identify(anon, known string) {
	if anon == "" || anon == known {
		return
	}
	if k, ok := b.alias[anon]; ok && k == known {
		return
	}
	b.alias[strings.Clone(anon)] = strings.Clone(known)
	from := b.visitors[anon]
	if from == nil {
		return
	}
	delete(b.visitors, anon)
	to := b.visitors[known]
	if to == nil {
		b.visitors[strings.Clone(known)] = from // the same visitor under another name: no count changes
		return
	}
	for _, v := range []*visitor{from, to} {
		b.size(v, -1)
		for i := range v.exposures {
			b.count(v, &v.exposures[i], -1)
		}
	}
	for _, x := range from.exposures {
		i := slices.IndexFunc(to.exposures, func(y exposure) bool { return y.cell.experiment == x.cell.experiment })
		switch {
		case i < 0:
			to.exposures = append(to.exposures, x)
		case x.at < to.exposures[i].at:
			to.exposures[i] = x // the first variant they saw, whoever they were then
		}
	}
	for _, g := range from.goals {
		if len(to.goals) < maxGoalsPerVisitor {
			to.goals = append(to.goals, g)
		}
	}
	if from.lastSeen > to.lastSeen {
		to.lastSeen, to.segments, to.stage, to.persona = from.lastSeen, from.segments, from.stage, from.persona
	}
	b.size(to, 1)
	for i := range to.exposures {
		b.count(to, &to.exposures[i], 1)
	}
}

// Events is how many events were added.
func (b *Builder) Events() int64 { return b.events }

// Visitors is how many distinct visitors the builder keeps.
func (b *Builder) Visitors() int { return len(b.visitors) }

// unitsPerValue is the resolution goal values are counted in: 1/10,000
// of a unit. Sums of them are exact integers (i128), so that a readout
// does not depend on the order its events were folded in, nor on
// visitors retracted and added back.
const unitsPerValue = 10_000

// maxValue bounds one goal's value (in units): larger ones (above ten
// billion) are counted as this, so that no sum can overflow.
const maxValue = 1e14

// toUnits converts a goal's value to units, NaN as 0.
func toUnits(v float64) int64 {
	u := math.Round(v * unitsPerValue)
	switch {
	case math.IsNaN(u):
		return 0
	case u > maxValue:
		return maxValue
	case u < -maxValue:
		return -maxValue
	}
	return int64(u)
}
