//go:build !race

package rewrite

const raceOn = false
