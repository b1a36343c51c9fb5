package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ByteSize is a size in bytes, written in YAML as 5MiB, 64KiB, 512, 2MB.
type ByteSize int64

// Binary sizes, as written KiB, MiB and GiB.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
)

// sizeUnits are tried in this order by String: the largest unit that
// divides the size evenly, binary before decimal.
var sizeUnits = []struct {
	name string
	size ByteSize
}{
	{"TiB", 1 << 40}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3},
}

// ParseByteSize parses a size: a whole number of bytes, optionally followed
// by a unit, B, KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB
// (powers of 1000), in any case. Negative sizes are rejected.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && '0' <= t[i] && t[i] <= '9' {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("size %q is negative", s)
	}
	if num == "" {
		return 0, fmt.Errorf("invalid size %q (want a whole number with an optional unit: 512, 64KiB, 5MiB, 2MB)", s)
	}
	mult := ByteSize(1)
	if unit != "" && !strings.EqualFold(unit, "B") {
		found := false
		for _, u := range sizeUnits {
			if strings.EqualFold(unit, u.name) {
				mult, found = u.size, true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("invalid size %q: unknown unit %q (want B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)", s, unit)
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || ByteSize(n) > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return ByteSize(n) * mult, nil
}

// String writes s in its shortest exact form, the form ParseByteSize reads:
// 5MiB, 64KiB, 2MB, 512B.
func (s ByteSize) String() string {
	if s == 0 || s == math.MinInt64 {
		return strconv.FormatInt(int64(s), 10) + "B"
	}
	if s < 0 {
		return "-" + (-s).String()
	}
	for _, u := range sizeUnits {
		if s%u.size == 0 {
			return strconv.FormatInt(int64(s/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// MarshalText writes s as String does, so that sizes read well in JSON.
func (s ByteSize) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a size as ParseByteSize does.
func (s *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

var errDuration = errors.New("invalid duration")

// ParseDuration parses a duration as time.ParseDuration does ("90s",
// "1h30m", "150ms") and also reads days, "d", as 24 hours: "14d", "1d12h".
func ParseDuration(s string) (time.Duration, error) {
	if !strings.Contains(s, "d") {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%w %q (want a number with a unit: 150ms, 2s, 10m, 8760h, 14d)", errDuration, s)
		}
		return d, nil
	}
	bad := fmt.Errorf("%w %q (want a number with a unit: 150ms, 2s, 10m, 8760h, 14d)", errDuration, s)
	t, neg := s, false
	if t != "" && (t[0] == '-' || t[0] == '+') {
		neg, t = t[0] == '-', t[1:]
	}
	var total time.Duration
	var rest strings.Builder
	add := func(d time.Duration) bool {
		if d < 0 || total > math.MaxInt64-d {
			return false
		}
		total += d
		return true
	}
	for t != "" {
		i := 0
		for i < len(t) && (t[i] == '.' || '0' <= t[i] && t[i] <= '9') {
			i++
		}
		j := i
		for j < len(t) && t[j] != '.' && (t[j] < '0' || t[j] > '9') {
			j++
		}
		if i == 0 || j == i {
			return 0, bad
		}
		num, unit := t[:i], t[i:j]
		t = t[j:]
		if unit != "d" {
			rest.WriteString(num)
			rest.WriteString(unit)
			continue
		}
		h, err := time.ParseDuration(num + "h")
		if err != nil || h > math.MaxInt64/24 || !add(h*24) {
			return 0, bad
		}
	}
	if rest.Len() > 0 {
		d, err := time.ParseDuration(rest.String())
		if err != nil || !add(d) {
			return 0, bad
		}
	}
	if neg {
		total = -total
	}
	return total, nil
}
