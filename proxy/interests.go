package proxy

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tailor-edge/tailor/cache"
	"github.com/tailor-edge/tailor/rules"
)

// Interests (SPEC "interests:") are scores per tag that the pages a
// visitor views add to, kept in the state cookie: no edge holds them. They
// decay with the rules' half-life, and only the strongest maxInterests
// are kept, so the cookie stays small however long the visitor browses.
const (
	maxInterests = 8
	// minInterest is the score below which a decayed tag is forgotten.
	minInterest = 0.001
	// interestDigits is the precision a score is kept to in the cookie.
	interestDigits = 4
)

// interestScore is one tag's score.
type interestScore struct {
	Tag   string
	Score float64
}

// decayed returns scores, last updated at the Unix second at, as they are
// worth at now: halved every halfLife (no decay without one).
func decayed(scores []interestScore, at, now int64, halfLife time.Duration) []interestScore {
	if len(scores) == 0 || halfLife <= 0 || now <= at {
		return scores
	}
	f := math.Exp2(-float64(now-at) / halfLife.Seconds())
	out := make([]interestScore, 0, len(scores))
	for _, s := range scores {
		if v := s.Score * f; v >= minInterest {
			out = append(out, interestScore{s.Tag, v})
		}
	}
	return out
}

// addInterests returns scores plus adds, the strongest maxInterests of
// them, strongest first (ties by tag, so that the cookie is the same for
// the same scores).
func addInterests(scores []interestScore, adds map[string]float64) []interestScore {
	out := slices.Clone(scores)
	for tag, v := range adds {
		if i := slices.IndexFunc(out, func(s interestScore) bool { return s.Tag == tag }); i >= 0 {
			out[i].Score += v
		} else {
			out = append(out, interestScore{tag, v})
		}
	}
	out = slices.DeleteFunc(out, func(s interestScore) bool { return !(s.Score >= minInterest) || math.IsInf(s.Score, 0) })
	sortInterests(out)
	if len(out) > maxInterests {
		out = out[:maxInterests]
	}
	return out
}

func sortInterests(s []interestScore) {
	slices.SortFunc(s, func(a, b interestScore) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return strings.Compare(a.Tag, b.Tag)
	})
}

// visitorInterests returns the interests the rules see: the edge's scores
// plus, for a visitor with a profile, the profile's scores of interest
// tags (SPEC: "merged with the profile's scores"); with the top one and
// the nearest persona. nil when there are none.
func visitorInterests(set *rules.Set, edge []interestScore, profile *cache.Profile) (scores map[string]float64, top, persona string) {
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

// writableInterests returns the scores that parseInterests reads back
// (a tag that is no state name, as a 200-character one, would make the
// whole state unreadable), at most maxInterests.
func writableInterests(scores []interestScore) []interestScore {
	ok := func(s interestScore) bool {
		return s.Tag != "" && isStateName(s.Tag) && s.Score >= minInterest && !math.IsInf(s.Score, 0)
	}
	if !slices.ContainsFunc(scores, func(s interestScore) bool { return !ok(s) }) && len(scores) <= maxInterests {
		return scores
	}
	out := make([]interestScore, 0, len(scores))
	for _, s := range scores {
		if ok(s) && len(out) < maxInterests {
			out = append(out, s)
		}
	}
	return out
}

// appendInterests writes scores as the state's interests field:
// "tag:score|tag:score".
func appendInterests(b []byte, scores []interestScore) []byte {
	for i, s := range scores {
		if i > 0 {
			b = append(b, '|')
		}
		b = append(b, s.Tag...)
		b = append(b, ':')
		b = strconv.AppendFloat(b, s.Score, 'g', interestDigits, 64)
	}
	return b
}

// parseInterests reads the state's interests field; ok is false when it
// is not one appendInterests writes.
func parseInterests(field string) (scores []interestScore, ok bool) {
	if field == "" {
		return nil, true
	}
	for pair := range strings.SplitSeq(field, "|") {
		tag, num, found := strings.Cut(pair, ":")
		v, err := strconv.ParseFloat(num, 64)
		if !found || tag == "" || !isStateName(tag) || err != nil || !(v >= minInterest) || math.IsInf(v, 0) || len(scores) == maxInterests {
			return nil, false
		}
		scores = append(scores, interestScore{tag, v})
	}
	return scores, true
}
