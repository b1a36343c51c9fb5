//go:build !linux

package cache

func adviseHugePages([]slot) {}
