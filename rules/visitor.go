package rules

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tailor-edge/tailor/internal/bots"
)

// Visitor is who the rules decide for. The proxy builds it from the
// visitor's cookies, token and profile; the rules do not care where it came
// from, so tests and "tailor explain" build one by hand.
type Visitor struct {
	// ID is the profile lookup key: experiments bucket by it.
	ID string
	// Known is true for a visitor identified by a verified token.
	Known bool
	// Segments are the profile's segments (with the token's, merged).
	// Decide adds the edge-computed segments of the rule files.
	Segments []string
	// Stage is the visitor's effective journey stage; "" stands for the
	// first declared stage.
	Stage string
	// Traits are the profile's free-form attributes (first_name, city…).
	Traits map[string]any
	// Scores are the profile's numeric scores.
	Scores map[string]float64
	// Visits is the visit number, 1 for a first visit.
	Visits int
	// NewVisitor is true on a visitor's first visit.
	NewVisitor bool
	// Engagement is the running engagement value of the visit.
	Engagement float64
	// Interests are the visitor's interest scores by tag.
	Interests map[string]float64
	// TopInterest is the tag with the highest interest score, or "".
	TopInterest string
	// Persona is the visitor's nearest persona, or "".
	Persona string
	// Control is true for a visitor who must see every experiment's
	// control (the origin's block) and be counted in none: a bot, or a
	// visitor who opted out of tracking. Decide buckets them into no
	// variant and reports no exposure for them.
	Control bool
	// Assigned holds the variants the visitor was assigned at their
	// first exposure to each experiment (the proxy's is the visitor's
	// signed state); nil for none. While the experiment still has the
	// variant, Decide shows it instead of bucketing the visitor: logging
	// in (which changes ID) or new weights do not move a visitor.
	Assigned Assignments
}

// Assignments are a visitor's kept variants (identity.State is one).
type Assignments interface {
	// Kept reports whether variant (or HoldoutVariant) is the visitor's
	// in experiment.
	Kept(experiment, variant string) bool
}

// Request holds the facts about one request that conditions test. The
// proxy fills it; Decide never changes it.
type Request struct {
	// Path is the URL path, without the query.
	Path string
	// Query is the parsed query string; nil for none.
	Query url.Values
	// Host is the Host the visitor asked for.
	Host string
	// Header returns a request header's value, "" when absent; nil means
	// no headers.
	Header func(name string) string
	// Cookie returns a request cookie's value, "" when absent; nil means
	// no cookies.
	Cookie func(name string) string
	// Referrer is the Referer header as sent.
	Referrer string
	// Country is an ISO 3166-1 alpha-2 code ("DE"), "" when unknown.
	Country string
	// Language is the visitor's preferred language: a tag ("de-AT") or a
	// whole Accept-Language header, of which the first tag counts.
	Language string
	// UserAgent is the User-Agent header; see DeviceOf.
	UserAgent string
	// Device, when not "", is DeviceOf(UserAgent), which the caller
	// computed already; Decide computes it otherwise.
	Device string
	// Time is when the request arrived: time windows are evaluated at it.
	Time time.Time
}

func (r *Request) header(name string) string {
	if r.Header == nil {
		return ""
	}
	return r.Header(name)
}

func (r *Request) cookie(name string) string {
	if r.Cookie == nil {
		return ""
	}
	return r.Cookie(name)
}

// Devices are the values DeviceOf returns and the device condition takes.
var Devices = []string{"mobile", "tablet", "desktop", "bot"}

// DeviceOf classifies a User-Agent as "mobile", "tablet", "desktop" or
// "bot". Crawlers, previewers, monitors, headless browsers and HTTP
// libraries (curl, python-requests, Go-http-client…: the list of package
// bots) and an empty User-Agent are bots: they are not people, so they
// get the origin's default blocks. An iPad that asks for the desktop site
// (iPadOS does by default) is desktop.
func DeviceOf(userAgent string) string {
	if strings.TrimSpace(userAgent) == "" || bots.Is(userAgent) {
		return "bot"
	}
	// One pass over the User-Agent, in any case, trying only the tokens
	// that start with the two bytes at hand: a few hundred nanoseconds for
	// a browser's, where a search per token took microseconds.
	var found uaKind
	prev := lower(userAgent[0])
	for i := 1; i < len(userAgent); i++ {
		c := lower(userAgent[i])
		pair := uint16(prev)<<8 | uint16(c)
		prev = c
		if uaPairs[pair/64]&(1<<(pair%64)) == 0 {
			continue
		}
		for _, t := range uaTokensByFirst[pair>>8] {
			if len(userAgent)-i+1 >= len(t.text) && hasPrefixFold(userAgent[i-1:], t.text) {
				found |= t.kind
			}
		}
	}
	switch {
	case found&uaTablet != 0, found&uaAndroid != 0 && found&uaMobileWord == 0:
		return "tablet"
	case found&uaMobile != 0:
		return "mobile"
	}
	return "desktop"
}

type uaKind uint8

const (
	uaTablet uaKind = 1 << iota
	uaMobile
	uaAndroid
	uaMobileWord
)

type uaToken struct {
	text string
	kind uaKind
}

// uaTokens are lower-case substrings of User-Agents and what they mean.
var uaTokens = []uaToken{
	{"ipad", uaTablet}, {"tablet", uaTablet}, {"kindle", uaTablet}, {"silk/", uaTablet}, {"playbook", uaTablet},
	{"nexus 7", uaTablet}, {"nexus 10", uaTablet}, {"sm-t", uaTablet},
	{"mobi", uaMobile}, {"iphone", uaMobile}, {"ipod", uaMobile}, {"windows phone", uaMobile}, {"blackberry", uaMobile},
	{"bb10", uaMobile}, {"opera mini", uaMobile}, {"iemobile", uaMobile}, {"webos", uaMobile},
	{"android", uaAndroid}, {"mobile", uaMobileWord},
}

// uaTokensByFirst indexes uaTokens by their first byte; uaPairs has a bit
// set for the first two bytes of each: most pairs of bytes in a
// User-Agent start no token and cost one bit test.
var uaTokensByFirst, uaPairs = indexUATokens()

func indexUATokens() (byFirst [256][]uaToken, pairs [65536 / 64]uint64) {
	for _, t := range uaTokens {
		byFirst[t.text[0]] = append(byFirst[t.text[0]], t)
		pair := uint16(t.text[0])<<8 | uint16(t.text[1])
		pairs[pair/64] |= 1 << (pair % 64)
	}
	return byFirst, pairs
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// hasPrefixFold reports whether s starts with the lower-case ASCII prefix,
// ignoring ASCII case in s.
func hasPrefixFold(s, prefix string) bool {
	for j := 0; j < len(prefix); j++ {
		if lower(s[j]) != prefix[j] {
			return false
		}
	}
	return true
}

// primaryLanguage returns the first language tag of an Accept-Language
// value (or of a bare tag): "de-AT" for "de-AT,de;q=0.9,en;q=0.5", with
// "_" read as "-" (pt_BR, as some clients send it); "" for none or "*".
func primaryLanguage(s string) string {
	if i := strings.IndexAny(s, ",;"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if s == "*" {
		return ""
	}
	return strings.ReplaceAll(s, "_", "-")
}

// referrerHost returns the lower-case host of a Referer URL, without port
// or user info; "" when there is none.
func referrerHost(ref string) string {
	i := strings.Index(ref, "//")
	if i < 0 {
		return ""
	}
	h := ref[i+2:]
	if j := strings.IndexAny(h, "/?#"); j >= 0 {
		h = h[:j]
	}
	if j := strings.LastIndexByte(h, '@'); j >= 0 {
		h = h[j+1:]
	}
	if strings.HasPrefix(h, "[") {
		if j := strings.IndexByte(h, ']'); j >= 0 {
			return strings.ToLower(h[1:j])
		}
	}
	if j := strings.LastIndexByte(h, ':'); j >= 0 {
		h = h[:j]
	}
	return strings.ToLower(h)
}

// memoFields are the visitor's scalar fields a content template may read
// and still be memoized (content.Compile): stages, personas and interests
// are few, so their outputs are kept instead of executing the template
// per request.
var memoFields = map[string]func(*Visitor) string{
	"Stage":       func(v *Visitor) string { return v.Stage },
	"Persona":     func(v *Visitor) string { return v.Persona },
	"TopInterest": func(v *Visitor) string { return v.TopInterest },
	"Visits":      func(v *Visitor) string { return strconv.Itoa(v.Visits) },
	"NewVisitor":  func(v *Visitor) string { return strconv.FormatBool(v.NewVisitor) },
	"Known":       func(v *Visitor) string { return strconv.FormatBool(v.Known) },
}
