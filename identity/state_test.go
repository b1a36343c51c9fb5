package identity

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/tailor-edge/tailor/config"
)

func TestStateSurvivesKeyRotation(t *testing.T) {
	old := "old-key-0123456789abcdef0123456789ab"
	s1, err := NewSigner(config.Cookie{Name: "tailor_id", Keys: []string{old}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := NewSigner(config.Cookie{Name: "tailor_id", Keys: []string{"new-key-0123456789abcdef0123456789ab", old}}, nil)
	s3, _ := NewSigner(config.Cookie{Name: "tailor_id", Keys: []string{"new-key-0123456789abcdef0123456789ab"}}, nil)
	st := State{Visits: 2, LastSeen: 1_800_000_000, Stage: "interest", StageAt: 1_799_999_000, Engagement: 12.5, Linked: LinkHash("cust-1"),
		Exposed: []string{ExposureHash("hero", "a"), ExposureHash("cta", "holdout")}}
	v := s1.EncodeState("abc", &st)
	if got, ok := s2.DecodeState("abc", []byte(v)); !ok || !reflect.DeepEqual(got, st) {
		t.Errorf("after rotation: %+v, %v; want %+v", got, ok, st)
	}
	if _, ok := s3.DecodeState("abc", []byte(v)); ok {
		t.Error("a state signed with a removed key still verifies")
	}
	if _, ok := s2.DecodeState("abd", []byte(v)); ok {
		t.Error("a state verifies for another visitor")
	}
}

func FuzzDecodeState(f *testing.F) {
	s, err := NewSigner(config.Cookie{Name: "tailor_id", Keys: []string{"k-0123456789abcdef0123456789abcdef"}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(s.EncodeState("id", &State{Visits: 2, LastSeen: 5, Stage: "intent", StageAt: 4, Engagement: 1.5})), "id", 3, "interest", 2.5, "running", 12.5)
	f.Add([]byte(s.EncodeState("id", &State{Visits: 2, LastSeen: 5, Interests: []InterestScore{{"running", 15}, {"trail", 0.5}}, InterestsAt: 5})), "id", 3, "", 0.0, "", 0.0)
	f.Add([]byte("s1.~~~~~."), "", 1, "", 0.0, "a:b", 1e300)
	f.Add([]byte(s.EncodeState("id", &State{Visits: 1, LastSeen: 5, Sticky: []string{StickyEntry("hero", "a"), StickyEntry("cta", "holdout")}})), "id", 1, "", 0.0, "", 0.0)
	f.Fuzz(func(t *testing.T, cookie []byte, anon string, visits int, stage string, eng float64, tag string, score float64) {
		s.DecodeState(anon, cookie) // never panics
		st := State{Visits: visits, LastSeen: 1, Stage: stage, StageAt: 2, Engagement: eng,
			Interests: []InterestScore{{tag, score}}, InterestsAt: 3}
		got, ok := s.DecodeState(anon, []byte(s.EncodeState(anon, &st)))
		valid := visits >= 1 && visits <= MaxVisits && eng == eng && eng-eng == 0
		if !isStateName(stage) {
			st.Stage = ""
		}
		// A score is kept to interestDigits; a tag that could not be read
		// back is left out.
		if len(writableInterests(st.Interests)) == 0 {
			st.Interests, st.InterestsAt = nil, 0
		} else {
			st.Interests[0].Score, _ = strconv.ParseFloat(strconv.FormatFloat(score, 'g', interestDigits, 64), 64)
		}
		if ok != valid || ok && !reflect.DeepEqual(got, st) {
			t.Fatalf("round trip of %+v = %+v, %v", st, got, ok)
		}
	})
}

func TestLongInterestsFitTheCookie(t *testing.T) {
	s, _ := NewSigner(config.Cookie{Name: "tailor_id", Keys: []string{"k-0123456789abcdef0123456789abcdef"}}, nil)
	// Long tag names: the weakest are left out so that the cookie stays
	// one a visitor may send back.
	var long []InterestScore
	for i := range MaxInterests {
		long = append(long, InterestScore{fmt.Sprintf("%03d", i) + strings.Repeat("x", 125), float64(100 - i)})
	}
	v := s.EncodeState("id", &State{Visits: 1, LastSeen: 1, Interests: long, InterestsAt: 1})
	got, ok := s.DecodeState("id", []byte(v))
	if len(v) > stateMaxLen || !ok || len(got.Interests) == 0 || len(got.Interests) == MaxInterests || got.Interests[0] != long[0] {
		t.Errorf("long tags: cookie of %d bytes, ok %v, %d interests kept (first %v)", len(v), ok, len(got.Interests), got.Interests)
	}
}

func TestStateFromALaterVersionStillReads(t *testing.T) {
	s, _ := NewSigner(config.Cookie{Name: "tailor_id", Keys: []string{"k-0123456789abcdef0123456789abcdef"}}, nil)
	sign := func(payload string) []byte {
		return s.keys[0].stateMAC([]byte(stateVersion+payload+"."), "id", []byte(payload))
	}
	// Empty interests fields before a field this version does not know.
	st, ok := s.DecodeState("id", sign("2~100~intent~90~0~~~~~~future"))
	if !ok || st.Visits != 2 || st.Stage != "intent" || len(st.Interests) != 0 {
		t.Errorf("a later version's state: %+v, %v", st, ok)
	}
	st, ok = s.DecodeState("id", sign("2~100~~0~0~~~95~running:4~~future"))
	if !ok || len(st.Interests) != 1 || st.Interests[0] != (InterestScore{"running", 4}) || st.InterestsAt != 95 {
		t.Errorf("a later version's state with interests: %+v, %v", st, ok)
	}
	sticky := StickyEntry("hero", "b")
	st, ok = s.DecodeState("id", sign("2~100~~0~0~~~~~"+sticky+"~future"))
	if !ok || !st.Kept("hero", "b") || len(st.Interests) != 0 {
		t.Errorf("a later version's state with sticky assignments: %+v, %v", st, ok)
	}
}

// A state written before the sticky field existed reads, without
// assignments; one with them round-trips, and the oldest go past
// MaxSticky.
func TestStickyAssignments(t *testing.T) {
	s, _ := NewSigner(config.Cookie{Name: "tailor_id", Keys: []string{"k-0123456789abcdef0123456789abcdef"}}, nil)
	sign := func(payload string) []byte {
		return s.keys[0].stateMAC([]byte(stateVersion+payload+"."), "id", []byte(payload))
	}
	for _, old := range []string{"2~100~intent~90~0~~", "2~100~intent~90~0~~" + ExposureHash("hero", "a") + "~95~running:4"} {
		st, ok := s.DecodeState("id", sign(old))
		if !ok || st.Visits != 2 || st.Sticky != nil || st.Kept("hero", "a") {
			t.Errorf("state of an earlier version %q: %+v, %v", old, st, ok)
		}
	}
	var st State
	st.Visits, st.LastSeen = 1, 1
	if !st.Keep("hero", "a") || st.Keep("hero", "a") {
		t.Error("Keep: a new assignment must change the state, the same again must not")
	}
	if !st.Keep("hero", "b") || len(st.Sticky) != 1 || !st.Kept("hero", "b") || st.Kept("hero", "a") {
		t.Errorf("a re-bucketed variant replaces the experiment's entry: %v", st.Sticky)
	}
	for i := range MaxSticky + 5 {
		st.Keep(fmt.Sprintf("exp-%d", i), "holdout")
	}
	if len(st.Sticky) != MaxSticky || st.Kept("hero", "b") || st.Kept("exp-4", "holdout") || !st.Kept("exp-5", "holdout") || !st.Kept(fmt.Sprintf("exp-%d", MaxSticky+4), "holdout") {
		t.Errorf("past MaxSticky the oldest must go: %d kept", len(st.Sticky))
	}
	st.Interests, st.InterestsAt = []InterestScore{{"running", 4}}, 1
	for _, tc := range []State{st, {Visits: 3, LastSeen: 9, Sticky: []string{StickyEntry("x", "a")}}} {
		v := s.EncodeState("id", &tc)
		got, ok := s.DecodeState("id", []byte(v))
		if !ok || !reflect.DeepEqual(got, tc) || len(v) > stateMaxLen {
			t.Errorf("round trip of %+v: %+v, %v (%d bytes)", tc, got, ok, len(v))
		}
	}
	// The cookie stays one a browser sends back with the longest
	// interests and every assignment.
	var long []InterestScore
	for i := range MaxInterests {
		long = append(long, InterestScore{fmt.Sprintf("%03d", i) + strings.Repeat("x", 125), float64(100 - i)})
	}
	st.Interests = long
	v := s.EncodeState("id", &st)
	got, ok := s.DecodeState("id", []byte(v))
	if len(v) > stateMaxLen || !ok || len(got.Sticky) != MaxSticky || len(got.Interests) == 0 {
		t.Errorf("long interests and %d assignments: %d bytes, ok %v, %d kept", MaxSticky, len(v), ok, len(got.Sticky))
	}
	// Entries that are not StickyEntry values make the state unreadable.
	if _, ok := s.DecodeState("id", sign("2~100~~0~0~~~~~abc")); ok {
		t.Error("a malformed sticky entry reads")
	}
}

// The variants visitors keep in their cookies must read the same in
// every version of tailor: StickyEntry is pinned.
func TestStickyEntryIsPinned(t *testing.T) {
	for _, tc := range [][3]string{{"hero-copy-test", "Qk3xZ", "uP3H-tAMz"}, {"", "", "mkSm6tZVm"}, {"personalization", "v1.abc", "r3w02ITvb"}} {
		if got := StickyEntry(tc[0], tc[1]); got != tc[2] {
			t.Errorf("StickyEntry(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}
