package selector

import (
	"fmt"
	"strings"
)

// Costly describes what in the selector makes matching it cost more as
// pages grow deeper or wider, for tailor check to warn about; nil when
// nothing does. Matching stays polynomial either way (see the package
// doc), but these selectors are the ones that can spend a page's budget:
//
//   - two or more descendant (" ") or general sibling ("~") combinators
//     in a row: each candidate element walks up to the root, or back to
//     its first sibling, for each of them that finds nothing;
//   - :has() whose argument has a descendant combinator: every element
//     under the one tested is matched against it, each walking up.
func (s *Selector) Costly() []string {
	var out []string
	costly(s.group, false, &out)
	return out
}

func costly(g []*complexSel, inHas bool, out *[]string) {
	for _, c := range g {
		run := 0
		for k := 1; k <= len(c.ops); k++ {
			if k < len(c.ops) && (c.ops[k] == ' ' || c.ops[k] == '~') {
				run++
				continue
			}
			if run >= 2 {
				*out = append(*out, fmt.Sprintf("%q has %d descendant or sibling combinators in a row: matching walks the page's ancestors or siblings once for each",
					c.textOf(k-run-1, k-1), run))
			}
			run = 0
		}
		if inHas && strings.ContainsRune(string(c.ops), ' ') {
			*out = append(*out, fmt.Sprintf(":has(%s) has a descendant combinator: every element under the one tested walks up the page",
				c.textOf(0, len(c.parts)-1)))
		}
		for _, p := range c.parts {
			for _, r := range p.rel {
				costly(r.arg, r.kind == 'h', out)
			}
		}
	}
}

// textOf writes parts[i..j] and their combinators as cascadia does.
func (c *complexSel) textOf(i, j int) string {
	var b strings.Builder
	for k := i; k <= j; k++ {
		if k > i {
			if c.ops[k] == ' ' {
				b.WriteByte(' ')
			} else {
				fmt.Fprintf(&b, " %c ", c.ops[k])
			}
		}
		b.WriteString(c.parts[k].text)
	}
	return b.String()
}
