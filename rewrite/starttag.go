package rewrite

// Start-tag edits rewrite only the attributes they name. The attributes are
// found by scanning the raw tag the way golang.org/x/net/html's tokenizer
// does (readTag, readTagAttrKey, readTagAttrVal), so that an attribute here
// is an attribute there, with the same name and the same value bytes.

// attr is one attribute of a raw start tag, as offsets into the tag.
type attr struct {
	pre    int // end of what precedes it (tag name or previous attribute)
	k0, k1 int // name
	v0, v1 int // value, without quotes
	end    int // end of the attribute, closing quote included
	quote  byte
	hasVal bool
}

// tagScanner walks the attributes of a raw start tag "<name ...>".
type tagScanner struct {
	tag     []byte
	pos     int
	nameEnd int
}

func newTagScanner(tag []byte) tagScanner {
	sc := tagScanner{tag: tag, pos: 2} // "<" and the name's first letter
	for sc.pos < len(tag) {
		switch tag[sc.pos] {
		case ' ', '\n', '\r', '\t', '\f':
			sc.nameEnd = sc.pos
			sc.pos++
			return sc
		case '/', '>':
			sc.nameEnd = sc.pos
			return sc
		}
		sc.pos++
	}
	sc.nameEnd = sc.pos
	return sc
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f'
}

func (sc *tagScanner) skipSpace() {
	for sc.pos < len(sc.tag) && isSpace(sc.tag[sc.pos]) {
		sc.pos++
	}
}

// next returns the next attribute with a non-empty name; ok is false at
// the end of the tag.
func (sc *tagScanner) next() (a attr, ok bool) {
	tag := sc.tag
	for {
		pre := sc.pos
		sc.skipSpace()
		if sc.pos >= len(tag) || tag[sc.pos] == '>' {
			return attr{}, false
		}
		// Name: up to space, '/', '>' or '=' (a leading '=' belongs to it).
		a = attr{pre: pre, k0: sc.pos}
		for sc.pos < len(tag) {
			c := tag[sc.pos]
			if c == '=' && sc.pos == a.k0 {
				sc.pos++
				continue
			}
			if isSpace(c) || c == '/' || c == '>' || c == '=' {
				break
			}
			sc.pos++
		}
		a.k1, a.end = sc.pos, sc.pos
		a.v0, a.v1 = sc.pos, sc.pos
		sc.value(&a)
		if a.k1 > a.k0 {
			return a, true
		}
	}
}

// value reads "= value" after a name, if any.
func (sc *tagScanner) value(a *attr) {
	tag := sc.tag
	sc.skipSpace()
	if sc.pos >= len(tag) {
		return
	}
	switch tag[sc.pos] {
	case '/':
		sc.pos++
		return
	case '=':
		sc.pos++
	default:
		return
	}
	a.hasVal = true
	sc.skipSpace()
	a.v0, a.v1, a.end = sc.pos, sc.pos, sc.pos
	if sc.pos >= len(tag) || tag[sc.pos] == '>' {
		return
	}
	if q := tag[sc.pos]; q == '"' || q == '\'' {
		a.quote = q
		sc.pos++
		a.v0 = sc.pos
		for sc.pos < len(tag) && tag[sc.pos] != q {
			sc.pos++
		}
		a.v1 = sc.pos
		if sc.pos < len(tag) {
			sc.pos++
		}
		a.end = sc.pos
		return
	}
	for sc.pos < len(tag) && !isSpace(tag[sc.pos]) && tag[sc.pos] != '>' {
		sc.pos++
	}
	a.v1, a.end = sc.pos, sc.pos
}

// equalFold compares an attribute name from the page with one from a rule,
// ignoring ASCII case as the tokenizer lower-cases names.
func equalFold[A, B ~[]byte | ~string](a A, b B) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		c, d := a[i], b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// seenBefore reports whether the tag has an attribute named like tag[k0:k1]
// before offset k0: the tokenizer keeps only the first of a name.
func seenBefore(tag []byte, k0, k1 int) bool {
	sc := newTagScanner(tag)
	for {
		a, ok := sc.next()
		if !ok || a.k0 >= k0 {
			return false
		}
		if a.k1-a.k0 == k1-k0 && equalFold(tag[a.k0:a.k1], tag[k0:k1]) {
			return true
		}
	}
}

// startTag writes s's start tag with its SetAttr, AddClass and RemoveClass
// edits applied.
func (r *renderer) startTag(s *span) {
	tag := r.t.page[s.s0:s.s1]
	sc := newTagScanner(tag)
	r.dst = append(r.dst, tag[:sc.nameEnd]...)
	pos := sc.nameEnd // tag bytes before pos are written
	class := r.hasClassEdits(s)
	hasClass := false
	// Whether the last attribute written as it is has an empty unquoted
	// value ("<a b=>"): the tokenizer would read an attribute written right
	// after it as that value.
	open := false
	for {
		a, ok := sc.next()
		if !ok {
			break
		}
		key := tag[a.k0:a.k1]
		isClass := class && equalFold(key, "class")
		set := r.setAttr(s, key)
		open = a.hasVal && a.quote == 0 && a.v0 == a.v1
		if !isClass && set < 0 {
			continue // written with what follows
		}
		open = false
		r.dst = append(r.dst, tag[pos:a.pre]...)
		pos = a.end
		if seenBefore(tag, a.k0, a.k1) {
			// An ignored duplicate: drop it, it would show once the first
			// changes.
			r.separate(tag, pos)
			continue
		}
		if isClass {
			hasClass = true
			var base []byte
			escape := a.quote != '"'
			if set >= 0 {
				base, escape = r.edits[set].Value, false
			} else if a.hasVal {
				base = tag[a.v0:a.v1]
			}
			if set < 0 && !r.classChanges(s, base) {
				r.dst = append(r.dst, tag[a.pre:a.end]...)
				open = a.hasVal && a.quote == 0 && a.v0 == a.v1
				continue
			}
			r.dst = append(r.dst, tag[a.pre:a.k1]...)
			r.dst = append(r.dst, `="`...)
			r.classValue(s, base, escape)
			r.dst = append(r.dst, '"')
			continue
		}
		if v := r.edits[set].Value; len(v) > 0 {
			r.dst = append(r.dst, tag[a.pre:a.k1]...)
			r.dst = append(r.dst, `="`...)
			r.dst = append(r.dst, v...)
			r.dst = append(r.dst, '"')
		} else {
			r.separate(tag, pos) // removed
		}
	}
	// Attributes the tag does not have go after its last one.
	if last := sc.lastEnd(); last > pos {
		r.dst = append(r.dst, tag[pos:last]...)
		pos = last
	}
	for i := range r.edits {
		ed := &r.edits[i]
		if ed.Op != SetAttr || len(ed.Value) == 0 || !r.applies(s, ed) || r.setAttrIndex(s, ed.Name) != i {
			continue
		}
		if (class && equalFold(ed.Name, "class")) || hasAttr(tag, ed.Name) {
			continue
		}
		if open {
			r.dst, open = append(r.dst, `""`...), false
		}
		r.dst = append(r.dst, ' ')
		r.dst = append(r.dst, ed.Name...)
		r.dst = append(r.dst, `="`...)
		r.dst = append(r.dst, ed.Value...)
		r.dst = append(r.dst, '"')
	}
	if class && !hasClass {
		var base []byte
		if set := r.setAttrIndex(s, "class"); set >= 0 {
			base = r.edits[set].Value
		}
		if len(base) > 0 || r.classChanges(s, base) {
			if open {
				r.dst = append(r.dst, `""`...)
			}
			r.dst = append(r.dst, ` class="`...)
			r.classValue(s, base, false)
			r.dst = append(r.dst, '"')
		}
	}
	r.dst = append(r.dst, tag[pos:]...)
	// Removing an attribute may have brought a '/' next to the '>': keep a
	// tag that was not self-closing so.
	if n := len(r.dst); n >= 2 && r.dst[n-2] == '/' && !selfClosing(tag) {
		r.dst = append(r.dst[:n-1], ' ', '>')
	}
}

// separate keeps what follows a dropped attribute from joining what came
// before it: in `s=d class=""e=t`, dropping `class=""` would make "de=t"
// the value of s. It writes a space when the tag's next byte, at pos, is
// neither a space nor '>'.
func (r *renderer) separate(tag []byte, pos int) {
	if pos < len(tag) && !isSpace(tag[pos]) && tag[pos] != '>' {
		r.dst = append(r.dst, ' ')
	}
}

// lastEnd returns the end of the tag's last attribute, or of its name.
func (sc *tagScanner) lastEnd() int {
	s := newTagScanner(sc.tag)
	end := s.nameEnd
	for {
		a, ok := s.next()
		if !ok {
			return end
		}
		end = a.end
	}
}

// selfClosing applies the tokenizer's rule: "/>" ends the tag, and the '/'
// is not the last byte of the last attribute's unquoted value.
func selfClosing(tag []byte) bool {
	n := len(tag)
	if n < 3 || tag[n-2] != '/' {
		return false
	}
	sc := newTagScanner(tag)
	last, ok := attr{}, false
	for {
		a, more := sc.next()
		if !more {
			break
		}
		last, ok = a, true
	}
	return !ok || last.v1-1 != n-2
}

func hasAttr(tag []byte, name string) bool {
	sc := newTagScanner(tag)
	for {
		a, ok := sc.next()
		if !ok {
			return false
		}
		if equalFold(tag[a.k0:a.k1], name) {
			return true
		}
	}
}

// setAttr returns the SetAttr edit for attribute key on s, or -1.
func (r *renderer) setAttr(s *span, key []byte) int {
	for i := range r.edits {
		ed := &r.edits[i]
		if ed.Op == SetAttr && equalFold(key, ed.Name) && r.applies(s, ed) {
			return i
		}
	}
	return -1
}

func (r *renderer) setAttrIndex(s *span, name string) int {
	for i := range r.edits {
		ed := &r.edits[i]
		if ed.Op == SetAttr && equalFold(ed.Name, name) && r.applies(s, ed) {
			return i
		}
	}
	return -1
}

// markStartTag marks the start-tag edits that take their place on s: the
// first SetAttr per attribute name, the first AddClass or RemoveClass per
// class token.
func (r *renderer) markStartTag(s *span) {
	for i := range r.edits {
		ed := &r.edits[i]
		switch ed.Op {
		case SetAttr:
			if r.setAttrIndex(s, ed.Name) == i {
				r.done[i] = true
			}
		case AddClass, RemoveClass:
			if len(ed.Value) > 0 && r.classEditIndex(s, ed.Value) == i {
				r.done[i] = true
			}
		}
	}
}

// classEditIndex returns the first AddClass or RemoveClass edit on s for
// token tok, or -1.
func (r *renderer) classEditIndex(s *span, tok []byte) int {
	for i := range r.edits {
		ed := &r.edits[i]
		if (ed.Op == AddClass || ed.Op == RemoveClass) && string(ed.Value) == string(tok) && r.applies(s, ed) {
			return i
		}
	}
	return -1
}

func (r *renderer) hasClassEdits(s *span) bool {
	for i := range r.edits {
		ed := &r.edits[i]
		if (ed.Op == AddClass || ed.Op == RemoveClass) && len(ed.Value) > 0 && r.applies(s, ed) {
			return true
		}
	}
	return false
}

// classEdit returns the first AddClass or RemoveClass edit on s for token
// tok: that one decides.
func (r *renderer) classEdit(s *span, tok []byte) Op {
	for i := range r.edits {
		ed := &r.edits[i]
		if (ed.Op == AddClass || ed.Op == RemoveClass) && string(ed.Value) == string(tok) && r.applies(s, ed) {
			return ed.Op
		}
	}
	return 0
}

// classChanges reports whether the class edits change class list base.
func (r *renderer) classChanges(s *span, base []byte) bool {
	for tok, rest := nextToken(base); tok != nil; tok, rest = nextToken(rest) {
		if r.classEdit(s, tok) == RemoveClass {
			return true
		}
	}
	for i := range r.edits {
		ed := &r.edits[i]
		if ed.Op == AddClass && r.applies(s, ed) && r.classEdit(s, ed.Value) == AddClass && !hasToken(base, ed.Value) {
			return true
		}
	}
	return false
}

// classValue writes class list base without the removed tokens and with the
// added ones, separated by single spaces. escape quotes '"' of a value that
// was not double-quoted.
func (r *renderer) classValue(s *span, base []byte, escape bool) {
	sep := false
	for tok, rest := nextToken(base); tok != nil; tok, rest = nextToken(rest) {
		if r.classEdit(s, tok) == RemoveClass {
			continue
		}
		if sep {
			r.dst = append(r.dst, ' ')
		}
		sep = true
		if !escape {
			r.dst = append(r.dst, tok...)
			continue
		}
		for _, c := range tok {
			if c == '"' {
				r.dst = append(r.dst, "&quot;"...)
			} else {
				r.dst = append(r.dst, c)
			}
		}
	}
	for i := range r.edits {
		ed := &r.edits[i]
		if ed.Op != AddClass || len(ed.Value) == 0 || !r.applies(s, ed) || hasToken(base, ed.Value) {
			continue
		}
		if r.classEdit(s, ed.Value) != AddClass || r.addedEarlier(s, i) {
			continue
		}
		if sep {
			r.dst = append(r.dst, ' ')
		}
		sep = true
		r.dst = append(r.dst, ed.Value...)
	}
}

// addedEarlier reports whether an AddClass edit before edits[i] adds the
// same token to s.
func (r *renderer) addedEarlier(s *span, i int) bool {
	for j := range i {
		ed := &r.edits[j]
		if ed.Op == AddClass && string(ed.Value) == string(r.edits[i].Value) && r.applies(s, ed) {
			return true
		}
	}
	return false
}

// nextToken splits a class list on ASCII whitespace.
func nextToken(b []byte) (tok, rest []byte) {
	i := 0
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	if i == len(b) {
		return nil, nil
	}
	j := i
	for j < len(b) && !isSpace(b[j]) {
		j++
	}
	return b[i:j], b[j:]
}

func hasToken(list, tok []byte) bool {
	for t, rest := nextToken(list); t != nil; t, rest = nextToken(rest) {
		if string(t) == string(tok) {
			return true
		}
	}
	return false
}
