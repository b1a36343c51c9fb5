package identity

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/tailor-edge/tailor/internal/fnvmix"
)

// The visitor's state cookie (SPEC "Visitor identity") keeps what the edge
// observes of a visitor between page views, so that no edge needs memory
// per visitor: "s1.<payload>.<mac>", where the payload is the fields below
// joined by "~" (every one of them cookie-safe: digits, stage names, the
// base64url of a hash), and mac is HMAC-SHA256(key, "s1."+id+"."+payload)
// in base64url. The MAC covers the visitor's anonymous id: a state copied
// from another visitor, or left over from an id the visitor no longer
// has, does not verify and counts as none. A state that does not verify
// is never an error: the visitor starts afresh, as on a first visit.
const (
	stateVersion = "s1."
	// stateMaxLen bounds the cookie a visitor may send; tailor writes
	// well under it.
	stateMaxLen = 1024
	// MaxVisits caps the visit counter: a state with more does not read.
	MaxVisits = 1_000_000
)

// State is the visitor's state as the cookie carries it.
type State struct {
	// Visits is the visit number: 1 on a first visit; 0 in a state not
	// yet read or started.
	Visits int
	// LastSeen is the last page view, in Unix seconds.
	LastSeen int64
	// Stage is the journey stage the edge saw the visitor reach, "" for
	// none; StageAt is when, in Unix seconds.
	Stage   string
	StageAt int64
	// Engagement is the running engagement value of this visit: the sum
	// of the values of the goals reached in it.
	Engagement float64
	// Linked is a short hash of the token subject the visitor's
	// anonymous id was last linked to by an identify event ("" for
	// none): the link is reported once, not on every page.
	Linked string
	// Exposed holds a short hash of each (experiment, variant) the
	// visitor has been reported exposed to in this visit, oldest first,
	// at most MaxExposed: an exposure is reported once per visit, not on
	// every page that shows the experiment.
	Exposed []string
	// Interests are the visitor's interest scores as of InterestsAt (Unix
	// seconds), strongest first, at most MaxInterests.
	Interests   []InterestScore
	InterestsAt int64
	// Sticky keeps the variant the visitor was assigned in each
	// experiment at their first exposure (StickyEntry), oldest first, at
	// most MaxSticky: unlike Exposed, it outlasts the visit, so that the
	// visitor keeps their variant when they log in (the lookup key
	// changes) or when the experiment's weights change.
	Sticky []string
}

// MaxSticky bounds State.Sticky: the visitor's variants in the 32
// experiments they met last. Past it the oldest is forgotten, and that
// experiment buckets the visitor again should they meet it again.
const MaxSticky = 32

// stickyLen is the length of a StickyEntry: 30 bits of the experiment's
// hash, then 24 of the (experiment, variant) pair's, in base64url.
const stickyLen = 9

// StickyEntry is what State.Sticky keeps of an assignment: 9 base64url
// characters, the first 5 naming the experiment. Two experiments a
// visitor keeps share the 5 with odds of about 5e-7; two variants of one
// experiment the other 4, 1e-6. It is no secret (the MAC protects the
// state), so fnvmix (FNV-1a) does, without an allocation.
func StickyEntry(experiment, variant string) string {
	var b [stickyLen]byte
	putStickyEntry(b[:], experiment, variant)
	return string(b[:])
}

func putStickyEntry(b []byte, experiment, variant string) {
	x := fnvmix.String(fnvmix.Offset, experiment)
	y := fnvmix.String(fnvmix.String(x*fnvmix.Prime, "\x00"), variant)
	x, y = fnvmix.Mix(x), fnvmix.Mix(y)
	const enc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range 5 {
		b[i] = enc[(x>>(6*i))&63]
	}
	for i := range 4 {
		b[5+i] = enc[(y>>(6*i))&63]
	}
}

// Kept reports whether the state keeps variant as the visitor's in
// experiment (rules.Assignments): Decide shows it while the experiment
// still has it.
func (st *State) Kept(experiment, variant string) bool {
	if len(st.Sticky) == 0 {
		return false
	}
	var b [stickyLen]byte
	putStickyEntry(b[:], experiment, variant)
	for _, e := range st.Sticky {
		if e == string(b[:]) {
			return true
		}
	}
	return false
}

// Keep records variant as the visitor's in experiment, in place of any
// other variant of it, as the newest entry (the oldest goes past
// MaxSticky); one already kept stays where it is, so that a page view
// meeting kept experiments changes nothing. It reports whether Sticky
// changed. The slice is copied, so a state copied from another keeps its
// list.
func (st *State) Keep(experiment, variant string) bool {
	e := StickyEntry(experiment, variant)
	if slices.Contains(st.Sticky, e) {
		return false
	}
	n := len(st.Sticky)
	out := make([]string, 0, min(n+1, MaxSticky))
	for _, old := range st.Sticky {
		if old[:5] != e[:5] {
			out = append(out, old)
		}
	}
	if len(out) >= MaxSticky {
		out = out[len(out)-MaxSticky+1:]
	}
	st.Sticky = append(out, e)
	return true
}

// MaxExposed bounds State.Exposed; past it the oldest is forgotten
// (and reported again if seen again this visit: harmless, as readouts
// count distinct visitors).
const MaxExposed = 16

// ExposureHash is what the state keeps of an exposure: 36 bits of
// SHA-256, 6 base64url characters.
func ExposureHash(experiment, variant string) string {
	sum := sha256.Sum256([]byte(experiment + "\x00" + variant))
	return base64.RawURLEncoding.EncodeToString(sum[:6])[:6]
}

// EncodeState returns the state cookie value for st, bound to the
// anonymous id anon. A stage or link that could not be read back (not a
// name) is left out, and so are the weakest interests when they would not
// fit the cookie.
func (s *Signer) EncodeState(anon string, st *State) string {
	stage, linked := st.Stage, st.Linked
	if !isStateName(stage) {
		stage = ""
	}
	if !isStateName(linked) {
		linked = ""
	}
	b := make([]byte, 0, 160)
	b = append(b, stateVersion...)
	start := len(b)
	b = strconv.AppendInt(b, int64(st.Visits), 10)
	b = append(b, '~')
	b = strconv.AppendInt(b, st.LastSeen, 10)
	b = append(b, '~')
	b = append(b, stage...)
	b = append(b, '~')
	b = strconv.AppendInt(b, st.StageAt, 10)
	b = append(b, '~')
	b = strconv.AppendFloat(b, st.Engagement, 'g', -1, 64)
	b = append(b, '~')
	b = append(b, linked...)
	b = append(b, '~')
	for i, h := range st.Exposed {
		if i > 0 {
			b = append(b, '.')
		}
		b = append(b, h...)
	}
	sticky := writableSticky(st.Sticky)
	// The tenth field, the sticky assignments, follows the interests
	// (empty when there are none).
	stickyRoom := 0
	if len(sticky) > 0 {
		stickyRoom = 1 + len(sticky)*(stickyLen+1)
	}
	if interests := writableInterests(st.Interests); len(interests) > 0 || len(sticky) > 0 {
		b = append(b, '~')
		if len(interests) > 0 {
			b = strconv.AppendInt(b, st.InterestsAt, 10)
		}
		b = append(b, '~')
		// The weakest go first when long tag names would overflow the
		// cookie a visitor may send back.
		mark := len(b)
		for n := len(interests); n > 0; n-- {
			b = appendInterests(b[:mark], interests[:n])
			if len(b)+stickyRoom+1+macLen <= stateMaxLen {
				break
			}
		}
	}
	if len(sticky) > 0 {
		b = append(b, '~')
		for i, e := range sticky {
			if i > 0 {
				b = append(b, '.')
			}
			b = append(b, e...)
		}
	}
	payload := b[start:]
	b = append(b, '.')
	b = s.keys[0].stateMAC(b, anon, payload)
	return string(b)
}

// DecodeState returns the state in state cookie value v when its MAC
// verifies for the anonymous id anon under one of the keys and every field
// is well formed; ok is false otherwise, and the visitor starts afresh.
func (s *Signer) DecodeState(anon string, v []byte) (st State, ok bool) {
	if len(v) > stateMaxLen || len(v) < len(stateVersion)+macLen+1 || string(v[:len(stateVersion)]) != stateVersion {
		return st, false
	}
	dot := len(v) - macLen - 1
	if v[dot] != '.' {
		return st, false
	}
	payload, got := v[len(stateVersion):dot], v[dot+1:]
	var buf [macLen]byte
	verified := false
	for _, k := range s.keys {
		if hmac.Equal(k.stateMAC(buf[:0], anon, payload), got) {
			verified = true
			break
		}
	}
	if !verified {
		return st, false
	}
	f := strings.Split(string(payload), "~")
	if len(f) < 6 {
		return st, false
	}
	// The eighth and ninth fields, the interests, are there only when the
	// visitor has some (or empty, when fields follow them); the tenth,
	// the sticky assignments, only when the visitor has some. Fields past
	// the tenth are for later versions of the payload: a state written
	// by a newer tailor still reads, and one written before the sticky
	// field reads without assignments.
	visits, err1 := strconv.Atoi(f[0])
	last, err2 := strconv.ParseInt(f[1], 10, 64)
	at, err3 := strconv.ParseInt(f[3], 10, 64)
	eng, err4 := strconv.ParseFloat(f[4], 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil ||
		visits < 1 || visits > MaxVisits || last < 0 || at < 0 ||
		math.IsNaN(eng) || math.IsInf(eng, 0) || !isStateName(f[2]) || !isStateName(f[5]) {
		return State{}, false
	}
	st = State{Visits: visits, LastSeen: last, Stage: f[2], StageAt: at, Engagement: eng, Linked: f[5]}
	if len(f) > 6 && f[6] != "" {
		st.Exposed = strings.Split(f[6], ".")
		if len(st.Exposed) > MaxExposed {
			return State{}, false
		}
		for _, h := range st.Exposed {
			if len(h) != 6 || !isStateName(h) {
				return State{}, false
			}
		}
	}
	if len(f) > 8 && (f[7] != "" || f[8] != "") {
		at, err := strconv.ParseInt(f[7], 10, 64)
		interests, ok := parseInterests(f[8])
		if err != nil || at < 0 || !ok {
			return State{}, false
		}
		st.Interests, st.InterestsAt = interests, at
	}
	if len(f) > 9 && f[9] != "" {
		st.Sticky = strings.Split(f[9], ".")
		if len(st.Sticky) > MaxSticky {
			return State{}, false
		}
		for _, e := range st.Sticky {
			if len(e) != stickyLen || !isStateName(e) {
				return State{}, false
			}
		}
	}
	return st, true
}

// writableSticky returns the entries DecodeState reads back, the newest
// MaxSticky.
func writableSticky(sticky []string) []string {
	if len(sticky) > MaxSticky {
		sticky = sticky[len(sticky)-MaxSticky:]
	}
	if !slices.ContainsFunc(sticky, func(e string) bool { return len(e) != stickyLen || !isStateName(e) }) {
		return sticky
	}
	out := make([]string, 0, len(sticky))
	for _, e := range sticky {
		if len(e) == stickyLen && isStateName(e) {
			out = append(out, e)
		}
	}
	return out
}

// isStateName reports whether s may stand in a state field as written:
// empty, or letters, digits, '_', '-' and '.' (stage names, base64url).
func isStateName(s string) bool {
	if len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && c != '-' && c != '.' && (c < '0' || c > '9') && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

// stateMAC appends the base64url MAC of "s1."+anon+"."+payload to dst.
func (k *macPool) stateMAC(dst []byte, anon string, payload []byte) []byte {
	h := k.Get().(hash.Hash)
	h.Reset()
	h.Write([]byte(stateVersion))
	h.Write([]byte(anon))
	h.Write([]byte{'.'})
	h.Write(payload)
	var sum [sha256.Size]byte
	dst = base64.RawURLEncoding.AppendEncode(dst, h.Sum(sum[:0]))
	k.Put(h)
	return dst
}

// LinkHash is what the state keeps of a token subject (State.Linked):
// enough to notice that it changed, nothing that names the customer.
func LinkHash(subject string) string {
	sum := sha256.Sum256([]byte(subject))
	return base64.RawURLEncoding.EncodeToString(sum[:8])
}

// StateName is the state cookie's name: "tailor_state", with the id
// cookie's __Host- or __Secure- prefix, whose rules it then follows too.
func (s *Signer) StateName() string { return s.stateName }

// SetStateCookie returns the Set-Cookie value that gives the visitor
// anon the state st, with the id cookie's attributes.
func (s *Signer) SetStateCookie(anon string, st *State) string {
	return s.stateName + "=" + s.EncodeState(anon, st) + s.attrs
}

// stateCookieName is StateName for an id cookie named idName.
func stateCookieName(idName string) string {
	for _, prefix := range []string{"__Host-", "__Secure-"} {
		if strings.HasPrefix(idName, prefix) {
			return prefix + "tailor_state"
		}
	}
	return "tailor_state"
}

// Interests (SPEC "interests:") are kept in the state as
// "tag:score|tag:score", strongest first: at most MaxInterests of them,
// none below MinInterest, each score to interestDigits.
const (
	// MaxInterests is how many interests a state holds.
	MaxInterests = 8
	// MinInterest is the smallest score a state holds: below it a decayed
	// tag is forgotten.
	MinInterest = 0.001
	// interestDigits is the precision a score is kept to in the cookie.
	interestDigits = 4
)

// InterestScore is one tag's interest score.
type InterestScore struct {
	Tag   string
	Score float64
}

// writableInterests returns the scores that parseInterests reads back
// (a tag that is no state name, as a 200-character one, would make the
// whole state unreadable), at most MaxInterests.
func writableInterests(scores []InterestScore) []InterestScore {
	ok := func(s InterestScore) bool {
		return s.Tag != "" && isStateName(s.Tag) && s.Score >= MinInterest && !math.IsInf(s.Score, 0)
	}
	if !slices.ContainsFunc(scores, func(s InterestScore) bool { return !ok(s) }) && len(scores) <= MaxInterests {
		return scores
	}
	out := make([]InterestScore, 0, len(scores))
	for _, s := range scores {
		if ok(s) && len(out) < MaxInterests {
			out = append(out, s)
		}
	}
	return out
}

// appendInterests writes scores as the state's interests field:
// "tag:score|tag:score".
func appendInterests(b []byte, scores []InterestScore) []byte {
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
func parseInterests(field string) (scores []InterestScore, ok bool) {
	if field == "" {
		return nil, true
	}
	for pair := range strings.SplitSeq(field, "|") {
		tag, num, found := strings.Cut(pair, ":")
		v, err := strconv.ParseFloat(num, 64)
		if !found || tag == "" || !isStateName(tag) || err != nil || !(v >= MinInterest) || math.IsInf(v, 0) || len(scores) == MaxInterests {
			return nil, false
		}
		scores = append(scores, InterestScore{tag, v})
	}
	return scores, true
}
