package rules

import (
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// A Digital Relevancy Map (SPEC "Rule files") shows one block per visitor
// by one or two of what the rules know of them: rows by the first
// dimension and, for two, cells by the second. A map case (or cell) and
// an experiment variant hold a choice: an action, or a map, or an
// experiment, so that a cell can run a test and a variant can be a map.

// Map dimensions: what a map's by: may name.
const (
	bySegment  = "segment"
	byStage    = "stage"
	byPersona  = "persona"
	byInterest = "interest"
)

var mapDims = []string{bySegment, byStage, byPersona, byInterest}

// anyKey is the map key that matches every visitor: a row for everyone
// not in an earlier row.
const anyKey = "*"

// CellSep joins a two-dimensional map's row and column in the name of a
// cell ("vip/retention"), as MapChoice.Case, the decision header and the
// tailor_map_case_hits_total label show it. Names cannot hold it.
const CellSep = "/"

// maxNesting bounds maps in experiments in maps: deeper is unreadable,
// and a file must not be able to make loading recurse without end.
const maxNesting = 4

// choice is what a rule, a map case or an experiment variant shows: one
// action, a map, an experiment, or nothing at all (an empty map case,
// which leaves the block).
type choice struct {
	act *action
	m   *drm
	exp *experiment
}

// summary is the choice as the console shows it.
func (c *choice) summary() string {
	switch {
	case c.act != nil:
		return c.act.summary
	case c.m != nil:
		return "map by " + strings.Join(c.m.dims, " × ")
	case c.exp != nil:
		var b strings.Builder
		b.WriteString("experiment")
		if c.exp.holdout > 0 {
			b.WriteString(" holdout " + strconv.FormatFloat(c.exp.holdout, 'f', -1, 64) + "%")
		}
		for i, v := range c.exp.variants {
			if i == 0 && c.exp.holdout == 0 {
				b.WriteString(" ")
			} else {
				b.WriteString(", ")
			}
			b.WriteString(v.name + " " + strconv.FormatFloat(v.weight, 'f', -1, 64) + "%")
		}
		return b.String()
	}
	return ""
}

// eachAction calls fn with every action the choice could show: its own,
// or those of every case, cell, default and variant within it.
func (c *choice) eachAction(fn func(*action)) {
	switch {
	case c.act != nil:
		fn(c.act)
	case c.m != nil:
		each := func(mc *mapCase) {
			mc.eachAction(fn)
			for i := range mc.cells {
				mc.cells[i].eachAction(fn)
			}
			if mc.def != nil {
				mc.def.eachAction(fn)
			}
		}
		for i := range c.m.cases {
			each(&c.m.cases[i])
		}
		if c.m.def != nil {
			each(c.m.def)
		}
	case c.exp != nil:
		for i := range c.exp.variants {
			c.exp.variants[i].eachAction(fn)
		}
	}
}

// drm is a compiled map.
type drm struct {
	// dims are what the map is by: one or two of mapDims.
	dims []string
	// cases are a one-dimensional map's cases, or a two-dimensional
	// map's rows, each with its cells, in file order.
	cases []mapCase
	// def is the map's default, nil without one.
	def *mapCase
}

type mapCase struct {
	key string
	choice
	// cells and def are a row's: its cases by the second dimension, and
	// its default.
	cells []mapCase
	def   *mapCase
	// name is the case's in MapChoice.Case: its key, "default", or
	// row/column for a cell.
	name string
	// reason is the trace's when the case is chosen.
	reason string
}

// matches reports whether the visitor, as c sees them, is in case key of
// dimension dim.
func matches(c *evalCtx, dim, key string) bool {
	if key == anyKey {
		return true
	}
	switch dim {
	case bySegment:
		return slices.Contains(c.segs, key)
	case byStage:
		return key == c.stage
	case byPersona:
		return key == c.v.Persona
	case byInterest:
		return key == c.v.TopInterest
	}
	return false
}

// value is the visitor's value of dimension dim, for the trace.
func value(c *evalCtx, dim string) string {
	switch dim {
	case bySegment:
		return "segments [" + joinSpace(c.segs) + "]"
	case byStage:
		return "stage " + orNone(c.stage)
	case byPersona:
		return "persona " + orNone(c.v.Persona)
	case byInterest:
		return "interest " + orNone(c.v.TopInterest)
	}
	return dim
}

// pick chooses the map's case for the visitor: the first case (or row,
// then the row's first cell) in file order the visitor is in, else the
// row's default, else the map's. It returns nil when there is none.
func (m *drm) pick(c *evalCtx) (mc *mapCase, reason string) {
	for i := range m.cases {
		row := &m.cases[i]
		if !matches(c, m.dims[0], row.key) {
			continue
		}
		if len(m.dims) == 1 {
			return row, row.reason
		}
		for j := range row.cells {
			if matches(c, m.dims[1], row.cells[j].key) {
				return &row.cells[j], row.cells[j].reason
			}
		}
		if row.def != nil {
			return row.def, row.def.reason + " (no cell for " + value(c, m.dims[1]) + ")"
		}
		if m.def != nil {
			return m.def, "map default (row " + row.key + " has no cell for " + value(c, m.dims[1]) + ")"
		}
		return nil, "map row " + row.key + ": no cell for " + value(c, m.dims[1]) + " and no default"
	}
	var of strings.Builder
	for i, d := range m.dims {
		if i > 0 {
			of.WriteString(", ")
		}
		of.WriteString(value(c, d))
	}
	if m.def != nil {
		return m.def, "map default (no case for " + of.String() + ")"
	}
	return nil, of.String() + ": no map case and no default"
}

// choose evaluates the choice for the visitor. id names the choice where
// it is nested: the rule's id, then "[case]" or "[variant]" for each map
// or experiment it is in, so that an experiment in a map's cell buckets
// and reports as one experiment of its own ("hero-drm[vip/intent]"). The
// maps' cases and the experiments' exposures it passes through are
// appended to d; held is the experiment whose holdout the visitor is in,
// which keeps the origin's block for the changes of that experiment's
// variants only (not of other cases of a map it is nested in). A nil
// action with a nil held leaves the block.
func (ch *choice) choose(c *evalCtx, id string, d *Decision) (a *action, held *experiment, reason string) {
	switch {
	case ch.act != nil:
		return ch.act, nil, "matched"
	case ch.m != nil:
		mc, reason := ch.m.pick(c)
		if mc == nil {
			return nil, nil, reason
		}
		d.Cases = append(d.Cases, MapChoice{Map: id, Case: mc.name})
		if mc.act != nil {
			return mc.act, nil, reason
		}
		if mc.m == nil && mc.exp == nil {
			return nil, nil, reason + ": empty, the block is left"
		}
		a, held, inner := mc.choose(c, id+"["+mc.name+"]", d)
		return a, held, reason + "; " + inner
	case ch.exp != nil:
		if c.v.Control {
			return nil, ch.exp, "experiment control: the origin's block is kept, nothing is counted"
		}
		va, kept := ch.exp.assign(id, c.v)
		since := ""
		if kept {
			since = " (kept since the first exposure)"
		}
		if va == nil {
			d.Exposures = append(d.Exposures, Exposure{Experiment: id, Variant: HoldoutVariant})
			return nil, ch.exp, "experiment holdout" + since + ": the origin's block is kept"
		}
		d.Exposures = append(d.Exposures, Exposure{Experiment: id, Variant: va.name})
		if va.act != nil {
			return va.act, nil, va.reason + since
		}
		a, held, inner := va.choose(c, id+"["+va.name+"]", d)
		return a, held, va.reason + since + "; " + inner
	}
	return nil, nil, "empty: the block is left"
}

// ruleMap compiles a Digital Relevancy Map at n into ch; id names it in
// messages and nested experiments.
func (l *loader) ruleMap(f *fileReader, ch *choice, id string, n *yaml.Node, depth int) bool {
	entries, ok := f.mapping(n, "map")
	if !ok {
		return false
	}
	var byNode *yaml.Node
	for _, e := range entries {
		if e.name == "by" {
			byNode = e.value
		}
	}
	if byNode == nil {
		f.invalid(n, "map", "a map needs by: with what it is by: one or two of %s", strings.Join(mapDims, ", "))
		return false
	}
	dims, ok := l.mapBy(f, byNode)
	if !ok {
		return false
	}
	m := &drm{dims: dims}
	good := true
	for _, e := range entries {
		key := "map." + e.name
		switch {
		case e.name == "by":
			continue
		case e.name == "default":
			mc := &mapCase{key: "default", name: "default", reason: "map default"}
			if l.mapChoice(f, &mc.choice, id+"[default]", e.value, key, depth) {
				m.def = mc
			} else {
				good = false
			}
			continue
		case isActionKey(e.name) || e.name == "map" || e.name == "experiment":
			f.invalid(e.key, "map", "%q is an action; a map's cases are %ss, each with its own action, as in %s", e.name, dims[0], l.exampleCase(dims))
			good = false
			continue
		}
		if !l.checkMapKey(f, e.key, "map", dims[0], e.name) {
			good = false
			continue
		}
		mc := mapCase{key: e.name, name: e.name, reason: "map " + dims[0] + " " + e.name}
		if len(dims) == 1 {
			if !l.mapChoice(f, &mc.choice, id+"["+e.name+"]", e.value, key, depth) {
				good = false
				continue
			}
		} else if !l.mapRow(f, m, &mc, id, e.value, key, depth) {
			good = false
			continue
		}
		m.cases = append(m.cases, mc)
	}
	if good && len(m.cases) == 0 {
		f.invalid(n, "map", "a map needs at least one %s case beside default", dims[0])
		good = false
	}
	ch.m = m
	return good
}

// mapBy reads a map's by: one dimension, or a list of one or two.
func (l *loader) mapBy(f *fileReader, n *yaml.Node) ([]string, bool) {
	dims, ok := f.strs(n, "map.by")
	if !ok {
		return nil, false
	}
	want := "one or two of " + strings.Join(mapDims, ", ")
	switch {
	case len(dims) == 0 || len(dims) > 2:
		f.invalid(n, "map.by", "want %s (rows, then columns), not %d", want, len(dims))
		return nil, false
	case len(dims) == 2 && dims[0] == dims[1]:
		f.invalid(n, "map.by", "%q twice: a map's rows and columns are by different things", dims[0])
		return nil, false
	}
	for _, d := range dims {
		if !slices.Contains(mapDims, d) {
			f.invalid(n, "map.by", "want %s, not %q", want, truncate(d, 40))
			return nil, false
		}
	}
	return dims, true
}

// mapRow compiles a two-dimensional map's row into mc: its cells by the
// map's second dimension and its default.
func (l *loader) mapRow(f *fileReader, m *drm, mc *mapCase, id string, n *yaml.Node, key string, depth int) bool {
	entries, ok := f.mapping(n, key)
	if !ok {
		return false
	}
	good := true
	col := m.dims[1]
	for _, e := range entries {
		ckey := key + "." + e.name
		if isActionKey(e.name) || e.name == "map" || e.name == "experiment" {
			f.invalid(e.key, key, "%q is an action; a row's cells are %ss, each with its own action, as in %s", e.name, col, l.exampleCase(m.dims))
			good = false
			continue
		}
		cell := mapCase{key: e.name, name: mc.key + CellSep + e.name,
			reason: "map cell " + m.dims[0] + " " + mc.key + " × " + col + " " + e.name}
		if e.name == "default" {
			cell.reason = "map row " + m.dims[0] + " " + mc.key + ", default"
		} else if !l.checkMapKey(f, e.key, key, col, e.name) {
			good = false
			continue
		}
		if !l.mapChoice(f, &cell.choice, id+"["+cell.name+"]", e.value, ckey, depth) {
			good = false
			continue
		}
		if e.name == "default" {
			mc.def = &cell
			continue
		}
		mc.cells = append(mc.cells, cell)
	}
	return good
}

// checkMapKey reports a case key written at n that cannot be a case of
// dimension dim: an undeclared stage or persona, or not a name.
func (l *loader) checkMapKey(f *fileReader, n *yaml.Node, key, dim, s string) bool {
	switch {
	case s == anyKey:
		return true
	case dim == byStage:
		return l.checkStage(f, n, key, s)
	case dim == byPersona:
		return checkDeclared(f, n, key, "persona", s, sortedKeys(l.personas), "declare it under personas:")
	}
	return f.checkName(n, key, s)
}

func (l *loader) exampleCase(dims []string) string {
	ex := func(d string) string {
		switch {
		case d == byStage && len(l.set.stages) > 0:
			return l.set.stages[0]
		case d == byPersona && len(l.personas) > 0:
			return sortedKeys(l.personas)[0]
		case d == byInterest:
			return "running"
		}
		return "vip"
	}
	if len(dims) == 1 {
		return ex(dims[0]) + ": {inner: ...}"
	}
	return ex(dims[0]) + ": {" + ex(dims[1]) + ": {inner: ...}}"
}

// mapChoice compiles a map case or cell: a mapping holding one action, a
// map or an experiment; or nothing, which leaves the block.
func (l *loader) mapChoice(f *fileReader, ch *choice, id string, n *yaml.Node, key string, depth int) bool {
	entries, ok := f.mapping(n, key)
	if !ok {
		return false
	}
	var act oneAction
	good := true
	for _, e := range entries {
		if isActionKey(e.name) || e.name == "map" || e.name == "experiment" {
			act.add(f, e, key)
			continue
		}
		f.unknownKey(e, key, ruleActionKeys)
		good = false
	}
	if act.first == nil {
		return good
	}
	return l.choice(f, ch, id, *act.first, depth+1) && !act.extra && good
}

// choice compiles the action, map or experiment e into ch.
func (l *loader) choice(f *fileReader, ch *choice, id string, e entry, depth int) bool {
	if depth > maxNesting && (e.name == "map" || e.name == "experiment") {
		f.invalid(e.key, e.name, "maps and experiments nest at most %d deep", maxNesting)
		return false
	}
	switch e.name {
	case "map":
		return l.ruleMap(f, ch, id, e.value, depth)
	case "experiment":
		if !l.experiment(f, ch, id, e.value, depth) {
			return false
		}
		x := Experiment{ID: id, Holdout: ch.exp.holdout}
		for _, v := range ch.exp.variants {
			x.Variants = append(x.Variants, Variant{Name: v.name, Weight: v.weight})
		}
		l.set.experiments = append(l.set.experiments, x)
		if l.set.exps == nil {
			l.set.exps = map[string]*experiment{}
		}
		l.set.exps[id] = ch.exp
		return true
	}
	ch.act = l.compileAction(f, e, "rule "+id)
	return ch.act != nil
}
