package rules

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/expr-lang/expr/vm"
	"gopkg.in/yaml.v3"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/regular"
)

// Load reads every *.yaml file in dir, in name order (files whose names
// start with a dot, such as editors' temporary files, are skipped), and
// compiles them into a Set. Fragments ({file: path}) are read relative to
// the rule file that names them.
//
// The files are one rule set: stages are declared once, segment, persona
// and rule ids are unique across files, and pages are matched in file
// order. Problems in the files are returned together as config.Errors, each
// at its file:line:col, in file order; any other error (an unreadable
// directory) is returned as is. A Set is only returned when there is no
// problem at all.
func Load(dir string) (*Set, error) {
	return load(source{
		readDir: os.ReadDir,
		mode: func(name string, e fs.DirEntry) (fs.FileMode, error) {
			if e.Type()&fs.ModeSymlink == 0 {
				return e.Type(), nil
			}
			// A link (a Kubernetes ConfigMap's are) counts as what it
			// points to; Stat does not open it, so a pipe cannot block.
			fi, err := os.Stat(name)
			if err != nil {
				return 0, err
			}
			return fi.Mode().Type(), nil
		},
		read: regular.ReadFile,
		join: func(dir, p string) string {
			if filepath.IsAbs(p) {
				return filepath.Clean(p)
			}
			return filepath.Join(dir, filepath.FromSlash(p))
		},
		dir: filepath.Dir,
	}, dir)
}

// LoadFS is Load for a directory of fsys: for embedded rules and tests.
// Fragments must be inside fsys.
func LoadFS(fsys fs.FS, dir string) (*Set, error) {
	return load(source{
		readDir: func(dir string) ([]fs.DirEntry, error) { return fs.ReadDir(fsys, dir) },
		mode: func(name string, _ fs.DirEntry) (fs.FileMode, error) {
			fi, err := fs.Stat(fsys, name)
			if err != nil {
				return 0, err
			}
			return fi.Mode(), nil
		},
		read: func(name string, limit int64) ([]byte, error) {
			if !fs.ValidPath(name) {
				return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("outside the rule file system")}
			}
			return regular.ReadFS(fsys, name, limit)
		},
		join: func(dir, p string) string { return path.Join(dir, p) },
		dir:  path.Dir,
	}, dir)
}

// ruleFiles lists the rule files of dir: the regular files to load, in
// name order, and the others (not directories) to skip with a warning.
func (src source) ruleFiles(dir string) (names []string, skipped []skippedFile, err error) {
	ents, err := src.readDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range ents {
		if !isRuleFile(e) {
			continue
		}
		name := src.join(dir, e.Name())
		mode, err := src.mode(name, e)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case mode.IsDir():
		case mode.IsRegular():
			names = append(names, name)
		default:
			skipped = append(skipped, skippedFile{name, regular.Type(mode)})
		}
	}
	return names, skipped, nil
}

func isRuleFile(e fs.DirEntry) bool {
	return !e.IsDir() && strings.HasSuffix(e.Name(), ".yaml") && !strings.HasPrefix(e.Name(), ".")
}

// skippedFile is an entry of the rules directory named like a rule file
// that is not a regular file: reading a named pipe would block the load
// (and the watch that reloads) until something writes to it.
type skippedFile struct {
	name, kind string
}

// source is where rule files and fragments are read from: the OS or an
// fs.FS, with its own path syntax.
type source struct {
	// readDir lists a directory, sorted by name (os.ReadDir).
	readDir func(dir string) ([]fs.DirEntry, error)
	// mode returns the type of directory entry e, at name, following a
	// link without opening what it points to.
	mode func(name string, e fs.DirEntry) (fs.FileMode, error)
	// read reads a regular file of at most limit bytes (regular.ReadFile).
	read func(name string, limit int64) ([]byte, error)
	join func(dir, p string) string
	dir  func(name string) string
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// topKeys are the keys of a rule file.
var topKeys = []string{"stages", "segments", "journey", "goals", "interests", "personas", "pages", "experiments"}

// loader compiles the files of one Set.
type loader struct {
	problems
	src source
	set *Set
	// stagesAt is where the stages were declared, for messages.
	stagesAt  string
	personas  map[string]bool
	segments  map[string]string           // name -> where declared
	goals     map[string]string           // goals: name -> where declared
	ids       map[string]string           // rule id -> where declared
	rules     map[string]*rule            // rule id -> the rule, once compiled
	inSet     map[string]string           // rule id -> the rule-set experiment it is in
	setsAt    map[string]string           // rule-set experiment name -> where declared
	fragments map[string][]byte           // fragment path -> bytes
	sels      map[string]compiledSelector // selector text -> compiled
	exprs     map[string]compiledExpr     // if: source -> compiled
	pageSels  map[string]int              // the page being compiled: selector key -> index
	// pageChanges are the changes that rules of the page being compiled
	// make whatever the visitor, by the first rule that makes each.
	pageChanges map[change]shadowing
	// target is the selector of the rule being compiled, as written:
	// the element its actions write into, for warnings.
	target string
}

// file is one parsed rule file's top-level keys.
type file struct {
	*fileReader
	keys map[string]entry
}

func load(src source, dir string) (*Set, error) {
	names, skipped, err := src.ruleFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("load rules: %w", err)
	}
	l := &loader{
		problems:  problems{order: map[string]int{}},
		src:       src,
		set:       &Set{personaMinScore: defaultMinScore, combos: &combos{}},
		personas:  map[string]bool{},
		segments:  map[string]string{},
		goals:     map[string]string{},
		ids:       map[string]string{},
		rules:     map[string]*rule{},
		inSet:     map[string]string{},
		setsAt:    map[string]string{},
		fragments: map[string][]byte{},
		sels:      map[string]compiledSelector{},
		exprs:     map[string]compiledExpr{},
	}
	for i, s := range skipped {
		l.order[s.name] = len(names) + i
		l.warnAt(s.name, nil, ErrSkippedFile, "skipped: %s, not a regular file", s.kind)
	}
	var files []*file
	for i, name := range names {
		l.order[name] = i
		b, err := src.read(name, MaxRuleFileBytes)
		if errors.Is(err, ErrNotRegular) || errors.Is(err, ErrTooLarge) {
			l.at(name, nil, unwrapPathError(err), "%v", unwrapPathError(err))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("load rules: %w", err)
		}
		f := &file{fileReader: &fileReader{problems: &l.problems, file: name}, keys: map[string]entry{}}
		root := f.document(b)
		if root == nil {
			continue
		}
		if d := deref(root); d == nil || d.Kind != yaml.MappingNode {
			f.errorAt(root, config.ErrInvalid, "a rule file is a mapping of %s, not %s", strings.Join(topKeys, ", "), describe(d))
			continue
		}
		entries, _ := f.mapping(root, "rule file")
		for _, e := range entries {
			if !slices.Contains(topKeys, e.name) {
				f.unknownKey(e, "rule file", topKeys)
				continue
			}
			f.keys[e.name] = e
		}
		files = append(files, f)
	}
	// Names are declared before they are used, whichever file uses them.
	for _, f := range files {
		if e, ok := f.keys["stages"]; ok {
			l.stages(f, e)
		}
	}
	for _, f := range files {
		if e, ok := f.keys["personas"]; ok {
			l.personaDecls(f, e)
		}
	}
	for _, f := range files {
		if e, ok := f.keys["segments"]; ok {
			l.edgeSegments(f, e)
		}
		if e, ok := f.keys["journey"]; ok {
			l.journey(f, e)
		}
		if e, ok := f.keys["goals"]; ok {
			l.goalDecls(f, e)
		}
		if e, ok := f.keys["interests"]; ok {
			l.interests(f, e)
		}
		if e, ok := f.keys["pages"]; ok {
			l.pages(f, e)
		}
	}
	// Rule-set experiments name rules of any file.
	for _, f := range files {
		if e, ok := f.keys["experiments"]; ok {
			l.ruleSets(f.fileReader, e)
		}
	}
	if err := l.err(); err != nil {
		return nil, err
	}
	l.set.warnings = l.warnings()
	l.set.indexInterestTags()
	return l.set, nil
}

// where writes a position for "first declared at" messages.
func where(f *fileReader, n *yaml.Node) string {
	return fmt.Sprintf("%s:%d", f.file, n.Line)
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// name reads a declared name (a stage, a segment, a rule id): letters,
// digits, _, . and -, as it appears in events, metrics and URLs.
func (l *loader) name(f *fileReader, n *yaml.Node, what string) (string, bool) {
	s, ok := f.str(n, what)
	if !ok || !f.checkName(n, what, s) {
		return "", false
	}
	return s, true
}

// checkName reports s, written at n, unless it is a name as name reads
// one; a key that declares something (a segment, a persona, a variant) is
// checked with it.
func (f *fileReader) checkName(n *yaml.Node, what, s string) bool {
	if nameRe.MatchString(s) && len(s) <= 128 {
		return true
	}
	f.invalid(n, what, "%q is not a name: use letters, digits, _, . and - (at most 128), starting with a letter or digit", truncate(s, 40))
	return false
}

func (l *loader) stages(f *file, e entry) {
	items, ok := f.list(e.value, "stages")
	if !ok {
		return
	}
	var stages []string
	for _, it := range items {
		s, ok := l.name(f.fileReader, it, "stages")
		if !ok {
			return
		}
		if slices.Contains(stages, s) {
			f.invalid(it, "stages", "stage %q is listed twice", s)
			return
		}
		stages = append(stages, s)
	}
	if len(stages) == 0 {
		f.invalid(e.value, "stages", "list at least one stage")
		return
	}
	if l.stagesAt != "" {
		if !slices.Equal(stages, l.set.stages) {
			f.invalid(e.key, "stages", "stages are already declared at %s as [%s]; declare them once", l.stagesAt, strings.Join(l.set.stages, ", "))
		}
		return
	}
	l.stagesAt = where(f.fileReader, e.key)
	l.set.stages = stages
}

// checkStage reports s at n unless it is a declared stage.
func (l *loader) checkStage(f *fileReader, n *yaml.Node, key, s string) bool {
	return checkDeclared(f, n, key, "stage", s, l.set.stages, "declare the journey's stages with stages: [...]")
}

// checkDeclared reports s, a kind of name written at n, unless it is one
// of declared: with the closest declared name, and then the declared ones
// or, when there are none, how to declare one.
func checkDeclared(f *fileReader, n *yaml.Node, key, kind, s string, declared []string, howTo string) bool {
	if slices.Contains(declared, s) {
		return true
	}
	msg := fmt.Sprintf("undeclared %s %q", kind, truncate(s, 40))
	if sug := config.Suggest(s, declared); sug != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", sug)
	}
	if len(declared) == 0 {
		msg += "; " + howTo
	} else {
		msg += "; " + kind + "s: " + strings.Join(declared, ", ")
	}
	f.errorAt(n, ErrUndeclared, "%s: %s", key, msg)
	return false
}

func (l *loader) edgeSegments(f *file, e entry) {
	entries, ok := f.mapping(e.value, "segments")
	if !ok {
		return
	}
	for _, s := range entries {
		key := "segments." + s.name
		if !f.checkName(s.key, "segments", s.name) {
			continue
		}
		if at, dup := l.segments[s.name]; dup {
			f.errorAt(s.key, config.ErrDuplicateKey, "segment %q is already defined at %s", s.name, at)
			continue
		}
		l.segments[s.name] = where(f.fileReader, s.key)
		cond, ok := l.segmentCondition(f.fileReader, s.value, key)
		if !ok {
			continue
		}
		if len(cond) == 0 {
			f.invalid(s.value, key, "a segment needs at least one condition")
			continue
		}
		l.set.segments = append(l.set.segments, edgeSegment{name: s.name, cond: cond})
	}
}

// segmentCondition compiles an edge segment's definition: when: keys,
// and perhaps if:.
func (l *loader) segmentCondition(f *fileReader, n *yaml.Node, what string) (condition, bool) {
	before := len(l.errs)
	entries, ok := f.mapping(n, what)
	if !ok {
		return nil, false
	}
	var ifNode *yaml.Node
	var whenEntries []*yaml.Node
	for _, e := range entries {
		if e.name == "if" {
			ifNode = e.value
			continue
		}
		whenEntries = append(whenEntries, e.key, e.value)
	}
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: whenEntries, Line: n.Line, Column: n.Column}
	cond := l.when(f, m, what)
	if ifNode != nil {
		if t := l.ifTest(f, ifNode); t != nil {
			cond = append(cond, t)
		}
	}
	return cond, len(l.errs) == before
}

// ruleCondition compiles a rule's when: (whenNode, may be nil) and if:
// (ifNode, may be nil), ANDed: the when: keys first, as they are cheaper.
func (l *loader) ruleCondition(f *fileReader, whenNode, ifNode *yaml.Node) (condition, bool) {
	before := len(l.errs)
	var cond condition
	if whenNode != nil {
		cond = l.when(f, whenNode, "when")
	}
	if ifNode != nil {
		if t := l.ifTest(f, ifNode); t != nil {
			cond = append(cond, t)
		}
	}
	return cond, len(l.errs) == before
}

func (l *loader) ifTest(f *fileReader, n *yaml.Node) test {
	src, ok := f.str(n, "if")
	if !ok {
		return nil
	}
	// An expression is compiled once per load, however many rules repeat
	// it: each program costs some 5 KB.
	c, seen := l.exprs[src]
	if !seen {
		var prog *vm.Program
		if prog, c.err = compileExpr(src); c.err == nil {
			c.test = exprTest(prog, src)
		}
		l.exprs[src] = c
	}
	if c.err != nil {
		f.errorAt(n, ErrExpression, "if: %s", exprMessage(c.err))
		return nil
	}
	return c.test
}

// compiledExpr is an if: expression as the loader compiled it.
type compiledExpr struct {
	test test
	err  error
}

// exprMessage puts expr's multi-line error (message, source, caret) on
// one line, in the names the rule's author wrote, with a suggestion for a
// misspelt field.
func exprMessage(err error) string {
	msg := strings.TrimSpace(firstLine(err.Error()))
	loc := exprLoc.FindString(msg) // " (line:col)" in the expression
	msg = strings.TrimSuffix(msg, loc)
	if m := noField.FindStringSubmatch(msg); m != nil {
		if sug := config.Suggest(m[2], exprFields[m[1]]); sug != "" {
			msg += fmt.Sprintf(" (did you mean %s.%s?)", exprNames[m[1]], sug)
		} else {
			msg += "; " + exprNames[m[1]] + " has " + strings.Join(exprFields[m[1]], ", ")
		}
	}
	return exprTypeNames.Replace(msg) + loc
}

var (
	exprLoc   = regexp.MustCompile(` \(\d+:\d+\)$`)
	noField   = regexp.MustCompile(`type (rules\.expr\w+) has no field (\w+)`)
	exprNames = map[string]string{
		"rules.exprRequest": "request",
		"rules.exprProfile": "profile",
		"rules.exprVisitor": "visitor",
	}
	exprFields = map[string][]string{
		"rules.exprRequest": tagsOf(exprRequest{}),
		"rules.exprProfile": tagsOf(exprProfile{}),
		"rules.exprVisitor": tagsOf(exprVisitor{}),
	}
	exprTypeNames = strings.NewReplacer(
		"type rules.exprRequest", "request",
		"type rules.exprProfile", "profile",
		"type rules.exprVisitor", "visitor",
		"*rules.exprEnv", "the rule's environment (profile, visitor, request)",
		"rules.exprEnv", "the rule's environment (profile, visitor, request)",
	)
)

// tagsOf lists the expr names of a struct's fields.
func tagsOf(v any) []string {
	t := reflect.TypeOf(v)
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		names = append(names, t.Field(i).Tag.Get("expr"))
	}
	return names
}
