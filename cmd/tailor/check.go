package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/tailor-edge/tailor/rules"
)

// check validates the configuration and the rule files (selectors,
// fragments, expressions, stages, weights) and prints every problem as
// file:line:col: message.
func (m *Main) check(args []string) int {
	var c commonFlags
	flags := m.flagSet("check", &c)
	if code, ok := parseFlags(flags, args); !ok {
		return code
	}
	cfg, code := m.loadConfig(c.config)
	if code != exitOK {
		return code
	}
	fmt.Fprintf(m.Stdout, "%s: ok\n", c.config)
	dir := cfg.Resolve(cfg.Rules.Dir)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(m.Stdout, "%s: no rules directory: tailor will pass every page through\n", dir)
		return exitOK
	}
	set, err := rules.Load(dir)
	if err != nil {
		fmt.Fprintln(m.Stderr, err)
		return exitInvalid
	}
	pages, rules := int64(set.PageCount()), int64(set.RuleCount())
	fmt.Fprintf(m.Stdout, "%s: ok (%d %s, %d %s)\n", dir, pages, plural(pages, "page", "pages"), rules, plural(rules, "rule", "rules"))
	return exitOK
}
