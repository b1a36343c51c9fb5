package rules

import "github.com/tailor-edge/tailor/internal/fnvmix"

// HoldoutVariant is the variant name of an experiment's holdout: visitors
// who see the origin's block, the control.
const HoldoutVariant = "holdout"

// TreatedVariant is the variant name of a rule-set experiment's visitors
// outside its holdout, who get the set's rules as usual.
const TreatedVariant = "personalized"

// Experiment describes an experiment, for readouts: an experiment rule,
// whose id is its rule's id (with "[case]" or "[variant]" for one nested
// in a map or a variant), or a rule-set experiment (a rule file's
// experiments:), whose id is its name and whose one variant is
// TreatedVariant.
type Experiment struct {
	ID string
	// Holdout is the percentage of visitors held out.
	Holdout float64
	// Variants are in file order; their weights add up to 100 and apply
	// to the visitors outside the holdout.
	Variants []Variant
}

// Variant is one arm of an experiment.
type Variant struct {
	Name   string
	Weight float64
}

// Experiments returns the experiments of every page, in file order.
func (s *Set) Experiments() []Experiment {
	out := make([]Experiment, len(s.experiments))
	for i, x := range s.experiments {
		out[i] = x
		out[i].Variants = append([]Variant(nil), x.Variants...)
	}
	return out
}

type experiment struct {
	holdout  float64
	variants []variant
}

type variant struct {
	name   string
	weight float64
	choice
	// reason is the trace's when the variant fires.
	reason string
}

// assign returns the visitor's variant in experiment id, nil for the
// holdout: the one their first exposure fixed (v.Assigned) while x still
// has it (the holdout while it holds visitors), else bucket's. kept says
// it was the fixed one.
func (x *experiment) assign(id string, v *Visitor) (va *variant, kept bool) {
	if k := v.Assigned; k != nil {
		if x.holdout > 0 && k.Kept(id, HoldoutVariant) {
			return nil, true
		}
		for i := range x.variants {
			if k.Kept(id, x.variants[i].name) {
				return &x.variants[i], true
			}
		}
	}
	return x.bucket(id, v.ID), false
}

// ruleSet is a rule-set experiment (a rule file's experiments:): one
// holdout for several rules, which see the origin's blocks for all of
// them.
type ruleSet struct {
	name    string
	holdout float64
	// rules are the ids of the set's rules, in the order written.
	rules []string
}

// holds reports whether the visitor is in the set's holdout: every
// control visitor; else the arm their first exposure fixed, else a hash
// of (name, visitor id) as for any experiment.
func (rs *ruleSet) holds(v *Visitor) (held, kept bool) {
	if v.Control {
		return true, false
	}
	if k := v.Assigned; k != nil {
		if k.Kept(rs.name, HoldoutVariant) {
			return true, true
		}
		if k.Kept(rs.name, TreatedVariant) {
			return false, true
		}
	}
	return unitHash(rs.name, v.ID) < rs.holdout/100, false
}

// bucket returns the variant for the visitor id: the same for the same
// (rule id, visitor id) whatever the process or the day, and independent
// between experiments. It returns nil for the holdout.
func (x *experiment) bucket(ruleID, visitorID string) *variant {
	u := unitHash(ruleID, visitorID)
	h := x.holdout / 100
	if u < h {
		return nil
	}
	// Rescaled, the rest of the unit interval is again uniform: the
	// variants split it by weight.
	u = (u - h) / (1 - h) * 100
	var cum float64
	last := -1
	for i := range x.variants {
		if x.variants[i].weight == 0 {
			continue
		}
		last = i
		cum += x.variants[i].weight
		if u < cum {
			return &x.variants[i]
		}
	}
	// Only rounding leaves u at the very top: the last variant with a
	// weight takes it.
	if last < 0 {
		return nil
	}
	return &x.variants[last]
}

// unitHash maps (rule id, visitor id) to [0, 1): fnvmix over ruleID, a
// NUL and visitorID.
func unitHash(ruleID, visitorID string) float64 {
	h := fnvmix.String(fnvmix.Offset, ruleID)
	h *= fnvmix.Prime // the NUL separator: h ^= 0 is a no-op
	h = fnvmix.Mix(fnvmix.String(h, visitorID))
	return float64(h>>11) / (1 << 53)
}
