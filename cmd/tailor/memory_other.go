//go:build !linux

package main

// memoryLimit returns 0: the memory a process may have is only read on
// Linux; elsewhere config.MaxProfileCacheSize is the only bound.
func memoryLimit() (int64, string) { return 0, "" }
