// Package config reads tailor.yaml.
//
// Default returns every default; Parse and Load overlay a file on it,
// expand ${NAME} and ${NAME:-default} from the environment in values, and
// Validate the result. Problems are returned together, as Errors, each at
// the file:line:col a user can jump to:
//
//	tailor.yaml:3:1: unknown key "listn" (did you mean "listen"?)
//	tailor.yaml:5:12: timeouts.connect: invalid duration "2x" (want a number with a unit: 150ms, 2s, 10m, 8760h, 14d)
//	tailor.yaml:9:10: environment variable "TAILOR_COOKIE_KEY" is not set
//
// The file is decoded by walking the YAML node tree alongside the Config
// struct (guided by its yaml tags) rather than with yaml.Unmarshal: that
// keeps every value's position, reports every problem instead of the
// first, and lets each key keep its default unless the file sets it.
//
// Warnings lists what is allowed but probably unsafe (an admin listener
// reachable from other hosts without a token), in the same form with
// "warning: " before the message. ErrorAt makes an Error at a key's
// position for problems found outside the package, which does no I/O:
// tailor check and serve use it for key files that do not load, a
// data_dir that is a file, or a profile cache larger than the machine's
// memory.
//
// The package is a leaf: it imports nothing of tailor's, does no I/O
// beyond reading the file it is given, and holds no global state.
package config
