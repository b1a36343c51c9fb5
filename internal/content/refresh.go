package content

import (
	"html"
	"strings"
)

// filterRefresh returns a content attribute's rendered value v, unless it
// reads as a refresh ("5; url=…", as <meta http-equiv=refresh> takes it)
// to a URL with a scheme other than http or https: that URL is replaced
// by #ZgotmplZ, as html/template replaces an unsafe href (a javascript:
// refresh runs script). As for an href, only the scheme is checked: a
// value that is a whole URL ("//elsewhere.example") still leads
// elsewhere, so a template should write the host itself. Any other
// content value is returned as it is.
func filterRefresh(v []byte) []byte {
	s := html.UnescapeString(string(v))
	i := skipSpace(s, 0)
	j := i
	for j < len(s) && ('0' <= s[j] && s[j] <= '9' || s[j] == '.') {
		j++
	}
	if j == i {
		return v // no delay: not a refresh
	}
	k := skipSpace(s, j)
	if k < len(s) && (s[k] == ';' || s[k] == ',') {
		k = skipSpace(s, k+1)
	}
	if len(s)-k >= 3 && strings.EqualFold(s[k:k+3], "url") {
		if m := skipSpace(s, k+3); m < len(s) && s[m] == '=' {
			k = skipSpace(s, m+1)
		}
	}
	u := s[k:]
	if len(u) > 0 && (u[0] == '\'' || u[0] == '"') {
		u = u[1:]
	}
	if safeURL(u) {
		return v
	}
	return []byte(html.EscapeString(s[:k]) + "#ZgotmplZ")
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\f' || s[i] == '\r') {
		i++
	}
	return i
}

// safeURL reports whether u is relative or http(s), read as a browser
// reads it: tabs and line breaks removed, leading controls and spaces
// skipped.
func safeURL(u string) bool {
	u = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, u)
	u = strings.TrimLeft(u, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")
	i := strings.IndexAny(u, ":/?#")
	if i < 0 || u[i] != ':' {
		return true
	}
	scheme := strings.ToLower(u[:i])
	return scheme == "http" || scheme == "https"
}
