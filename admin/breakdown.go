package admin

import (
	"net/http"

	"github.com/tailor-edge/tailor/report"
)

// The console's always-valid intervals, values per visitor and
// breakdowns (?by=device): the readout's, laid out for the template.

// consoleBy reads the breakdown a console request asks for (?by=device);
// a note when it names none the readout has.
func consoleBy(r *http.Request) (report.Dimension, string) {
	s := r.URL.Query().Get("by")
	if s == "" {
		return "", ""
	}
	by, err := report.ParseDimension(s)
	if err != nil {
		return "", " No breakdown: " + err.Error() + "."
	}
	return by, ""
}

// newGoalRow is variant v's row in goal g's table.
func newGoalRow(v report.VariantResult, g string) goalRow {
	r := v.Goals[g]
	row := goalRow{Baseline: v.Baseline, Variant: v.Name, Exposed: v.Exposed, Converted: r.Converted, Rate: r.Rate, CI: r.CI, Uplift: r.Uplift}
	if u := r.Uplift; u != nil {
		row.Clear = report.Excludes0(u.CI)
		row.SeqClear = u.SeqCI != nil && report.Excludes0(*u.SeqCI)
	}
	return row
}

// valueRow is a variant's value per visitor, with its interval and its
// difference from the baseline's.
type valueRow struct {
	Group    string
	Variant  string
	Baseline bool
	Value    float64
	CI       *[2]float64
	Uplift   *report.Uplift
	Clear    bool // the difference's interval excludes 0
	SeqClear bool // its always-valid interval does
}

func valueRows(variants []report.VariantResult) []valueRow {
	out := make([]valueRow, 0, len(variants))
	for _, v := range variants {
		row := valueRow{Variant: v.Name, Baseline: v.Baseline, Value: v.ValuePerVisitor, CI: v.ValueCI, Uplift: v.ValueUplift}
		if u := v.ValueUplift; u != nil {
			row.Clear = report.Excludes0(u.CI)
			row.SeqClear = u.SeqCI != nil && report.Excludes0(*u.SeqCI)
		}
		out = append(out, row)
	}
	return out
}

// breakdownView is one goal's readout per group of a breakdown, and the
// value per visitor per group: a row per group and variant.
type breakdownView struct {
	Goal   string
	Rows   []goalRow
	Values []valueRow
}

// breakdownViews lays out an experiment's breakdown: a table per goal,
// then one of value per visitor (Goal "").
func breakdownViews(x report.ExperimentResult) []breakdownView {
	if x.By == "" {
		return nil
	}
	var out []breakdownView
	for _, g := range x.GoalNames() {
		bv := breakdownView{Goal: g}
		for _, gr := range x.Groups {
			for _, v := range gr.Variants {
				row := newGoalRow(v, g)
				row.Group = gr.Value
				bv.Rows = append(bv.Rows, row)
			}
		}
		out = append(out, bv)
	}
	values := breakdownView{}
	for _, gr := range x.Groups {
		for _, row := range valueRows(gr.Variants) {
			row.Group = gr.Value
			values.Values = append(values.Values, row)
		}
	}
	return append(out, values)
}
