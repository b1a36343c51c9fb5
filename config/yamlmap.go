package config

import (
	"strconv"

	"gopkg.in/yaml.v3"
)

// The YAML mapping walk below is shared with the rules package, whose rule
// files are read the same way: aliases followed, << merges applied, and
// every problem reported where it is written.

// Entry is one key/value pair of a YAML mapping; Key is where the key is
// written (an alias, perhaps), Name what it says.
type Entry struct {
	Name       string
	Key, Value *yaml.Node
}

// MappingIssue is a problem Entries finds in a mapping.
type MappingIssue int

const (
	// BadKey: a key that is not a plain string; at is the key.
	BadKey MappingIssue = iota + 1
	// DuplicateKey: at repeats the key first written at first.
	DuplicateKey
	// BadMerge: a << merge of something that is not a mapping or a list
	// of mappings; at is that value (or list item).
	BadMerge
)

// Entries returns the key/value pairs of mapping n with << merges applied:
// keys written in n win over merged ones, earlier merges over later ones,
// and merge cycles through aliases end. report is called for every problem
// and the offending pair is left out.
func Entries(n *yaml.Node, report func(issue MappingIssue, at, first *yaml.Node)) []Entry {
	var out []Entry
	seen := map[string]*yaml.Node{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kd := Deref(k)
		switch {
		case kd == nil || kd.Kind != yaml.ScalarNode:
			report(BadKey, k, nil)
			continue
		case kd.ShortTag() == "!!merge":
			merges = append(merges, v)
			continue
		}
		if first, dup := seen[kd.Value]; dup {
			report(DuplicateKey, k, first)
			continue
		}
		seen[kd.Value] = k
		out = append(out, Entry{kd.Value, k, v})
	}
	visited := map[*yaml.Node]bool{n: true}
	for _, m := range merges {
		out = merge(m, seen, visited, out, report)
	}
	return out
}

// merge appends the pairs of the merged mapping (or list of mappings) m
// whose keys are not yet seen.
func merge(m *yaml.Node, seen map[string]*yaml.Node, visited map[*yaml.Node]bool, out []Entry, report func(MappingIssue, *yaml.Node, *yaml.Node)) []Entry {
	md := Deref(m)
	switch {
	case md != nil && md.Kind == yaml.SequenceNode && !visited[md]:
		visited[md] = true
		for _, item := range md.Content {
			if it := Deref(item); it == nil || it.Kind != yaml.MappingNode {
				report(BadMerge, item, nil)
				continue
			}
			out = merge(item, seen, visited, out, report)
		}
		return out
	case md == nil || md.Kind != yaml.MappingNode:
		report(BadMerge, m, nil)
		return out
	case visited[md]:
		return out
	}
	visited[md] = true
	var merges []*yaml.Node
	for i := 0; i+1 < len(md.Content); i += 2 {
		k := Deref(md.Content[i])
		if k == nil || k.Kind != yaml.ScalarNode {
			continue // reported where the mapping is written
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, md.Content[i+1])
			continue
		}
		if _, ok := seen[k.Value]; ok {
			continue
		}
		seen[k.Value] = k
		out = append(out, Entry{k.Value, md.Content[i], md.Content[i+1]})
	}
	for _, mm := range merges {
		out = merge(mm, seen, visited, out, report)
	}
	return out
}

// Deref follows aliases to the node they name; nil for an alias cycle.
func Deref(n *yaml.Node) *yaml.Node {
	for range 64 {
		if n == nil || n.Kind != yaml.AliasNode {
			return n
		}
		n = n.Alias
	}
	return nil
}

// Describe names the shape of n for messages ("want a mapping, not
// %s"): a mapping, a list, nothing (null), or a scalar's value quoted;
// "an alias cycle" for nil, as Deref returns for one.
func Describe(n *yaml.Node) string {
	switch {
	case n == nil:
		return "an alias cycle"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.ShortTag() == "!!null":
		return "nothing"
	default:
		return strconv.Quote(Truncate(n.Value, 40))
	}
}
