package rules

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/regular"
)

// Limits on what a load reads (issue 15). A 76,000-rule file is some
// 10 MB.
const (
	// MaxRuleFileBytes is the largest rule file a load reads.
	MaxRuleFileBytes = 16 << 20
	// MaxFragmentBytes is the largest {file: ...} fragment a load reads.
	MaxFragmentBytes = 1 << 20
)

// Kinds of problem carried by config.Error.Err, beside config's own
// (config.ErrSyntax, config.ErrUnknownKey, config.ErrDuplicateKey and
// config.ErrInvalid), for errors.Is.
var (
	// ErrDuplicateID: a rule id used twice, in one file or across files.
	ErrDuplicateID = errors.New("duplicate rule id")
	// ErrSelector: a CSS selector that does not compile.
	ErrSelector = errors.New("invalid selector")
	// ErrExpression: an if: expression that does not compile or is not a
	// boolean over profile, request and visitor.
	ErrExpression = errors.New("invalid expression")
	// ErrTemplate: content that is not a valid template.
	ErrTemplate = errors.New("invalid template")
	// ErrFragment: a {file: ...} fragment that cannot be read.
	ErrFragment = errors.New("missing fragment")
	// ErrNotRegular: a rule file or fragment that is not a regular file
	// (a named pipe, a device): reading it could block or never end.
	ErrNotRegular = regular.ErrNotRegular
	// ErrTooLarge: a rule file larger than MaxRuleFileBytes, or a
	// fragment larger than MaxFragmentBytes.
	ErrTooLarge = regular.ErrTooLarge
	// ErrUndeclared: a stage or persona that is not declared.
	ErrUndeclared = errors.New("undeclared name")
	// ErrCostlySelector: a warning, not an error (see Set.Warnings): a
	// selector whose matching costs more as pages grow deeper or wider.
	ErrCostlySelector = errors.New("costly selector")
	// ErrScriptContext: a warning: visitor values written into a script,
	// a style or an event handler. They are escaped for it (JavaScript,
	// CSS), but code that reads them may still misuse them.
	ErrScriptContext = errors.New("visitor values in script")
	// ErrShadowedRule: a warning: a rule that can never change anything,
	// because an earlier rule of its page without conditions makes every
	// change it makes on the same selector.
	ErrShadowedRule = errors.New("shadowed rule")
	// ErrSkippedFile: a warning, not an error: an entry of the rules
	// directory named *.yaml that is not a regular file (a named pipe, a
	// socket, a device) and is left out of the load.
	ErrSkippedFile = errors.New("skipped file")
)

// problems collects the errors and warnings of one load, across files.
type problems struct {
	errs  config.Errors
	warns config.Errors
	// order is the position of each file in the load, so that errors
	// sort by file first.
	order map[string]int
}

// at records a problem at node n of file.
func (p *problems) at(file string, n *yaml.Node, kind error, format string, args ...any) {
	p.errs = append(p.errs, problemAt(file, n, kind, fmt.Sprintf(format, args...)))
}

// warnAt records a warning at node n of file: a problem that does not
// stop the rules from loading. Its message starts "warning: ".
func (p *problems) warnAt(file string, n *yaml.Node, kind error, format string, args ...any) {
	p.warns = append(p.warns, problemAt(file, n, kind, "warning: "+fmt.Sprintf(format, args...)))
}

// problemAt is a problem at node n of file; without a node it is about
// the file as a whole.
func problemAt(file string, n *yaml.Node, kind error, msg string) *config.Error {
	e := &config.Error{File: file, Msg: msg, Err: kind}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	return e
}

// err returns the problems sorted by file, line and column, or nil.
func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	p.sort(p.errs)
	return p.errs
}

// warnings returns the warnings sorted by file, line and column.
func (p *problems) warnings() config.Errors {
	p.sort(p.warns)
	return p.warns
}

// sort sorts es by position as config does, then (keeping that order
// within a file) by the file's place in the load.
func (p *problems) sort(es config.Errors) {
	es.Sort()
	slices.SortStableFunc(es, func(a, b *config.Error) int {
		return cmp.Or(cmp.Compare(p.order[a.File], p.order[b.File]), cmp.Compare(a.File, b.File))
	})
}
