package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Load reads the config file at path; see Parse. The result's Path is path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads tailor.yaml from r over the defaults, expands ${NAME} and
// ${NAME:-default} in values from the environment, and validates the
// result. name is the file's name in error messages and becomes the
// result's Path.
//
// A key written with no value (or ~, or null) keeps its default. A list
// replaces the default list. Anchors, aliases and << merge keys work as in
// YAML.
//
// Problems with the file are returned together as Errors, each at a
// file:line:col; any other error (reading r) is returned as is.
func Parse(r io.Reader, name string) (*Config, error) {
	return parse(r, name, os.LookupEnv)
}

// parse is Parse with the environment as an argument, for tests.
func parse(r io.Reader, name string, lookupEnv func(string) (string, bool)) (*Config, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", name, err)
	}
	d := &decoder{
		src:    src,
		lookup: lookupEnv,
		source: &source{file: name, pos: map[string]position{}, bad: map[string]bool{}},
	}
	cfg := Default()
	cfg.Path = name
	cfg.src = d.source
	if root := d.document(); root != nil {
		d.decode(root, reflect.ValueOf(cfg).Elem(), "")
	}
	errs := d.errs
	if !slices.ContainsFunc(errs, func(e *Error) bool { return e.Err == ErrSyntax }) {
		var verr Errors
		if errors.As(cfg.Validate(), &verr) {
			errs = append(errs, verr...)
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// source is where a parsed Config's values were written.
type source struct {
	file string
	// pos maps a key path ("identity.cookie.name", "trusted_proxies[2]")
	// to where its value is written, or for a section ("identity.jwt") to
	// where its key is.
	pos map[string]position
	// bad holds the key paths whose values were rejected while decoding;
	// validating their defaults would only add noise.
	bad map[string]bool
}

type position struct{ line, col int }

// decoder walks a yaml.Node tree alongside the Config struct, guided by
// the yaml struct tags, so that every problem has a position.
type decoder struct {
	*source
	src    []byte
	lookup func(string) (string, bool)
	errs   Errors
}

// errorAt records a problem at n.
func (d *decoder) errorAt(n *yaml.Node, kind error, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...), Err: kind})
}

// fail records a problem with the value at path, written at n.
func (d *decoder) fail(n *yaml.Node, path string, kind error, format string, args ...any) {
	d.bad[path] = true
	d.errorAt(n, kind, "%s: %s", pathOrTop(path), fmt.Sprintf(format, args...))
}

// document parses the YAML and returns the top node, or nil when the file
// is empty or not well-formed (with the problem recorded).
func (d *decoder) document() (root *yaml.Node) {
	defer func() {
		// yaml.v3 reports its own errors by panicking and recovering; a
		// panic that escapes is its bug, but the input is still just bad.
		if v := recover(); v != nil {
			d.syntaxError(fmt.Errorf("yaml: %v", v))
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(d.src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			d.syntaxError(err)
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		d.errorAt(&next, ErrSyntax, "a config file holds one YAML document; a second one starts here")
		return nil
	case !errors.Is(err, io.EOF):
		d.syntaxError(err)
		return nil
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError records a yaml.v3 error at the best position found.
func (d *decoder) syntaxError(err error) {
	d.errs = append(d.errs, SyntaxError(d.file, d.src, err))
}

// SyntaxError turns a yaml.v3 error about src, which has a line at best,
// into an Error of file with the best position that can be found: the
// rule files' loader reports theirs the same way.
func SyntaxError(file string, src []byte, err error) *Error {
	e := &Error{File: file, Line: 1, Col: 1, Err: ErrSyntax}
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
		// The parser (unlike the scanner) reports the 0-based line of the
		// construct it was in.
		if isParserError(msg) {
			e.Line++
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
		if line, col, ok := locate(src, msg); ok {
			e.Line, e.Col = line, col
		}
	}
	e.Msg = "invalid YAML: " + msg
	return e
}

// isParserError reports whether msg is one of yaml.v3's parser messages
// (parserc.go), whose lines are off by one.
func isParserError(msg string) bool {
	for _, p := range []string{"did not find expected", "found duplicate %", "found incompatible YAML document", "found undefined tag handle"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

var unknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

// locate finds in src the place a line-less yaml.v3 error is about.
func locate(src []byte, msg string) (line, col int, ok bool) {
	off := -1
	switch {
	case strings.Contains(msg, "control characters"):
		off = bytes.IndexFunc(src, func(r rune) bool {
			return r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f
		})
	case strings.Contains(msg, "UTF-8"), strings.Contains(msg, "Unicode"):
		for i := 0; i < len(src); {
			r, size := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && size <= 1 {
				off = i
				break
			}
			i += size
		}
	default:
		if m := unknownAnchor.FindStringSubmatch(msg); m != nil {
			off = bytes.Index(src, []byte("*"+m[1]))
		}
	}
	if off < 0 {
		return 0, 0, false
	}
	before := src[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
	return line, col, true
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
)

// decode sets v from n. path names v in messages ("" for the whole file).
// A value that is rejected leaves v as it was (the default).
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	at := n
	if path != "" {
		d.pos[path] = position{at.Line, at.Column}
	}
	n = Deref(n)
	if n == nil {
		d.fail(at, path, ErrInvalid, "alias refers to itself")
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	switch v.Type() {
	case durationType:
		d.parsed(at, n, v, path, "a duration", func(s string) (int64, error) {
			dur, err := ParseDuration(s)
			return int64(dur), err
		})
		return
	case byteSizeType:
		d.parsed(at, n, v, path, "a size", func(s string) (int64, error) {
			size, err := ParseByteSize(s)
			return int64(size), err
		})
		return
	}
	switch v.Kind() {
	case reflect.String:
		if s, ok := d.scalar(at, n, path, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		if s, ok := d.scalar(at, n, path, "true or false"); ok {
			b, err := parseBool(s)
			if err != nil {
				d.fail(at, path, ErrInvalid, "%v", err)
				return
			}
			v.SetBool(b)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if s, ok := d.scalar(at, n, path, "a whole number"); ok {
			i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, v.Type().Bits())
			if err != nil {
				d.fail(at, path, ErrInvalid, "invalid whole number %q", s)
				return
			}
			v.SetInt(i)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.wrongKind(at, n, path, "a list")
			return
		}
		list := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, list.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(list)
	case reflect.Pointer:
		p := v
		if v.IsNil() {
			p = reflect.New(v.Type().Elem())
			if def, ok := p.Interface().(interface{ setDefaults() }); ok {
				def.setDefaults()
			}
		}
		d.decode(at, p.Elem(), path)
		if !d.bad[path] {
			v.Set(p)
		}
	case reflect.Struct:
		d.mapping(at, n, v, path)
	default:
		// Only reachable if a field of a new type is added to Config
		// without teaching decode about it.
		d.fail(at, path, ErrInvalid, "cannot decode into %s", v.Type())
	}
}

// parsed sets v, of an integer kind, to what parse makes of the scalar n
// (want says what it should be), reporting parse's error.
func (d *decoder) parsed(at, n *yaml.Node, v reflect.Value, path, want string, parse func(string) (int64, error)) {
	s, ok := d.scalar(at, n, path, want)
	if !ok {
		return
	}
	i, err := parse(s)
	if err != nil {
		d.fail(at, path, ErrInvalid, "%v", err)
		return
	}
	v.SetInt(i)
}

// scalar returns n's value with ${...} expanded; ok is false, with the
// problem recorded, when n is not a scalar or does not expand.
func (d *decoder) scalar(at, n *yaml.Node, path, want string) (s string, ok bool) {
	if n.Kind != yaml.ScalarNode {
		d.wrongKind(at, n, path, want)
		return "", false
	}
	s, problems := expand(n.Value, d.lookup)
	for _, p := range problems {
		d.bad[path] = true
		d.errorAt(at, ErrEnv, "%s", p)
	}
	return s, len(problems) == 0
}

func (d *decoder) wrongKind(at, n *yaml.Node, path, want string) {
	d.fail(at, path, ErrInvalid, "want %s, not %s", want, Describe(n))
}

// mapping sets the fields of struct v from the mapping n.
func (d *decoder) mapping(at, n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		if path == "" {
			d.errorAt(at, ErrInvalid, "a config file is a mapping of keys to values, not %s", kindName(n))
			return
		}
		d.wrongKind(at, n, path, "a mapping")
		return
	}
	fields, names := structFields(v.Type())
	for _, e := range d.entries(n, path) {
		name := e.Name
		i, ok := fields[name]
		if !ok {
			d.unknownKey(e.Key, name, path, names)
			continue
		}
		fpath := joinPath(path, name)
		d.decode(e.Value, v.Field(i), fpath)
		if t := v.Field(i).Type(); t.Kind() == reflect.Struct || t.Kind() == reflect.Pointer {
			// A problem with a section as a whole (a key it lacks) is
			// best shown at the section's key.
			d.pos[fpath] = position{e.Key.Line, e.Key.Column}
		}
	}
}

func (d *decoder) unknownKey(k *yaml.Node, name, path string, names []string) {
	msg := fmt.Sprintf("unknown key %q", name)
	if path != "" {
		msg += " in " + path
	}
	if s := Suggest(name, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	d.errorAt(k, ErrUnknownKey, "%s", msg)
}

// entries returns the key/value pairs of mapping n with << merges applied,
// reporting duplicate and non-string keys and bad merges.
func (d *decoder) entries(n *yaml.Node, path string) []Entry {
	return Entries(n, func(issue MappingIssue, at, first *yaml.Node) {
		switch issue {
		case BadKey:
			d.errorAt(at, ErrInvalid, "a key must be a plain string, not %s", kindName(Deref(at)))
		case DuplicateKey:
			msg := fmt.Sprintf("duplicate key %q", Deref(at).Value)
			if path != "" {
				msg += " in " + path
			}
			d.errorAt(at, ErrDuplicateKey, "%s (first written at line %d)", msg, first.Line)
		case BadMerge:
			d.errorAt(at, ErrInvalid, "%s: a << merge takes a mapping or a list of mappings", pathOrTop(path))
		}
	})
}

// kindName is Describe without the value: "a single value" for any
// scalar.
func kindName(n *yaml.Node) string {
	if n != nil && n.Kind == yaml.ScalarNode {
		return "a single value"
	}
	return Describe(n)
}

// structFields maps the yaml key of each field of struct type t to its
// index, and lists the keys sorted.
func structFields(t reflect.Type) (map[string]int, []string) {
	fields := make(map[string]int, t.NumField())
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		fields[name] = i
		names = append(names, name)
	}
	slices.Sort(names)
	return fields, names
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func pathOrTop(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

// parseBool reads YAML's booleans, and the 1/0 and yes/no/on/off that
// environment variables often hold.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean %q (want true or false)", s)
}

// Truncate shortens s to n runes, with "…" when it cut, for quoting a
// value in a message.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// Suggest returns the name closest to key when it is close enough to be a
// likely typo, else "". Rule files use it for their own "did you mean".
func Suggest(key string, names []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
	}
	if len(key) > 64 {
		return "" // not a typo, and not worth the quadratic work
	}
	best, bestDist := "", len(key)+1
	for _, name := range names {
		if norm(name) == norm(key) {
			return name
		}
		if dist := levenshtein(key, name); dist < bestDist {
			best, bestDist = name, dist
		}
	}
	if bestDist <= 2 && bestDist*3 <= max(len(key), len(best)) {
		return best
	}
	return ""
}

// levenshtein is the edit distance between a and b, in bytes, counting a
// swap of neighbours as one edit (the optimal string alignment distance).
func levenshtein(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
