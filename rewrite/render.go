package rewrite

// Render appends the page with edits applied to dst and returns the
// extended slice. With no edit that applies, it appends the page byte for
// byte. It allocates nothing but dst's growth.
func (t *Template) Render(dst []byte, edits []Edit) []byte {
	return t.RenderApplied(dst, edits, nil)
}

// RenderApplied is Render that also reports, in applied (nil, or at least
// len(edits) long), whether each edit changed at least one element: the
// edit that takes its place on an element (the earliest per Op, per
// attribute name, per class token; of the Sole content edits the
// earliest), on an element not inside replaced or removed content, and
// that writes there (not a Prepend into a void element, nor a script's
// content that RawText refuses). A start-tag edit counts whether or not
// the tag's bytes differ. The caller owns applied, so that a Template
// shared by concurrent renders needs no lock and Render no allocation.
func (t *Template) RenderApplied(dst []byte, edits []Edit, applied []bool) []byte {
	if applied != nil {
		applied = applied[:len(edits)]
		clear(applied)
	}
	if len(edits) == 0 || len(t.elems) == 0 {
		return append(dst, t.page...)
	}
	r := newRenderer(t, dst, edits)
	if r.mask == 0 && !r.wide {
		return append(dst, t.page...)
	}
	r.done = applied
	r.span(0, int32(len(t.page)), true)
	return r.dst
}

// span renders page[from:to] with the edits of the elements that start
// there (elements before from are another's to render: Segmenter's
// pieces). With last, the elements still open at to end there; otherwise
// it reports false, having written an unusable output, when an edit
// reaches past to.
func (r *renderer) span(from, to int32, last bool) bool {
	t := r.t
	r.cur, r.skip = max(r.cur, from), max(r.skip, from)
	for i := range t.elems {
		if t.elems[i].s0 >= to {
			break
		}
		r.element(int32(i))
	}
	for r.open >= 0 && (last || t.elems[r.open].e1 <= to) {
		r.close(r.open)
		r.open = t.elems[r.open].parent
	}
	if r.open >= 0 || r.cur > to {
		return false
	}
	r.copyTo(to)
	return true
}

// newRenderer starts a pass over t with edits, noting which selectors
// have edits that can apply.
func newRenderer(t *Template, dst []byte, edits []Edit) renderer {
	r := renderer{t: t, dst: dst, edits: edits, open: -1, grp: -1}
	for i := range edits {
		ed := &edits[i]
		if ed.Sel < 0 || ed.Sel >= t.nsel || ed.Op < Replace || ed.Op > Probe {
			continue
		}
		if ed.Sel < 64 {
			r.mask |= 1 << ed.Sel
		} else {
			r.wide = true
		}
	}
	return r
}

// renderer is the state of one Render: a single pass over the page, copying
// the bytes between edited elements.
type renderer struct {
	t     *Template
	dst   []byte
	edits []Edit
	mask  uint64 // selectors below 64 that have edits
	wide  bool   // some edit has a selector of 64 or more
	cur   int32  // page bytes before cur have been written
	skip  int32  // elements starting before skip are inside replaced content
	open  int32  // innermost element started and not yet closed, or -1
	// grp and emitted track the end tags written for the elements closed
	// by one token: entries before emitted are written (or were removed).
	grp, emitted int32
	// lt is set where the output ends with a text "<" from the page, which
	// the next bytes could turn into markup.
	lt bool
	// applied, when set, collects the elements edits applied to (for the
	// Segmenter's counts).
	applied *[]int32
	// done, when set, is marked per edit that changed an element
	// (RenderApplied).
	done []bool
}

// mark notes that edit i changed an element.
func (r *renderer) mark(i int) {
	if r.done != nil {
		r.done[i] = true
	}
}

// put writes b. After a text "<" it keeps a letter, '/', '!' or '?' from
// making a tag of it: "x<" followed by "b>" must not become "x<b>".
func (r *renderer) put(b []byte) {
	if len(b) == 0 {
		return
	}
	if r.lt {
		r.lt = false
		if c := b[0]; 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '/' || c == '!' || c == '?' {
			r.dst = append(r.dst, "<!---->"...)
		}
	}
	r.dst = append(r.dst, b...)
}

// actions are the edits that apply to one element: an index into edits
// per Op, or -1.
type actions struct {
	over, inner, prepend, append, before, after int
	startTag                                    bool
	// probe is the Sole Probe that holds the element's content, or -1;
	// tagProbe is set when a Probe without Sole applies, peek when a Sole
	// Peek probe does. None writes: any does not count them.
	probe    int
	tagProbe bool
	peek     bool
}

func (r *renderer) applies(s *span, ed *Edit) bool {
	if ed.Sel < 0 || ed.Sel >= r.t.nsel || ed.Op < Replace || ed.Op > Probe {
		return false
	}
	if ed.Sel < 64 {
		return s.mask&(1<<ed.Sel) != 0
	}
	for _, si := range r.t.sels[s.selOff : s.selOff+s.selN] {
		if int(si) == ed.Sel {
			return true
		}
	}
	return false
}

func (r *renderer) resolve(s *span) (a actions) {
	a = actions{-1, -1, -1, -1, -1, -1, false, -1, false, false}
	if s.mask&r.mask == 0 && !r.wide {
		return a
	}
	sole := false // a Sole content edit applies to the element
	for i := range r.edits {
		ed := &r.edits[i]
		if !r.applies(s, ed) {
			continue
		}
		if ed.Op == Probe && ed.Sole && ed.Peek {
			// It looks for the content without holding it.
			a.peek = a.peek || !sole
			continue
		}
		if ed.Sole && (ed.Op <= Remove || ed.Op == Probe) {
			if sole {
				continue
			}
			sole = true
		}
		switch ed.Op {
		case Probe:
			if ed.Sole {
				a.probe = i
			} else {
				a.tagProbe = true
			}
		case Replace, Remove:
			first(&a.over, i)
		case Inner:
			first(&a.inner, i)
		case Prepend:
			first(&a.prepend, i)
		case Append:
			first(&a.append, i)
		case Before:
			first(&a.before, i)
		case After:
			first(&a.after, i)
		case SetAttr, AddClass, RemoveClass:
			a.startTag = true
		}
	}
	switch {
	case s.flags&fTagOnly != 0:
		a = actions{-1, -1, -1, -1, -1, -1, a.startTag, -1, a.tagProbe, false}
	case s.flags&fNoTag != 0:
		a.startTag, a.tagProbe = false, false
	}
	return a
}

// markProbes notes the probes that apply to element s (see Probe).
func (r *renderer) markProbes(s *span, a *actions) {
	if a.probe >= 0 {
		r.mark(a.probe)
	}
	if !a.tagProbe && !a.peek || r.done == nil {
		return
	}
	sole := false // an earlier Sole content edit applies to the element
	for i := range r.edits {
		ed := &r.edits[i]
		if !r.applies(s, ed) {
			continue
		}
		switch {
		case ed.Op == Probe && !ed.Sole:
			if a.tagProbe {
				r.mark(i)
			}
		case ed.Op == Probe && ed.Peek:
			if a.peek && !sole {
				r.mark(i)
			}
		case ed.Sole && (ed.Op <= Remove || ed.Op == Probe):
			sole = true
		}
	}
}

func first(slot *int, i int) {
	if *slot < 0 {
		*slot = i
	}
}

func (a *actions) any() bool {
	return a.over >= 0 || a.inner >= 0 || a.prepend >= 0 || a.append >= 0 ||
		a.before >= 0 || a.after >= 0 || a.startTag
}

// copyTo writes the page up to offset end.
func (r *renderer) copyTo(end int32) {
	if end > r.cur {
		r.put(r.t.page[r.cur:end])
		r.cur = end
	}
}

// element handles the start of span i: it closes the open elements that
// end before it, then writes what goes before and at the start of it.
func (r *renderer) element(i int32) {
	t := r.t
	s := &t.elems[i]
	if s.s0 < r.skip {
		return
	}
	for r.open >= 0 && t.elems[r.open].e1 <= s.s0 {
		r.close(r.open)
		r.open = t.elems[r.open].parent
	}
	a := r.resolve(s)
	if a.probe >= 0 || a.tagProbe || a.peek {
		r.markProbes(s, &a)
	}
	if !a.any() {
		return
	}
	if r.applied != nil {
		*r.applied = append(*r.applied, i)
	}
	r.copyTo(s.s0)
	r.lt = s.flags&fLTBefore != 0
	if (a.over >= 0 || a.before >= 0) && s.bclOff >= 0 {
		// End what the start tag would end, so that what goes before the
		// element (or instead of it) is not put in them.
		r.closeGroup(s.bgrp, s.bclOff, s.bn)
	}
	if a.over >= 0 {
		if ed := &r.edits[a.over]; ed.Op == Replace {
			r.put(ed.Value)
		}
		r.mark(a.over)
		r.cur, r.skip = s.e1, s.e1
		r.removed(s, s.gi+1)
		return
	}
	if a.before >= 0 {
		r.put(r.edits[a.before].Value)
		r.mark(a.before)
	}
	if a.startTag {
		r.lt = false // the tag starts with "<"
		r.startTag(s)
		r.cur = s.s1
		if r.done != nil {
			r.markStartTag(s)
		}
	}
	if s.flags&fVoid != 0 {
		if a.after >= 0 {
			r.copyTo(s.e1)
			r.put(r.edits[a.after].Value)
			r.mark(a.after)
		}
		return
	}
	if a.prepend >= 0 || a.inner >= 0 {
		r.copyTo(s.c0)
	}
	if a.prepend >= 0 {
		if v, ok := r.edits[a.prepend].valueIn(s.flags); ok {
			r.put(v)
			r.mark(a.prepend)
		}
	}
	if a.inner >= 0 {
		// Content that cannot be written into this element leaves the
		// origin's as it is.
		if v, ok := r.edits[a.inner].valueIn(s.flags); ok {
			r.put(v)
			r.mark(a.inner)
			r.cur, r.skip = s.e0, s.e0
			r.removed(s, s.gi)
		}
	}
	if (a.append >= 0 || a.after >= 0) && s.flags&fNoEnd == 0 {
		r.open = i
	}
}

// removed notes that the first n closers of s's group belong to elements
// that are no longer in the output.
func (r *renderer) removed(s *span, n int32) {
	if s.grp < 0 {
		return
	}
	if r.grp != s.grp {
		r.grp, r.emitted = s.grp, 0
	}
	r.emitted = max(r.emitted, n)
}

// closeTo writes the end tags of s's group from the next unwritten one up
// to entry n (exclusive).
func (r *renderer) closeTo(s *span, n int32) {
	if s.clOff >= 0 {
		r.closeGroup(s.grp, s.clOff, n)
	}
}

// closeGroup writes the end tags of group grp, whose closers start at off
// in t.bounds, from the next unwritten one up to entry n (exclusive).
func (r *renderer) closeGroup(grp, off, n int32) {
	if r.grp != grp {
		r.grp, r.emitted = grp, 0
	}
	if n > r.emitted {
		b := r.t.bounds[off:]
		r.put(r.t.closers[b[r.emitted]:b[n]])
		r.emitted = n
	}
}

// close writes what goes at the end of span i and after it.
func (r *renderer) close(i int32) {
	s := &r.t.elems[i]
	a := r.resolve(s)
	if a.append < 0 && a.after < 0 {
		return
	}
	r.copyTo(s.e0)
	r.lt = s.flags&fLTEnd != 0
	if a.append >= 0 {
		if a.inner < 0 {
			r.closeTo(s, s.gi) // descendants the end tag closes
		}
		if v, ok := r.edits[a.append].valueIn(s.flags); ok {
			r.put(v)
			r.mark(a.append)
		}
	}
	if a.after >= 0 {
		if s.e1 > s.e0 {
			r.copyTo(s.e1)
		} else if s.flags&fNoSelfClose == 0 {
			r.closeTo(s, s.gi+1)
		}
		r.put(r.edits[a.after].Value)
		r.mark(a.after)
	}
}

// FirstChange returns the offset in the page of the first byte Render with
// edits may change (the start tag of the first element an edit applies
// to), or the page's length when Render would copy the page unchanged.
// Bytes before it are the same in the rendered page.
func (t *Template) FirstChange(edits []Edit) int {
	r := newRenderer(t, nil, edits)
	for i := range t.elems {
		if a := r.resolve(&t.elems[i]); a.any() {
			return int(t.elems[i].s0)
		}
	}
	return len(t.page)
}

// OverriddenBy returns the edit that made, in place of Sole content edit
// edits[i], the content of an element edits[i]'s selector matched: the
// earliest Sole content edit (or Sole Probe, which holds the origin's
// content) there, when it is not edits[i]. It returns -1
// when there is none, or edits[i] is not a Sole content edit. It reads the
// page once; it is for explaining a render, not for serving one.
func (t *Template) OverriddenBy(edits []Edit, i int) int {
	if i < 0 || i >= len(edits) || !edits[i].Sole || edits[i].Op > Remove {
		return -1
	}
	r := newRenderer(t, nil, edits)
	for k := range t.elems {
		s := &t.elems[k]
		if s.flags&fTagOnly != 0 || !r.applies(s, &edits[i]) {
			continue
		}
		for j := range edits[:i] {
			if e := &edits[j]; e.Sole && (e.Op <= Remove || e.Op == Probe && !e.Peek) && r.applies(s, e) {
				return j
			}
		}
	}
	return -1
}
