package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestAmbiguousRequestsAreRefusedAndNeverForwarded sends the classic
// request-smuggling shapes. Each must get a 400, and the origin must see
// nothing: neither the request nor anything hidden in its body.
func TestAmbiguousRequestsAreRefusedAndNeverForwarded(t *testing.T) {
	origin, sent := recordingOrigin(t, func(r *http.Request) string {
		b, _ := io.ReadAll(r.Body)
		return r.Method + " " + r.URL.Path + " " + string(b)
	}, nil)
	p := startProxy(t, origin, nil)
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, tc := range []struct{ name, raw string }{
		{"content-length and transfer-encoding",
			"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"transfer-encoding and content-length",
			"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n" + smuggled},
		{"differing duplicate content-length",
			"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 38\r\n\r\nhello" + smuggled},
		{"identical duplicate content-length",
			"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"},
		{"comma list content-length",
			"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 38\r\n\r\nhello" + smuggled},
		{"obfuscated transfer-encoding",
			"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"transfer-encoding list",
			"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"duplicate transfer-encoding",
			"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n" + smuggled},
		{"space before colon",
			"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled},
		{"obs-fold header",
			"GET /a HTTP/1.1\r\nHost: x\r\nX-Folded: one\r\n two\r\n\r\n"},
		{"obs-fold transfer-encoding",
			"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"bad chunk size",
			"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" + smuggled},
		{"chunk size overflow",
			"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n" + smuggled},
		{"chunk without crlf",
			"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n" + smuggled},
		{"negative content-length",
			"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n" + smuggled},
		{"transfer-encoding on http/1.0",
			"POST /a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := rawRoundTrip(t, p.addr, tc.raw)
			if raw == "" {
				t.Fatal("no response at all, want 400")
			}
			if s := statusOf(t, raw); s != http.StatusBadRequest {
				t.Errorf("status = %d, want 400:\n%s", s, raw)
			}
			if n := strings.Count(raw, "HTTP/1.1 "); n != 1 {
				t.Errorf("got %d responses on the connection, want exactly one (the 400):\n%s", n, raw)
			}
		})
	}
	if seen := sent.All(); len(seen) > 0 {
		t.Errorf("origin received %d requests that should have been refused: %q", len(seen), seen)
	}
}

func TestChunkedUploadIsForwardedIntact(t *testing.T) {
	got := make(chan string, 1)
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	p := startProxy(t, origin.URL, nil)
	for _, size := range []int{5, chunkedPrefetch - 1, chunkedPrefetch, 3*chunkedPrefetch + 17} {
		body := strings.Repeat("x", size)
		// io.MultiReader hides the length, so net/http sends it chunked.
		resp, err := client().Post(p.url+"/upload", "text/plain", io.MultiReader(strings.NewReader(body)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("chunked upload of %d bytes: status %d", size, resp.StatusCode)
		}
		if b := <-got; b != body {
			t.Errorf("chunked upload of %d bytes arrived as %d bytes", size, len(b))
		}
	}
}
