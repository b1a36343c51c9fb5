package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tailor-edge/tailor/config"
)

// This file walks yaml.v3 node trees the way package config does, so that
// every value keeps its position: aliases and << merges work, duplicate
// and unknown keys are reported, and a value of the wrong shape is an error
// at its place rather than a silent zero.

// fileReader records the problems of one rule file.
type fileReader struct {
	*problems
	file string
}

func (f *fileReader) errorAt(n *yaml.Node, kind error, format string, args ...any) {
	f.at(f.file, n, kind, format, args...)
}

// invalid records a problem with the value written at n, which key names.
func (f *fileReader) invalid(n *yaml.Node, key, format string, args ...any) {
	f.at(f.file, n, config.ErrInvalid, "%s: %s", key, fmt.Sprintf(format, args...))
}

// document parses src and returns its top node, or nil when the file is
// empty or not well-formed (with the problem recorded).
func (f *fileReader) document(src []byte) (root *yaml.Node) {
	defer func() {
		// yaml.v3 reports its own errors by panicking and recovering; a
		// panic that escapes is its bug, but the input is still just bad.
		if v := recover(); v != nil {
			f.syntaxError(src, fmt.Errorf("yaml: %v", v))
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			f.syntaxError(src, err)
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		f.errorAt(&next, config.ErrSyntax, "a rule file holds one YAML document; a second one starts here")
		return nil
	case !errors.Is(err, io.EOF):
		f.syntaxError(src, err)
		return nil
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

// syntaxError records a yaml.v3 error at the best position found, as
// config reports its own.
func (f *fileReader) syntaxError(src []byte, err error) {
	f.errs = append(f.errs, config.SyntaxError(f.file, src, err))
}

// entry is one key/value pair of a mapping; key is where the key is
// written, name what it says.
type entry struct {
	name       string
	key, value *yaml.Node
}

// mapping returns the pairs of mapping n with << merges applied (keys
// written in n win over merged ones), reporting duplicate and non-string
// keys and bad merges; ok is false, with the problem recorded, when n is
// not a mapping. what names n in messages.
func (f *fileReader) mapping(n *yaml.Node, what string) (out []entry, ok bool) {
	d := deref(n)
	if d == nil || d.Kind != yaml.MappingNode {
		if d != nil && d.Kind == yaml.ScalarNode && d.ShortTag() == "!!null" {
			return nil, true
		}
		f.invalid(n, what, "want a mapping, not %s", describe(d))
		return nil, false
	}
	entries := config.Entries(d, func(issue config.MappingIssue, at, first *yaml.Node) {
		switch issue {
		case config.BadKey:
			f.errorAt(at, config.ErrInvalid, "%s: a key must be a plain string, not %s", what, describe(deref(at)))
		case config.DuplicateKey:
			f.errorAt(at, config.ErrDuplicateKey, "duplicate key %q in %s (first written at line %d)", deref(at).Value, what, first.Line)
		case config.BadMerge:
			f.invalid(at, what, "a << merge takes a mapping or a list of mappings")
		}
	})
	out = make([]entry, len(entries))
	for i, e := range entries {
		out[i] = entry{e.Name, e.Key, e.Value}
	}
	return out, true
}

// unknownKey reports key e in what, suggesting the closest of names.
func (f *fileReader) unknownKey(e entry, what string, names []string) {
	msg := fmt.Sprintf("unknown key %q in %s", e.name, what)
	if s := config.Suggest(e.name, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	} else if len(names) <= 12 {
		msg += "; want one of " + strings.Join(names, ", ")
	}
	f.errorAt(e.key, config.ErrUnknownKey, "%s", msg)
}

// list returns the items of sequence n; a single value stands for a list
// of one. ok is false, with the problem recorded, for a mapping.
func (f *fileReader) list(n *yaml.Node, what string) (items []*yaml.Node, ok bool) {
	d := deref(n)
	switch {
	case d == nil || d.Kind == yaml.MappingNode:
		f.invalid(n, what, "want a value or a list, not %s", describe(d))
		return nil, false
	case d.Kind == yaml.SequenceNode:
		return d.Content, true
	case d.ShortTag() == "!!null":
		return nil, true
	}
	return []*yaml.Node{n}, true
}

// mappings yields the items of list n that are mappings, each with its
// pairs; an item that is not one is reported and skipped, as list
// reports n when it is not a list.
func (f *fileReader) mappings(n *yaml.Node, what string) iter.Seq2[*yaml.Node, []entry] {
	return func(yield func(*yaml.Node, []entry) bool) {
		items, _ := f.list(n, what)
		for _, it := range items {
			if entries, ok := f.mapping(it, what); ok && !yield(it, entries) {
				return
			}
		}
	}
}

// values is list for a condition's values: at least one.
func (f *fileReader) values(n *yaml.Node, what string) ([]*yaml.Node, bool) {
	items, ok := f.list(n, what)
	if ok && len(items) == 0 {
		f.invalid(n, what, "want at least one value")
		return nil, false
	}
	return items, ok
}

// str returns the scalar n as written. ok is false, with the problem
// recorded, for a list, a mapping or null.
func (f *fileReader) str(n *yaml.Node, what string) (string, bool) {
	d := deref(n)
	if d == nil || d.Kind != yaml.ScalarNode || d.ShortTag() == "!!null" {
		f.invalid(n, what, "want a single value, not %s", describe(d))
		return "", false
	}
	return d.Value, true
}

// strs returns the scalar or list of scalars n; an empty list is an error.
func (f *fileReader) strs(n *yaml.Node, what string) ([]string, bool) {
	return parseEach(f, n, what, func(_ *yaml.Node, s string) (string, bool) { return s, true })
}

// parseEach reads the scalar or list of scalars n, as strs does, and
// turns each into a T with parse, which reports what it refuses at the
// value's node, at. ok is false from the first value refused.
func parseEach[T any](f *fileReader, n *yaml.Node, what string, parse func(at *yaml.Node, s string) (T, bool)) ([]T, bool) {
	items, ok := f.values(n, what)
	if !ok {
		return nil, false
	}
	out := make([]T, 0, len(items))
	for _, it := range items {
		s, ok := f.str(it, what)
		if !ok {
			return nil, false
		}
		v, ok := parse(it, s)
		if !ok {
			return nil, false
		}
		out = append(out, v)
	}
	return out, true
}

// boolean returns the boolean n.
func (f *fileReader) boolean(n *yaml.Node, what string) (bool, bool) {
	s, ok := f.str(n, what)
	if !ok {
		return false, false
	}
	switch strings.ToLower(s) {
	case "true", "yes", "on":
		return true, true
	case "false", "no", "off":
		return false, true
	}
	f.invalid(n, what, "want true or false, not %q", truncate(s, 40))
	return false, false
}

// number returns the finite number n.
func (f *fileReader) number(n *yaml.Node, what string) (float64, bool) {
	s, ok := f.str(n, what)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		f.invalid(n, what, "want a number, not %q", truncate(s, 40))
		return 0, false
	}
	return v, true
}

// deref follows aliases to the node they name; nil for an alias cycle.
func deref(n *yaml.Node) *yaml.Node { return config.Deref(n) }

// describe names the shape of n for messages.
func describe(n *yaml.Node) string { return config.Describe(n) }

// truncate shortens s to n runes for messages.
func truncate(s string, n int) string { return config.Truncate(s, n) }

// sortedKeys returns the keys of m, sorted, for messages.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
