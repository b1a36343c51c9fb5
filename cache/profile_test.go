package cache

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseProfile(t *testing.T) {
	p, err := ParseProfile([]byte(`{"id":"cust-42","segments":["vip","runner","vip"],"stage":"retention",
		"traits":{"first_name":"Jane","city":"Lyon","age":41,"tags":["a",1],"x":null,"ok":true},
		"scores":{"engagement":42.5,"churn":-1e-3},"updated_at":"2026-11-20T10:00:00Z","unknown":{"kept":"ignored"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Profile{
		ID: "cust-42", Segments: []string{"vip", "runner"}, Stage: "retention",
		Traits: []Trait{{"age", 41.0}, {"city", "Lyon"}, {"first_name", "Jane"}, {"ok", true},
			{"tags", []any{"a", 1.0}}, {"x", nil}},
		Scores:    []Score{{"churn", -0.001}, {"engagement", 42.5}},
		UpdatedAt: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC),
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("ParseProfile =\n%#v\nwant\n%#v", p, want)
	}
	if v, ok := p.Trait("city"); !ok || v != "Lyon" {
		t.Errorf("Trait(city) = %v, %v", v, ok)
	}
	if p.Score("engagement") != 42.5 || p.Score("none") != 0 {
		t.Error("Score lookups are wrong")
	}
	// MarshalJSON writes the document schema back.
	b, _ := json.Marshal(p)
	back, err := ParseProfile(b)
	if err != nil || !reflect.DeepEqual(back, p) {
		t.Errorf("round trip through MarshalJSON: %s → %+v, %v", b, back, err)
	}
}

func TestParseProfileRejects(t *testing.T) {
	for doc, want := range map[string]string{
		``:                                           "invalid profile",
		`[]`:                                         "JSON object",
		`{"segments":["a"]}`:                         `"id" is missing`,
		`{"id":""}`:                                  `"id" is missing`,
		`{"id":7}`:                                   `"id" must be a string`,
		`{"id":"a"} {"id":"b"}`:                      "invalid profile",
		`{"id":"a","segments":"vip"}`:                "must be an array",
		`{"id":"a","segments":[1]}`:                  "segments must be strings",
		`{"id":"a","segments":[""]}`:                 "segment name",
		`{"id":"a","segments":[" vip"]}`:             "segment name",
		`{"id":"a","traits":[]}`:                     `"traits" must be an object`,
		`{"id":"a","scores":{"e":"high"}}`:           `score "e" is not a number`,
		`{"id":"a","scores":[1]}`:                    `"scores" must be an object`,
		`{"id":"a","updated_at":"yesterday"}`:        "RFC 3339",
		`{"id":"a","stage":{"x":1}}`:                 `"stage" must be a string`,
		`{"id":"` + strings.Repeat("x", 1025) + `"}`: "longer than 1024",
		`{"id":"a","traits":{"x":"` + strings.Repeat("y", MaxProfileBytes) + `"}}`: "bytes, more than",
	} {
		_, err := ParseProfile([]byte(doc))
		if !errors.Is(err, ErrBadProfile) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseProfile(%.60q) = %v, want an ErrBadProfile saying %q", doc, err, want)
		}
	}
}

// FuzzParseProfile checks ParseProfile (fastjson) against encoding/json:
// whatever it accepts, encoding/json reads the same fields the same way.
func FuzzParseProfile(f *testing.F) {
	f.Add([]byte(`{"id":"cust-42","segments":["vip","runner"],"stage":"retention","traits":{"first_name":"Jane","n":1.5,"l":[1,{"a":null}]},"scores":{"engagement":42.5},"updated_at":"2026-11-20T10:00:00Z"}`))
	f.Add([]byte(`{"id":"a\u00e9\n","segments":[],"traits":null,"scores":{"a":1e3,"b":-0}}`))
	f.Add([]byte(`{"id":"a","id":"b"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProfile(b)
		if err != nil {
			return
		}
		if !utf8.Valid(b) {
			return // encoding/json replaces invalid UTF-8; fastjson keeps the bytes
		}
		// Field names match exactly (encoding/json alone would also take
		// "trAits"), the last of repeated keys wins.
		var top map[string]json.RawMessage
		if err := json.Unmarshal(b, &top); err != nil {
			t.Skipf("encoding/json refuses what ParseProfile took: %v", err)
		}
		var ref struct {
			ID       string
			Segments []string
			Stage    string
			Traits   map[string]any
			Scores   map[string]float64
		}
		for name, dst := range map[string]any{"id": &ref.ID, "segments": &ref.Segments, "stage": &ref.Stage,
			"traits": &ref.Traits, "scores": &ref.Scores} {
			if raw, ok := top[name]; ok {
				if err := json.Unmarshal(raw, dst); err != nil {
					t.Fatalf("ParseProfile took %s = %s, which encoding/json refuses: %v", name, raw, err)
				}
			}
		}
		if p.ID != ref.ID || p.Stage != ref.Stage {
			t.Fatalf("id/stage %q/%q, encoding/json %q/%q", p.ID, p.Stage, ref.ID, ref.Stage)
		}
		var segs []string
		for _, s := range ref.Segments {
			if !slices.Contains(segs, s) {
				segs = append(segs, s)
			}
		}
		if len(segs) != len(p.Segments) || (len(segs) > 0 && !reflect.DeepEqual(segs, p.Segments)) {
			t.Fatalf("segments %q, encoding/json %q", p.Segments, segs)
		}
		if tm := p.TraitMap(); len(tm) != len(ref.Traits) || (len(tm) > 0 && !reflect.DeepEqual(tm, ref.Traits)) {
			t.Fatalf("traits %#v, encoding/json %#v", tm, ref.Traits)
		}
		if sm := p.ScoreMap(); len(sm) != len(ref.Scores) || (len(sm) > 0 && !reflect.DeepEqual(sm, ref.Scores)) {
			t.Fatalf("scores %#v, encoding/json %#v", sm, ref.Scores)
		}
	})
}

func BenchmarkParseProfile(b *testing.B) {
	doc := []byte(`{"id":"cust-00001234","segments":["vip","runner","newsletter","mobile","de"],"stage":"retention","traits":{"first_name":"Jane1234","city":"Lyon","tier":"gold"},"updated_at":"2026-11-20T10:00:00Z"}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := ParseProfile(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseProfileRefusesNumbersJSONDoesNotHave(t *testing.T) {
	for _, tc := range []struct{ doc, path string }{
		{`{"id":"a","scores":{"e":NaN}}`, "scores.e"},
		{`{"id":"a","scores":{"e":1e999}}`, "scores.e"},
		{`{"id":"a","scores":{"e":-Inf}}`, "scores.e"},
		{`{"id":"a","scores":{"e":-1e400}}`, "scores.e"},
		{`{"id":"a","traits":{"l":[1,{"x":nan}]}}`, "traits.l.1.x"},
		{`{"id":"a","traits":{"n":+1}}`, "traits.n"},
		{`{"id":"a","traits":{"n":01}}`, "traits.n"},
		{`{"id":"a","extra":{"n":inf}}`, "extra.n"},
	} {
		_, err := ParseProfile([]byte(tc.doc))
		if !errors.Is(err, ErrBadProfile) || !strings.Contains(err.Error(), strconv.Quote(tc.path)) {
			t.Errorf("ParseProfile(%s) = %v, want an error naming %q", tc.doc, err, tc.path)
		}
	}
	for _, doc := range []string{
		`{"id":"a","scores":{"e":-0.5e-3,"f":0,"g":1E+2,"h":1e-999}}`,
		`{"id":"a","traits":{"l":[1.25,-3]}}`,
	} {
		if _, err := ParseProfile([]byte(doc)); err != nil {
			t.Errorf("ParseProfile(%s) = %v, want it taken", doc, err)
		}
	}
}
