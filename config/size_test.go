package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
	}{
		{"0", 0},
		{"512", 512},
		{"512B", 512},
		{"512b", 512},
		{"64KiB", 64 << 10},
		{"64kib", 64 << 10},
		{"5MiB", 5 << 20},
		{"5 MiB", 5 << 20},
		{"5MIB", 5 << 20},
		{"1GiB", 1 << 30},
		{"2TiB", 2 << 40},
		{"10KB", 10_000},
		{"2MB", 2_000_000},
		{"2mb", 2_000_000},
		{"3GB", 3_000_000_000},
		{"1TB", 1_000_000_000_000},
		{"8388607TiB", 8388607 << 40},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestParseByteSizeRejects(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "invalid size"},
		{"MiB", "invalid size"},
		{"-1", "negative"},
		{"-5MiB", "negative"},
		{"+5", "invalid size"},
		{"1.5MiB", "unknown unit"},
		{"5K", "unknown unit"},
		{"5 MiBs", "unknown unit"},
		{"8388608TiB", "too large"},
		{"99999999999999999999", "too large"},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseByteSize(%q) = %d, %v; want an error saying %q", tt.in, got, err, tt.want)
		}
	}
}

func TestByteSizeStringIsShortestExactForm(t *testing.T) {
	tests := []struct {
		in   ByteSize
		want string
	}{
		{0, "0B"},
		{512, "512B"},
		{1000, "1KB"},
		{64 * KiB, "64KiB"},
		{5 * MiB, "5MiB"},
		{1536 * KiB, "1536KiB"},
		{GiB, "1GiB"},
		{2_000_000, "2MB"},
		{1023, "1023B"},
		{-5 * MiB, "-5MiB"},
	}
	for _, tt := range tests {
		got := tt.in.String()
		if got != tt.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
		if tt.in < 0 {
			continue
		}
		if back, err := ParseByteSize(got); err != nil || back != tt.in {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", got, back, err, int64(tt.in))
		}
	}
}

func TestByteSizeText(t *testing.T) {
	text, _ := (5 * MiB).MarshalText()
	var s ByteSize
	if err := s.UnmarshalText(text); err != nil || s != 5*MiB {
		t.Errorf("UnmarshalText(%q) = %v, %v; want 5MiB", text, s, err)
	}
	if err := s.UnmarshalText([]byte("lots")); err == nil {
		t.Errorf("UnmarshalText(lots) = nil, want an error")
	}
}

func TestParseDurationReadsDays(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"14d", 14 * 24 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"1.5d", 36 * time.Hour},
		{"-2d", -48 * time.Hour},
		{"+1d", 24 * time.Hour},
		{"1d1d", 48 * time.Hour},
		{"2h30m", 150 * time.Minute},
		{"150ms", 150 * time.Millisecond},
		{"0", 0},
		{"106751d", 106751 * 24 * time.Hour},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "d", "1dd", "1d-2h", "30", "1d 2h", "106752d", "1x", ".d", "1d0"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, nil; want an error", in, got)
		}
	}
}
