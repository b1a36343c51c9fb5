package proxy

import (
	"bufio"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/config"
)

// patternReader produces n bytes of a repeating pattern without holding
// them in memory.
type patternReader struct{ left int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	r.left -= int64(len(p))
	return len(p), nil
}

// heapWatcher samples the heap while a transfer runs and reports the peak
// above the baseline.
func heapWatcher() (stop func() uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > base && ms.HeapInuse-base > peak.Load() {
					peak.Store(ms.HeapInuse - base)
				}
			}
		}
	}()
	return func() uint64 { close(done); <-finished; return peak.Load() }
}

// flatHeap is how much the heap may grow while gigabytes stream through:
// buffers, not bodies.
const flatHeap = 64 << 20

func TestLargeDownloadStreamsWithFlatMemory(t *testing.T) {
	size := int64(1 << 30)
	if raceEnabled {
		size = 256 << 20 // the race detector makes every byte ~10x slower
	}
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		io.Copy(w, &patternReader{left: size})
	}))
	p := startProxy(t, origin.URL, nil)
	want := sha256.New()
	io.Copy(want, &patternReader{left: size})

	stop := heapWatcher()
	resp, err := client().Get(p.url + "/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	peak := stop()
	if err != nil || n != size {
		t.Fatalf("downloaded %d bytes (%v), want %d", n, err, size)
	}
	if string(h.Sum(nil)) != string(want.Sum(nil)) {
		t.Error("downloaded bytes differ from the origin's")
	}
	t.Logf("%d MiB through the proxy, heap peak +%d MiB", size>>20, peak>>20)
	if peak > flatHeap {
		t.Errorf("heap grew by %d MiB during a %d MiB download, want < %d MiB", peak>>20, size>>20, flatHeap>>20)
	}
}

func TestLargeUploadStreamsWithFlatMemory(t *testing.T) {
	size := int64(100 << 20)
	got := make(chan [2]string, 1)
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		got <- [2]string{strconv.FormatInt(n, 10), string(h.Sum(nil))}
	}))
	p := startProxy(t, origin.URL, nil)
	want := sha256.New()
	io.Copy(want, &patternReader{left: size})

	for _, chunked := range []bool{false, true} {
		stop := heapWatcher()
		req, _ := http.NewRequest("PUT", p.url+"/upload", io.NopCloser(&patternReader{left: size}))
		if !chunked {
			req.ContentLength = size
		}
		resp, err := client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		peak := stop()
		r := <-got
		if resp.StatusCode != 200 || r[0] != strconv.FormatInt(size, 10) || r[1] != string(want.Sum(nil)) {
			t.Errorf("upload (chunked=%v): status %d, origin got %s bytes, digest match %v", chunked, resp.StatusCode, r[0], r[1] == string(want.Sum(nil)))
		}
		t.Logf("upload chunked=%v: %d MiB, heap peak +%d MiB", chunked, size>>20, peak>>20)
		if peak > flatHeap {
			t.Errorf("heap grew by %d MiB during a %d MiB upload (chunked=%v), want < %d MiB", peak>>20, size>>20, chunked, flatHeap>>20)
		}
	}
}

func TestShutdownDrainsInFlightRequests(t *testing.T) {
	entered := make(chan struct{})
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		time.Sleep(500 * time.Millisecond)
		w.Write([]byte("finished"))
	}))
	p := startProxy(t, origin.URL, nil)
	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := client().Get(p.url + "/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{resp.StatusCode, string(b), err}
	}()
	<-entered
	took := shutdown(t, p)
	r := <-res
	if r.err != nil || r.status != 200 || r.body != "finished" {
		t.Errorf("in-flight request during shutdown: %d %q %v, want 200 finished", r.status, r.body, r.err)
	}
	if took > 3*time.Second {
		t.Errorf("Shutdown took %v", took)
	}
	if _, err := client().Get(p.url + "/after"); err == nil {
		t.Error("a new request after Shutdown was accepted")
	}
}

// TestIdleKeepAliveConnectionsHoldOnlyTheirHeaderBuffer opens many
// keep-alive connections, sends one request on each and leaves them idle:
// the 128 KiB write buffer must go back to the pool. The read buffer
// (max_header_bytes) stays with the connection: fasthttp cannot release it
// while request bodies stream, which is why it is sized by the config.
func TestIdleKeepAliveConnectionsHoldOnlyTheirHeaderBuffer(t *testing.T) {
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	const headerBytes = 16 << 10
	p := startProxy(t, origin.URL, func(c *config.Config, _ *Options) { c.MaxHeaderBytes = headerBytes })
	const conns = 500
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := 0; i < conns; i++ {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// Twice: buffers returned to a sync.Pool survive one collection.
	runtime.GC()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("%d idle keep-alive connections: heap +%d KiB (%d B each)", conns, grew>>10, grew/conns)
	if perConn := grew / conns; perConn > headerBytes+8<<10 {
		t.Errorf("each idle connection holds %d bytes, want at most its %d-byte header buffer and a little", perConn, headerBytes)
	}
}

// TestPageLargerThanMaxRewriteBodyIsRewrittenInPieces: a page many times
// max_rewrite_body, with the rules' elements at its end, is personalized
// (rewrite.Segmenter), with or without Content-Length, in memory bounded
// by what is held rather than by the page.
func TestPageLargerThanMaxRewriteBodyIsRewrittenInPieces(t *testing.T) {
	size := 96 << 20 // beyond flatHeap: a page held whole would fail
	if raceEnabled {
		size = 4 << 20
	}
	_, edit := withRules(t, map[string]string{"shop.yaml": shopRules})
	head := "<!DOCTYPE html>\n<html lang=en><head><title>Long</title></head>\n<body class=long>\n<main>\n"
	filler := strings.Repeat("<p>Filler paragraph of a very long page.</p>\n", 100)
	tail := "<p class='greeting'>Welcome!</p><section id=hero><h1>Gear</h1></section></main></body></html>\n"
	n := (size - len(head) - len(tail)) / len(filler)
	pageLen := len(head) + n*len(filler) + len(tail)
	wantTail := "<p class='greeting'>Hello &amp; welcome</p><section id=hero><h1><em>Run further</em></h1></section></main></body></html>\n"
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		if r.URL.Query().Get("length") != "" {
			w.Header().Set("Content-Length", strconv.Itoa(pageLen))
		}
		io.WriteString(w, head)
		for range n {
			io.WriteString(w, filler)
		}
		io.WriteString(w, tail)
	}))
	p := startProxy(t, origin.URL, func(c *config.Config, o *Options) {
		edit(c, o)
		c.MaxRewriteBody = 1 << 20
	})
	for _, path := range []string{"/", "/?length=1"} {
		stop := heapWatcher()
		resp, err := client().Get(p.url + path)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		var last []byte
		buf := make([]byte, 64<<10)
		got := 0
		for {
			k, err := resp.Body.Read(buf)
			h.Write(buf[:k])
			got += k
			last = append(last, buf[:k]...)
			if len(last) > 4096 {
				last = last[len(last)-4096:]
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		resp.Body.Close()
		peak := stop()
		wantLen := pageLen - len(tail) + len(wantTail)
		if got != wantLen || !strings.HasSuffix(string(last), wantTail) {
			t.Errorf("%s: %d bytes ending %q; want %d ending with the personalized tail", path, got, last[max(0, len(last)-120):], wantLen)
		}
		t.Logf("%s: %d MiB page personalized in pieces, heap peak +%d MiB", path, pageLen>>20, peak>>20)
		if peak > flatHeap && !raceEnabled {
			t.Errorf("%s: heap grew by %d MiB for a %d MiB page with max_rewrite_body 1 MiB", path, peak>>20, pageLen>>20)
		}
	}
	if n := counterValue(t, p.Registry(), "tailor_rewrites_total", "result", "rewritten"); n != 2 {
		t.Errorf("tailor_rewrites_total{result=rewritten} = %v, want 2", n)
	}
	if n := counterValue(t, p.Registry(), "tailor_rule_hits_total", "rule", "greet"); n != 2 {
		t.Errorf("tailor_rule_hits_total{rule=greet} = %v, want 2", n)
	}

	// A selector that reads preceding siblings cannot be cut in pieces:
	// the page goes through as the origin sent it, Content-Length kept.
	_, edit2 := withRules(t, map[string]string{"nth.yaml": `pages:
  - match: ["/**"]
    rules:
      - id: second
        select: "p:nth-child(2)"
        add_class: second
`})
	p2 := startProxy(t, origin.URL, func(c *config.Config, o *Options) {
		edit2(c, o)
		c.MaxRewriteBody = 1 << 20
	})
	resp, err := client().Get(p2.url + "/?length=1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || int(got) != pageLen || resp.ContentLength != int64(pageLen) {
		t.Errorf("non-local selector: %d bytes, Content-Length %d, %v; want the origin's %d with its length", got, resp.ContentLength, err, pageLen)
	}
	if n := counterValue(t, p2.Registry(), "tailor_rewrites_total", "result", "too_large"); n != 1 {
		t.Errorf("tailor_rewrites_total{result=too_large} = %v, want 1", n)
	}
}
