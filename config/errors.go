package config

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"
)

// Causes carried by Error.Err, for errors.Is. Every other problem with a
// value (wrong type, bad duration, failed validation) carries ErrInvalid.
var (
	// ErrSyntax: the file is not well-formed YAML.
	ErrSyntax = errors.New("invalid YAML")
	// ErrUnknownKey: a key that tailor.yaml does not have, usually a typo.
	ErrUnknownKey = errors.New("unknown key")
	// ErrDuplicateKey: a key written twice in one mapping.
	ErrDuplicateKey = errors.New("duplicate key")
	// ErrEnv: a ${NAME} reference to an unset variable, or a malformed one.
	ErrEnv = errors.New("environment expansion")
	// ErrInvalid: a value of the wrong type or out of range.
	ErrInvalid = errors.New("invalid value")
)

// Error is one problem in a config file, at a position a user can jump to.
type Error struct {
	// File is the config file's name as given to Parse or Load.
	File string
	// Line and Col are 1-based; Line is 0 when the problem is not at a
	// place in the file (a default value that conflicts with another key).
	Line, Col int
	// Msg says what is wrong, naming the key.
	Msg string
	// Err is the kind of problem: ErrSyntax, ErrUnknownKey,
	// ErrDuplicateKey, ErrEnv or ErrInvalid.
	Err error
}

// Error formats e as "file:line:col: msg", leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(max(e.Col, 1)))
		b.WriteByte(':')
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the kind of problem.
func (e *Error) Unwrap() error { return e.Err }

// Errors are all the problems found in one config, in file order; Parse,
// Load and Validate return them so that a user can fix them at once. Get
// them with errors.As(err, &errs).
type Errors []*Error

// Error lists the problems one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is and errors.As see each problem.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// Err returns es sorted by position as an error, or nil when it is empty;
// never a nil Errors inside a non-nil error.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	es.Sort()
	return es
}

// Sort sorts es by line and column, keeping the order of equal ones.
// Problems without a position go last: they are about the file as a
// whole.
func (es Errors) Sort() {
	slices.SortStableFunc(es, func(a, b *Error) int {
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
}
