package flush

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/internal/testkit"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// TestSlowDownloadFirstByteIsFlushed: what the origin has sent reaches the
// visitor while the origin pauses, with and without Content-Length, on a
// path without rules and on an HTML page without rules. The origin holds
// the rest of the body until the visitor has seen the first part, so a
// proxy that waits for more before writing fails by the origin's timeout.
// TestChunkedPageIsWrittenInFewWrites: a chunked page that the origin
// sends in many small chunks at once reaches the visitor in a few large
// writes, not a write per chunk.
// TestPersonalizedPageStreamsBeforeItsFirstChange: on a path with rules,
// the part of the page before the first rewritten element reaches the
// visitor while the origin is still sending the rest; the page is then
// personalized as a whole. A page that changes before the point predicted
// from the cached page is served as the origin sent it, and counted.
// differs describes where got and want part, without printing pages.
// probeBody records what fasthttp hands a BodyWriterTo.
type probeBody struct {
	fixed, chunked, any bool
	body                []byte
}

func (b *probeBody) Read(p []byte) (int, error) { return 0, io.EOF }
func (b *probeBody) WriteTo(w io.Writer) (int64, error) {
	b.fixed, b.chunked, b.any = fixedBufferOf(w) != nil, chunkedBufferOf(w) != nil, bufferOf(w) != nil
	n, err := w.Write(b.body)
	return int64(n), err
}
func (b *probeBody) SupportsBodyWriteTo() bool { return true }

// TestFasthttpBodyWritersAreKnown: flush.go reaches into fasthttp's body
// writers for their *bufio.Writer; a fasthttp that changes them must fail
// here, not lose the early flush unseen.
func TestFasthttpBodyWritersAreKnown(t *testing.T) {
	for _, size := range []int{5, -1} {
		probe := &probeBody{body: []byte("hello")}
		ln := fasthttputil.NewInmemoryListener()
		srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyStream(probe, size) }}
		go srv.Serve(ln)
		c := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }}
		status, body, err := c.Get(nil, "http://x/")
		srv.Shutdown()
		if err != nil || status != 200 || string(body) != "hello" {
			t.Fatalf("size %d: %d %q %v", size, status, body, err)
		}
		if !probe.any || probe.fixed != (size >= 0) || probe.chunked != (size < 0) {
			t.Errorf("size %d: bufferOf found a buffer: %v, fixedBufferOf: %v, chunkedBufferOf: %v; want true, %v, %v",
				size, probe.any, probe.fixed, probe.chunked, size >= 0, size < 0)
		}
	}
}

// blockingWriter blocks every Write until release is closed: a visitor
// that does not read. entered is closed when the first Write blocks.
type blockingWriter struct {
	release, entered chan struct{}
	once             sync.Once
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return len(p), nil
}

// fastReader gives endless bytes at once: a fast origin.
type fastReader struct{}

func (fastReader) Read(p []byte) (int, error) { return len(p), nil }

// pausingReader gives a few bytes, then waits: a slow origin.
type pausingReader struct {
	once  sync.Once
	pause chan struct{}
}

func (r *pausingReader) Read(p []byte) (int, error) {
	first := false
	r.once.Do(func() { first = true })
	if first {
		return copy(p, "<!doctype html><title>x</title>"), nil
	}
	<-r.pause
	return 0, io.EOF
}

type timedWriter struct {
	mu    sync.Mutex
	first time.Time
}

func (w *timedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.first.IsZero() {
		w.first = time.Now()
	}
	w.mu.Unlock()
	return len(p), nil
}

// TestSlowVisitorHoldsNoOtherFlush: a visitor who does not read keeps
// its copy in a blocking write; the flushing goroutine, shared by all
// responses, must still write out another response's first bytes when
// that response's origin pauses.
func TestSlowVisitorHoldsNoOtherFlush(t *testing.T) {
	slow := &blockingWriter{release: make(chan struct{}), entered: make(chan struct{})}
	go Copy(slow, fastReader{}) // blocks in a buffer-full write, holding c.mu
	select {
	case <-slow.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the slow visitor's copy never wrote")
	}

	tw := &timedWriter{}
	pr := &pausingReader{pause: make(chan struct{})}
	start := time.Now()
	done := make(chan struct{})
	go func() { Copy(tw, pr); close(done) }()
	var got time.Time
	testkit.Within(500*time.Millisecond, 5*time.Millisecond, func() bool {
		tw.mu.Lock()
		defer tw.mu.Unlock()
		got = tw.first
		return !got.IsZero()
	})
	close(slow.release)
	close(pr.pause)
	<-done
	if got.IsZero() {
		t.Fatalf("first bytes of a paused origin not written after 500ms (flusher stuck behind a slow visitor)")
	}
	t.Logf("first write after %v", got.Sub(start))
}

// TestNeverSeenPageStreamsBeforeItsFirstMatch: the first request for a
// page (no template cached) streams too, up to the first element the
// rules' selectors match in what has arrived when the origin pauses, when
// the selectors look only backwards; the page is then personalized as a
// whole. A selector that reads what follows an element (:last-of-type)
// holds the page.
