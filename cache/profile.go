package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
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
// sync"); unknown fields are ignored.
type wireProfile struct {
	ID        string                     `json:"id"`
	Segments  []string                   `json:"segments,omitempty"`
	Stage     string                     `json:"stage,omitempty"`
	Traits    map[string]any             `json:"traits,omitempty"`
	Scores    map[string]json.RawMessage `json:"scores,omitempty"`
	UpdatedAt time.Time                  `json:"updated_at,omitzero"`
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

// ParseProfile decodes and checks a profile document.
func ParseProfile(b []byte) (*Profile, error) {
	if len(b) > MaxProfileBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than the %d allowed", ErrBadProfile, len(b), MaxProfileBytes)
	}
	var w wireProfile
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadProfile, err)
	}
	if d.More() {
		return nil, fmt.Errorf("%w: more than one JSON value", ErrBadProfile)
	}
	if w.ID == "" {
		return nil, fmt.Errorf("%w: \"id\" is missing", ErrBadProfile)
	}
	if len(w.ID) > 1024 {
		return nil, fmt.Errorf("%w: \"id\" is longer than 1024 bytes", ErrBadProfile)
	}
	if len(w.Segments) > maxSegments {
		return nil, fmt.Errorf("%w: %d segments, at most %d", ErrBadProfile, len(w.Segments), maxSegments)
	}
	p := &Profile{ID: w.ID, Stage: w.Stage, UpdatedAt: w.UpdatedAt}
	if len(w.Segments) > 0 {
		p.Segments = make([]string, 0, len(w.Segments))
	}
	for _, s := range w.Segments {
		if s == "" || len(s) > maxNameLen || strings.TrimSpace(s) != s {
			return nil, fmt.Errorf("%w: segment name %q", ErrBadProfile, s)
		}
		if !slices.Contains(p.Segments, s) {
			p.Segments = append(p.Segments, s)
		}
	}
	if len(w.Traits) > 0 {
		p.Traits = make([]Trait, 0, len(w.Traits))
		for k, v := range w.Traits {
			if k == "" || len(k) > maxNameLen {
				return nil, fmt.Errorf("%w: trait name %q", ErrBadProfile, k)
			}
			p.Traits = append(p.Traits, Trait{Name: k, Value: v})
		}
		slices.SortFunc(p.Traits, func(a, b Trait) int { return strings.Compare(a.Name, b.Name) })
	}
	if len(w.Scores) > 0 {
		p.Scores = make([]Score, 0, len(w.Scores))
		for k, raw := range w.Scores {
			var f float64
			if err := json.Unmarshal(raw, &f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, fmt.Errorf("%w: score %q is not a number: %s", ErrBadProfile, k, raw)
			}
			if k == "" || len(k) > maxNameLen {
				return nil, fmt.Errorf("%w: score name %q", ErrBadProfile, k)
			}
			p.Scores = append(p.Scores, Score{Name: k, Value: f})
		}
		slices.SortFunc(p.Scores, func(a, b Score) int { return strings.Compare(a.Name, b.Name) })
	}
	return p, nil
}

// MarshalJSON writes the profile in the document schema.
func (p *Profile) MarshalJSON() ([]byte, error) {
	w := wireProfile{ID: p.ID, Segments: p.Segments, Stage: p.Stage, UpdatedAt: p.UpdatedAt}
	w.Traits = p.TraitMap()
	if len(p.Scores) > 0 {
		w.Scores = make(map[string]json.RawMessage, len(p.Scores))
		for _, s := range p.Scores {
			b, err := json.Marshal(s.Value)
			if err != nil {
				return nil, err
			}
			w.Scores[s.Name] = b
		}
	}
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
