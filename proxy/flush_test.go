package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/internal/testkit"
)

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

func TestPersonalizedPageStreamsBeforeItsFirstChange(t *testing.T) {
	_, edit := withRules(t, map[string]string{"shop.yaml": shopRules})
	head := "<!DOCTYPE html><html><head><title>Shop</title>" +
		"<style>" + strings.Repeat("p{margin:0}\n", 1000) + "</style></head><body>\n"
	late := "<p class='greeting'>Welcome!</p><section id=hero><h1>Gear</h1></section></body></html>\n"
	var early atomic.Value // a greeting before the predicted first change, when set
	early.Store("")
	headOf := func() string {
		return strings.Replace(head, "<title>Shop</title>", "<title>Shop</title>"+early.Load().(string), 1)
	}
	seen := make(chan struct{}, 1)
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, headOf())
		w.(http.Flusher).Flush()
		if r.Header.Get("X-Test-Wait") != "" {
			select {
			case <-seen:
			case <-time.After(3 * time.Second):
			}
		}
		io.WriteString(w, late)
	}))
	p := startProxy(t, origin.URL, edit)
	want := head + "<p class='greeting'>Hello &amp; welcome</p><section id=hero><h1><em>Run further</em></h1></section></body></html>\n"

	// The first request compiles the page; the cache predicts the next.
	if _, body := get(t, p.url+"/"); string(body) != want {
		t.Fatalf("first request: %s", testkit.Differs(string(body), want))
	}
	waiting := func() *http.Response {
		req, err := http.NewRequest("GET", p.url+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Test-Wait", "1") // the origin holds the late part until the visitor has the head
		resp, err := client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := waiting()
	start := time.Now()
	got := make([]byte, len(head)/2)
	if _, err := io.ReadFull(resp.Body, got); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	seen <- struct{}{}
	rest, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if body := string(got) + string(rest); body != want {
		t.Fatalf("streamed page: %s", testkit.Differs(body, want))
	}
	if took > 2*time.Second {
		t.Errorf("the page's first %d bytes took %v: held until the origin sent the rest", len(got), took)
	}
	if n := counterValue(t, p.Registry(), "tailor_rewrites_total", "result", "rewritten"); n != 2 {
		t.Errorf("tailor_rewrites_total{result=rewritten} = %v, want 2", n)
	}

	// A greeting early in the page, before what was sent: the visitor gets
	// the origin's page.
	early.Store("<p class=greeting>Early</p>")
	resp = waiting()
	got = make([]byte, len(head)/2)
	if _, err := io.ReadFull(resp.Body, got); err != nil {
		t.Fatal(err)
	}
	seen <- struct{}{}
	rest, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if body, origin := string(got)+string(rest), headOf()+late; body != origin {
		t.Fatalf("conflicting page: %s", testkit.Differs(body, origin))
	}
	if n := counterValue(t, p.Registry(), "tailor_rewrites_total", "result", "conflict"); n != 1 {
		t.Errorf("tailor_rewrites_total{result=conflict} = %v, want 1", n)
	}
	// Its template is cached now: the next one is personalized again.
	_, body := get(t, p.url+"/")
	if !strings.Contains(string(body), "<p class=greeting>Hello &amp; welcome</p>") {
		t.Errorf("after the conflict, the page is not personalized: %d bytes", len(body))
	}
}

func TestNeverSeenPageStreamsBeforeItsFirstMatch(t *testing.T) {
	const lastRules = `pages:
  - match: ["/last/**"]
    rules:
      - id: last
        select: "p:last-of-type"
        add_class: last
`
	_, edit := withRules(t, map[string]string{"shop.yaml": shopRules, "last.yaml": lastRules})
	head := "<!DOCTYPE html><html><head><title>Shop</title>" +
		"<style>" + strings.Repeat("p{margin:0}\n", 1000) + "</style></head><body>\n"
	late := "<p class='greeting'>Welcome!</p><section id=hero><h1>Gear</h1></section><p>end</p></body></html>\n"
	seen := make(chan struct{}, 1)
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		page := head
		if r.URL.Query().Get("early") != "" {
			// A match in the head: only what comes before it streams.
			page = strings.Replace(page, "<title>", "<p class=greeting>Hi</p><title>", 1)
		}
		io.WriteString(w, page)
		w.(http.Flusher).Flush()
		select {
		case <-seen:
		case <-time.After(time.Second):
		}
		io.WriteString(w, late)
	}))
	p := startProxy(t, origin.URL, edit)
	for _, tc := range []struct {
		name, path, want string
		streams          bool
	}{
		{"late match", "/", head + "<p class='greeting'>Hello &amp; welcome</p><section id=hero><h1><em>Run further</em></h1></section><p>end</p></body></html>\n", true},
		{"match in the head", "/index.html?early=1", "", true},
		{"backward-blind selector", "/last/a", head + "<p class='greeting'>Welcome!</p><section id=hero><h1>Gear</h1></section><p class=\"last\">end</p></body></html>\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want == "" {
				want = strings.Replace(head, "<title>", "<p class=greeting>Hello &amp; welcome</p><title>", 1) +
					"<p class='greeting'>Hello &amp; welcome</p><section id=hero><h1><em>Run further</em></h1></section><p>end</p></body></html>\n"
			}
			start := time.Now()
			resp, err := client().Get(p.url + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			// The head's first 4 KiB arrive while the origin waits, or
			// only once it has timed out.
			got := make([]byte, 4096)
			if tc.name == "match in the head" {
				got = got[:strings.Index(head, "<title>")] // all that may stream
			}
			if _, err := io.ReadFull(resp.Body, got); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			seen <- struct{}{}
			rest, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if body := string(got) + string(rest); body != want {
				t.Fatalf("page: %s", testkit.Differs(body, want))
			}
			if streamed := took < 500*time.Millisecond; streamed != tc.streams {
				t.Errorf("first %d bytes after %v: streamed %v, want %v", len(got), took, streamed, tc.streams)
			}
			t.Logf("first %d bytes after %v", len(got), took)
		})
	}
	if n := counterValue(t, p.Registry(), "tailor_rewrites_total", "result", "rewritten"); n != 3 {
		t.Errorf("tailor_rewrites_total{result=rewritten} = %v, want 3", n)
	}
}
