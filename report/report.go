// Package report turns tailor's events into readouts (SPEC "tailor
// report"): per experiment and variant, the visitors exposed, the visitors
// converting per goal after their exposure, conversion rates and the
// uplift against the baseline with 95% intervals, engagement value per
// visitor, and a sample-ratio-mismatch check against the configured
// weights; then visitors per segment, stage and persona. Every count is of
// distinct visitors. It is pure: events in, a Report out.
package report

import (
	"math"
	"slices"
	"time"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/tailor-edge/tailor/rules"
)

// Event types the readout uses; others are counted and skipped.
const (
	typePageview = "pageview"
	typeGoal     = "goal"
	typeStage    = "stage"
	typeExposure = "exposure"
	typeIdentify = "identify"
)

// maxGoalsPerVisitor bounds the goals kept per visitor (the first ones):
// a bot that reloads a goal page cannot grow the readout without end.
const maxGoalsPerVisitor = 256

// Holdout is the variant name of an experiment's holdout (control).
const Holdout = "holdout"

// SRMThreshold is the p-value under which a split is flagged as broken.
const SRMThreshold = 0.001

// z95 is the standard normal quantile of a two-sided 95% interval.
var z95 = distuv.UnitNormal.Quantile(0.975)

// Event is what a readout needs of one event.
type Event struct {
	Type    string
	Time    time.Time
	Visitor string
	// AnonymousID is read on identify events: the anonymous id the
	// visitor had before their login made them Visitor.
	AnonymousID string
	Segments    []string
	Stage       string
	Persona     string
	Goal        string
	Value       float64
	Experiment  string
	Variant     string
	// Device (mobile, tablet, desktop, bot) and Country are the request's
	// as the proxy saw them; UTMSource and UTMCampaign its query's; Bot
	// says a crawler's user agent made it. They group a visitor in
	// breakdowns (--by device, --by country).
	Device      string
	Country     string
	UTMSource   string
	UTMCampaign string
	Bot         bool
}

// Experiment is an experiment as the rules configure it: the weights the
// SRM check expects. It is the rules' own type, not a copy.
type Experiment = rules.Experiment

// Variant is one configured arm.
type Variant = rules.Variant

// Report is the readout, as `tailor report --json` prints it.
type Report struct {
	Since       time.Time          `json:"since"`
	Events      int64              `json:"events"`
	Experiments []ExperimentResult `json:"experiments"`
	Segments    map[string]int     `json:"segments"`
	Stages      map[string]int     `json:"stages"`
	Personas    map[string]int     `json:"personas"`
}

// ExperimentResult is one experiment's readout.
type ExperimentResult struct {
	ID string `json:"id"`
	// SRM is nil when the experiment is not configured (any more): there
	// are no weights to check against.
	SRM      *SRM            `json:"srm"`
	Variants []VariantResult `json:"variants"`
}

// SRM is the sample-ratio-mismatch check: a chi-square test of the
// exposed counts against the configured split.
type SRM struct {
	ChiSquare float64 `json:"chi_square"`
	P         float64 `json:"p"`
	Flag      bool    `json:"flag"`
	// Unknown lists variants the configuration does not have but
	// visitors were exposed to: the split is broken whatever P says.
	Unknown []string `json:"unknown_variants,omitempty"`
}

// VariantResult is one variant's readout.
type VariantResult struct {
	Name    string `json:"name"`
	Exposed int    `json:"exposed"`
	// Baseline marks the variant the others' uplift is against.
	Baseline bool `json:"baseline"`
	// Share is the fraction of the experiment's exposed visitors, and
	// Expected what the configuration says it should be (0 when unknown).
	Share    float64 `json:"share"`
	Expected float64 `json:"expected"`
	// ValuePerVisitor is the goal value reached after exposure, per
	// exposed visitor.
	ValuePerVisitor float64               `json:"value_per_visitor"`
	Goals           map[string]GoalResult `json:"goals"`
}

// GoalResult is a variant's conversions to one goal.
type GoalResult struct {
	Converted int        `json:"converted"`
	Rate      float64    `json:"rate"`
	CI        [2]float64 `json:"ci"`
	// Uplift is against the baseline (the holdout, else the first
	// variant); nil on the baseline itself.
	Uplift *Uplift `json:"uplift"`
}

// GoalNames lists the goals the experiment's readout has, sorted.
func (x *ExperimentResult) GoalNames() []string {
	if len(x.Variants) == 0 {
		return nil
	}
	goals := make([]string, 0, len(x.Variants[0].Goals))
	for g := range x.Variants[0].Goals {
		goals = append(goals, g)
	}
	slices.Sort(goals)
	return goals
}

// Uplift is a difference of conversion rates with its 95% interval.
type Uplift struct {
	Value float64    `json:"value"`
	CI    [2]float64 `json:"ci"`
}

// visitor is what the builder keeps of one visitor.
type visitor struct {
	// exposures: the first variant each experiment showed them, and when.
	exposures []exposure
	// goals reached, in event order.
	goals []goalHit
	// lastSeen is the time of their latest page view or stage event, and
	// segments, stage and persona what it said.
	lastSeen int64
	segments []string
	stage    string
	persona  string
}

type exposure struct {
	experiment, variant string
	at                  int64
	// group is the visitor as their first exposure event to the
	// experiment saw them: what breakdowns group them by.
	group *group
}

// group is what breakdowns group a visitor's exposure by.
type group struct {
	segments                        []string
	device, stage, persona, country string
}

type goalHit struct {
	goal  string
	at    int64
	value float64
}

// Builder accumulates events; it is not safe for concurrent use.
type Builder struct {
	experiments []Experiment
	goals       []string
	visitors    map[string]*visitor
	// seen lists experiments and their variants in the order events
	// first named them, for those not configured.
	seen  map[string][]string
	order []string
	// alias maps an anonymous id that logged in to the visitor it became.
	alias  map[string]string
	events int64
	intern map[string]string
}

// New returns a Builder for the configured experiments and the goals the
// journey declares (goals seen in events are added to them).
func New(experiments []Experiment, goals []string) *Builder {
	return &Builder{
		experiments: experiments,
		goals:       slices.Clone(goals),
		visitors:    map[string]*visitor{},
		seen:        map[string][]string{},
		alias:       map[string]string{},
		intern:      map[string]string{},
	}
}

// str returns s, shared with every equal string added before: a million
// events name a few dozen segments.
func (b *Builder) str(s string) string {
	if v, ok := b.intern[s]; ok {
		return v
	}
	if len(b.intern) < 1<<16 {
		b.intern[s] = s
	}
	return s
}

// groupOf is the breakdown group of an exposure event.
func (b *Builder) groupOf(e *Event) *group {
	g := &group{device: b.str(e.Device), stage: b.str(e.Stage), persona: b.str(e.Persona), country: b.str(e.Country)}
	if e.Bot {
		g.device = "bot"
	}
	if len(e.Segments) > 0 {
		g.segments = make([]string, len(e.Segments))
		for i, s := range e.Segments {
			g.segments[i] = b.str(s)
		}
	}
	return g
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
	if k, ok := b.alias[key]; ok {
		key = k
	}
	if e.Type == typeIdentify {
		b.identify(e.AnonymousID, key)
		return
	}
	v := b.visitors[key]
	if v == nil {
		v = &visitor{}
		b.visitors[key] = v
	}
	at := e.Time.UnixNano()
	switch e.Type {
	case typeExposure:
		if e.Experiment == "" || e.Variant == "" {
			return
		}
		for _, x := range v.exposures {
			if x.experiment == e.Experiment {
				return // the first variant a visitor saw is theirs
			}
		}
		exp, variant := b.str(e.Experiment), b.str(e.Variant)
		v.exposures = append(v.exposures, exposure{exp, variant, at, b.groupOf(e)})
		if names, ok := b.seen[exp]; !ok {
			b.order = append(b.order, exp)
			b.seen[exp] = []string{variant}
		} else if !slices.Contains(names, variant) {
			b.seen[exp] = append(names, variant)
		}
	case typeGoal:
		if e.Goal == "" {
			return
		}
		g := b.str(e.Goal)
		if !slices.Contains(b.goals, g) {
			b.goals = append(b.goals, g)
		}
		value := e.Value
		if math.IsNaN(value) || math.IsInf(value, 0) {
			value = 0
		}
		if len(v.goals) < maxGoalsPerVisitor {
			v.goals = append(v.goals, goalHit{g, at, value})
		}
	case typePageview, typeStage:
		if at >= v.lastSeen {
			v.lastSeen = at
			v.stage, v.persona = b.str(e.Stage), b.str(e.Persona)
			if !slices.Equal(v.segments, e.Segments) {
				v.segments = make([]string, len(e.Segments))
				for i, s := range e.Segments {
					v.segments[i] = b.str(s)
				}
			}
		}
	}
}

// identify makes the anonymous visitor anon and the logged-in visitor
// known one: what anon did before logging in (an exposure, a goal) is
// known's, and so are anon's later events, counted once.
func (b *Builder) identify(anon, known string) {
	if anon == "" || anon == known {
		return
	}
	if k, ok := b.alias[anon]; ok && k == known {
		return
	}
	b.alias[anon] = known
	from := b.visitors[anon]
	if from == nil {
		return
	}
	delete(b.visitors, anon)
	to := b.visitors[known]
	if to == nil {
		b.visitors[known] = from
		return
	}
	for _, x := range from.exposures {
		i := slices.IndexFunc(to.exposures, func(y exposure) bool { return y.experiment == x.experiment })
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
}

// Events is how many events were added.
func (b *Builder) Events() int64 { return b.events }

// Report computes the readout of the events added so far.
func (b *Builder) Report(since time.Time) *Report {
	r := &Report{Since: since.UTC(), Events: b.events,
		Segments: map[string]int{}, Stages: map[string]int{}, Personas: map[string]int{}}

	// tallies[experiment][variant]
	type tally struct {
		exposed   int
		converted map[string]int
		value     float64
	}
	tallies := map[string]map[string]*tally{}
	for _, v := range b.visitors {
		for _, s := range v.segments {
			r.Segments[s]++
		}
		if v.lastSeen != 0 {
			if v.stage != "" {
				r.Stages[v.stage]++
			}
			if v.persona != "" {
				r.Personas[v.persona]++
			}
		}
		for _, x := range v.exposures {
			byVariant := tallies[x.experiment]
			if byVariant == nil {
				byVariant = map[string]*tally{}
				tallies[x.experiment] = byVariant
			}
			t := byVariant[x.variant]
			if t == nil {
				t = &tally{converted: map[string]int{}}
				byVariant[x.variant] = t
			}
			t.exposed++
			var converted []string
			for _, g := range v.goals {
				if g.at < x.at {
					continue
				}
				t.value += g.value
				if !slices.Contains(converted, g.goal) {
					converted = append(converted, g.goal)
					t.converted[g.goal]++
				}
			}
		}
	}

	for _, id := range b.experimentOrder() {
		conf := b.config(id)
		names := b.variantNames(id, conf)
		res := ExperimentResult{ID: id, Variants: make([]VariantResult, 0, len(names))}
		total := 0
		for _, n := range names {
			if t := tallies[id][n]; t != nil {
				total += t.exposed
			}
		}
		for _, n := range names {
			t := tallies[id][n]
			if t == nil {
				t = &tally{converted: map[string]int{}}
			}
			vr := VariantResult{Name: n, Exposed: t.exposed, Goals: map[string]GoalResult{}}
			if total > 0 {
				vr.Share = float64(t.exposed) / float64(total)
			}
			if conf != nil {
				vr.Expected = expectedShare(conf, n)
			}
			if t.exposed > 0 {
				vr.ValuePerVisitor = t.value / float64(t.exposed)
			}
			for _, g := range b.goals {
				c := t.converted[g]
				gr := GoalResult{Converted: c}
				if t.exposed > 0 {
					gr.Rate = float64(c) / float64(t.exposed)
					gr.CI = wilson(c, t.exposed)
				}
				vr.Goals[g] = gr
			}
			res.Variants = append(res.Variants, vr)
		}
		// Uplift against the baseline: the holdout, else the first variant.
		base := 0
		if i := slices.IndexFunc(res.Variants, func(v VariantResult) bool { return v.Name == Holdout }); i >= 0 {
			base = i
		}
		if len(res.Variants) > 0 {
			res.Variants[base].Baseline = true
			bv := res.Variants[base]
			for i := range res.Variants {
				if i == base {
					continue
				}
				v := &res.Variants[i]
				for g, gr := range v.Goals {
					gr.Uplift = uplift(gr.Converted, v.Exposed, bv.Goals[g].Converted, bv.Exposed)
					v.Goals[g] = gr
				}
			}
		}
		if conf != nil && total > 0 {
			res.SRM = srm(res.Variants)
		}
		r.Experiments = append(r.Experiments, res)
	}
	if r.Experiments == nil {
		r.Experiments = []ExperimentResult{}
	}
	return r
}

// experimentOrder lists the configured experiments that have exposures,
// in configuration order, then the others in the order events named them.
func (b *Builder) experimentOrder() []string {
	var out []string
	for _, x := range b.experiments {
		if _, ok := b.seen[x.ID]; ok {
			out = append(out, x.ID)
		}
	}
	for _, id := range b.order {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func (b *Builder) config(id string) *Experiment {
	for i := range b.experiments {
		if b.experiments[i].ID == id {
			return &b.experiments[i]
		}
	}
	return nil
}

// variantNames lists an experiment's variants: the holdout first when
// there is one, then the configured ones in order, then any others the
// events named (a variant since removed).
func (b *Builder) variantNames(id string, conf *Experiment) []string {
	var out []string
	seen := b.seen[id]
	if conf != nil && conf.Holdout > 0 || slices.Contains(seen, Holdout) {
		out = append(out, Holdout)
	}
	if conf != nil {
		for _, v := range conf.Variants {
			out = append(out, v.Name)
		}
	}
	for _, n := range seen {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// expectedShare is the configured share of the experiment's visitors
// that variant name should get; 0 for one not configured.
func expectedShare(conf *Experiment, name string) float64 {
	if name == Holdout {
		return conf.Holdout / 100
	}
	for _, v := range conf.Variants {
		if v.Name == name {
			return (100 - conf.Holdout) / 100 * v.Weight / 100
		}
	}
	return 0
}

// srm tests the exposed counts of the configured variants against their
// configured shares. A variant the configuration does not know is
// expected at zero: any exposure to it flags the split.
func srm(variants []VariantResult) *SRM {
	var obs, exp []float64
	var unknown []string
	known := 0
	for _, v := range variants {
		if v.Expected == 0 {
			if v.Exposed > 0 {
				unknown = append(unknown, v.Name)
			}
			continue
		}
		known += v.Exposed
		obs = append(obs, float64(v.Exposed))
		exp = append(exp, v.Expected)
	}
	res := &SRM{P: 1, Unknown: unknown}
	if len(obs) >= 2 && known > 0 {
		for i := range exp {
			exp[i] *= float64(known)
		}
		res.ChiSquare = stat.ChiSquare(obs, exp)
		res.P = distuv.ChiSquared{K: float64(len(obs) - 1)}.Survival(res.ChiSquare)
	}
	if len(unknown) > 0 {
		res.P = 0
	}
	res.Flag = res.P < SRMThreshold
	return res
}

// wilson is the 95% Wilson score interval of k successes in n trials: it
// stays inside [0, 1] and behaves at small counts, where the normal
// approximation does not.
func wilson(k, n int) [2]float64 {
	p, nf, z2 := float64(k)/float64(n), float64(n), z95*z95
	centre := (p + z2/(2*nf)) / (1 + z2/nf)
	half := z95 / (1 + z2/nf) * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	lo, hi := math.Max(0, centre-half), math.Min(1, centre+half)
	if k == 0 {
		lo = 0 // not 3e-17 from rounding
	}
	if k == n {
		hi = 1
	}
	return [2]float64{lo, hi}
}

// uplift is the difference of two conversion rates with its 95%
// interval, by Newcombe's hybrid score method (the Wilson intervals of
// both rates combined): unlike the plain normal approximation it stays
// honest at small counts and at rates of 0 or 1, and agrees with it on
// large samples. nil when either side has no visitors.
func uplift(k1, n1, k0, n0 int) *Uplift {
	if n1 == 0 || n0 == 0 {
		return nil
	}
	p1, p0 := float64(k1)/float64(n1), float64(k0)/float64(n0)
	w1, w0 := wilson(k1, n1), wilson(k0, n0)
	d := p1 - p0
	lo := d - math.Sqrt((p1-w1[0])*(p1-w1[0])+(w0[1]-p0)*(w0[1]-p0))
	hi := d + math.Sqrt((w1[1]-p1)*(w1[1]-p1)+(p0-w0[0])*(p0-w0[0]))
	return &Uplift{Value: d, CI: [2]float64{lo, hi}}
}
