package journey

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tailor-edge/tailor/cache"
	"github.com/tailor-edge/tailor/identity"
	"github.com/tailor-edge/tailor/rules"
)

// Interests (SPEC "interests:") are scores per tag that the pages a
// visitor views add to, kept in the state cookie (identity.State): no edge
// holds them. They decay with the rules' half-life, and only the strongest
// identity.MaxInterests are kept, so the cookie stays small however long
// the visitor browses.

// Decayed returns scores, last updated at the Unix second at, as they are
// worth at now: halved every halfLife (no decay without one).
func Decayed(scores []identity.InterestScore, at, now int64, halfLife time.Duration) []identity.InterestScore {
	if len(scores) == 0 || halfLife <= 0 || now <= at {
		return scores
	}
	f := math.Exp2(-float64(now-at) / halfLife.Seconds())
	out := make([]identity.InterestScore, 0, len(scores))
	for _, s := range scores {
		if v := s.Score * f; v >= identity.MinInterest {
			out = append(out, identity.InterestScore{Tag: s.Tag, Score: v})
		}
	}
	return out
}

// AddInterests returns scores plus adds, the strongest
// identity.MaxInterests of them, strongest first (ties by tag, so that the
// cookie is the same for the same scores).
func AddInterests(scores []identity.InterestScore, adds map[string]float64) []identity.InterestScore {
	out := slices.Clone(scores)
	for tag, v := range adds {
		if i := slices.IndexFunc(out, func(s identity.InterestScore) bool { return s.Tag == tag }); i >= 0 {
			out[i].Score += v
		} else {
			out = append(out, identity.InterestScore{Tag: tag, Score: v})
		}
	}
	out = slices.DeleteFunc(out, func(s identity.InterestScore) bool {
		return !(s.Score >= identity.MinInterest) || math.IsInf(s.Score, 0)
	})
	sortInterests(out)
	if len(out) > identity.MaxInterests {
		out = out[:identity.MaxInterests]
	}
	return out
}

func sortInterests(s []identity.InterestScore) {
	slices.SortFunc(s, func(a, b identity.InterestScore) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return strings.Compare(a.Tag, b.Tag)
	})
}

// Interests returns the interests the rules see: the edge's scores
// plus, for a visitor with a profile, the profile's scores of interest
// tags (SPEC: "merged with the profile's scores"); with the top one and
// the nearest persona. nil when there are none.
func Interests(set *rules.Set, edge []identity.InterestScore, profile *cache.Profile) (scores map[string]float64, top, persona string) {
	n := len(edge)
	if profile != nil {
		n += len(profile.Scores)
	}
	if set == nil || n == 0 {
		return nil, "", ""
	}
	for _, s := range edge {
		if scores == nil {
			scores = make(map[string]float64, n)
		}
		scores[s.Tag] += s.Score
	}
	if profile != nil {
		for _, s := range profile.Scores {
			if set.IsInterestTag(s.Name) && s.Value > 0 && !math.IsInf(s.Value, 0) {
				if scores == nil {
					scores = make(map[string]float64, n)
				}
				scores[s.Name] += s.Value
			}
		}
	}
	best := 0.0
	for tag, v := range scores {
		if v > best || v == best && tag < top {
			top, best = tag, v
		}
	}
	return scores, top, set.NearestPersona(scores)
}
