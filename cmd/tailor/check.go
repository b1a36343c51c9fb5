package main

import "fmt"

// check validates the configuration and prints file:line:col messages.
func (m *Main) check(args []string) int {
	var c commonFlags
	fs := m.flagSet("check", &c)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if _, code := m.loadConfig(c.config); code != exitOK {
		return code
	}
	fmt.Fprintf(m.Stdout, "%s: ok\n", c.config)
	return exitOK
}
