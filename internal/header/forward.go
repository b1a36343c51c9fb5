package header

import (
	"bytes"
	"net/netip"
	"strings"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"
)

// Forward is what Copy needs to know of one request on its way to the
// origin: who sent it, over what, and what the proxy sends in place of
// what the visitor did.
type Forward struct {
	// Client is the address the request came from: the for= of this hop.
	Client netip.Addr
	// Trusted is set when Client is one of trusted_proxies: its
	// X-Forwarded-* and Forwarded headers are kept (this hop's added
	// after them); an untrusted client's are dropped.
	Trusted bool
	// TLS is set when the request came over TLS: proto=https.
	TLS bool
	// Host is the Host the origin is sent (origin_host); nil sends the
	// visitor's.
	Host []byte
	// DefaultHost is the Host sent when the visitor sent none and Host is
	// nil: the origin's address.
	DefaultHost string
	// WholePage asks for the origin's page whole and afresh, for a page
	// tailor may change (rules, the goal script): Range and If-Range are
	// left out, as a byte range of the origin's page does not address the
	// page the visitor will get; and so are If-None-Match and
	// If-Modified-Since, as the origin's validators do not say whether
	// the copy a browser holds is the one tailor would render now.
	WholePage bool
	// Underscores forwards header names with an underscore
	// (underscores_in_headers); otherwise they are dropped, and counted.
	Underscores bool
	// PrivateCookie names a cookie that never reaches the origin (an
	// operator's console login, sent along because the admin listener is
	// on the same host); "" none.
	PrivateCookie string
}

// Copy adds to dst the headers of raw, a visitor's request header block as
// it came (fasthttp's RawHeaders): in order, case and duplicates as they
// came, cookie bytes untouched, minus the hop-by-hop headers and those
// Connection lists, plus X-Forwarded-For, X-Forwarded-Proto,
// X-Forwarded-Host and Forwarded (RFC 7239). Content-Length and Expect
// are left to fasthttp, which frames the body it sends and has answered
// 100-continue. It returns how many headers it dropped for an underscore
// in their names. Copy does not allocate once the buffer pool is warm.
func (f *Forward) Copy(dst *fasthttp.RequestHeader, raw []byte) (dropped int) {
	var conn connectionOptions
	ForEach(raw, func(name, value []byte) {
		if isConnection(name) {
			conn.add(value)
		}
	})
	xff, fwd := bytebufferpool.Get(), bytebufferpool.Get()
	defer bytebufferpool.Put(xff)
	defer bytebufferpool.Put(fwd)
	var host, proto, fwdHost []byte
	ForEach(raw, func(name, value []byte) {
		switch {
		case isHop(name):
		case EqualFold(name, fasthttp.HeaderHost):
			host = value
			if f.Host != nil {
				value = f.Host
			}
			// Spelt "Host", as nginx does: fasthttp's client looks for
			// that name only.
			dst.AddBytesV(fasthttp.HeaderHost, value)
		case conn.has(name):
		case EqualFold(name, fasthttp.HeaderContentLength):
			// fasthttp writes the length of the body it sends.
		case EqualFold(name, fasthttp.HeaderExpect):
			// fasthttp answered 100-continue itself.
		case f.WholePage && (EqualFold(name, fasthttp.HeaderRange) || EqualFold(name, fasthttp.HeaderIfRange) ||
			EqualFold(name, fasthttp.HeaderIfNoneMatch) || EqualFold(name, fasthttp.HeaderIfModifiedSince)):
		case f.PrivateCookie != "" && EqualFold(name, fasthttp.HeaderCookie) && mentionsCookie(value, f.PrivateCookie):
			if value = withoutCookie(value, f.PrivateCookie); len(value) > 0 {
				dst.AddBytesKV(name, value)
			}
		case EqualFold(name, fasthttp.HeaderXForwardedFor):
			if f.Trusted && len(value) > 0 {
				xff.B = append(xff.B, value...)
				xff.B = append(xff.B, ", "...)
			}
		case EqualFold(name, fasthttp.HeaderXForwardedProto):
			if f.Trusted && proto == nil {
				proto = value
			}
		case EqualFold(name, fasthttp.HeaderXForwardedHost):
			if f.Trusted && fwdHost == nil {
				fwdHost = value
			}
		case EqualFold(name, "Forwarded"):
			if f.Trusted && len(value) > 0 {
				fwd.B = append(fwd.B, value...)
				fwd.B = append(fwd.B, ", "...)
			}
		case !f.Underscores && bytes.IndexByte(name, '_') >= 0:
			dropped++
		default:
			dst.AddBytesKV(name, value)
		}
	})
	if host == nil {
		// HTTP/1.0 clients may send no Host; the origin still needs one.
		if f.Host != nil {
			dst.AddBytesV(fasthttp.HeaderHost, f.Host)
		} else {
			dst.Add(fasthttp.HeaderHost, f.DefaultHost)
		}
	}
	xff.B = f.Client.AppendTo(xff.B)
	dst.AddBytesV(fasthttp.HeaderXForwardedFor, xff.B)
	scheme := "http"
	if f.TLS {
		scheme = "https"
	}
	if proto != nil {
		dst.AddBytesV(fasthttp.HeaderXForwardedProto, proto)
	} else {
		dst.Add(fasthttp.HeaderXForwardedProto, scheme)
	}
	// Forwarded (RFC 7239) as X-Forwarded-*: this hop's element, after a
	// trusted proxy's elements, in place of an untrusted client's.
	fwd.B = append(fwd.B, "for="...)
	if f.Client.Is6() {
		fwd.B = append(fwd.B, `"[`...)
		fwd.B = f.Client.Unmap().WithZone("").AppendTo(fwd.B)
		fwd.B = append(fwd.B, `]"`...)
	} else {
		fwd.B = f.Client.AppendTo(fwd.B)
	}
	if len(host) > 0 {
		fwd.B = append(fwd.B, ";host="...)
		fwd.B = appendForwardedValue(fwd.B, host)
	}
	fwd.B = append(fwd.B, ";proto="...)
	fwd.B = append(fwd.B, scheme...)
	dst.AddBytesV("Forwarded", fwd.B)
	if fwdHost == nil {
		fwdHost = host
	}
	if len(fwdHost) > 0 {
		dst.AddBytesV(fasthttp.HeaderXForwardedHost, fwdHost)
	}
	return dropped
}

// appendForwardedValue appends v as a Forwarded parameter value: as it is
// when it is a token, else as a quoted string (RFC 7239 section 4; a
// host with a port has a ':').
func appendForwardedValue(dst, v []byte) []byte {
	token := len(v) > 0
	for _, c := range v {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			token = false
			break
		}
	}
	if token {
		return append(dst, v...)
	}
	dst = append(dst, '"')
	for _, c := range v {
		if c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		if c < ' ' && c != '\t' || c == 0x7f {
			continue // not allowed in a quoted string
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

// mentionsCookie is a quick look for a pair named name in a Cookie
// header value, before withoutCookie takes it out. name+"=" is short and
// does not escape: the conversion stays on the stack.
func mentionsCookie(value []byte, name string) bool {
	return bytes.Contains(value, []byte(name+"="))
}

// withoutCookie returns the Cookie header value without the pairs named
// name, the others' bytes as they were.
func withoutCookie(value []byte, name string) []byte {
	out := make([]byte, 0, len(value))
	for part := range bytes.SplitSeq(value, []byte(";")) {
		k, _, _ := bytes.Cut(bytes.TrimSpace(part), []byte("="))
		if string(k) == name {
			continue
		}
		if len(out) > 0 {
			out = append(out, ';')
		} else {
			part = bytes.TrimLeft(part, " ")
		}
		out = append(out, part...)
	}
	return out
}

// OriginForm turns an absolute-form request target ("http://host/path?q",
// RFC 9112 section 3.2.2) into the origin-form the origin expects; other
// forms are returned as they are.
func OriginForm(uri []byte) []byte {
	i := bytes.Index(uri, []byte("://"))
	if i <= 0 || bytes.IndexByte(uri[:i], '/') >= 0 {
		return uri
	}
	rest := uri[i+3:]
	if j := bytes.IndexAny(rest, "/?"); j >= 0 {
		if rest[j] == '?' {
			return append([]byte{'/'}, rest[j:]...)
		}
		return rest[j:]
	}
	return []byte{'/'}
}
