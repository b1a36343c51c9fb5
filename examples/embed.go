// Package examples ships tailor's example site, configuration and rule
// files, so that "tailor demo" runs from the binary alone.
package examples

import "embed"

// Files holds site/ (the demo origin's document root), rules/ (example
// rule files covering every condition and action) and fragments/ (the
// HTML they insert), laid out as in this folder.
//
//go:embed site rules fragments
var Files embed.FS
