package proxy

import (
	"io"
	"sync"

	"github.com/valyala/bytebufferpool"
)

// Page buffers (an origin's page held for rewriting, the rendered page)
// come from pools by size class, and a page goes out as a body stream
// that returns its buffer here: bytebufferpool's pools (the default one,
// and fasthttp's for response bodies) calibrate the largest size they
// keep from recent use, so after a burst of small pages they dropped
// every 100 KB buffer they were handed and each large page grew new ones
// from nothing (bench/dynamic.sh: page.html after small-mixed.html took
// 175-195 us of CPU per request instead of 85).

// pageClasses are the capacities of the pooled page buffers.
var pageClasses = [...]int{16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20}

var pagePools [len(pageClasses)]sync.Pool

// getPageBuf returns an empty buffer with room for at least size bytes
// (the largest class for a larger size: it grows as it is written).
func getPageBuf(size int) *bytebufferpool.ByteBuffer {
	i := 0
	for i < len(pageClasses)-1 && pageClasses[i] < size {
		i++
	}
	if b, ok := pagePools[i].Get().(*bytebufferpool.ByteBuffer); ok {
		b.Reset()
		return b
	}
	return &bytebufferpool.ByteBuffer{B: make([]byte, 0, max(size, pageClasses[i]))}
}

// putPageBuf pools b in the largest class its capacity holds; a buffer
// smaller than the smallest class, or over four times the largest, is
// left to the garbage collector.
func putPageBuf(b *bytebufferpool.ByteBuffer) {
	c := cap(b.B)
	if c > 4*pageClasses[len(pageClasses)-1] {
		return
	}
	for i := len(pageClasses) - 1; i >= 0; i-- {
		if c >= pageClasses[i] {
			pagePools[i].Put(b)
			return
		}
	}
}

// pageBody is a response body held in a page buffer, returned to the pool
// once fasthttp has written (or dropped) the response.
type pageBody struct {
	b   *bytebufferpool.ByteBuffer
	off int
}

func (p *pageBody) Read(b []byte) (int, error) {
	if p.b == nil || p.off >= len(p.b.B) {
		return 0, io.EOF
	}
	n := copy(b, p.b.B[p.off:])
	p.off += n
	return n, nil
}

// WriteTo writes the page in one write, into the connection's buffer.
func (p *pageBody) WriteTo(w io.Writer) (int64, error) {
	if p.b == nil {
		return 0, nil
	}
	n, err := w.Write(p.b.B[p.off:])
	p.off += n
	return int64(n), err
}

// SupportsBodyWriteTo lets fasthttp use WriteTo.
func (p *pageBody) SupportsBodyWriteTo() bool { return true }

// Close hands the buffer back; fasthttp calls it once the response is done.
func (p *pageBody) Close() error {
	if p.b != nil {
		putPageBuf(p.b)
		p.b = nil
	}
	return nil
}
