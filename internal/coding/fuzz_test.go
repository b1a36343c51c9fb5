package coding

import "testing"

// FuzzAcceptEncoding feeds arbitrary header values to the parsers of
// Content-Encoding and Accept-Encoding, which run on origin and visitor
// input: none may panic.
func FuzzAcceptEncoding(f *testing.F) {
	f.Add([]byte("gzip;q=0, br"))
	f.Add([]byte("*;q=0.5"))
	f.Add([]byte("x-gzip"))
	f.Fuzz(func(t *testing.T, value []byte) {
		_ = Accepts(value, "gzip")
		_ = Parse(value)
		_ = Negotiate(value, Gzip)
	})
}
