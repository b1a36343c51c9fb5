package rules

// RuleInfo describes one rule of a page as written, for the console: its
// block, and what it shows there (per case for a Digital Relevancy Map,
// per variant for an experiment).
type RuleInfo struct {
	ID string
	// Selector is the block, as written.
	Selector string
	// Kind is "rule", "map" or "experiment".
	Kind string
	// Conditional is true when the rule has a when: or if:.
	Conditional bool
	// Action is a plain rule's action, shortened as written.
	Action string
	// By is what a map is by: "stage" or "segment".
	By string
	// Cases are a map's, in order, "default" last when there is one; an
	// experiment's variants, HoldoutVariant first when there is one.
	Cases []CaseInfo
}

// CaseInfo is one case of a map, or one variant of an experiment.
type CaseInfo struct {
	Key    string
	Action string
	// Weight is a variant's share of all visitors, in percent.
	Weight float64
}

// Rules describes the page's rules, in order.
func (p *Page) Rules() []RuleInfo {
	out := make([]RuleInfo, 0, len(p.rules))
	for _, r := range p.rules {
		ri := RuleInfo{ID: r.id, Selector: p.selText[r.sel], Conditional: len(r.cond) > 0}
		switch r.kind {
		case kindMap:
			ri.Kind, ri.By = "map", r.by
			for _, c := range r.cases {
				ri.Cases = append(ri.Cases, CaseInfo{Key: c.key, Action: c.act.summary})
			}
			if r.def != nil {
				ri.Cases = append(ri.Cases, CaseInfo{Key: "default", Action: r.def.summary})
			}
		case kindExperiment:
			ri.Kind = "experiment"
			if h := r.exp.holdout; h > 0 {
				ri.Cases = append(ri.Cases, CaseInfo{Key: HoldoutVariant, Action: "the origin's block", Weight: h})
			}
			for _, v := range r.exp.variants {
				ri.Cases = append(ri.Cases, CaseInfo{Key: v.name, Action: v.act.summary, Weight: (100 - r.exp.holdout) * v.weight / 100})
			}
		default:
			ri.Kind, ri.Action = "rule", r.act.summary
		}
		out = append(out, ri)
	}
	return out
}

// Pages returns the rule set's pages, in file order.
func (s *Set) Pages() []*Page { return s.pages }
