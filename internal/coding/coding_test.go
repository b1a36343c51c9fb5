package coding

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/valyala/bytebufferpool"
)

func TestParseNegotiateAccepts(t *testing.T) {
	for v, want := range map[string]Coding{"": Identity, "identity": Identity, " GZIP ": Gzip, "x-gzip": Gzip,
		"deflate": Deflate, "br": Brotli, "zstd": Zstd, "gzip, br": Unknown, "compress": Unknown} {
		if got := Parse([]byte(v)); got != want {
			t.Errorf("Parse(%q) = %v, want %v", v, got, want)
		}
	}
	for _, tc := range []struct {
		accept       string
		origin, want Coding
	}{
		{"gzip, br", Gzip, Gzip},
		{"br;q=1, gzip;q=0", Gzip, Brotli},
		{"*", Zstd, Zstd},
		{"*;q=0, identity", Gzip, Identity},
		{"", Brotli, Identity},
		{"gzip", Identity, Identity},
		{"deflate;q=0.5, zstd;q=0.0", Zstd, Deflate},
	} {
		if got := Negotiate([]byte(tc.accept), tc.origin); got != tc.want {
			t.Errorf("Negotiate(%q, %v) = %v, want %v", tc.accept, tc.origin, got, tc.want)
		}
	}
}

// Every coding reads back what it wrote, and Decode stops at max.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	body := []byte(strings.Repeat("<p>A paragraph of a page, compressed and read back.</p>\n", 200))
	for _, c := range []Coding{Identity, Gzip, Deflate, Brotli, Zstd} {
		enc, dec := bytebufferpool.Get(), bytebufferpool.Get()
		if err := Encode(enc, body, c); err != nil {
			t.Fatalf("%v: Encode: %v", c, err)
		}
		if err := Decode(dec, enc.B, c, len(body)); err != nil || !bytes.Equal(dec.B, body) {
			t.Errorf("%v: Decode = %d bytes, %v; want the %d written", c, len(dec.B), err, len(body))
		}
		dec.Reset()
		if c != Identity {
			if err := Decode(dec, enc.B, c, len(body)-1); !errors.Is(err, ErrTooLarge) {
				t.Errorf("%v: Decode over max: %v, want ErrTooLarge", c, err)
			}
		}
		bytebufferpool.Put(enc)
		bytebufferpool.Put(dec)
	}
}
