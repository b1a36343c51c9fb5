package sync

import (
	"crypto/rand"
	"encoding/binary"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Event types (SPEC "Events"): the last token of an event's subject.
const (
	EventPageview = "pageview"
	EventGoal     = "goal"
	EventStage    = "stage"
	EventExposure = "exposure"
	EventIdentify = "identify"
)

// EventSubjects are the subjects of the event stream; an event of type T
// is published on "tailor.events.T".
const EventSubjects = eventSubjectPrefix + ">"

const eventSubjectPrefix = "tailor.events."

// Event is one event as published: JSON (see AppendJSON), one per NATS
// message, on the subject "tailor.events.<type>". The fields after Bot
// belong to one type each and are left empty on the others.
type Event struct {
	// ID is unique (see NewEventID); it is also the message's JetStream
	// id (Nats-Msg-Id), by which the stream drops a copy that a retry
	// publishes again.
	ID   string `json:"id"`
	Type string `json:"type"`
	// Time is written in UTC, RFC 3339 with nanoseconds.
	Time time.Time `json:"time"`
	// Visitor is the profile lookup key.
	Visitor     string `json:"visitor"`
	AnonymousID string `json:"anonymous_id"`
	URL         string `json:"url"`
	Path        string `json:"path"`
	Referrer    string `json:"referrer"`
	// Segments, Stage and Persona are the visitor as the rules saw them.
	// Segments is written as [] when empty, never null.
	Segments []string `json:"segments"`
	Stage    string   `json:"stage"`
	Persona  string   `json:"persona"`
	// Device is "mobile", "tablet", "desktop" or "bot", from the
	// User-Agent (rules.DeviceOf); Country the visitor's ISO 3166-1
	// alpha-2 code from a trusted proxy's header, "" when unknown.
	Device  string `json:"device"`
	Country string `json:"country"`
	// UTMSource and UTMCampaign are the page URL's utm_source and
	// utm_campaign query parameters, "" when absent: for breakdowns by
	// campaign.
	UTMSource   string `json:"utm_source"`
	UTMCampaign string `json:"utm_campaign"`
	// Bot is true for a bot's event (device "bot"), which only a proxy
	// with experiments.exclude_bots off reports; written only when true.
	Bot bool `json:"bot,omitempty"`

	// Goal and Value are set on goal events. Value is written on every
	// goal event, even when 0, and on no other unless it is not 0.
	Goal  string  `json:"goal,omitempty"`
	Value float64 `json:"value"`
	// StageFrom and StageTo are set on stage events.
	StageFrom string `json:"stage_from,omitempty"`
	StageTo   string `json:"stage_to,omitempty"`
	// Experiment and Variant are set on exposure events.
	Experiment string `json:"experiment,omitempty"`
	Variant    string `json:"variant,omitempty"`
	// ProfileID is set on identify events.
	ProfileID string `json:"profile_id,omitempty"`
}

// Subject returns the subject the event is published on.
func (e *Event) Subject() string { return eventSubjectPrefix + e.Type }

// eventTimeLayout is RFC 3339 with a fixed nine-digit fraction, so that
// times sort as strings and the fraction is never left out.
const eventTimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// AppendJSON appends the event's JSON to dst and returns the extended
// buffer. It writes what encoding/json would decode back into the same
// Event (for times in years 0 to 9999 and strings that are valid UTF-8),
// with the fields in the order of the struct. Strings are escaped as
// encoding/json escapes them: invalid UTF-8 becomes U+FFFD, and <, >, &,
// U+2028 and U+2029 are escaped so that the JSON can be embedded in
// HTML. An empty per-type string field is left out, and so is Bot when
// false; a NaN or infinite Value is written as 0. It does not allocate when dst has room.
func (e *Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, e.ID)
	dst = append(dst, `,"type":`...)
	dst = appendJSONString(dst, e.Type)
	dst = append(dst, `,"time":"`...)
	dst = e.Time.UTC().AppendFormat(dst, eventTimeLayout)
	dst = append(dst, `","visitor":`...)
	dst = appendJSONString(dst, e.Visitor)
	dst = append(dst, `,"anonymous_id":`...)
	dst = appendJSONString(dst, e.AnonymousID)
	dst = append(dst, `,"url":`...)
	dst = appendJSONString(dst, e.URL)
	dst = append(dst, `,"path":`...)
	dst = appendJSONString(dst, e.Path)
	dst = append(dst, `,"referrer":`...)
	dst = appendJSONString(dst, e.Referrer)
	dst = append(dst, `,"segments":[`...)
	for i, s := range e.Segments {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, s)
	}
	dst = append(dst, `],"stage":`...)
	dst = appendJSONString(dst, e.Stage)
	dst = append(dst, `,"persona":`...)
	dst = appendJSONString(dst, e.Persona)
	dst = append(dst, `,"device":`...)
	dst = appendJSONString(dst, e.Device)
	dst = append(dst, `,"country":`...)
	dst = appendJSONString(dst, e.Country)
	dst = append(dst, `,"utm_source":`...)
	dst = appendJSONString(dst, e.UTMSource)
	dst = append(dst, `,"utm_campaign":`...)
	dst = appendJSONString(dst, e.UTMCampaign)
	if e.Bot {
		dst = append(dst, `,"bot":true`...)
	}
	dst = appendOptional(dst, `,"goal":`, e.Goal)
	if e.Type == EventGoal || e.Value != 0 {
		dst = append(dst, `,"value":`...)
		dst = appendEventFloat(dst, e.Value)
	}
	dst = appendOptional(dst, `,"stage_from":`, e.StageFrom)
	dst = appendOptional(dst, `,"stage_to":`, e.StageTo)
	dst = appendOptional(dst, `,"experiment":`, e.Experiment)
	dst = appendOptional(dst, `,"variant":`, e.Variant)
	dst = appendOptional(dst, `,"profile_id":`, e.ProfileID)
	return append(dst, '}')
}

func appendOptional(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	dst = append(dst, key...)
	return appendJSONString(dst, s)
}

// appendEventFloat writes v as encoding/json reads it; JSON has no NaN or
// infinity, so those are written as 0.
func appendEventFloat(dst []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(dst, '0')
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}

const hexDigits = "0123456789abcdef"

// jsonSafe marks the ASCII bytes written into a JSON string as they are:
// not the control characters, the quote and the backslash, which JSON
// requires escaped, nor <, > and &, which encoding/json escapes too.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for b := ' '; b < utf8.RuneSelf; b++ {
		t[b] = true
	}
	for _, b := range `"\<>&` {
		t[b] = false
	}
	return t
}()

// appendJSONString appends s as a JSON string, escaped byte for byte as
// encoding/json.Marshal escapes it (invalid UTF-8 becomes U+FFFD). Events
// and the profile documents "tailor import" builds from CSV use it.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if jsonSafe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default: // other controls, <, >, &
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but line terminators in JavaScript source.
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// crockford is the base 32 alphabet of ULIDs: digits and upper-case
// letters without I, L, O and U, in ASCII order.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewEventID returns a new event id: 128 bits, a 48-bit Unix time in
// milliseconds then 80 random bits, as 26 characters of Crockford base 32
// (the ULID format). Ids made in different milliseconds sort by time.
// It is safe for concurrent use and takes no lock.
func NewEventID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMilli())<<16)
	rand.Read(b[6:]) // never fails (crypto/rand)
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	var out [26]byte
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// validType reports whether t can be the last token of a subject: not
// empty, and no white space, control character, '.', '*' or '>'.
func validType(t string) bool {
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c == 0x7f || c == '.' || c == '*' || c == '>' {
			return false
		}
	}
	return true
}
