package proxy

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
)

// encoding is a content coding tailor can decode for rewriting and encode
// again for the visitor.
type encoding uint8

const (
	encIdentity encoding = iota
	encGzip
	encDeflate
	encBrotli
	encZstd
	encUnknown // a coding we cannot read: such a body passes through untouched
)

var encodingNames = [...]string{encIdentity: "", encGzip: "gzip", encDeflate: "deflate", encBrotli: "br", encZstd: "zstd"}

func (e encoding) String() string {
	if int(e) < len(encodingNames) {
		return encodingNames[e]
	}
	return "unknown"
}

// parseContentEncoding reads a Content-Encoding value. Stacked codings
// ("gzip, br") are reported unknown: rare enough not to be worth decoding.
func parseContentEncoding(v []byte) encoding {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0, equalFold(v, "identity"):
		return encIdentity
	case equalFold(v, "gzip"), equalFold(v, "x-gzip"):
		return encGzip
	case equalFold(v, "deflate"):
		return encDeflate
	case equalFold(v, "br"):
		return encBrotli
	case equalFold(v, "zstd"):
		return encZstd
	}
	return encUnknown
}

// errTooLarge is returned when a decoded body would exceed the rewrite limit.
var errTooLarge = errors.New("decoded body exceeds max_rewrite_body")

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
func decode(dst *bytebufferpool.ByteBuffer, body []byte, enc encoding, max int) error {
	var r io.Reader
	switch enc {
	case encIdentity:
		if len(body) > max {
			return errTooLarge
		}
		dst.Write(body)
		return nil
	case encGzip:
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		if zr == nil {
			zr = new(gzip.Reader)
		}
		defer gzipReaders.Put(zr)
		if err := zr.Reset(bytes.NewReader(body)); err != nil {
			return err
		}
		r = zr
	case encDeflate:
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
	case encBrotli:
		r = brotli.NewReader(bytes.NewReader(body))
	case encZstd:
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
		return errors.New("unsupported content encoding")
	}
	n, err := io.Copy(dst, io.LimitReader(r, int64(max)+1))
	if err != nil {
		return err
	}
	if n > int64(max) {
		return errTooLarge
	}
	return nil
}

// encode appends body encoded with enc to dst.
func encode(dst *bytebufferpool.ByteBuffer, body []byte, enc encoding) error {
	switch enc {
	case encIdentity:
		dst.Write(body)
		return nil
	case encGzip:
		w := gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(w)
		w.Reset(dst)
		w.Write(body)
		return w.Close()
	case encDeflate:
		w := zlibWriters.Get().(*zlib.Writer)
		defer zlibWriters.Put(w)
		w.Reset(dst)
		w.Write(body)
		return w.Close()
	case encBrotli:
		w := brotliWriters.Get().(*brotli.Writer)
		defer brotliWriters.Put(w)
		w.Reset(dst)
		w.Write(body)
		return w.Close()
	case encZstd:
		dst.B = zstdEncoder.EncodeAll(body, dst.B)
		return nil
	}
	return errors.New("unsupported content encoding")
}

// negotiate picks the coding of a rewritten body: the origin's own choice
// when the visitor accepts it (the origin already read Accept-Encoding),
// identity when the origin sent identity, else the best coding the visitor
// accepts (br, zstd, gzip, deflate), else identity.
func negotiate(acceptEncoding []byte, origin encoding) encoding {
	if origin == encIdentity {
		return encIdentity
	}
	if accepts(acceptEncoding, origin.String()) {
		return origin
	}
	for _, e := range []encoding{encBrotli, encZstd, encGzip, encDeflate} {
		if accepts(acceptEncoding, e.String()) {
			return e
		}
	}
	return encIdentity
}

// accepts reports whether an Accept-Encoding value allows coding name: it
// is listed (or * is) without q=0.
func accepts(header []byte, name string) bool {
	star := false
	for len(header) > 0 {
		var item []byte
		if i := bytes.IndexByte(header, ','); i >= 0 {
			item, header = header[:i], header[i+1:]
		} else {
			item, header = header, nil
		}
		coding, params, _ := bytes.Cut(item, []byte{';'})
		coding = bytes.TrimSpace(coding)
		zero := qualityIsZero(params)
		switch {
		case equalFold(coding, name):
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
		if ok && equalFold(bytes.TrimSpace(k), "q") {
			v = bytes.TrimSpace(v)
			return len(bytes.Trim(v, "0.")) == 0
		}
	}
	return false
}
