package proxy

import "testing"

// FuzzHeaderValues feeds arbitrary header blocks and header values to the
// parsers the proxy keeps for itself: none may panic. Those of
// internal/header and internal/coding have fuzz targets of their own.
func FuzzHeaderValues(f *testing.F) {
	f.Add([]byte("Host: x\r\nContent-Length: 5\r\n"), []byte("max-age=60, private"))
	f.Add([]byte("Vary: Accept-Encoding\r\nX: a\r\n b\r\n"), []byte("Accept-Encoding, Cookie"))
	f.Fuzz(func(t *testing.T, raw, value []byte) {
		_ = rawHeader(raw, string(value))
		_ = privateCacheControl(value)
		_ = varyHas(value, "Cookie")
	})
}
