package main

import (
	"bufio"
	"bytes"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
)

// memoryLimit returns the most memory this process can have, and where
// that figure comes from: the least of the machine's memory (MemTotal in
// /proc/meminfo), its cgroup's limit (memory.max, or memory.limit_in_bytes
// for cgroup v1) and the address-space limit (ulimit -v). It returns 0
// when none is known.
//
// The machine's total, not what is free now: tailor check is often run
// beside a running proxy, whose cache would count against its successor,
// and what is free changes by the second.
func memoryLimit() (int64, string) {
	var limit int64
	var from string
	take := func(n int64, source string) {
		if n > 0 && (limit == 0 || n < limit) {
			limit, from = n, source
		}
	}
	if n, ok := memTotal(); ok {
		take(n, "MemTotal in /proc/meminfo")
	}
	if n, source, ok := cgroupLimit(); ok {
		take(n, source)
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_AS, &rl) == nil && rl.Cur < 1<<62 {
		take(int64(rl.Cur), "ulimit -v")
	}
	return limit, from
}

func memTotal() (int64, bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// cgroupLimit reads the memory limit of this process's cgroup and of the
// groups above it, the least of them; ok is false when there is none.
func cgroupLimit() (n int64, source string, ok bool) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0, "", false
	}
	for line := range bytes.Lines(b) {
		parts := strings.SplitN(strings.TrimSpace(string(line)), ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dir, file string
		switch {
		case parts[0] == "0" && parts[1] == "": // v2
			dir, file = "/sys/fs/cgroup", "memory.max"
		case strings.Contains(","+parts[1]+",", ",memory,"): // v1
			dir, file = "/sys/fs/cgroup/memory", "memory.limit_in_bytes"
		default:
			continue
		}
		for p := path.Clean(parts[2]); ; p = path.Dir(p) {
			name := path.Join(dir, p, file)
			if v, err := os.ReadFile(name); err == nil {
				// "max" (v2) or a page-rounded MaxInt64 (v1): no limit.
				if l, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64); err == nil && l < 1<<62 && (!ok || l < n) {
					n, source, ok = l, name, true
				}
			}
			if p == "/" || p == "." {
				break
			}
		}
	}
	return n, source, ok
}
