package match

import (
	"testing"
	"time"
)

func TestTimeWindows(t *testing.T) {
	utc := func(day, h, m int) time.Time { return time.Date(2026, 6, day, h, m, 0, 0, time.UTC) } // June 1st 2026 is a Monday
	tests := []struct {
		window string
		at     time.Time
		want   bool
	}{
		{"Mon-Fri 09:00-17:00 UTC", utc(1, 9, 0), true},
		{"Mon-Fri 09:00-17:00 UTC", utc(1, 17, 0), false},
		{"Mon-Fri 09:00-17:00 UTC", utc(1, 8, 59), false},
		{"Mon-Fri 09:00-17:00", utc(5, 16, 59), true},
		{"Mon-Fri 09:00-17:00", utc(6, 12, 0), false},
		{"Sat,Sun", utc(7, 23, 59), true},
		{"Sat,Sun", utc(8, 0, 0), false},
		{"Fri-Mon", utc(1, 0, 0), true},
		{"Fri-Mon", utc(2, 0, 0), false},
		{"Mon-Wed,Fri", utc(5, 12, 0), true},
		{"Mon-Wed,Fri", utc(4, 12, 0), false},
		{"monday", utc(1, 12, 0), true},
		{"daily 22:00-06:00 UTC", utc(3, 23, 0), true},
		{"daily 22:00-06:00 UTC", utc(3, 5, 59), true},
		{"daily 22:00-06:00 UTC", utc(3, 6, 0), false},
		{"Fri 22:00-02:00 UTC", utc(5, 23, 0), true},  // Friday evening
		{"Fri 22:00-02:00 UTC", utc(6, 1, 0), true},   // Saturday small hours belong to Friday
		{"Fri 22:00-02:00 UTC", utc(6, 23, 0), false}, // Saturday evening
		{"Fri 22:00-02:00 UTC", utc(5, 1, 0), false},  // Friday small hours belong to Thursday
		{"12:00-24:00", utc(3, 23, 59), true},
		{"12:00-24:00", utc(3, 11, 59), false},
		{"09:00-17:00 America/New_York", utc(1, 13, 0), true}, // 09:00 EDT
		{"09:00-17:00 America/New_York", utc(1, 12, 59), false},
		{"UTC", utc(1, 0, 0), true},
		{"Mon Asia/Tokyo", utc(7, 15, 0), true}, // Monday 00:00 in Tokyo
	}
	for _, tt := range tests {
		w, err := ParseWindow(tt.window)
		if err != nil {
			t.Errorf("ParseWindow(%q): %v", tt.window, err)
			continue
		}
		if got := w.Contains(tt.at); got != tt.want {
			t.Errorf("window %q contains %v = %v, want %v", tt.window, tt.at.Format(time.RFC1123), got, tt.want)
		}
	}
}

func TestBadTimeWindows(t *testing.T) {
	for _, s := range []string{
		"", "Mon-Fry", "Mon 9-17", "Mon 09:00", "Mon 09:00-25:00", "Mon 09:60-10:00", "Mon 24:00-10:00",
		"Mon 09:00-09:00", "Mon 09:00-17:00 Mars/Olympus", "Mon 09:00-17:00 Local", "Local",
		"Mon 09:00-17:00 UTC extra", "09:00-17:00 Mon", "Europe/Paris 09:00-17:00",
	} {
		if w, err := ParseWindow(s); err == nil {
			t.Errorf("ParseWindow(%q) = %+v, want an error", s, w)
		}
	}
}

func TestComparisons(t *testing.T) {
	tests := []struct {
		src  string
		v    float64
		want bool
	}{
		{">= 2", 2, true}, {">=2", 1, false}, {"> 2", 2, false}, {"<= 2", 2, true}, {"< 2", 1.5, true},
		{"== 0", 0, true}, {"= 1", 1, true}, {"!= 1", 1, false}, {"3", 3, true}, {" >  -1.5 ", -1, true},
	}
	for _, tt := range tests {
		c, err := ParseComparison(tt.src)
		if err != nil {
			t.Errorf("ParseComparison(%q): %v", tt.src, err)
			continue
		}
		if got := c.Test(tt.v); got != tt.want {
			t.Errorf("%q on %v = %v, want %v", tt.src, tt.v, got, tt.want)
		}
	}
	for _, s := range []string{"> = 2", "=> 2", ">", "", "two", ">= 2 apples", "<> 1", "NaN", ">= Inf"} {
		if c, err := ParseComparison(s); err == nil {
			t.Errorf("ParseComparison(%q) = %+v, want an error", s, c)
		}
	}
}

func TestPathGlobs(t *testing.T) {
	tests := []struct {
		glob, path string
		want       bool
	}{
		{"/", "/", true},
		{"/", "/a", false},
		{"/about", "/about", true},
		{"/about", "/about/", false},
		{"/products/*", "/products/shoe", true},
		{"/products/*", "/products/", true},
		{"/products/*", "/products", false},
		{"/products/*", "/products/a/b", false},
		{"/products/**", "/products", true},
		{"/products/**", "/products/", true},
		{"/products/**", "/products/a/b", true},
		{"/products/**", "/productsx", false},
		{"/**/*.html", "/index.html", true},
		{"/**/*.html", "/a/b/c.html", true},
		{"/**/*.html", "/a/b/c.htm", false},
		{"/a/**/b", "/a/b", true},
		{"/a/**/b", "/a/x/y/b", true},
		{"/a/**/b", "/a/xb", false},
		{"/p?ge", "/page", true},
		{"/p?ge", "/p/ge", false},
		{"/a.b", "/axb", false},
		{"/**", "/anything/at/all", true},
		{"/(x)+", "/(x)+", true},
	}
	for _, tt := range tests {
		g, err := CompileGlob(tt.glob)
		if err != nil {
			t.Errorf("CompileGlob(%q): %v", tt.glob, err)
			continue
		}
		if got := g.Match(tt.path); got != tt.want {
			t.Errorf("glob %q matches %q = %v, want %v", tt.glob, tt.path, got, tt.want)
		}
	}
	for _, s := range []string{"", "products/*", "/a**", "/***", "/a/**b/c"} {
		if _, err := CompileGlob(s); err == nil {
			t.Errorf("CompileGlob(%q) succeeded, want an error", s)
		}
	}
}

func TestWildcards(t *testing.T) {
	tests := []struct {
		pattern string
		fold    bool
		s       string
		want    bool
	}{
		{"*.google.com", true, "www.google.com", true},
		{"*.google.com", true, "a.b.GOOGLE.com", true},
		{"*.google.com", true, "google.com", false},
		{"*.google.com", false, "WWW.GOOGLE.COM", false},
		{"Example.com", true, "example.COM", true},
		{"Example.com", false, "example.com", false},
		{"a*b*c", false, "a/x.b?c", true},
		{"(x)+", false, "(x)+", true},
	}
	for _, tt := range tests {
		w, err := CompileWildcard(tt.pattern, tt.fold)
		if err != nil {
			t.Errorf("CompileWildcard(%q): %v", tt.pattern, err)
			continue
		}
		if got := w.Match(tt.s); got != tt.want {
			t.Errorf("wildcard %q (fold %v) matches %q = %v, want %v", tt.pattern, tt.fold, tt.s, got, tt.want)
		}
	}
}

// The parsers read rule files a user wrote: none may panic, and what they
// accept must say what it was given.
func FuzzParsers(f *testing.F) {
	for _, s := range []string{"/products/**", "/**/*.html", "/p?ge", "Mon-Fri 09:00-17:00 Europe/Paris", "22:00-06:00 UTC", ">= 2", "*.google.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// A glob or a wildcard matches its own text: * and ? match
		// themselves, ** matches "/**".
		if g, err := CompileGlob(s); err == nil {
			if g.String() != s || !g.Match(s) {
				t.Errorf("CompileGlob(%q): String() = %q, matches itself = %v", s, g.String(), g.Match(s))
			}
		}
		if w, err := CompileWildcard(s, true); err == nil && !w.Match(s) {
			t.Errorf("CompileWildcard(%q) does not match itself", s)
		}
		if w, err := ParseWindow(s); err == nil {
			_ = w.Contains(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
		}
		if c, err := ParseComparison(s); err == nil {
			_ = c.Test(0)
		}
	})
}
