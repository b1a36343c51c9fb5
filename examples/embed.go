// Package examples ships tailor's example site, configuration and rule
// files, so that "tailor demo" runs from the binary alone.
package examples

import "embed"

// Site is the demo origin's document root (site/ in this folder).
//
//go:embed site
var Site embed.FS
