package proxy

import (
	"bytes"
	"testing"

	"github.com/tailor-edge/tailor/internal/coding"
)

// FuzzHeaderParsers feeds arbitrary header blocks and header values to
// every parser the request path runs on visitor input: none may panic, and
// a block checkFraming accepts must split into the same headers however it
// is walked.
func FuzzHeaderParsers(f *testing.F) {
	f.Add([]byte("Host: x\r\nContent-Length: 5\r\n"), []byte("gzip;q=0, br"))
	f.Add([]byte("Transfer-Encoding: chunked\r\nX: a\r\n b\r\n"), []byte("de-AT,de;q=0.9"))
	f.Add([]byte("Connection: close, X-Forwarded-For\r\nX-Forwarded-For: 1.2.3.4\r\n"), []byte("*;q=0.5"))
	f.Fuzz(func(t *testing.T, raw, value []byte) {
		reason := checkFraming(raw)
		n := 0
		forEachRawHeader(raw, func(name, v []byte) { n++ })
		if reason == "" {
			lines := 0
			for line := range rawLines(raw) {
				if bytes.IndexByte(line, ':') > 0 {
					lines++
				}
			}
			if lines != n {
				t.Errorf("accepted block has %d header lines but forEachRawHeader saw %d", lines, n)
			}
		}
		var conn connectionOptions
		conn.add(value)
		conn.has(value)
		_ = rawHeader(raw, string(value))
		_ = coding.Accepts(value, "gzip")
		_ = coding.Parse(value)
		_ = coding.Negotiate(value, coding.Gzip)
		_ = privateCacheControl(value)
		_ = varyHas(value, "Cookie")
		_ = originForm(value)
	})
}
