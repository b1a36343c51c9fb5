package config

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// FuzzParse checks that no input makes Parse panic, that every problem has
// a place, and that what Parse accepts is valid.
func FuzzParse(f *testing.F) {
	// The fuzzer minimizes every input that finds new code, in time
	// quadratic in its length; with whole files it does little else. So
	// inputs are capped at maxFuzzInput, and the seeds are the files'
	// sections without their comments.
	const maxFuzzInput = 512
	comment := regexp.MustCompile(`(?m)\s+#.*$`)
	for _, name := range []string{"testdata/full.yaml", "testdata/spec.yaml"} {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		var section strings.Builder
		for line := range strings.Lines(comment.ReplaceAllString(string(src), "")) {
			if section.Len() > 0 && line[0] != ' ' && line[0] != '#' {
				f.Add(section.String())
				section.Reset()
			}
			section.WriteString(line)
		}
		f.Add(section.String())
	}
	for _, src := range []string{
		"",
		"listn: x\ntimeouts: {connect: 2x}\nadmin: {token: ${T}}\n",
		"a: &a [*a]\n",
		"timeouts: &t {<<: *t, idle: 1s}\n",
		"profiles: {<<: [{ttl: 1m}, *x]}\n",
		"identity: {jwt: {algorithms: [none], keys: [${K:-k}]}}\n",
		"max_rewrite_body: 99999999999TiB\n",
		"listen: ${\n",
		"- a\n- b\n",
		"listen: ':1'\n---\nlisten: ':2'\n",
		"? [a]\n: b\n",
		"listen: !!binary aGVsbG8=\n",
		"\ufefflisten: ':1'\n",
	} {
		f.Add(src)
	}
	lookup := env("K", "key", "T", "token", "EMPTY", "")
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > maxFuzzInput {
			return
		}
		c, err := parse(strings.NewReader(src), "f.yaml", lookup)
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("parse(%q) error is not Errors: %v", src, err)
			}
			for _, e := range errs {
				if e.File != "f.yaml" || e.Line < 0 || e.Col < 0 || e.Msg == "" || e.Err == nil {
					t.Fatalf("parse(%q) problem %#v lacks a place, message or kind", src, e)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parse(%q) accepted an invalid config: %v", src, err)
		}
	})
}

// FuzzParseByteSize checks that sizes round-trip through String.
func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"0", "512", "5MiB", "64kib", "2MB", "1 GiB", "-1", "9223372036854775807", "8388608TiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseByteSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseByteSize(%q) = %d, want no negative sizes", s, int64(n))
		}
		back, err := ParseByteSize(n.String())
		if err != nil || back != n {
			t.Fatalf("ParseByteSize(%q) = %d, String %q, read back %d, %v", s, int64(n), n.String(), int64(back), err)
		}
	})
}

// FuzzParseDuration checks that days change nothing for time.ParseDuration's
// inputs, and that a day is 24 hours.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"14d", "1d12h", "1.5d", "-2d", "90s", "1h30m", "0", "106751d", "1d1d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseDuration(s)
		if want, werr := time.ParseDuration(s); werr == nil && (err != nil || got != want) {
			t.Fatalf("ParseDuration(%q) = %v, %v; time.ParseDuration says %v", s, got, err, want)
		}
		if err != nil {
			return
		}
		num, isDays := strings.CutSuffix(s, "d")
		if !isDays || strings.Trim(num, "0123456789.") != "" {
			return
		}
		if h, err := time.ParseDuration(num + "h"); err == nil && got != 24*h {
			t.Fatalf("ParseDuration(%q) = %v, want 24 × %v", s, got, h)
		}
	})
}
