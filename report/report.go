package report

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

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

// Holdout is the variant name of an experiment's holdout (control).
const Holdout = "holdout"

// SRMThreshold is the p-value under which a split is flagged as broken.
const SRMThreshold = 0.001

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
	// says a crawler's user agent made it (its device is then "bot"
	// whatever Device says). Breakdowns group a visitor by those of their
	// first exposure event.
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

// Dimension is what a breakdown groups an experiment's visitors by: what
// their first exposure event to it said.
type Dimension string

// The dimensions of a breakdown (tailor report --by). A visitor counts in
// each of their segments, or in the group "" when they had none; the
// other dimensions put each visitor in one group ("" when unknown).
const (
	BySegment Dimension = "segment"
	ByDevice  Dimension = "device"
	ByStage   Dimension = "stage"
	ByPersona Dimension = "persona"
	ByCountry Dimension = "country"
)

// Dimensions lists the breakdowns, in the order they are offered.
var Dimensions = []Dimension{BySegment, ByDevice, ByStage, ByPersona, ByCountry}

// ErrDimension is returned by ParseDimension for a name it does not know.
var ErrDimension = errors.New("unknown breakdown")

// ParseDimension reads a breakdown's name: segment, device, stage,
// persona or country.
func ParseDimension(s string) (Dimension, error) {
	if i := slices.Index(Dimensions, Dimension(s)); i >= 0 {
		return Dimensions[i], nil
	}
	names := make([]string, len(Dimensions))
	for i, d := range Dimensions {
		names[i] = string(d)
	}
	return "", fmt.Errorf("%w %q: want one of %s", ErrDimension, s, strings.Join(names, ", "))
}

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
	// By is the breakdown asked for (ReportBy), and Groups the readout of
	// each of its groups, the largest first; both empty without one.
	By     Dimension     `json:"by,omitempty"`
	Groups []GroupResult `json:"groups,omitempty"`
}

// GroupResult is the readout of the visitors of one breakdown group: its
// variants as the experiment's, without a sample-ratio check (the split
// of a group can be skewed by the group itself: a variant that makes
// visitors reach a stage sooner).
type GroupResult struct {
	Value    string          `json:"value"`
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
	// exposed visitor; ValueCI its 95% interval (nil under 2 visitors);
	// ValueUplift its difference from the baseline's, with both
	// intervals (nil on the baseline, and under 2 visitors either side).
	ValuePerVisitor float64               `json:"value_per_visitor"`
	ValueCI         *[2]float64           `json:"value_ci"`
	ValueUplift     *Uplift               `json:"value_uplift"`
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

// Uplift is a difference (of conversion rates, or of values per visitor)
// from the baseline, with its 95% intervals.
type Uplift struct {
	Value float64 `json:"value"`
	// CI is the fixed-horizon interval: valid when the readout is looked
	// at once, at a sample size chosen in advance.
	CI [2]float64 `json:"ci"`
	// SeqCI is the always-valid (sequential) interval: valid however
	// often the readout is looked at, and whenever it is stopped (see
	// seqInterval). nil when the data have no variance yet.
	SeqCI *[2]float64 `json:"seq_ci"`
}

// Excludes0 says the interval ci excludes 0: a difference unlikely to be
// chance.
func Excludes0(ci [2]float64) bool { return ci[0] > 0 || ci[1] < 0 }

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

// Report computes the readout of the events added so far. Its cost does
// not depend on how many visitors or events there were: experiments ×
// variants × goals.
func (b *Builder) Report(since time.Time) *Report { return b.ReportBy(since, "") }

// ReportBy is Report with each experiment broken down by, when by is not
// "": the readout of each group of visitors; it costs experiments ×
// variants × goals × groups.
func (b *Builder) ReportBy(since time.Time, by Dimension) *Report {
	r := &Report{Since: since.UTC(), Events: b.events,
		Segments: maps(b.sizes[0]), Stages: maps(b.sizes[1]), Personas: maps(b.sizes[2])}
	dim := slices.Index(Dimensions, by)
	for _, id := range b.experimentOrder() {
		conf := b.config(id)
		names := b.variantNames(id, conf)
		xt := b.tallies[id]
		res := ExperimentResult{ID: id, Variants: b.variants(conf, names, xt.variants)}
		if conf != nil && len(res.Variants) > 0 {
			total := 0
			for _, v := range res.Variants {
				total += v.Exposed
			}
			if total > 0 {
				res.SRM = srm(res.Variants)
			}
		}
		if dim >= 0 {
			res.By = by
			type sized struct {
				value string
				n     int64
			}
			var groups []sized
			for value, byVariant := range xt.by[dim] {
				var n int64
				for _, t := range byVariant {
					n += t.exposed
				}
				if n > 0 {
					groups = append(groups, sized{value, n})
				}
			}
			slices.SortFunc(groups, func(a, b sized) int {
				return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.value, b.value))
			})
			for _, g := range groups {
				res.Groups = append(res.Groups, GroupResult{Value: g.value, Variants: b.variants(conf, names, xt.by[dim][g.value])})
			}
		}
		r.Experiments = append(r.Experiments, res)
	}
	if r.Experiments == nil {
		r.Experiments = []ExperimentResult{}
	}
	return r
}

// maps copies a size count, without the sizes retracted to zero.
func maps(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, n := range m {
		if n != 0 {
			out[k] = n
		}
	}
	return out
}

// variants is the readout of an experiment's variants names from their
// tallies: counts, rates, intervals, and uplifts against the baseline.
func (b *Builder) variants(conf *Experiment, names []string, tallies map[string]*tally) []VariantResult {
	out := make([]VariantResult, 0, len(names))
	var total int64
	for _, n := range names {
		if t := tallies[n]; t != nil {
			total += t.exposed
		}
	}
	var none tally
	stats := make([]valueStats, len(names))
	for i, n := range names {
		t := tallies[n]
		if t == nil {
			t = &none
		}
		vr := VariantResult{Name: n, Exposed: int(t.exposed), Goals: make(map[string]GoalResult, len(b.goals))}
		if total > 0 {
			vr.Share = float64(t.exposed) / float64(total)
		}
		if conf != nil {
			vr.Expected = expectedShare(conf, n)
		}
		stats[i] = t.valueStats()
		vr.ValuePerVisitor = stats[i].mean
		vr.ValueCI = stats[i].ci()
		for gi, g := range b.goals {
			c := int(t.conversions(gi))
			gr := GoalResult{Converted: c}
			if t.exposed > 0 {
				gr.Rate = float64(c) / float64(t.exposed)
				gr.CI = wilson(c, int(t.exposed))
			}
			vr.Goals[g] = gr
		}
		out = append(out, vr)
	}
	// Uplift against the baseline: the holdout, else the first variant.
	base := 0
	if i := slices.IndexFunc(out, func(v VariantResult) bool { return v.Name == Holdout }); i >= 0 {
		base = i
	}
	if len(out) == 0 {
		return out
	}
	out[base].Baseline = true
	bv := out[base]
	for i := range out {
		if i == base {
			continue
		}
		v := &out[i]
		for g, gr := range v.Goals {
			gr.Uplift = uplift(gr.Converted, v.Exposed, bv.Goals[g].Converted, bv.Exposed)
			v.Goals[g] = gr
		}
		v.ValueUplift = valueUplift(stats[i], stats[base])
	}
	return out
}

// experimentOrder lists the configured experiments that have exposures,
// in configuration order, then the others in the order events named them.
func (b *Builder) experimentOrder() []string {
	var out []string
	for _, x := range b.experiments {
		if _, ok := b.seen[x.ID]; ok && !slices.Contains(out, x.ID) {
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
			if !slices.Contains(out, v.Name) {
				out = append(out, v.Name)
			}
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
