package match

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Comparison is a number test written as a string: ">= 2", "< 10", "== 0",
// "!= 3", or a bare number meaning ==.
type Comparison struct {
	src string
	op  string
	n   float64
}

var compareOps = []string{">=", "<=", "==", "!=", ">", "<", "="}

// ParseComparison reads a comparison; the error says what is wanted.
func ParseComparison(s string) (Comparison, error) {
	t := strings.TrimSpace(s)
	op := "=="
	for _, o := range compareOps {
		if strings.HasPrefix(t, o) {
			op, t = o, strings.TrimSpace(t[len(o):])
			break
		}
	}
	if op == "=" {
		op = "=="
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		return Comparison{}, fmt.Errorf(`invalid comparison %q (want an operator and a number: ">= 2", "< 10", "== 0", "!= 3")`, s)
	}
	return Comparison{src: strings.TrimSpace(s), op: op, n: n}, nil
}

// String returns the comparison as written, trimmed of spaces.
func (c Comparison) String() string { return c.src }

// Test reports whether v passes the comparison.
func (c Comparison) Test(v float64) bool {
	switch c.op {
	case ">=":
		return v >= c.n
	case "<=":
		return v <= c.n
	case ">":
		return v > c.n
	case "<":
		return v < c.n
	case "!=":
		return v != c.n
	}
	return v == c.n
}
