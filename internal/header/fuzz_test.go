package header

import (
	"bytes"
	"testing"

	"github.com/valyala/fasthttp"
)

// FuzzHeaderParsers feeds arbitrary header blocks and header values to
// every parser here that runs on visitor input: none may panic, and a
// block CheckFraming accepts must split into the same headers however it
// is walked.
func FuzzHeaderParsers(f *testing.F) {
	f.Add([]byte("Host: x\r\nContent-Length: 5\r\n"), []byte("gzip;q=0, br"))
	f.Add([]byte("Transfer-Encoding: chunked\r\nX: a\r\n b\r\n"), []byte("de-AT,de;q=0.9"))
	f.Add([]byte("Connection: close, X-Forwarded-For\r\nX-Forwarded-For: 1.2.3.4\r\n"), []byte("*;q=0.5"))
	f.Fuzz(func(t *testing.T, raw, value []byte) {
		reason := CheckFraming(raw)
		n := 0
		ForEach(raw, func(name, v []byte) { n++ })
		if reason == "" {
			count := 0
			for line := range lines(raw) {
				if bytes.IndexByte(line, ':') > 0 {
					count++
				}
			}
			if count != n {
				t.Errorf("accepted block has %d header lines but ForEach saw %d", count, n)
			}
		}
		var conn connectionOptions
		conn.add(value)
		conn.has(value)
		_ = OriginForm(value)
		_ = Offered(value, value)
		_ = withoutCookie(value, "tailor_console")
		var out fasthttp.RequestHeader
		fwd := Forward{PrivateCookie: "tailor_console"}
		fwd.Copy(&out, raw)
	})
}
