//go:build race

package bots

// raceEnabled: the race detector slows the regexps the tests run as a
// reference some hundred times, so those tests take a sample.
const raceEnabled = true
