package sync

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tailor-edge/tailor/cache"
	"github.com/tailor-edge/tailor/internal/testkit"
)

// importStore starts an in-process server and opens a profile bucket on
// it, both stopped when the test ends.
func importStore(tb testing.TB) (*Store, jetstream.KeyValue) {
	tb.Helper()
	s := openStore(tb, testkit.JetStream(tb, "", -1).ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := s.KV(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return s, kv
}

// badLine is one call of ImportOptions.Bad.
type badLine struct {
	line int
	msg  string
}

func importString(t *testing.T, s *Store, input string, o ImportOptions) (ImportResult, []badLine, error) {
	t.Helper()
	var bad []badLine
	o.Bad = func(line int, err error) { bad = append(bad, badLine{line, err.Error()}) }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := s.Import(ctx, strings.NewReader(input), o)
	return res, bad, err
}

func getValue(t *testing.T, kv jetstream.KeyValue, key string) []byte {
	t.Helper()
	e, err := kv.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("kv.Get(%q): %v", key, err)
	}
	return e.Value()
}

func keyCount(t testing.TB, kv jetstream.KeyValue) uint64 {
	t.Helper()
	st, err := kv.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Values()
}

func TestImportJSONLSkipsBadLinesAndStoresGoodOnesAsGiven(t *testing.T) {
	s, kv := importStore(t)
	good := []string{
		`{"id":"cust-1","segments":["vip"],"stage":"retention","loyalty_tier":"gold"}`,
		`{"id":"cust-2", "traits":{"city":"Lyon"},  "scores":{"engagement":42.5}}`,
		`{"id":"cust-3","updated_at":"2026-11-20T10:00:00Z"}`,
	}
	input := strings.Join([]string{
		good[0],
		`{"id":"cust-x",`,                    // 2: cut short
		``,                                   // 3: blank, not a profile
		`{"segments":["vip"]}`,               // 4: no id
		good[1] + "\r",                       // 5: CRLF
		`{"id":"cust-y","segments":[""]}`,    // 6: empty segment
		`{"id":"cust-z","scores":{"a":"x"}}`, // 7: score not a number
		"{\"id\":\"cust-long\",\"pad\":\"" + strings.Repeat("x", MaxImportLine) + "\"}", // 8: too long
		good[2], // 9, no final newline
	}, "\n")
	res, bad, err := importString(t, s, input, ImportOptions{})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	want := ImportResult{Lines: 8, Written: 3, Bad: 5}
	if res.Lines != want.Lines || res.Written != want.Written || res.Bad != want.Bad || res.Failed != 0 {
		t.Errorf("Import = %+v, want %+v", res, want)
	}
	var lines []int
	for _, b := range bad {
		lines = append(lines, b.line)
	}
	if !reflect.DeepEqual(lines, []int{2, 4, 6, 7, 8}) {
		t.Errorf("bad lines reported = %v, want [2 4 6 7 8]\n%v", lines, bad)
	}
	if len(bad) == 5 && !strings.Contains(bad[1].msg, `"id" is missing`) {
		t.Errorf("line 4 reported as %q, want it to say the id is missing", bad[1].msg)
	}
	if len(bad) == 5 && !strings.Contains(bad[4].msg, "longer than") {
		t.Errorf("line 8 reported as %q, want it to say the line is too long", bad[4].msg)
	}
	for i, doc := range good {
		id := fmt.Sprintf("cust-%d", i+1)
		if got := getValue(t, kv, id); string(got) != doc {
			t.Errorf("kv.Get(%q) = %s, want the line as given: %s", id, got, doc)
		}
	}
	if n := keyCount(t, kv); n != 3 {
		t.Errorf("bucket holds %d values, want 3", n)
	}
}

func TestImportCSVBuildsProfileDocuments(t *testing.T) {
	s, kv := importStore(t)
	input := "\uFEFFid,segments,stage,traits.first_name,traits.city,scores.engagement,scores.ltv,updated_at\r\n" +
		"cust-1,vip;runner,retention,Jane,Lyon,42.5,1200,2026-11-20T10:00:00Z\r\n" +
		"cust-2,,,\"Smith, \"\"JJ\"\"\",,,-3,\r\n" +
		"cust-3,only-one,awareness,\"two\nlines\",,0.000001,,\r\n"
	res, bad, err := importString(t, s, input, ImportOptions{})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if len(bad) > 0 || res.Written != 3 || res.Lines != 3 {
		t.Fatalf("Import = %+v, bad %v; want 3 written, none bad", res, bad)
	}
	for _, tc := range []struct {
		id, want string
	}{
		{"cust-1", `{"id":"cust-1","segments":["vip","runner"],"stage":"retention","traits":{"first_name":"Jane","city":"Lyon"},"scores":{"engagement":42.5,"ltv":1200},"updated_at":"2026-11-20T10:00:00Z"}`},
		{"cust-2", `{"id":"cust-2","traits":{"first_name":"Smith, \"JJ\""},"scores":{"ltv":-3}}`},
		{"cust-3", `{"id":"cust-3","segments":["only-one"],"stage":"awareness","traits":{"first_name":"two\nlines"},"scores":{"engagement":0.000001}}`},
	} {
		got := getValue(t, kv, tc.id)
		if string(got) != tc.want {
			t.Errorf("kv.Get(%q) =\n %s\nwant\n %s", tc.id, got, tc.want)
		}
		if _, err := cache.ParseProfile(got); err != nil {
			t.Errorf("ParseProfile(%s): %v", got, err)
		}
	}
}

func TestImportCSVReportsBadRowsByLine(t *testing.T) {
	s, kv := importStore(t)
	input := "id,segments,scores.engagement,updated_at\n" +
		"cust-1,vip,1,2026-11-20T10:00:00Z\n" + // 2: good
		"cust-2,vip,1\n" + // 3: a column short
		"cust-3,vip,lots,\n" + // 4: not a number
		"cust-4,vip,,yesterday\n" + // 5: not a time
		"cust-5,\"vip\nrunner\",,\n" + // 6-7: good, spans two lines
		",vip,,\n" + // 8: no id
		"cust-6,vip;;runner,,\n" + // 9: empty segment
		"cust-7,\"vip\"x,,\n" + // 10: bad quoting
		"cust-8,,NaN,\n" // 11: NaN is not a JSON number
	res, bad, err := importString(t, s, input, ImportOptions{Format: FormatCSV})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	var lines []int
	for _, b := range bad {
		lines = append(lines, b.line)
	}
	if want := []int{3, 4, 5, 8, 9, 10, 11}; !reflect.DeepEqual(lines, want) {
		t.Errorf("bad lines = %v, want %v\n%v", lines, want, bad)
	}
	if res.Written != 2 || res.Bad != 7 || res.Lines != 9 {
		t.Errorf("Import = %+v, want 9 lines, 2 written, 7 bad", res)
	}
	for _, want := range []string{"3 columns, want 4", `"lots" is not a number`, "RFC 3339"} {
		if !strings.Contains(fmt.Sprint(bad), want) {
			t.Errorf("bad lines %v: none says %q", bad, want)
		}
	}
	if got := getValue(t, kv, "cust-5"); string(got) != `{"id":"cust-5","segments":["vip\nrunner"]}` {
		t.Errorf("kv.Get(cust-5) = %s", got)
	}
}

func TestImportRejectsCSVHeaderWithUnknownColumn(t *testing.T) {
	s, kv := importStore(t)
	for _, tc := range []struct {
		header string
		want   []string
	}{
		{"id,segments,favourite_colour", []string{`unknown column "favourite_colour"`, "traits.<name>"}},
		{"id,traits.,scores.x,nope", []string{`unknown columns "traits.", "nope"`}},
		{"segments,stage", []string{`no "id" column`}},
		{"id,stage,stage", []string{`columns named twice: "stage"`}},
	} {
		input := tc.header + "\ncust-1,a,b,c\n"
		_, bad, err := importString(t, s, input, ImportOptions{Format: FormatCSV})
		var ie *InputError
		if !errors.As(err, &ie) || ie.Line != 1 {
			t.Errorf("Import(header %q) error = %v, want an *InputError for line 1", tc.header, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Import(header %q) error = %q, want it to say %q", tc.header, err, w)
			}
		}
		if len(bad) > 0 {
			t.Errorf("Import(header %q) reported bad lines %v, want only the header error", tc.header, bad)
		}
	}
	if n := keyCount(t, kv); n != 0 {
		t.Errorf("bucket holds %d values after rejected headers, want 0", n)
	}
}

func TestImportStoresOddIDsUnderB64Keys(t *testing.T) {
	s, kv := importStore(t)
	ids := []string{"jane@example.com", "b64.x", "a.b", "über", strings.Repeat("x", 201)}
	var input strings.Builder
	for _, id := range ids {
		doc, _ := json.Marshal(map[string]any{"id": id})
		input.Write(doc)
		input.WriteByte('\n')
	}
	res, bad, err := importString(t, s, input.String(), ImportOptions{})
	if err != nil || len(bad) > 0 || res.Written != int64(len(ids)) {
		t.Fatalf("Import = %+v, %v, bad %v; want all %d written", res, err, bad, len(ids))
	}
	for _, id := range ids {
		key := Key(id)
		if !strings.HasPrefix(key, "b64.") {
			t.Errorf("Key(%q) = %q, want a b64. key", id, key)
		}
		p, err := cache.ParseProfile(getValue(t, kv, key))
		if err != nil || p.ID != id {
			t.Errorf("profile under %q = %+v, %v; want id %q", key, p, err, id)
		}
	}
}

func TestImportRejectsIDTooLongForAKey(t *testing.T) {
	s, kv := importStore(t)
	input := `{"id":"` + strings.Repeat("é", 800) + `"}` + "\n" + `{"id":"ok"}` + "\n"
	res, bad, err := importString(t, s, input, ImportOptions{})
	if err != nil || res.Written != 1 || len(bad) != 1 || bad[0].line != 1 {
		t.Fatalf("Import = %+v, %v, bad %v; want line 1 bad and 1 written", res, err, bad)
	}
	if !s.Connected() {
		t.Error("the connection went down after an over-long id")
	}
	if n := keyCount(t, kv); n != 1 {
		t.Errorf("bucket holds %d values, want 1", n)
	}
}

func TestImportSniffsTheFormat(t *testing.T) {
	for _, tc := range []struct {
		input, want string
	}{
		{`{"id":"a"}`, FormatJSONL},
		{"\n  \t{\"id\":\"a\"}", FormatJSONL},
		{"\uFEFF{\"id\":\"a\"}", FormatJSONL},
		{"id,stage\n", FormatCSV},
		{"\uFEFFid\n", FormatCSV},
		{"", FormatJSONL},
		{strings.Repeat(" ", 5000) + "{", FormatJSONL},
	} {
		br := bufioReader(tc.input)
		if got, err := sniff(br); got != tc.want || err != nil {
			t.Errorf("sniff(%.20q) = %q, %v; want %q", tc.input, got, err, tc.want)
		}
	}
}

func TestImportManyProfilesReportsProgress(t *testing.T) {
	s, kv := importStore(t)
	const n = 20_000
	input := profileLines(n)
	var calls int
	var lastLines, lastBytes int64
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := s.Import(ctx, bytes.NewReader(input), ImportOptions{Window: 512, Progress: func(lines, b int64) {
		calls++
		if lines < lastLines || b < lastBytes {
			t.Errorf("Progress(%d, %d) after (%d, %d): went back", lines, b, lastLines, lastBytes)
		}
		lastLines, lastBytes = lines, b
	}})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if res.Lines != n || res.Written != n || res.Bad != 0 || res.Failed != 0 {
		t.Errorf("Import = %+v, want %d lines written", res, n)
	}
	if got := keyCount(t, kv); got != n {
		t.Errorf("bucket holds %d values, want %d", got, n)
	}
	if calls == 0 || lastLines != n || lastBytes != int64(len(input)) {
		t.Errorf("last Progress = (%d, %d) after %d calls, want (%d, %d)", lastLines, lastBytes, calls, n, len(input))
	}
}

func TestImportStopsWhenContextEnds(t *testing.T) {
	s, _ := importStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Import(ctx, bytes.NewReader(profileLines(10)), ImportOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Import with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestImportReportsAnUnreadableInput(t *testing.T) {
	s, _ := importStore(t)
	r := io.MultiReader(strings.NewReader(`{"id":"a"}`+"\n"), errReader{})
	_, err := s.Import(context.Background(), r, ImportOptions{})
	var ie *InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Import of a failing reader = %v, want an *InputError saying why", err)
	}
}

func bufioReader(s string) *bufio.Reader {
	return bufio.NewReaderSize(strings.NewReader(s), MaxImportLine+2)
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

// profileLines returns n JSON Lines profiles with 5 segments and 3 traits
// each, the shape of the throughput target.
func profileLines(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"id":"cust-%08d","segments":["vip","runner","mobile","newsletter","seg-%d"],"stage":"retention",`+
			`"traits":{"first_name":"Jane","city":"Lyon","plan":"p%d"},"scores":{"engagement":%d.5},"updated_at":"2026-11-20T10:00:00Z"}`+"\n",
			i, i%50, i%7, i%100)
	}
	return b.Bytes()
}

func BenchmarkImport(b *testing.B) {
	s, _ := importStore(b)
	input := profileLines(b.N)
	b.SetBytes(int64(len(input) / max(b.N, 1)))
	b.ReportAllocs()
	b.ResetTimer()
	res, err := s.Import(context.Background(), bytes.NewReader(input), ImportOptions{})
	if err != nil || res.Written != int64(b.N) {
		b.Fatalf("Import = %+v, %v; want %d written", res, err, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "profiles/s")
}

// FuzzCSVProfile checks that every CSV record either is refused or becomes
// a document ParseProfile accepts with the record's id.
func FuzzCSVProfile(f *testing.F) {
	f.Add("id,segments,stage,traits.city,scores.x,updated_at\ncust-1,vip;runner,retention,Lyon,1.5,2026-11-20T10:00:00Z\n")
	f.Add("id,traits.a\n\"a\"\"b\",\"x\ny\"\n")
	f.Add("id,scores.a\nz,1e400\n")
	f.Fuzz(func(t *testing.T, input string) {
		cr := csv.NewReader(strings.NewReader(input))
		header, err := cr.Read()
		if err != nil {
			return
		}
		cols, problems := parseCSVHeader(header)
		if len(problems) > 0 {
			return
		}
		cr.FieldsPerRecord = len(cols)
		for {
			rec, err := cr.Read()
			if err != nil {
				return
			}
			doc, err := appendCSVProfile(nil, cols, rec)
			if err != nil {
				continue
			}
			if !json.Valid(doc) {
				t.Fatalf("record %q: invalid JSON %s", rec, doc)
			}
			p, err := cache.ParseProfile(doc)
			if err != nil {
				continue // an empty id or segment: refused, as it should be
			}
			for i, c := range cols {
				if c.kind == colID && p.ID != rec[i] {
					t.Fatalf("record %q: id %q became %q", rec, rec[i], p.ID)
				}
			}
		}
	})
}
