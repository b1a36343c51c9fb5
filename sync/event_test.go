package sync

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestEventJSONReadsBackAsTheSameEvent(t *testing.T) {
	for i := range 1000 {
		e := testEvent(i)
		if i%7 == 0 {
			e.Visitor = "jöse \"<b>\" & \u2028 \x01 \\ 😀"
			e.Segments = append(e.Segments, "", "a\tb")
		}
		data := e.AppendJSON(nil)
		var back Event
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatalf("event %d: %v: %s", i, err, data)
		}
		if !reflect.DeepEqual(back, wireForm(e)) {
			t.Fatalf("event %d reads back as %+v\nwant %+v\nfrom %s", i, back, wireForm(e), data)
		}
	}
}

func TestEventJSONWritesOnlyTheFieldsOfItsType(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	for _, c := range []struct {
		e    Event
		want string
	}{
		{Event{ID: "1", Type: EventPageview, Time: at},
			`{"id":"1","type":"pageview","time":"2026-05-01T10:00:00.000000000Z","visitor":"","anonymous_id":"","url":"","path":"","referrer":"","segments":[],"stage":"","persona":"","device":"","country":"","utm_source":"","utm_campaign":""}`},
		{Event{ID: "2", Type: EventGoal, Time: at, Goal: "subscribe", Segments: []string{"vip", "mobile"}},
			`{"id":"2","type":"goal","time":"2026-05-01T10:00:00.000000000Z","visitor":"","anonymous_id":"","url":"","path":"","referrer":"","segments":["vip","mobile"],"stage":"","persona":"","device":"","country":"","utm_source":"","utm_campaign":"","goal":"subscribe","value":0}`},
		{Event{ID: "3", Type: EventGoal, Time: at.Add(1500 * time.Microsecond), Goal: "purchase", Value: 99.95},
			`{"id":"3","type":"goal","time":"2026-05-01T10:00:00.001500000Z","visitor":"","anonymous_id":"","url":"","path":"","referrer":"","segments":[],"stage":"","persona":"","device":"","country":"","utm_source":"","utm_campaign":"","goal":"purchase","value":99.95}`},
		{Event{ID: "4", Type: EventGoal, Time: at, Goal: "odd", Value: math.NaN()},
			`{"id":"4","type":"goal","time":"2026-05-01T10:00:00.000000000Z","visitor":"","anonymous_id":"","url":"","path":"","referrer":"","segments":[],"stage":"","persona":"","device":"","country":"","utm_source":"","utm_campaign":"","goal":"odd","value":0}`},
		{Event{ID: "5", Type: EventStage, Time: at, StageFrom: "interest", StageTo: "intent", Stage: "intent"},
			`{"id":"5","type":"stage","time":"2026-05-01T10:00:00.000000000Z","visitor":"","anonymous_id":"","url":"","path":"","referrer":"","segments":[],"stage":"intent","persona":"","device":"","country":"","utm_source":"","utm_campaign":"","stage_from":"interest","stage_to":"intent"}`},
		{Event{ID: "6", Type: EventExposure, Time: at, Experiment: "hero", Variant: "a"},
			`{"id":"6","type":"exposure","time":"2026-05-01T10:00:00.000000000Z","visitor":"","anonymous_id":"","url":"","path":"","referrer":"","segments":[],"stage":"","persona":"","device":"","country":"","utm_source":"","utm_campaign":"","experiment":"hero","variant":"a"}`},
		{Event{ID: "7", Type: EventIdentify, Time: at, Visitor: "v", ProfileID: "cust-1"},
			`{"id":"7","type":"identify","time":"2026-05-01T10:00:00.000000000Z","visitor":"v","anonymous_id":"","url":"","path":"","referrer":"","segments":[],"stage":"","persona":"","device":"","country":"","utm_source":"","utm_campaign":"","profile_id":"cust-1"}`},
		{Event{ID: "8", Type: EventPageview, Time: at, Device: "bot", Country: "DE", UTMSource: "news", UTMCampaign: "spring", Bot: true},
			`{"id":"8","type":"pageview","time":"2026-05-01T10:00:00.000000000Z","visitor":"","anonymous_id":"","url":"","path":"","referrer":"","segments":[],"stage":"","persona":"","device":"bot","country":"DE","utm_source":"news","utm_campaign":"spring","bot":true}`},
	} {
		if got := string(c.e.AppendJSON(nil)); got != c.want {
			t.Errorf("AppendJSON(%s event) =\n%s\nwant\n%s", c.e.Type, got, c.want)
		}
	}
}

func TestEventStringsAreEscapedAsEncodingJSONEscapesThem(t *testing.T) {
	for _, s := range []string{"", "plain", `"quoted" \back\`, "<script>&</script>", "\x00\x01\b\f\n\r\t\x1f\x7f",
		"\u2028\u2029", "caf\xe9", "\xff\xfe", "ok 😀 \xf0\x9f\x98", "ü\u00a0€"} {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestAppendJSONDoesNotAllocate(t *testing.T) {
	e := testEvent(1)
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf = e.AppendJSON(buf[:0]) }); n != 0 {
		t.Errorf("AppendJSON allocates %v times", n)
	}
}

func TestNewEventIDIsUniqueAndSortsByTime(t *testing.T) {
	seen := make(map[string]bool)
	for range 10000 {
		id := NewEventID()
		if len(id) != 26 || strings.Trim(id, crockford) != "" || id[0] > '7' {
			t.Fatalf("NewEventID() = %q; want 26 characters of Crockford base 32", id)
		}
		if seen[id] {
			t.Fatalf("NewEventID() = %q twice", id)
		}
		seen[id] = true
	}
	a := NewEventID()
	time.Sleep(2 * time.Millisecond)
	if b := NewEventID(); b <= a {
		t.Errorf("an id made later (%s) does not sort after %s", b, a)
	}
}

func FuzzEventJSON(f *testing.F) {
	f.Add("id", "pageview", "cust-1", "https://x.example/?a=<b>&c", "vip", "", "", "", "", 0.0, int64(0))
	f.Add("", "goal", "\x00\u2028\"\\", "\xff", "caf\xe9", "a b", "purchase", "", "", 12.5, int64(1714564800123456789))
	f.Add("x", "stage", "😀", "\t\n", "", "", "", "interest", "b", math.Inf(1), int64(-1))
	f.Add("y", "exposure", "", "", "", "", "", "", "", math.Copysign(0, -1), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, id, typ, visitor, url, seg1, seg2, goal, from, variant string, value float64, nanos int64) {
		e := Event{ID: id, Type: typ, Time: time.Unix(0, nanos), Visitor: visitor, AnonymousID: visitor + id,
			URL: url, Path: url, Referrer: seg2, Stage: from, Persona: seg1,
			Goal: goal, Value: value, StageFrom: from, StageTo: goal, Experiment: seg1, Variant: variant, ProfileID: visitor,
			Device: typ, Country: seg2, UTMSource: url, UTMCampaign: variant, Bot: nanos%2 == 0}
		if seg1 != "" || seg2 != "" {
			e.Segments = []string{seg1, seg2}
		}
		data := e.AppendJSON(nil)
		if !json.Valid(data) {
			t.Fatalf("AppendJSON wrote invalid JSON: %s", data)
		}
		for _, s := range []string{id, typ, visitor, url, seg1, seg2, goal, from, variant} {
			want, _ := json.Marshal(s)
			if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
				t.Fatalf("appendJSONString(%q) = %s, want %s", s, got, want)
			}
			if !utf8.ValidString(s) {
				return // written with U+FFFD: valid, but not the same string
			}
		}
		var back Event
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatalf("%v: %s", err, data)
		}
		if want := wireForm(e); !reflect.DeepEqual(back, want) {
			t.Fatalf("reads back as %+v\nwant %+v\nfrom %s", back, want, data)
		}
	})
}

// BenchmarkEventAppendJSON writes a typical event, and for comparison
// has encoding/json write it.
func BenchmarkEventAppendJSON(b *testing.B) {
	e := testEvent(1)
	buf := e.AppendJSON(nil)
	b.Run("AppendJSON", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			buf = e.AppendJSON(buf[:0])
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			json.Marshal(&e)
		}
	})
}

func BenchmarkNewEventID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		NewEventID()
	}
}
