package rewrite

import (
	"slices"
	"strings"
	"testing"
)

// A Probe writes nothing and applies where the change it stands for
// would: to an element that reached the output, not inside content an
// outer edit replaced or removed; with Sole, only where no earlier Sole
// content edit took the element's content, and then it keeps later ones
// off it. A page with probes alone renders byte for byte.
func TestProbeReportsWhetherTheBlockReachedThePage(t *testing.T) {
	page := "<!doctype html>\n<body><div id=hero class=hero><h1>Origin</h1></div>\n<p class=x>x<</p><img class=pic src=a.png></body>"
	sels := []string{"#hero", "#hero h1", "h1", "img", ".missing"}
	tpl := compileT(t, page, sels...)
	tests := []struct {
		name    string
		edits   []Edit
		want    string // "" for the page as it is
		applied []bool
	}{
		{"probes alone", []Edit{
			{Sel: 1, Op: Probe, Sole: true}, {Sel: 3, Op: Probe}, {Sel: 4, Op: Probe, Sole: true},
		}, "", []bool{true, true, false}},
		{"inside an outer replace", []Edit{
			{Sel: 0, Op: Replace, Value: []byte("<div id=hero>VIP</div>"), Sole: true},
			{Sel: 1, Op: Probe, Sole: true},
			{Sel: 1, Op: Probe},
		}, strings.Replace(page, "<div id=hero class=hero><h1>Origin</h1></div>", "<div id=hero>VIP</div>", 1), []bool{true, false, false}},
		{"inside an outer inner", []Edit{
			{Sel: 0, Op: Inner, Value: []byte("VIP"), Sole: true},
			{Sel: 1, Op: Probe, Sole: true},
		}, strings.Replace(page, "<h1>Origin</h1>", "VIP", 1), []bool{true, false}},
		{"beside an outer class", []Edit{
			{Sel: 0, Op: AddClass, Value: []byte("vip")},
			{Sel: 1, Op: Probe, Sole: true},
		}, strings.Replace(page, "class=hero", `class="hero vip"`, 1), []bool{true, true}},
		{"an earlier content change takes the element", []Edit{
			{Sel: 2, Op: Inner, Value: []byte("Other"), Sole: true},
			{Sel: 1, Op: Probe, Sole: true},
		}, strings.Replace(page, "Origin", "Other", 1), []bool{true, false}},
		{"the probe keeps a later content change off", []Edit{
			{Sel: 1, Op: Probe, Sole: true},
			{Sel: 2, Op: Inner, Value: []byte("Other"), Sole: true},
			{Sel: 2, Op: SetAttr, Name: "data-x", Value: []byte("1")},
		}, strings.Replace(page, "<h1>", `<h1 data-x="1">`, 1), []bool{true, false, true}},
		{"a peek looks without holding", []Edit{
			{Sel: 1, Op: Probe, Sole: true, Peek: true},
			{Sel: 2, Op: Inner, Value: []byte("Other"), Sole: true},
		}, strings.Replace(page, "Origin", "Other", 1), []bool{true, true}},
		{"a peek after an earlier content change", []Edit{
			{Sel: 2, Op: Inner, Value: []byte("Other"), Sole: true},
			{Sel: 1, Op: Probe, Sole: true, Peek: true},
			{Sel: 1, Op: Probe, Sole: true, Peek: true},
		}, strings.Replace(page, "Origin", "Other", 1), []bool{true, false, false}},
		{"a peek after a holding probe", []Edit{
			{Sel: 2, Op: Probe, Sole: true},
			{Sel: 1, Op: Probe, Sole: true, Peek: true},
		}, "", []bool{true, false}},
		{"peeks inside an outer replace", []Edit{
			{Sel: 0, Op: Replace, Value: []byte("<div id=hero>VIP</div>"), Sole: true},
			{Sel: 1, Op: Probe, Sole: true, Peek: true},
		}, strings.Replace(page, "<div id=hero class=hero><h1>Origin</h1></div>", "<div id=hero>VIP</div>", 1), []bool{true, false}},
		{"peeks alone, and one on an element that is not there", []Edit{
			{Sel: 1, Op: Probe, Sole: true, Peek: true}, {Sel: 2, Op: Probe, Sole: true, Peek: true}, {Sel: 4, Op: Probe, Sole: true, Peek: true},
		}, "", []bool{true, true, false}},
		{"a start-tag probe beside a content change", []Edit{
			{Sel: 2, Op: Inner, Value: []byte("Other"), Sole: true},
			{Sel: 1, Op: Probe},
		}, strings.Replace(page, "Origin", "Other", 1), []bool{true, true}},
	}
	for _, tt := range tests {
		applied := make([]bool, len(tt.edits))
		want := tt.want
		if want == "" {
			want = page
		}
		if got := string(tpl.RenderApplied(nil, tt.edits, applied)); got != want {
			t.Errorf("%s: Render =\n%s\nwant\n%s", tt.name, got, want)
		}
		if !slices.Equal(applied, tt.applied) {
			t.Errorf("%s: applied = %v, want %v", tt.name, applied, tt.applied)
		}
		if tt.name == "the probe keeps a later content change off" && tpl.OverriddenBy(tt.edits, 1) != 0 {
			t.Errorf("%s: OverriddenBy = %d, want the probe's 0", tt.name, tpl.OverriddenBy(tt.edits, 1))
		}
		if tt.name == "a peek looks without holding" && tpl.OverriddenBy(tt.edits, 1) != -1 {
			t.Errorf("%s: OverriddenBy = %d, want -1: a peek holds nothing", tt.name, tpl.OverriddenBy(tt.edits, 1))
		}
		if fc := tpl.FirstChange(tt.edits); tt.want == "" && fc != len(page) {
			t.Errorf("%s: FirstChange = %d, want the page's length: probes change nothing", tt.name, fc)
		}
	}

	// The same, piece by piece.
	ms := selMatchers(t, sels...)
	long := "<!doctype html><body>" + strings.Repeat("<p>filler</p>\n", 2000) + "<div id=hero><h1>Origin</h1></div>" + strings.Repeat("<p>filler</p>\n", 2000) + "</body>"
	for _, tt := range tests[:2] {
		out, cuts, seg, err := segmentApplied(t, []byte(long), ms, tt.edits, 4096, 8192, 1024)
		if err != nil || cuts == 0 {
			t.Fatalf("%s: segmented: %d cuts, %v", tt.name, cuts, err)
		}
		want := long
		if tt.want != "" {
			want = strings.Replace(long, "<div id=hero><h1>Origin</h1></div>", "<div id=hero>VIP</div>", 1)
		}
		if string(out) != want {
			t.Errorf("%s: segmented output differs from the page", tt.name)
		}
		for i, a := range tt.applied {
			if tt.edits[i].Sel == 3 {
				a = false // no img in the long page
			}
			if seg.Applied(i) != a {
				t.Errorf("%s: segmented Applied(%d) = %v, want %v", tt.name, i, seg.Applied(i), a)
			}
		}
		if tt.want == "" && seg.Changed() {
			t.Errorf("%s: probes alone count as a change", tt.name)
		}
	}
}
