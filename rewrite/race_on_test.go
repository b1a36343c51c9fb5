//go:build race

package rewrite

// raceOn: the race detector slows the differential tests down.
const raceOn = true
