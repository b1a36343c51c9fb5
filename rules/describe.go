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
	// By is what a map is by, or its rows are by for a two-dimensional
	// map: "segment", "stage", "persona" or "interest".
	By string
	// Across is what a two-dimensional map's columns are by; "" for a
	// one-dimensional map.
	Across string
	// Cases are a one-dimensional map's, in order, "default" last when
	// there is one; a two-dimensional map's default alone; an
	// experiment's variants, HoldoutVariant first when there is one.
	Cases []CaseInfo
	// Rows are a two-dimensional map's, in order.
	Rows []RowInfo
}

// RowInfo is one row of a two-dimensional map: its cells by the map's
// Across, "default" last when there is one. The hits of a cell count
// under the case Key + CellSep + the cell's Key.
type RowInfo struct {
	Key   string
	Cells []CaseInfo
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
			m := r.choice.m
			ri.Kind, ri.By = "map", m.dims[0]
			if len(m.dims) == 1 {
				for _, c := range m.cases {
					ri.Cases = append(ri.Cases, CaseInfo{Key: c.key, Action: c.summary()})
				}
			} else {
				ri.Across = m.dims[1]
				for _, row := range m.cases {
					ro := RowInfo{Key: row.key}
					for _, c := range row.cells {
						ro.Cells = append(ro.Cells, CaseInfo{Key: c.key, Action: c.summary()})
					}
					if row.def != nil {
						ro.Cells = append(ro.Cells, CaseInfo{Key: "default", Action: row.def.summary()})
					}
					ri.Rows = append(ri.Rows, ro)
				}
			}
			if m.def != nil {
				ri.Cases = append(ri.Cases, CaseInfo{Key: "default", Action: m.def.summary()})
			}
		case kindExperiment:
			x := r.choice.exp
			ri.Kind = "experiment"
			if h := x.holdout; h > 0 {
				ri.Cases = append(ri.Cases, CaseInfo{Key: HoldoutVariant, Action: "the origin's block", Weight: h})
			}
			for _, v := range x.variants {
				ri.Cases = append(ri.Cases, CaseInfo{Key: v.name, Action: v.summary(), Weight: (100 - x.holdout) * v.weight / 100})
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
