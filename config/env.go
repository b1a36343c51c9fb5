package config

import (
	"fmt"
	"strings"
)

// expand replaces ${NAME} with the variable's value and ${NAME:-default}
// with the value, or default when the variable is unset or empty. Nothing
// else is special ("$NAME" and "$$" stay as written), and a default is
// literal text up to the first "}". It returns one problem per reference
// that could not be expanded.
func expand(s string, lookup func(string) (string, bool)) (string, []string) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	var problems []string
	for {
		before, after, found := strings.Cut(s, "${")
		b.WriteString(before)
		if !found {
			break
		}
		expr, rest, closed := strings.Cut(after, "}")
		if !closed {
			problems = append(problems, fmt.Sprintf("unterminated %q (want ${NAME} or ${NAME:-default})", "${"+expr))
			break
		}
		s = rest
		name, def, hasDef := strings.Cut(expr, ":-")
		if !isEnvName(name) {
			problems = append(problems, fmt.Sprintf("invalid reference %q (want ${NAME} or ${NAME:-default})", "${"+expr+"}"))
			continue
		}
		val, ok := lookup(name)
		switch {
		case hasDef && val == "":
			b.WriteString(def)
		case !ok:
			problems = append(problems, fmt.Sprintf("environment variable %q is not set", name))
		default:
			b.WriteString(val)
		}
	}
	return b.String(), problems
}

// isEnvName reports whether s is a portable environment variable name.
func isEnvName(s string) bool {
	if s == "" || '0' <= s[0] && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && (c < '0' || c > '9') && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}
