package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Profile is a visitor's record in the central customer store: the value
// kept in the NATS KV bucket and in the edge's cache. Unknown fields are
// ignored. A Profile is immutable once cached: replace it, never mutate it.
type Profile struct {
	ID        string             `json:"id"`
	Segments  []string           `json:"segments,omitempty"`
	Stage     string             `json:"stage,omitempty"`
	Traits    map[string]any     `json:"traits,omitempty"`
	Scores    map[string]float64 `json:"scores,omitempty"`
	UpdatedAt time.Time          `json:"updated_at,omitzero"`
}

// ErrBadProfile wraps every reason a profile document is refused.
var ErrBadProfile = errors.New("invalid profile")

// ParseProfile decodes and checks a profile document.
func ParseProfile(b []byte) (*Profile, error) {
	var p Profile
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadProfile, err)
	}
	if p.ID == "" {
		return nil, fmt.Errorf("%w: \"id\" is missing", ErrBadProfile)
	}
	for _, s := range p.Segments {
		if s == "" {
			return nil, fmt.Errorf("%w: empty segment name", ErrBadProfile)
		}
	}
	return &p, nil
}
