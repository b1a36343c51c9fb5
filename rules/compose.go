package rules

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/andybalholm/cascadia"
	"gopkg.in/yaml.v3"
)

// How rules compose (issue 17). Every page whose match: fits a path
// applies, in file order; for one selector the first matching rule wins
// per kind of change: the content (replace, inner, text, prepend, append,
// before, after, remove: one kind together), each attribute name, each
// class name. So a text rule and an attr rule on one block both apply,
// while a second text rule on it is overridden.

// changeKind is what a change to an element touches.
type changeKind uint8

const (
	changeContent changeKind = iota
	changeAttr
	changeClass
)

// change is one kind of change to the elements of a page's selector.
type change struct {
	sel  int
	kind changeKind
	name string // the attribute's or the class's; "" for content
}

// changeOf returns the kind of change an action makes.
func changeOf(a *Action) change {
	switch a.Op {
	case SetAttr:
		return change{sel: a.Sel, kind: changeAttr, name: a.Name}
	case AddClass, RemoveClass:
		return change{sel: a.Sel, kind: changeClass, name: string(a.Value)}
	}
	return change{sel: a.Sel}
}

// String names the change as explain shows it: "content", "attribute
// href", "class hero--vip".
func (c change) String() string {
	switch c.kind {
	case changeAttr:
		return "attribute " + c.name
	case changeClass:
		return "class " + c.name
	}
	return "content"
}

// Change names the kind of change the action makes to its elements:
// "content" for Replace…Remove, "attribute NAME" for SetAttr, "class
// NAME" for AddClass and RemoveClass. For one selector, the first
// matching rule makes each kind of change; later rules making the same
// kind are overridden.
func (a *Action) Change() string { c := changeOf(a); return c.String() }

// staticChange returns the kind of change a compiled action makes on
// selector sel, known without rendering it: false for a class name that
// is a template.
func (a *action) staticChange(sel int) (change, bool) {
	switch a.op {
	case SetAttr:
		return change{sel: sel, kind: changeAttr, name: a.name}, true
	case AddClass, RemoveClass:
		if a.content == nil || a.content.Templated() {
			return change{}, false
		}
		return change{sel: sel, kind: changeClass, name: string(a.content.Static())}, true
	}
	return change{sel: sel}, true
}

// each calls fn with the action and every further pair of its attr:.
func (a *action) each(fn func(*action) bool) bool {
	if !fn(a) {
		return false
	}
	for _, m := range a.also {
		if !fn(m) {
			return false
		}
	}
	return true
}

// taken records, for one Decide, which rule made each kind of change.
// Content, by far the commonest, is an array by selector; attributes and
// classes are a short list, indexed by a map once it grows.
type taken struct {
	content []int // 1 + the rule index, by selector; 0: free
	named   []takenChange
	index   map[change]int // into named, once named is long
}

type takenChange struct {
	change
	by int // 1 + the rule index
}

// by returns 1 + the index of the rule that made change c, or 0.
func (t *taken) by(c change) int {
	if c.kind == changeContent {
		return t.content[c.sel]
	}
	if t.index != nil {
		if i, ok := t.index[c]; ok {
			return t.named[i].by
		}
		return 0
	}
	for i := range t.named {
		if t.named[i].change == c {
			return t.named[i].by
		}
	}
	return 0
}

// take records that rule index i (0-based) makes change c.
func (t *taken) take(c change, i int) {
	if c.kind == changeContent {
		t.content[c.sel] = i + 1
		return
	}
	t.named = append(t.named, takenChange{c, i + 1})
	switch {
	case t.index != nil:
		t.index[c] = len(t.named) - 1
	case len(t.named) > 16:
		t.index = make(map[change]int, 2*len(t.named))
		for j := range t.named {
			t.index[t.named[j].change] = j
		}
	}
}

// allTaken reports whether every change action a (with its further attr
// pairs) makes on sel, as far as they are known before rendering, is
// taken.
func (t *taken) allTaken(a *action, sel int) bool {
	return a.each(func(m *action) bool {
		c, ok := m.staticChange(sel)
		return ok && t.by(c) > 0
	})
}

// Override is a change a rule would have made to its selector's elements
// had an earlier rule not made that kind of change first.
type Override struct {
	// Change is the kind of change, as Action.Change names it.
	Change string
	// By is the id of the rule whose change was made instead.
	By string
}

// maxCombos bounds the pages a Set keeps for paths that several pages
// match: one per distinct combination of pages. Past it, Match builds the
// combination again for each call.
const maxCombos = 1024

// combos caches the merged page of each combination of pages that a path
// matches, built on first use.
type combos struct {
	mu sync.Mutex
	m  map[string]*Page // key: the pages' indexes as uvarints
}

// match returns the page for the pages of s at indexes idx (two or more),
// in file order: one page with the union of their selectors and all their
// rules.
func (s *Set) match(idx []int) *Page {
	var buf [64]byte
	key := buf[:0]
	for _, i := range idx {
		key = binary.AppendUvarint(key, uint64(i))
	}
	c := s.combos
	if c == nil { // a Set not made by Load
		return mergePages(s.pagesAt(idx))
	}
	c.mu.Lock()
	p, ok := c.m[string(key)]
	c.mu.Unlock()
	if ok {
		return p
	}
	p = mergePages(s.pagesAt(idx))
	c.mu.Lock()
	defer c.mu.Unlock()
	if q, ok := c.m[string(key)]; ok {
		return q // another request built it first: share one
	}
	if len(c.m) < maxCombos {
		if c.m == nil {
			c.m = map[string]*Page{}
		}
		c.m[string(key)] = p
	}
	return p
}

func (s *Set) pagesAt(idx []int) []*Page {
	parts := make([]*Page, len(idx))
	for j, i := range idx {
		parts[j] = s.pages[i]
	}
	return parts
}

// mergePages makes one page of several, in order: their globs and rules
// one after the other, and their selectors once each (equal selectors
// written differently are one, as within a page), so that the rules of
// all of them on one selector compose as the rules of one page do.
func mergePages(parts []*Page) *Page {
	m := &Page{}
	at := map[string]int{}
	for _, p := range parts {
		m.globs = append(m.globs, p.globs...)
		remap := make([]int, len(p.sels))
		for i, key := range p.keys {
			j, ok := at[key]
			if !ok {
				j = len(m.sels)
				at[key] = j
				m.sels = append(m.sels, p.sels[i])
				m.selText = append(m.selText, p.selText[i])
				m.keys = append(m.keys, key)
			}
			remap[i] = j
		}
		for _, r := range p.rules {
			cp := *r
			cp.sel = remap[r.sel]
			m.rules = append(m.rules, &cp)
		}
	}
	m.matchers = make([]cascadia.Matcher, len(m.sels))
	for i, s := range m.sels {
		m.matchers[i] = s
	}
	return m
}

// holdout records the changes that held, experiment x of rule ru (index
// i) or a rule held out by a rule-set experiment, keeps the origin's for,
// in the visitor's holdout: every change x's variants (and the maps
// within them), or the rule, could make that no earlier rule made. Only x's: when x is nested in a map's cell, the other cells'
// changes are not the holdout's to keep, and a later rule may make them
// for holdout and variant visitors alike, so that the arms differ by the
// variant alone. It reports false, with the trace saying so,
// when earlier rules made them all. A class name that is a template is
// not known without a variant: the holdout leaves it to later rules.
// why starts the trace's reason.
func holdout(ru *rule, held *choice, i int, tk *taken, p *Page, tr *Trace, why string) bool {
	var free []change
	held.eachAction(func(a *action) {
		a.each(func(m *action) bool {
			ch, ok := m.staticChange(ru.sel)
			if !ok {
				return true
			}
			if by := tk.by(ch); by > 0 {
				// Two variants making one kind of change are one override.
				if o := (Override{Change: ch.String(), By: p.rules[by-1].id}); !slices.Contains(tr.Overridden, o) {
					tr.Overridden = append(tr.Overridden, o)
				}
			} else if !slices.Contains(free, ch) {
				free = append(free, ch)
			}
			return true
		})
	})
	if len(free) == 0 && len(tr.Overridden) > 0 {
		tr.Reason = why + overriddenReason(tr.Overridden)
		return false
	}
	for _, ch := range free {
		tk.take(ch, i)
	}
	return true
}

// overriddenReason is the trace's reason for changes earlier rules made.
func overriddenReason(os []Override) string {
	var b strings.Builder
	for i, o := range os {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(o.Change)
		b.WriteString(" overridden by rule ")
		b.WriteString(o.By)
	}
	return b.String()
}

// shadowing is a rule that makes a change whatever the visitor: a plain
// rule without when: or if:.
type shadowing struct {
	id   string
	line int
}

// shadowed warns, at the action of rule r about to join page p, when r
// can never change anything: an earlier rule of the page without
// conditions makes every change r makes, on the same selector. It is
// conservative: only plain rules are judged (not maps or experiments,
// whose cases may make other changes) and only plain rules without when:
// or if: shadow; a class name that is a template is never known to be
// shadowed. Rules of other pages are left out: a page composes with
// another only on the paths both match.
func (l *loader) shadowed(f *fileReader, p *Page, r *rule, at *yaml.Node, conditional bool) {
	if r.kind != kindAction {
		return
	}
	var by []shadowing
	var what []string
	all := r.act.each(func(m *action) bool {
		ch, ok := m.staticChange(r.sel)
		if !ok {
			return false
		}
		s, ok := l.pageChanges[ch]
		if !ok {
			return false
		}
		if !slices.Contains(by, s) {
			by = append(by, s)
		}
		what = append(what, ch.String())
		return true
	})
	if all {
		names := make([]string, len(by))
		for i, s := range by {
			names[i] = fmt.Sprintf("%s (line %d)", s.id, s.line)
		}
		f.warnAt(f.file, at, ErrShadowedRule, "%s: rule %s never fires: what it changes on %q (%s) is changed first by rule %s, which has no conditions",
			at.Value, r.id, truncate(p.selText[r.sel], 80), strings.Join(what, ", "), strings.Join(names, ", "))
		return
	}
	if conditional {
		return
	}
	r.act.each(func(m *action) bool {
		if ch, ok := m.staticChange(r.sel); ok {
			if _, seen := l.pageChanges[ch]; !seen {
				l.pageChanges[ch] = shadowing{r.id, at.Line}
			}
		}
		return true
	})
}
