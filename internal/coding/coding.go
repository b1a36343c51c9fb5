// Package coding reads and writes the content codings an origin may send
// (gzip, deflate, br, zstd), so that a compressed page can be rewritten and
// compressed again for the visitor, and picks the coding the visitor
// Accepts. Readers and writers are pooled: a rewrite costs no allocation
// of compressor state.
package coding

import (
	"bytes"
	"errors"
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/valyala/bytebufferpool"

	"github.com/tailor-edge/tailor/internal/header"
)

// Coding is a content coding tailor can decode for rewriting and encode
// again for the visitor.
type Coding uint8

// The codings, as Parse reads them.
const (
	Identity Coding = iota
	Gzip
	Deflate
	Brotli
	Zstd
	Unknown // a coding we cannot read: such a body passes through untouched
)

var encodingNames = [...]string{Identity: "", Gzip: "gzip", Deflate: "deflate", Brotli: "br", Zstd: "zstd"}

func (e Coding) String() string {
	if int(e) < len(encodingNames) {
		return encodingNames[e]
	}
	return "unknown"
}

// Parse reads a Content-Encoding value. Stacked codings
// ("gzip, br") are reported unknown: rare enough not to be worth decoding.
func Parse(v []byte) Coding {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0, header.EqualFold(v, "identity"):
		return Identity
	case header.EqualFold(v, "gzip"), header.EqualFold(v, "x-gzip"):
		return Gzip
	case header.EqualFold(v, "deflate"):
		return Deflate
	case header.EqualFold(v, "br"):
		return Brotli
	case header.EqualFold(v, "zstd"):
		return Zstd
	}
	return Unknown
}

// ErrTooLarge is returned when a decoded body would exceed the rewrite limit.
var ErrTooLarge = errors.New("decoded body exceeds max_rewrite_body")

var (
	gzipReaders sync.Pool // *gzip.Reader
	zstdReaders sync.Pool // *zstd.Decoder
	gzipWriters = sync.Pool{New: func() any {
		w, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
		return w
	}}
	zlibWriters = sync.Pool{New: func() any {
		w, _ := zlib.NewWriterLevel(nil, zlib.DefaultCompression)
		return w
	}}
	// Quality 5 is brotli's usual choice for dynamic content: smaller than
	// gzip at a similar speed.
	brotliWriters = sync.Pool{New: func() any { return brotli.NewWriterLevel(nil, 5) }}
	// EncodeAll may be called concurrently on one encoder.
	zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
)

// decode appends body, decoded from enc, to dst; at most max decoded bytes.
func Decode(dst *bytebufferpool.ByteBuffer, body []byte, enc Coding, max int) error {
	var r io.Reader
	switch enc {
	case Identity:
		if len(body) > max {
			return ErrTooLarge
		}
		dst.Write(body)
		return nil
	case Gzip:
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		if zr == nil {
			zr = new(gzip.Reader)
		}
		defer gzipReaders.Put(zr)
		if err := zr.Reset(bytes.NewReader(body)); err != nil {
			return err
		}
		r = zr
	case Deflate:
		// RFC 9110 "deflate" is zlib-wrapped; some servers send raw deflate.
		zr, err := zlib.NewReader(bytes.NewReader(body))
		if err != nil {
			fr := flate.NewReader(bytes.NewReader(body))
			defer fr.Close()
			r = fr
		} else {
			defer zr.Close()
			r = zr
		}
	case Brotli:
		r = brotli.NewReader(bytes.NewReader(body))
	case Zstd:
		zr, _ := zstdReaders.Get().(*zstd.Decoder)
		if zr == nil {
			var err error
			zr, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(max)+1))
			if err != nil {
				return err
			}
		}
		defer zstdReaders.Put(zr)
		if err := zr.Reset(bytes.NewReader(body)); err != nil {
			return err
		}
		r = zr
	default:
		return errors.New("unsupported content coding")
	}
	n, err := io.Copy(dst, io.LimitReader(r, int64(max)+1))
	if err != nil {
		return err
	}
	if n > int64(max) {
		return ErrTooLarge
	}
	return nil
}

// encode appends body encoded with enc to dst.
func Encode(dst *bytebufferpool.ByteBuffer, body []byte, enc Coding) error {
	switch enc {
	case Identity:
		dst.Write(body)
		return nil
	case Gzip:
		return encodePooled(&gzipWriters, dst, body)
	case Deflate:
		return encodePooled(&zlibWriters, dst, body)
	case Brotli:
		return encodePooled(&brotliWriters, dst, body)
	case Zstd:
		dst.B = zstdEncoder.EncodeAll(body, dst.B)
		return nil
	}
	return errors.New("unsupported content coding")
}

// encodePooled encodes body into dst with a writer from pool: a
// *gzip.Writer, *zlib.Writer or *brotli.Writer, reset for each body.
func encodePooled(pool *sync.Pool, dst io.Writer, body []byte) error {
	w := pool.Get().(interface {
		io.WriteCloser
		Reset(io.Writer)
	})
	defer pool.Put(w)
	w.Reset(dst)
	w.Write(body)
	return w.Close()
}

// Negotiate picks the coding of a rewritten body: the origin's own choice
// when the visitor Accepts it (the origin already read Accept-Encoding),
// identity when the origin sent identity, else the best coding the visitor
// Accepts (br, zstd, gzip, deflate), else identity.
func Negotiate(acceptEncoding []byte, origin Coding) Coding {
	if origin == Identity {
		return Identity
	}
	if Accepts(acceptEncoding, origin.String()) {
		return origin
	}
	for _, e := range []Coding{Brotli, Zstd, Gzip, Deflate} {
		if Accepts(acceptEncoding, e.String()) {
			return e
		}
	}
	return Identity
}

// Accepts reports whether an Accept-Encoding value allows coding name: it
// is listed (or * is) without q=0.
func Accepts(accept []byte, name string) bool {
	star := false
	for len(accept) > 0 {
		var item []byte
		item, accept, _ = bytes.Cut(accept, []byte{','})
		coding, params, _ := bytes.Cut(item, []byte{';'})
		coding = bytes.TrimSpace(coding)
		zero := qualityIsZero(params)
		switch {
		case header.EqualFold(coding, name):
			return !zero
		case len(coding) == 1 && coding[0] == '*':
			star = !zero
		}
	}
	return star
}

func qualityIsZero(params []byte) bool {
	for _, p := range bytes.Split(params, []byte{';'}) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(p), []byte{'='})
		if ok && header.EqualFold(bytes.TrimSpace(k), "q") {
			v = bytes.TrimSpace(v)
			return len(bytes.Trim(v, "0.")) == 0
		}
	}
	return false
}
