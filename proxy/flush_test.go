package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSlowDownloadFirstByteIsFlushed: what the origin has sent reaches the
// visitor while the origin pauses, with and without Content-Length, on a
// path without rules and on an HTML page without rules. The origin holds
// the rest of the body until the visitor has seen the first part, so a
// proxy that waits for more before writing fails by the origin's timeout.
func TestSlowDownloadFirstByteIsFlushed(t *testing.T) {
	first := bytes.Repeat([]byte("a"), 1024)
	rest := bytes.Repeat([]byte("b"), 4096)
	for _, tc := range []struct {
		name, ctype string
		length      bool
	}{
		{"content-length", "application/octet-stream", true},
		{"chunked", "application/octet-stream", false},
		{"html chunked", "text/html", false},
		{"html content-length", "text/html", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := make(chan struct{})
			origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				if tc.length {
					w.Header().Set("Content-Length", strconv.Itoa(len(first)+len(rest)))
				}
				w.Write(first)
				w.(http.Flusher).Flush()
				select {
				case <-seen:
				case <-time.After(5 * time.Second):
				}
				w.Write(rest)
			}))
			p := startProxy(t, origin.URL, nil)
			resp, err := client().Get(p.url + "/download")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			start := time.Now()
			got := make([]byte, len(first))
			if _, err := io.ReadFull(resp.Body, got); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			close(seen)
			tail, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, first) || !bytes.Equal(tail, rest) {
				t.Fatalf("body: %d+%d bytes, not the origin's", len(got), len(tail))
			}
			if took > 2*time.Second {
				t.Errorf("the first %d bytes took %v: written only when the origin sent more", len(first), took)
			}
		})
	}
}

// TestChunkedPageIsWrittenInFewWrites: a chunked page that the origin
// sends in many small chunks at once reaches the visitor in a few large
// writes, not a write per chunk.
func TestChunkedPageIsWrittenInFewWrites(t *testing.T) {
	const chunks = 200
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		var b strings.Builder
		for i := range chunks {
			// Each Write+Flush of net/http is one chunk on the wire.
			b.Reset()
			fmt.Fprintf(&b, "<p>paragraph %d %s</p>\n", i, strings.Repeat("x", 300))
			io.WriteString(w, b.String())
			w.(http.Flusher).Flush()
		}
	}))
	p := startProxy(t, origin.URL, nil)
	raw := rawRoundTrip(t, p.addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	_, body, ok := strings.Cut(raw, "\r\n\r\n")
	if !ok {
		t.Fatalf("no header end in %q", raw)
	}
	// Count the chunks the proxy wrote: size lines of the chunked body.
	n := 0
	for len(body) > 0 {
		line, after, ok := strings.Cut(body, "\r\n")
		if !ok {
			t.Fatalf("bad chunk framing near %q", body[:min(len(body), 40)])
		}
		size, err := strconv.ParseInt(line, 16, 64)
		if err != nil {
			t.Fatalf("bad chunk size %q", line)
		}
		if size == 0 {
			break
		}
		n++
		body = after[size+2:]
	}
	if n > chunks/10 {
		t.Errorf("the proxy wrote %d chunks for the origin's %d; want a few large ones", n, chunks)
	}
	t.Logf("%d origin chunks (%d bytes each) written as %d", chunks, 320, n)
}
