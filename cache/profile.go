package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"
)

// Profile is a visitor's record in the central customer store, as the edge
// keeps it: compact, because a million of them live in memory. Traits and
// scores are slices sorted by name rather than maps (a Go map costs some
// 300 bytes even with three entries); TraitMap and ScoreMap build maps for
// the rules. A Profile is immutable once cached: replace it, never mutate
// it.
type Profile struct {
	ID        string
	Segments  []string
	Stage     string
	Traits    []Trait // sorted by Name
	Scores    []Score // sorted by Name
	UpdatedAt time.Time
}

// Trait is one free-form attribute: a JSON value (string, float64, bool,
// nil, []any or map[string]any).
type Trait struct {
	Name  string
	Value any
}

// Score is one numeric score.
type Score struct {
	Name  string
	Value float64
}

// wireProfile is the profile document's JSON schema (SPEC "Profiles and
// sync"), for MarshalJSON; ParseProfile reads the same fields and ignores
// unknown ones.
type wireProfile struct {
	ID        string             `json:"id"`
	Segments  []string           `json:"segments,omitempty"`
	Stage     string             `json:"stage,omitempty"`
	Traits    map[string]any     `json:"traits,omitempty"`
	Scores    map[string]float64 `json:"scores,omitempty"`
	UpdatedAt time.Time          `json:"updated_at,omitzero"`
}

// ErrBadProfile wraps every reason a profile document is refused.
var ErrBadProfile = errors.New("invalid profile")

// Limits on a profile document, so that one bad record cannot take a
// noticeable share of the cache.
const (
	MaxProfileBytes = 64 << 10
	maxSegments     = 256
	maxNameLen      = 200
)

// parsers are reused: a fastjson Parser keeps its buffers between
// documents. fastjson walks the document without reflection, some five
// times faster than encoding/json here, which matters to tailor import
// (a million lines) and to the watch (every change in the bucket).
var parsers fastjson.ParserPool

// ParseProfile decodes and checks a profile document.
func ParseProfile(b []byte) (*Profile, error) {
	if len(b) > MaxProfileBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than the %d allowed", ErrBadProfile, len(b), MaxProfileBytes)
	}
	pp := parsers.Get()
	defer parsers.Put(pp)
	v, err := pp.ParseBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadProfile, err)
	}
	o, err := v.Object()
	if err != nil {
		return nil, fmt.Errorf("%w: a profile is a JSON object, not %s", ErrBadProfile, v.Type())
	}
	if path, raw, bad := badNumber(v, nil); bad {
		return nil, fmt.Errorf("%w: %q is %s, not a finite JSON number", ErrBadProfile, strings.Join(path, "."), raw)
	}
	p := &Profile{}
	var perr error
	fail := func(format string, args ...any) {
		if perr == nil {
			perr = fmt.Errorf("%w: "+format, append([]any{ErrBadProfile}, args...)...)
		}
	}
	str := func(name string, v *fastjson.Value) string {
		if v.Type() == fastjson.TypeNull {
			return ""
		}
		sb, err := v.StringBytes()
		if err != nil {
			fail("%q must be a string, not %s", name, v.Type())
		}
		return string(sb)
	}
	o.Visit(func(key []byte, v *fastjson.Value) {
		switch string(key) {
		case "id":
			p.ID = str("id", v)
		case "stage":
			p.Stage = str("stage", v)
		case "updated_at":
			if s := str("updated_at", v); s != "" {
				t, err := time.Parse(time.RFC3339Nano, s)
				if err != nil {
					fail("\"updated_at\" is not an RFC 3339 time: %q", s)
				}
				p.UpdatedAt = t
			}
		case "segments":
			p.Segments = parseSegments(v, fail)
		case "traits":
			p.Traits = parseTraits(v, fail)
		case "scores":
			p.Scores = parseScores(v, fail)
		}
	})
	if perr != nil {
		return nil, perr
	}
	if p.ID == "" {
		return nil, fmt.Errorf("%w: \"id\" is missing", ErrBadProfile)
	}
	if len(p.ID) > 1024 {
		return nil, fmt.Errorf("%w: \"id\" is longer than 1024 bytes", ErrBadProfile)
	}
	return p, nil
}

// badNumber finds a number in v that JSON does not have or float64 cannot
// hold: fastjson reads NaN, Inf, +1 and 01, and 1e999 as +Inf; stored,
// they would make the document the admin API serves back invalid JSON,
// and a score of NaN compares false with everything (issue 15). It
// returns the path to the first one, as keys and indexes, and its text.
func badNumber(v *fastjson.Value, path []string) ([]string, string, bool) {
	switch v.Type() {
	case fastjson.TypeNumber:
		var buf [32]byte
		raw := v.MarshalTo(buf[:0])
		if !isJSONNumber(raw) {
			return path, string(raw), true
		}
		if f, err := v.Float64(); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return path, string(raw), true
		}
	case fastjson.TypeArray:
		for i, e := range v.GetArray() {
			if p, raw, bad := badNumber(e, append(path, strconv.Itoa(i))); bad {
				return p, raw, true
			}
		}
	case fastjson.TypeObject:
		var (
			at  []string
			raw string
			bad bool
		)
		v.GetObject().Visit(func(k []byte, e *fastjson.Value) {
			if !bad {
				at, raw, bad = badNumber(e, append(path, string(k)))
			}
		})
		return at, raw, bad
	}
	return nil, "", false
}

// isJSONNumber reports whether b is a number as RFC 8259 section 6 writes
// it: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i, n = i+1, n+1
		}
		return n
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}

func parseSegments(v *fastjson.Value, fail func(string, ...any)) []string {
	if v.Type() == fastjson.TypeNull {
		return nil
	}
	arr, err := v.Array()
	if err != nil {
		fail("\"segments\" must be an array of names, not %s", v.Type())
		return nil
	}
	if len(arr) > maxSegments {
		fail("%d segments, at most %d", len(arr), maxSegments)
		return nil
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		sb, err := e.StringBytes()
		if err != nil {
			fail("segments must be strings, not %s", e.Type())
			return nil
		}
		s := string(sb)
		if s == "" || len(s) > maxNameLen || strings.TrimSpace(s) != s {
			fail("segment name %q", s)
			return nil
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func parseTraits(v *fastjson.Value, fail func(string, ...any)) []Trait {
	return parseMembers(v, "traits", fail, func(k []byte, e *fastjson.Value) (Trait, bool) {
		if len(k) == 0 || len(k) > maxNameLen {
			fail("trait name %q", k)
			return Trait{}, false
		}
		return Trait{Name: string(k), Value: plain(e)}, true
	}, func(t Trait) string { return t.Name })
}

func parseScores(v *fastjson.Value, fail func(string, ...any)) []Score {
	return parseMembers(v, "scores", fail, func(k []byte, e *fastjson.Value) (Score, bool) {
		f, err := e.Float64()
		switch {
		case err != nil:
			fail("score %q is not a number: %s", k, e)
		case len(k) == 0 || len(k) > maxNameLen:
			fail("score name %q", k)
		default:
			return Score{Name: string(k), Value: f}, true
		}
		return Score{}, false
	}, func(s Score) string { return s.Name })
}

// parseMembers reads the JSON object v, the profile's field, as a list
// of what member makes of each member (leaving out those it refuses,
// having called fail), sorted by name as lastByName sorts; null is none.
func parseMembers[T any](v *fastjson.Value, field string, fail func(string, ...any), member func(k []byte, e *fastjson.Value) (T, bool), name func(T) string) []T {
	if v.Type() == fastjson.TypeNull {
		return nil
	}
	o, err := v.Object()
	if err != nil {
		fail("%q must be an object, not %s", field, v.Type())
		return nil
	}
	out := make([]T, 0, o.Len())
	o.Visit(func(k []byte, e *fastjson.Value) {
		if x, ok := member(k, e); ok {
			out = append(out, x)
		}
	})
	return lastByName(out, name)
}

// lastByName sorts xs by name, a repeated name keeping its last value
// (as encoding/json would).
func lastByName[T any](xs []T, name func(T) string) []T {
	slices.SortStableFunc(xs, func(a, b T) int { return strings.Compare(name(a), name(b)) })
	out := xs[:0]
	for i := range xs {
		if i+1 < len(xs) && name(xs[i+1]) == name(xs[i]) {
			continue
		}
		out = append(out, xs[i])
	}
	return out
}

// plain turns a JSON value into what encoding/json would decode it to in
// an any: string, float64, bool, nil, []any or map[string]any.
func plain(v *fastjson.Value) any {
	switch v.Type() {
	case fastjson.TypeString:
		return string(v.GetStringBytes())
	case fastjson.TypeNumber:
		return v.GetFloat64()
	case fastjson.TypeTrue:
		return true
	case fastjson.TypeFalse:
		return false
	case fastjson.TypeArray:
		arr := v.GetArray()
		out := make([]any, len(arr))
		for i, e := range arr {
			out[i] = plain(e)
		}
		return out
	case fastjson.TypeObject:
		o := v.GetObject()
		out := make(map[string]any, o.Len())
		o.Visit(func(k []byte, e *fastjson.Value) { out[string(k)] = plain(e) })
		return out
	}
	return nil
}

// MarshalJSON writes the profile in the document schema.
func (p *Profile) MarshalJSON() ([]byte, error) {
	w := wireProfile{ID: p.ID, Segments: p.Segments, Stage: p.Stage, UpdatedAt: p.UpdatedAt}
	w.Traits = p.TraitMap()
	w.Scores = p.ScoreMap()
	return json.Marshal(w)
}

// Trait returns the value of trait name.
func (p *Profile) Trait(name string) (any, bool) {
	i, ok := slices.BinarySearchFunc(p.Traits, name, func(t Trait, n string) int { return strings.Compare(t.Name, n) })
	if !ok {
		return nil, false
	}
	return p.Traits[i].Value, true
}

// Score returns score name, 0 when the profile has none.
func (p *Profile) Score(name string) float64 {
	i, ok := slices.BinarySearchFunc(p.Scores, name, func(s Score, n string) int { return strings.Compare(s.Name, n) })
	if !ok {
		return 0
	}
	return p.Scores[i].Value
}

// TraitMap returns the traits as a new map; nil for none.
func (p *Profile) TraitMap() map[string]any {
	if len(p.Traits) == 0 {
		return nil
	}
	m := make(map[string]any, len(p.Traits))
	for _, t := range p.Traits {
		m[t.Name] = t.Value
	}
	return m
}

// ScoreMap returns the scores as a new map; nil for none.
func (p *Profile) ScoreMap() map[string]float64 {
	if len(p.Scores) == 0 {
		return nil
	}
	m := make(map[string]float64, len(p.Scores))
	for _, s := range p.Scores {
		m[s.Name] = s.Value
	}
	return m
}
