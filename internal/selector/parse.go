package selector

import (
	"errors"
	"strings"
)

// The scanner finds where cascadia's parser (v1.3.5, parser.go) puts the
// boundaries of a selector: its selectors, their compound selectors and
// combinators, and the simple selectors of each compound. It follows the
// parser function by function, reading only as far as the parser reads, but
// builds nothing: the text of each piece goes to cascadia, and Compile
// checks that the pieces make up the selector cascadia parsed.

// srcComplex is a selector between commas: compounds joined by
// combinators; ops[k] joins parts[k-1] and parts[k] (ops[0] is 0).
type srcComplex struct {
	parts []srcCompound
	ops   []byte
}

// srcCompound is a compound selector: its simple selectors in source
// order, each either text for cascadia or a pseudo-class whose argument
// is a selector group.
type srcCompound struct {
	pieces []srcPiece
}

type srcPiece struct {
	text string       // a simple selector for cascadia ("" for a relational one)
	name string       // not, has or haschild
	arg  []srcComplex // the argument of a relational pseudo-class
}

type scanner struct {
	s string
	i int
}

var errScan = errors.New("selector not scanned as cascadia parses it")

const maxDepth = 1000 // cascadia's maxParseDepth

// group scans a selector group, as parseSelectorGroup.
func (p *scanner) group(depth int) ([]srcComplex, error) {
	if depth > maxDepth {
		return nil, errScan
	}
	c, err := p.complex(depth)
	if err != nil {
		return nil, err
	}
	g := []srcComplex{c}
	for p.i < len(p.s) && p.s[p.i] == ',' {
		p.i++
		c, err := p.complex(depth)
		if err != nil {
			return nil, err
		}
		g = append(g, c)
	}
	return g, nil
}

// complex scans a selector with combinators, as parseSelector.
func (p *scanner) complex(depth int) (srcComplex, error) {
	p.skipSpace()
	first, err := p.compound(depth)
	if err != nil {
		return srcComplex{}, err
	}
	c := srcComplex{parts: []srcCompound{first}, ops: []byte{0}}
	for {
		var comb byte
		if p.skipSpace() {
			comb = ' '
		}
		if p.i >= len(p.s) {
			return c, nil
		}
		switch p.s[p.i] {
		case '+', '>', '~':
			comb = p.s[p.i]
			p.i++
			p.skipSpace()
		case ',', ')':
			return c, nil
		}
		if comb == 0 {
			return c, nil
		}
		next, err := p.compound(depth)
		if err != nil {
			return srcComplex{}, err
		}
		c.parts = append(c.parts, next)
		c.ops = append(c.ops, comb)
	}
}

// compound scans a compound selector, as parseSimpleSelectorSequence
// (without pseudo-elements, which tailor's selectors refuse).
func (p *scanner) compound(depth int) (srcCompound, error) {
	var c srcCompound
	if p.i >= len(p.s) {
		return c, errScan
	}
	switch p.s[p.i] {
	case '*':
		p.i++
		if p.i+2 < len(p.s) && p.s[p.i:p.i+2] == "|*" {
			p.i += 2
		}
		// Cascadia drops the universal selector; "*" keeps a compound of
		// nothing else an element test, as cascadia's empty compound is.
		c.pieces = append(c.pieces, srcPiece{text: "*"})
	case '#', '.', '[', ':':
	default:
		start := p.i
		if _, err := p.identifier(); err != nil {
			return c, err
		}
		c.pieces = append(c.pieces, srcPiece{text: p.s[start:p.i]})
	}
	for p.i < len(p.s) {
		start := p.i
		var err error
		switch p.s[p.i] {
		case '#':
			p.i++
			_, err = p.name()
		case '.':
			p.i++
			_, err = p.identifier()
		case '[':
			err = p.attribute()
		case ':':
			var piece srcPiece
			piece, err = p.pseudo(depth)
			if err == nil && piece.name != "" {
				c.pieces = append(c.pieces, piece)
				continue
			}
		default:
			return c, nil
		}
		if err != nil {
			return c, err
		}
		c.pieces = append(c.pieces, srcPiece{text: p.s[start:p.i]})
	}
	return c, nil
}

// pseudo scans a pseudo-class, as parsePseudoclassSelector. For :not(),
// :has() and :haschild() it returns the argument, scanned; for the others
// only its extent.
func (p *scanner) pseudo(depth int) (srcPiece, error) {
	p.i++ // ':'
	if p.i >= len(p.s) || p.s[p.i] == ':' {
		return srcPiece{}, errScan // a pseudo-element
	}
	name, err := p.identifier()
	if err != nil {
		return srcPiece{}, err
	}
	name = toLowerASCII(name)
	switch name {
	case "not", "has", "haschild":
		if !p.openParen() {
			return srcPiece{}, errScan
		}
		arg, err := p.group(depth + 1)
		if err != nil {
			return srcPiece{}, err
		}
		if !p.closeParen() {
			return srcPiece{}, errScan
		}
		return srcPiece{name: name, arg: arg}, nil
	case "contains", "containsown", "lang":
		if !p.openParen() || p.i == len(p.s) {
			return srcPiece{}, errScan
		}
		if name != "lang" && (p.s[p.i] == '\'' || p.s[p.i] == '"') {
			err = p.str()
		} else {
			_, err = p.identifier()
		}
		if err != nil {
			return srcPiece{}, err
		}
		p.skipSpace()
		if p.i >= len(p.s) || !p.closeParen() {
			return srcPiece{}, errScan
		}
	case "matches", "matchesown":
		if !p.openParen() {
			return srcPiece{}, errScan
		}
		if err := p.regex(); err != nil {
			return srcPiece{}, err
		}
		if p.i >= len(p.s) || !p.closeParen() {
			return srcPiece{}, errScan
		}
	case "nth-child", "nth-last-child", "nth-of-type", "nth-last-of-type":
		if !p.openParen() {
			return srcPiece{}, errScan
		}
		if err := p.nth(); err != nil {
			return srcPiece{}, err
		}
		if !p.closeParen() {
			return srcPiece{}, errScan
		}
	}
	// Any other name takes no argument (an unknown one made cascadia fail
	// before the scanner ran).
	return srcPiece{}, nil
}

// attribute scans an attribute selector, as parseAttributeSelector.
func (p *scanner) attribute() error {
	p.i++ // '['
	p.skipSpace()
	if _, err := p.identifier(); err != nil {
		return err
	}
	p.skipSpace()
	if p.i >= len(p.s) {
		return errScan
	}
	if p.s[p.i] == ']' {
		p.i++
		return nil
	}
	if p.i+2 >= len(p.s) {
		return errScan
	}
	op := p.s[p.i : p.i+2]
	if op[0] == '=' {
		op = "="
	} else if op[1] != '=' {
		return errScan
	}
	p.i += len(op)
	p.skipSpace()
	if p.i >= len(p.s) {
		return errScan
	}
	var err error
	switch {
	case op == "#=":
		err = p.regex()
	case p.s[p.i] == '\'' || p.s[p.i] == '"':
		err = p.str()
	default:
		_, err = p.identifier()
	}
	if err != nil {
		return err
	}
	p.skipSpace()
	if p.i >= len(p.s) {
		return errScan
	}
	if p.s[p.i] == 'i' || p.s[p.i] == 'I' {
		p.i++
	}
	p.skipSpace()
	if p.i >= len(p.s) || p.s[p.i] != ']' {
		return errScan
	}
	p.i++
	return nil
}

// skipSpace skips whitespace and comments, as skipWhitespace.
func (p *scanner) skipSpace() bool {
	i := p.i
	for i < len(p.s) {
		switch p.s[i] {
		case ' ', '\t', '\r', '\n', '\f':
			i++
			continue
		case '/':
			if strings.HasPrefix(p.s[i:], "/*") {
				if end := strings.Index(p.s[i+2:], "*/"); end != -1 {
					i += end + 4
					continue
				}
			}
		}
		break
	}
	if i > p.i {
		p.i = i
		return true
	}
	return false
}

func (p *scanner) openParen() bool {
	if p.i < len(p.s) && p.s[p.i] == '(' {
		p.i++
		p.skipSpace()
		return true
	}
	return false
}

func (p *scanner) closeParen() bool {
	i := p.i
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == ')' {
		p.i++
		return true
	}
	p.i = i
	return false
}

// escape scans a backslash escape, as parseEscape.
func (p *scanner) escape() (string, error) {
	if len(p.s) < p.i+2 || p.s[p.i] != '\\' {
		return "", errScan
	}
	start := p.i + 1
	c := p.s[start]
	switch {
	case c == '\r' || c == '\n' || c == '\f':
		return "", errScan
	case hexDigit(c):
		i := start
		for i < start+6 && i < len(p.s) && hexDigit(p.s[i]) {
			i++
		}
		var v rune
		for _, d := range p.s[start:i] {
			v = v<<4 | rune(hexValue(byte(d)))
		}
		if len(p.s) > i {
			switch p.s[i] {
			case '\r':
				i++
				if len(p.s) > i && p.s[i] == '\n' {
					i++
				}
			case ' ', '\t', '\n', '\f':
				i++
			}
		}
		p.i = i
		return string(v), nil
	}
	p.i += 2
	return p.s[start : start+1], nil
}

// identifier scans an identifier, as parseIdentifier, and returns its
// value (escapes resolved).
func (p *scanner) identifier() (string, error) {
	n := 0
	for p.i < len(p.s) && p.s[p.i] == '-' {
		p.i++
		n++
	}
	if p.i >= len(p.s) {
		return "", errScan
	}
	if c := p.s[p.i]; !(nameStart(c) || c == '\\') {
		return "", errScan
	}
	name, err := p.name()
	return strings.Repeat("-", n) + name, err
}

// name scans a name, as parseName.
func (p *scanner) name() (string, error) {
	var b strings.Builder
	i := p.i
loop:
	for i < len(p.s) {
		c := p.s[i]
		switch {
		case nameChar(c):
			start := i
			for i < len(p.s) && nameChar(p.s[i]) {
				i++
			}
			b.WriteString(p.s[start:i])
		case c == '\\':
			p.i = i
			v, err := p.escape()
			if err != nil {
				return "", err
			}
			i = p.i
			b.WriteString(v)
		default:
			break loop
		}
	}
	if b.Len() == 0 {
		return "", errScan
	}
	p.i = i
	return b.String(), nil
}

// str scans a quoted string, as parseString.
func (p *scanner) str() error {
	i := p.i
	if len(p.s) < i+2 {
		return errScan
	}
	quote := p.s[i]
	i++
loop:
	for i < len(p.s) {
		switch p.s[i] {
		case '\\':
			if len(p.s) > i+1 {
				switch p.s[i+1] {
				case '\r':
					if len(p.s) > i+2 && p.s[i+2] == '\n' {
						i += 3
						continue loop
					}
					i += 2
					continue loop
				case '\n', '\f':
					i += 2
					continue loop
				}
			}
			p.i = i
			if _, err := p.escape(); err != nil {
				return err
			}
			i = p.i
		case quote:
			break loop
		case '\r', '\n', '\f':
			return errScan
		default:
			i++
		}
	}
	if i >= len(p.s) {
		return errScan
	}
	p.i = i + 1
	return nil
}

// regex scans a regular expression up to the first unmatched ")" or "]",
// as parseRegex.
func (p *scanner) regex() error {
	i := p.i
	if len(p.s) < i+2 {
		return errScan
	}
	open := 0
loop:
	for i < len(p.s) {
		switch p.s[i] {
		case '(', '[':
			open++
		case ')', ']':
			open--
			if open < 0 {
				break loop
			}
		}
		i++
	}
	if i >= len(p.s) {
		return errScan
	}
	p.i = i
	return nil
}

func (p *scanner) integer() bool {
	start := p.i
	for p.i < len(p.s) && '0' <= p.s[p.i] && p.s[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

// nth scans the argument of :nth-child() and its kin, as parseNth.
func (p *scanner) nth() error {
	at := func(set string) bool { return p.i < len(p.s) && strings.IndexByte(set, p.s[p.i]) >= 0 }
	const digits = "0123456789"
	if p.i >= len(p.s) {
		return errScan
	}
	switch c := p.s[p.i]; {
	case c == '-' || c == '+':
		p.i++
		switch {
		case at(digits):
			p.integer()
			if !at("nN") {
				return nil // the number was b
			}
			p.i++
		case at("nN"):
			p.i++
		default:
			return errScan
		}
	case strings.IndexByte(digits, c) >= 0:
		p.integer()
		if !at("nN") {
			return nil
		}
		p.i++
	case c == 'n' || c == 'N':
		p.i++
	case strings.IndexByte("oOeE", c) >= 0:
		id, err := p.name()
		if err != nil {
			return err
		}
		if id = toLowerASCII(id); id != "odd" && id != "even" {
			return errScan
		}
		return nil
	default:
		return errScan
	}
	// After the n.
	p.skipSpace()
	if at("+-") {
		p.i++
		p.skipSpace()
		if !p.integer() {
			return errScan
		}
	}
	return nil
}

func hexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func hexValue(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

func nameStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c > 127
}

func nameChar(c byte) bool {
	return nameStart(c) || c == '-' || '0' <= c && c <= '9'
}

func toLowerASCII(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return 'A' <= r && r <= 'Z' }) < 0 {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
