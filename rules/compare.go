package rules

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// comparison is a number test written as a string: ">= 2", "< 10", "== 0",
// "!= 3", or a bare number meaning ==.
type comparison struct {
	src string
	op  string
	n   float64
}

var compareOps = []string{">=", "<=", "==", "!=", ">", "<", "="}

func parseComparison(s string) (comparison, error) {
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
		return comparison{}, fmt.Errorf(`invalid comparison %q (want an operator and a number: ">= 2", "< 10", "== 0", "!= 3")`, s)
	}
	return comparison{src: strings.TrimSpace(s), op: op, n: n}, nil
}

func (c comparison) test(v float64) bool {
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
