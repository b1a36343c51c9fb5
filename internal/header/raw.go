package header

import (
	"bytes"
	"iter"
)

// lines yields the lines of raw, a header block as it came off the wire
// (without the request line), without their CRLF or LF; empty lines are
// left out.
func lines(raw []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for len(raw) > 0 {
			var line []byte
			line, raw, _ = bytes.Cut(raw, []byte{'\n'})
			line = bytes.TrimSuffix(line, []byte{'\r'})
			if len(line) > 0 && !yield(line) {
				return
			}
		}
	}
}

// ForEach calls fn with each name and value of raw, the header block as
// it came off the wire (fasthttp's RawHeaders). Values are trimmed of
// surrounding whitespace. Lines without a colon are skipped (CheckFraming
// has refused requests with any).
func ForEach(raw []byte, fn func(name, value []byte)) {
	for line := range lines(raw) {
		if colon := bytes.IndexByte(line, ':'); colon > 0 {
			fn(line[:colon], bytes.TrimSpace(line[colon+1:]))
		}
	}
}

// Reasons a request is refused before anything reaches the origin. They
// label tailor_rejected_requests_total.
const (
	RejectObsFold          = "obs_fold"
	RejectLengthAndChunked = "length_and_transfer_encoding"
	RejectTransferEncoding = "transfer_encoding"
	RejectBadChunk         = "bad_chunk"
	RejectHeaderTooLarge   = "header_too_large"
	RejectBadRequest       = "bad_request"
	RejectHeaderName       = "bad_header_name"
	RejectTimeout          = "timeout"
)

// RejectReasons lists every reason a request is refused, for the metric's
// labels.
func RejectReasons() []string {
	return []string{RejectObsFold, RejectLengthAndChunked, RejectTransferEncoding, RejectBadChunk,
		RejectHeaderTooLarge, RejectBadRequest, RejectHeaderName, RejectTimeout}
}

// CheckFraming looks at the request headers as they came off the wire and
// returns a reason to refuse the request when its framing is ambiguous: a
// front proxy and an origin that disagree on where a request ends are how
// request smuggling works (RFC 9112 sections 6.3 and 11.2). fasthttp already
// refuses duplicate Content-Length, whitespace before a colon and bad header
// bytes; it tolerates the cases below, which nginx and the RFC's advice for
// intermediaries do not. It returns "" for a request to forward.
func CheckFraming(raw []byte) string {
	var lengths, encodings int
	for line := range lines(raw) {
		if line[0] == ' ' || line[0] == '\t' {
			// obs-fold: a line continuing the previous header. RFC 9112
			// section 5.2 lets a server reject it; a proxy that unfolds it
			// sees a different header than an origin that does not.
			return RejectObsFold
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return RejectBadRequest
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		if !isToken(name) {
			// A space or separator in a name (RFC 9110 section 5.1):
			// "Transfer-Encoding x" is Transfer-Encoding to some
			// parsers.
			return RejectHeaderName
		}
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			lengths++
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			encodings++
			if !bytes.EqualFold(value, []byte("chunked")) {
				return RejectTransferEncoding
			}
		}
	}
	switch {
	case encodings > 1:
		return RejectTransferEncoding
	case encodings == 1 && lengths > 0:
		return RejectLengthAndChunked
	}
	return ""
}

// tchars are the bytes of a token (RFC 9110 section 5.6.2).
var tchars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()

func isToken(b []byte) bool {
	for _, c := range b {
		if !tchars[c] {
			return false
		}
	}
	return len(b) > 0
}
