package rewrite

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/andybalholm/cascadia"
	"golang.org/x/net/html"
)

// selMatchers parses selectors the way the rules package does: as
// cascadia.Sel values (a group as a SelectorGroup), whose text Reuse reads.
func selMatchers(tb testing.TB, sels ...string) []cascadia.Matcher {
	tb.Helper()
	ms := make([]cascadia.Matcher, len(sels))
	for i, s := range sels {
		g, err := cascadia.ParseGroup(s)
		if err != nil {
			tb.Fatal(err)
		}
		if len(g) == 1 {
			ms[i] = g[0]
		} else {
			ms[i] = g
		}
	}
	return ms
}

// reuseEditSets are edit sets over selectors 0..n-1 for checking that a
// reused template renders what a compiled one does.
func reuseEditSets(n int) [][]Edit {
	var sets [][]Edit
	sets = append(sets, nil)
	ops := []Op{Replace, Remove, Inner, Prepend, Append, Before, After, SetAttr, AddClass, RemoveClass}
	for k, op := range ops {
		var set []Edit
		for si := range n {
			set = append(set, Edit{Sel: si, Op: op, Name: "data-x", Value: []byte(fmt.Sprintf("[%d:%d]", k, si))})
		}
		sets = append(sets, set)
	}
	// Mixed: every op on every selector, in a rotating order.
	var mixed []Edit
	for si := range n {
		for k := range ops {
			op := ops[(k+si)%len(ops)]
			mixed = append(mixed, Edit{Sel: si, Op: op, Name: "nonce", Value: []byte("<i>m</i>")})
		}
	}
	return append(sets, mixed)
}

// sameTemplate checks that got (from Reuse) is the template want (from
// Compile of the same page): the same internal records, the same counts
// and the same output for every edit set.
func sameTemplate(t testing.TB, name string, got, want *Template, nsel int) {
	t.Helper()
	if !bytes.Equal(got.page, want.page) {
		t.Fatalf("%s: reused template has another page", name)
	}
	if !slices.Equal(got.elems, want.elems) || !slices.Equal(got.sels, want.sels) ||
		!slices.Equal(got.bounds, want.bounds) || !bytes.Equal(got.closers, want.closers) ||
		!slices.Equal(got.tags, want.tags) || !slices.Equal(got.raws, want.raws) || got.blind != want.blind {
		t.Fatalf("%s: reused template differs from the compiled one:\n%+v\n%+v", name, got.elems, want.elems)
	}
	for si := range nsel {
		if got.Matched(si) != want.Matched(si) || got.Skipped(si) != want.Skipped(si) {
			t.Fatalf("%s: selector %d: Matched/Skipped %d/%d, compiled %d/%d", name, si,
				got.Matched(si), got.Skipped(si), want.Matched(si), want.Skipped(si))
		}
	}
	sets := reuseEditSets(nsel)
	if len(want.page) > 8192 {
		// The records are equal: on large pages, a few sets suffice.
		sets = [][]Edit{sets[1], sets[5], sets[len(sets)-1]}
	}
	for k, edits := range sets {
		g, w := got.Render(nil, edits), want.Render(nil, edits)
		if !bytes.Equal(g, w) {
			t.Fatalf("%s: edit set %d: reused renders\n%q\ncompiled renders\n%q", name, k, g, w)
		}
	}
}

// checkReuse compiles old, reuses the template for new and, when Reuse
// accepts, checks the result against Compile(new). It reports acceptance.
func checkReuse(t testing.TB, name string, old, new []byte, ms []cascadia.Matcher) bool {
	t.Helper()
	tpl, err := Compile(old, ms)
	if err != nil {
		return false
	}
	return checkReuseOf(t, name, tpl, new, ms)
}

// checkReuseOf is checkReuse with old's template.
func checkReuseOf(t testing.TB, name string, tpl *Template, new []byte, ms []cascadia.Matcher) bool {
	t.Helper()
	old := tpl.page
	got, ok := tpl.Reuse(new)
	if !ok {
		if got != nil {
			t.Fatalf("%s: Reuse refused but returned a template", name)
		}
		return false
	}
	want, err := Compile(new, ms)
	if err != nil {
		t.Fatalf("%s: Reuse accepted a page Compile rejects: %v", name, err)
	}
	sameTemplate(t, name, got, want, len(ms))
	// The reused template reuses in turn, back to the old page, when it
	// accepts: refusing is always safe, and the way back need not be
	// accepted (deleting "00" inside the text "000000</" is a change in one
	// text token; inserting it back at the boundary of "0000" and "</",
	// two text tokens, is refused: FuzzReuse's seed 19ce86646afca8e6).
	if back, ok := got.Reuse(old); ok {
		sameTemplate(t, name+" (back)", back, tpl, len(ms))
	}
	return true
}

func TestReuse(t *testing.T) {
	const head = `<!DOCTYPE html><html><head><title>T</title>`
	const body = `</head><body><div id="hero" class="hero"><p class="greeting">Hi</p></div><ul><li>a<li>b</ul><footer><p class="promo">x</p></footer></body></html>`
	page := func(h, b string) string {
		return head + h + body[:len(body)-len("</body></html>")] + b + "</body></html>"
	}
	sels := []string{"#hero", ".greeting", "li", "footer .promo", "ul > li:first-child", "body > *", "p:nth-child(1), div", "script"}
	tests := []struct {
		name     string
		old, new string
		sels     []string // default sels
		want     bool
	}{
		{"identical", page(`<meta name="csrf-token" content="abc">`, ""), page(`<meta name="csrf-token" content="abc">`, ""), nil, true},
		{"meta content", page(`<meta name="csrf-token" content="Zx81kQ0aB7">`, ""), page(`<meta name="csrf-token" content="p0Q4mTT5sE">`, ""), nil, true},
		{"meta content longer", page(`<meta name="csrf-token" content="Zx81">`, ""), page(`<meta name="csrf-token" content="p0Q4mTT5sEaaaaaaaaaaaaaaaaaaaaa">`, ""), nil, true},
		{"meta content shorter", page(`<meta name="csrf-token" content="Zx81kQ0aB7Zx81kQ0aB7Zx81kQ0aB7">`, ""), page(`<meta name="csrf-token" content="A">`, ""), nil, true},
		{"meta content emptied", page(`<meta name="csrf-token" content="Zx81">`, ""), page(`<meta name="csrf-token" content="">`, ""), nil, true},
		{"single quotes", page(`<meta name=csrf content='Zx81'>`, ""), page(`<meta name=csrf content='QQ'>`, ""), nil, true},
		{"unquoted value", page(`<meta name=csrf content=Zx81>`, ""), page(`<meta name=csrf content=QQ99>`, ""), nil, true},
		{"hidden input value", page("", `<form><input type=hidden name=csrf value="7f3a9c"></form>`), page("", `<form><input type=hidden name=csrf value="0000000011"></form>`), nil, true},
		{"script nonce attribute", page(`<script nonce="r4nd0m">var a=1</script>`, ""), page(`<script nonce="0th3r-n0nce">var a=1</script>`, ""), nil, true},
		{"style nonce attribute", page(`<style nonce="r4nd0m">p{}</style>`, ""), page(`<style nonce="x">p{}</style>`, ""), nil, true},
		{"two attributes of one tag", page(`<meta content="aaa" data-ts="111">`, ""), page(`<meta content="bbb" data-ts="222">`, ""), nil, true},
		{"token in inline script JSON", page(`<script>window.__S={"csrf":"c2VjcmV0MQ","u":1}</script>`, ""), page(`<script>window.__S={"csrf":"b3RoZXItdG9rZW4-_x","u":1}</script>`, ""), nil, true},
		{"token in JSON script with < before", page(`<script>if(a<b){}; var t="c2VjcmV0MQ"</script>`, ""), page(`<script>if(a<b){}; var t="b3RoZXI0aWk"</script>`, ""), nil, true},
		{"dash in token after < in script", page(`<script>if(a<b){}; var t="c2VjcmV0MQ"</script>`, ""), page(`<script>if(a<b){}; var t="b3R-oZXI0aWk"</script>`, ""), nil, false},
		{"token at start of script", page(`<script>abc;x()</script>`, ""), page(`<script>xyzw;x()</script>`, ""), nil, true},
		{"whole script content", page(`<script>abc</script>`, ""), page(`<script>xyz</script>`, ""), nil, true},
		{"script content emptied", page(`<script>abc</script>`, ""), page(`<script></script>`, ""), nil, false},
		{"token at end of script", page(`<script>var t=abc</script>`, ""), page(`<script>var t=xyzzy</script>`, ""), nil, true},
		{"insertion at start of script", page(`<script>abc</script>`, ""), page(`<script>Zabc</script>`, ""), nil, true},
		{"unclosed script", page(`<script>var t="abc"`, ""), page(`<script>var t="xyz"`, ""), nil, false},
		{"text node", page("", `<p>token abc</p>`), page("", `<p>token xyz</p>`), nil, true},
		{"text node longer", page("", `<p>Hello <b>Jo</b>, session abc</p>`), page("", `<p>Hello <b>Johanna</b>, session 7f3a9c0e</p>`), nil, true},
		{"text becomes whitespace", page("", `<p>x<i>abc</i></p>`), page("", `<p>x<i>  </i></p>`), nil, false},
		{"text gains a tag", page("", `<p>token abc</p>`), page("", `<p>token <b>xyz</p>`), nil, false},
		{"text gains a NUL", page("", `<p>token abc</p>`), page("", "<p>token a\x00c</p>"), nil, false},
		{"text gains leading space", page("", `<p>abc</p>`), page("", `<p> abc</p>`), nil, false},
		{"text before body gains leading space", `<!DOCTYPE html><html><head></head>abc<p>x`, `<!DOCTYPE html><html><head></head> abc<p>x`, nil, false},
		{"first text of pre", page("", `<pre>abc</pre>`), page("", "<pre>\nabc</pre>"), nil, false},
		{"text after plaintext", page("", `<plaintext>abc<b>`), page("", `<plaintext>xyz<b>`), nil, false},
		{"text in table", page("", `<table><tr><td>a</td></tr>abc</table>`), page("", `<table><tr><td>a</td></tr>xyzw</table>`), nil, true},
		{"text inside matched element", page("", `<div>token abc</div>`), page("", `<div>token xyz</div>`), nil, true},
		{"attribute of matched element", page("", `<div data-n="abc">x</div>`), page("", `<div data-n="xyzzy">x</div>`), nil, true},
		{"attribute of a formatting element", page("", `<i data-n="abc">x</i>`), page("", `<i data-n="q">x</i>`), nil, false},
		{"quote introduced", page(`<meta content="abc">`, ""), page(`<meta content="a"bc">`, ""), nil, false},
		{"tag end introduced", page(`<meta content=abc>`, ""), page(`<meta content=a>bc>`, ""), nil, false},
		{"end of script introduced", page(`<script>var t="abc"</script>`, ""), page(`<script>var t="a</script>bc"</script>`, ""), nil, false},
		{"less-than in script", page(`<script>var t="abc"</script>`, ""), page(`<script>var t="a<b"</script>`, ""), nil, false},
		{"script escape joined", page(`<script><!--x--abc>y</script>`, ""), page(`<script><!--x-->y</script>`, ""), nil, false},
		{"NUL", page(`<meta content="abc">`, ""), page("<meta content=\"a\x00c\">", ""), nil, false},
		{"id changed", page("", `<span id="abc">x</span>`), page("", `<span id="abd">x</span>`), nil, false},
		{"class changed", page("", `<span class="abc">x</span>`), page("", `<span class="abd">x</span>`), nil, false},
		{"input type changed", page("", `<table><input type="hidden"></table>`), page("", `<table><input type="hiddex"></table>`), nil, false},
		{"attribute name changed", page(`<meta content="abc">`, ""), page(`<meta contenx="abc">`, ""), nil, false},
		{"tag name changed", page(`<meta content="abc">`, ""), page(`<metx content="abc">`, ""), nil, false},
		{"body attribute", page("", `<body data-t="1">`), page("", `<body data-t="2">`), nil, false},
		{"comment", page(`<!-- abc -->`, ""), page(`<!-- xyz -->`, ""), nil, true},
		{"comment longer", page("", `<!-- request abc -->`), page("", `<!-- request 0123456789abcdef -->`), nil, true},
		{"comment ended early", page("", `<!-- abc -->`), page("", `<!-- a--> <p>bc -->`), nil, false},
		{"comment made empty", page("", `<!-- abc -->`), page("", `<!-->abc -->`), nil, false},
		{"title (RCDATA)", page(`<title>abc</title>`, ""), page(`<title>xyz</title>`, ""), nil, false},
		{"attribute selector", page(`<meta name="csrf-token" content="Zx81kQ0aB7">`, ""), page(`<meta name="csrf-token" content="p0Q4mTT5sE">`, ""), []string{"#hero", "[content^=Z]"}, false},
		{":contains sees script", page(`<script>var t="abc"</script>`, ""), page(`<script>var t="xyz"</script>`, ""), []string{"script:contains(abc)"}, false},
		{":has", page(`<meta content="abc">`, ""), page(`<meta content="xyz">`, ""), []string{"head:has(meta)"}, false},
		{":not", page(`<meta content="abc">`, ""), page(`<meta content="xyz">`, ""), []string{"meta:not(.x)"}, false},
		{"two places", page(`<meta content="abc">`, `<input value="abc">`), page(`<meta content="xyz">`, `<input value="xyz">`), nil, true},
		{"every kind at once", page(`<meta content="abc"><script nonce="n1">var r="abc"</script><!-- r abc -->`, `<p>session abc</p>`),
			page(`<meta content="xyzzy"><script nonce="n22">var r="xy"</script><!-- r xyz -->`, `<p>session xyzxyz</p>`), nil, true},
		{"a block comes", page("", `<p>session abc</p>`), page("", `<div class="notice">n</div><p>session abc</p>`), nil, false},
		{"page cut", page(`<meta content="abc">`, ""), page(`<meta content="abc">`, "")[:60], nil, false},
		{"a byte-order mark comes before text", "Hello<p>x</p><div>w</div>", "\xef\xbb\xbfHello<p>x</p><div>w</div>", nil, false},
		{"a byte-order mark comes before a doctype", "a <!DOCTYPE html><p>x<table><tr><td>y</table>z</p>", "\xef\xbb\xbf <!DOCTYPE html><p>x<table><tr><td>y</table>z</p>", nil, false},
		{"text with a carriage return", page("", "<p>x</p>abc\r<p>e"), page("", "<p>x</p>abcd\n<p>e"), nil, false},
	}
	for _, tc := range tests {
		s := sels
		if tc.sels != nil {
			s = tc.sels
		}
		ms := selMatchers(t, s...)
		if got := checkReuse(t, tc.name, []byte(tc.old), []byte(tc.new), ms); got != tc.want {
			t.Errorf("%s: Reuse accepted %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestReuseNeedsSelectorText: matchers whose text is unknown (compiled
// funcs) allow reuse of identical pages only.
func TestReuseNeedsSelectorText(t *testing.T) {
	old := []byte(`<meta content="abc"><p>x`)
	tpl, err := Compile(old, []cascadia.Matcher{cascadia.MustCompile("p")})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tpl.Reuse([]byte(`<meta content="xyz"><p>x`)); ok {
		t.Error("Reuse accepted a change with a selector of unknown text")
	}
	if r, ok := tpl.Reuse(bytes.Clone(old)); !ok || r.Matched(0) != 1 {
		t.Error("Reuse refused an identical page")
	}
}

func TestBlindSelectors(t *testing.T) {
	for _, tc := range []struct {
		sel   string
		blind bool
	}{
		{"p", true}, {"#a", true}, {".b", true}, {"div > p + a ~ b", true}, {"ul li:first-child", true},
		{"li:nth-child(2n+1)", true}, {"li:nth-last-of-type(2)", true}, {":root > body", true}, {"*", true},
		{"a, b", true}, {"a, [x]", false}, {"[x]", false}, {"p:empty", false}, {"p:contains(x)", false},
		{"p:has(a)", false}, {"p:not(a)", false}, {"input:checked", false}, {"p:lang(en)", false},
		{"p:matches(x)", false}, {"a:link", false}, {".x\\[y", false},
	} {
		if got := blindSelectors(selMatchers(t, tc.sel)); got != tc.blind {
			t.Errorf("%q: blind %v, want %v", tc.sel, got, tc.blind)
		}
	}
}

// reuseSelectorSets: blind ones, for which Reuse may accept changes, and a
// set with attribute selectors, for which it may not.
var reuseSelectorSets = [][]string{
	{"*"},
	{"p", "div, span", "li", "td, tr", "b, a", "svg *", "script, style", "head > *", "body > *"},
	{"#hero", ".greeting", ".cta", "footer .promo", "#recommendations", "ul > li:first-child", "meta", "input"},
	{"[id]", "meta[content]", "p"},
}

// mutate changes page in one of several ways: a token replaced inside an
// attribute value or a script, or random bytes replaced, inserted or
// deleted.
func mutate(r *rand.Rand, page []byte, targeted bool) []byte {
	if len(page) == 0 {
		return []byte("<p>")
	}
	const alphabet = "abcXYZ0189-_+/= \"'<>!/&;\x00\n"
	token := func(n int, special bool) []byte {
		b := make([]byte, n)
		for i := range b {
			if special && r.Intn(8) == 0 {
				b[i] = alphabet[r.Intn(len(alphabet))]
			} else {
				b[i] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789"[r.Intn(46)]
			}
		}
		return b
	}
	splice := func(i, j int, ins []byte) []byte {
		out := make([]byte, 0, len(page)+len(ins))
		out = append(out, page[:i]...)
		out = append(out, ins...)
		return append(out, page[j:]...)
	}
	special := r.Intn(3) == 0
	if targeted && r.Intn(8) == 0 {
		// Several changes in one page.
		return mutate(r, mutate(r, page, targeted), targeted)
	}
	if targeted && r.Intn(3) == 0 {
		// Inside text between tags, or inside a comment's data.
		var at []int
		for off := 0; off < len(page); {
			k := bytes.IndexAny(page[off:], ">-")
			if k < 0 {
				break
			}
			off += k + 1
			if off < len(page) && page[off] != '<' {
				at = append(at, off)
			}
		}
		if len(at) > 0 {
			a := at[r.Intn(len(at))]
			b := min(len(page), a+r.Intn(12))
			return splice(a, b, token(r.Intn(24), special))
		}
	}
	kind := r.Intn(6)
	if targeted {
		kind = r.Intn(3)
	}
	switch kind {
	case 0, 1: // inside an attribute value
		var at []int
		for i := 0; i+1 < len(page); i++ {
			if page[i] == '=' {
				at = append(at, i+1)
			}
		}
		if len(at) == 0 {
			break
		}
		i := at[r.Intn(len(at))]
		if i < len(page) && (page[i] == '"' || page[i] == '\'') {
			i++
		}
		j := i
		for j < len(page) && j-i < 40 && page[j] != '"' && page[j] != '\'' && page[j] != '>' && page[j] != ' ' {
			j++
		}
		a := i + r.Intn(j-i+1)
		b := a + r.Intn(j-a+1)
		return splice(a, b, token(r.Intn(40), special))
	case 2: // inside a script or style
		var at []int
		for _, tag := range []string{"<script", "<style", "<SCRIPT"} {
			for off := 0; ; {
				k := bytes.Index(page[off:], []byte(tag))
				if k < 0 {
					break
				}
				off += k + 1
				if e := bytes.IndexByte(page[off:], '>'); e >= 0 {
					at = append(at, off+e+1)
				}
			}
		}
		if len(at) == 0 {
			break
		}
		i := at[r.Intn(len(at))]
		a := min(len(page), i+r.Intn(60))
		b := min(len(page), a+r.Intn(20))
		return splice(a, b, token(r.Intn(30), special))
	case 3: // one byte
		a := r.Intn(len(page))
		return splice(a, a+1, []byte{alphabet[r.Intn(len(alphabet))]})
	case 4: // an insertion
		a := r.Intn(len(page) + 1)
		return splice(a, a, token(1+r.Intn(8), true))
	}
	// a deletion
	a := r.Intn(len(page))
	return splice(a, min(len(page), a+1+r.Intn(16)), nil)
}

// TestReuseDifferential mutates the html5lib documents and this package's
// pages many ways; whenever Reuse accepts, the template must be the one
// Compile makes.
func TestReuseDifferential(t *testing.T) {
	docs := diffDocs(t)
	rounds := 3
	if testing.Short() || raceOn {
		rounds = 1
	}
	if v, err := strconv.Atoi(os.Getenv("TAILOR_REUSE_ROUNDS")); err == nil && v > 0 {
		rounds = v // a longer run
	}
	r := rand.New(rand.NewSource(1))
	tries, accepted := 0, map[int]int{}
	for si, set := range reuseSelectorSets {
		ms := selMatchers(t, set...)
		for _, d := range docs {
			tpl, err := Compile(d.Data, ms)
			if err != nil {
				continue
			}
			n := rounds
			if len(d.Data) > 4096 {
				n = 4 * rounds // the golden and benchmark pages
			}
			targeted := bytes.Contains(d.Data, []byte("=")) || bytes.Contains(d.Data, []byte("<script")) || bytes.Contains(d.Data, []byte("<style"))
			if targeted {
				n *= 3
			}
			for k := range n {
				new := mutate(r, d.Data, targeted && k%3 != 0)
				tries++
				if checkReuseOf(t, fmt.Sprintf("%s %q→%q", d.Name, excerptOf(d.Data), excerptOf(new)), tpl, new, ms) &&
					!bytes.Equal(new, d.Data) {
					accepted[si]++
				}
			}
		}
	}
	t.Logf("%d documents, %d mutations, accepted per selector set: %v", len(docs), tries, accepted)
	if accepted[0] == 0 || accepted[1] == 0 || accepted[2] == 0 {
		t.Errorf("blind selector sets never reused a template: %v", accepted)
	}
	if accepted[3] != 0 {
		t.Errorf("attribute selectors reused %d templates", accepted[3])
	}
}

func excerptOf(b []byte) string {
	s := string(b)
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// FuzzReuse: whenever Reuse accepts a changed page, the template is the one
// Compile makes of it.
func FuzzReuse(f *testing.F) {
	for _, s := range []string{
		`<meta name="csrf-token" content="Zx81kQ0aB7"><p>x</p>`,
		`<script nonce="abc">var t={"csrf":"abcdef"}</script><div><p>x`,
		`<form><input type=hidden name=csrf value=abc></form><li>a<li>b`,
		`<table><tr><td data-x="1">a<td>b</table>`,
		`<script><!--<script>x</script>y--></script><p>z`,
		`<style nonce='q'>p{}</style><svg><a x="1"/></svg>`,
		`<!-- request abc --><p>Hello <b>Jo</b>, session abc</p><table>x<tr><td>y</table>`,
		`<head><title>t</title></head>x<pre>y</pre><select>z<option>w</select><p>v`,
	} {
		f.Add([]byte(s), uint16(20), uint8(3), []byte("XYZ"))
		f.Add([]byte(s), uint16(33), uint8(1), []byte("Q"))
	}
	ms := [][]cascadia.Matcher{
		selMatchers(f, "p", "div, span", "li", "td, tr", "b, a", "svg *", "*", "script, style"),
		selMatchers(f, "body > *:first-child", "ul li", "head *"),
	}
	f.Fuzz(func(t *testing.T, page []byte, at uint16, cut uint8, ins []byte) {
		if len(page) > 1<<16 {
			return
		}
		a := min(int(at), len(page))
		b := min(a+int(cut), len(page))
		new := append(append(append([]byte{}, page[:a]...), ins...), page[b:]...)
		for _, m := range ms {
			checkReuse(t, "fuzz", page, new, m)
		}
	})
}

// benchNoncePages returns the benchmark page with a 32-byte CSRF token in
// a <meta> of its head, twice with different tokens.
func benchNoncePages(tb testing.TB) (x, y []byte) {
	page := benchPage(tb)
	i := bytes.Index(page, []byte("<head>"))
	if i < 0 {
		tb.Fatal("no <head>")
	}
	i += len("<head>")
	mk := func(nonce string) []byte {
		var b []byte
		b = append(b, page[:i]...)
		b = append(b, `<meta name="csrf-token" content="`+nonce+`">`...)
		return append(b, page[i:]...)
	}
	return mk("c2VjcmV0LXRva2VuLW51bWJlci0wMDEx"), mk("b3RoZXItdG9rZW4tbnVtYmVyLTAwMDIy")
}

// BenchmarkReuse takes the template of a page for the same page with
// another 32-byte token in a <meta>.
func BenchmarkReuse(b *testing.B) {
	x, y := benchNoncePages(b)
	tpl, err := Compile(x, selMatchers(b, benchSelectors...))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(y)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := tpl.Reuse(y); !ok {
			b.Fatal("Reuse refused")
		}
	}
}

// BenchmarkReuseRender is BenchmarkReuse followed by Render: a request for
// a page that differs from the cached one by its token.
func BenchmarkReuseRender(b *testing.B) {
	x, y := benchNoncePages(b)
	benchReuseRender(b, x, y)
}

// benchReuseRender measures Reuse of x's template for y, then Render.
func benchReuseRender(b *testing.B, x, y []byte) {
	tpl, err := Compile(x, selMatchers(b, benchSelectors...))
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, 2*len(y))
	b.SetBytes(int64(len(y)))
	b.ReportAllocs()
	for b.Loop() {
		r, ok := tpl.Reuse(y)
		if !ok {
			b.Fatal("Reuse refused")
		}
		dst = r.Render(dst[:0], benchEdits)
	}
}

// benchDynamicPages returns the benchmark page as a CMS would send it on
// two requests: a CSRF token in a <meta>, a script nonce, a request id in
// an inline script and in a comment, a session id in the body's text.
func benchDynamicPages(tb testing.TB) (x, y []byte) {
	page := string(benchPage(tb))
	i := strings.Index(page, "<head>")
	j := strings.Index(page, "</body>")
	k := strings.Index(page, "<main")
	if i < 0 || j < 0 || k < 0 {
		tb.Fatal("no <head>, <main> or </body>")
	}
	i += len("<head>")
	mk := func(id string) []byte {
		return []byte(page[:i] +
			`<meta name="csrf-token" content="` + id + `"><script nonce="` + id[:16] + `">window.requestId = "` + id + `";</script>` +
			page[i:k] + `<p class="session">Your session: ` + id[8:24] + `</p>` + page[k:j] +
			`<!-- request ` + id + ` served in 12ms -->` + page[j:])
	}
	return mk("c2VjcmV0LXRva2VuLW51bWJlci0wMDEx"), mk("b3RoZXItdG9rZW4tbnVtYmVyLTAwMDIy")
}

// BenchmarkReuseDynamicRender: a request for a page that differs from the
// cached one in five places (see benchDynamicPages), reused and rendered.
func BenchmarkReuseDynamicRender(b *testing.B) {
	x, y := benchDynamicPages(b)
	benchReuseRender(b, x, y)
}

// FuzzReuseScanners: the scanners Reuse reads changed regions with agree
// with x/net/html's tokenizer: tagLen and sameTagButValuesScan with
// tokenLen and sameTagButValues, textLen with a text token's length.
func FuzzReuseScanners(f *testing.F) {
	for _, s := range []string{
		`<meta name="csrf-token" content="abc">x`, `<a b=c/>`, `<A HREF='x' Href=y>`, `<p =a b = "c">`,
		`<input value=x/ type=hidden>`, `<b c="x>y">`, `<x y=>`, "<p\tid=a\n>", `<div/class="a">`,
		`text & more</p>`, `a < b <!x>`, `x<?y>`, `a</ b>`, `<`,
	} {
		f.Add([]byte(s), []byte(strings.Replace(s, "a", "Z", 1)))
	}
	f.Fuzz(func(t *testing.T, x, y []byte) {
		if len(x) > 4096 || len(y) > 4096 {
			return
		}
		tag := func(b []byte) bool { return len(b) >= 2 && b[0] == '<' && 'a' <= b[1]|0x20 && b[1]|0x20 <= 'z' }
		for _, b := range [][]byte{x, y} {
			// 0 refuses the region: b starts with markup, or ends inside it.
			if got, want := textLen(b), htmlTokenLen(b, html.TextToken); got > 0 && got != want {
				t.Fatalf("textLen(%q) = %d, tokenizer %d", b, got, want)
			}
			if !tag(b) {
				continue
			}
			want := htmlTokenLen(b, html.StartTagToken)
			if want == 0 {
				want = htmlTokenLen(b, html.SelfClosingTagToken)
			}
			if got := tagLen(b); got != want {
				t.Fatalf("tagLen(%q) = %d, tokenizer %d", b, got, want)
			}
		}
		if !tag(x) || !tag(y) {
			return
		}
		if n, m := tagLen(x), tagLen(y); n > 0 && m > 0 {
			a, b := x[:n], y[:m]
			// The tokenizer drops an attribute whose name repeats an
			// earlier one; the scanner sees every one and so refuses
			// such a pair, which is safe. Accepting is never allowed
			// where the tokenizer differs.
			got, want := sameTagButValuesScan(a, b), sameTagButValues(a, b)
			if got != want && (got || !repeatsAttr(a) && !repeatsAttr(b)) {
				t.Fatalf("sameTagButValuesScan(%q, %q) = %v, tokenizer says %v", a, b, got, want)
			}
		}
	})
}

// sameTagButValues, FuzzReuseScanners' oracle, reports whether the
// tokenizer reads x and y each as one
// start tag token, alike but for the values of attributes the tree builder
// and blind selectors do not read.
func sameTagButValues(x, y []byte) bool {
	zx := html.NewTokenizer(bytes.NewReader(x))
	zy := html.NewTokenizer(bytes.NewReader(y))
	tx, ty := zx.Next(), zy.Next()
	if tx != ty || (tx != html.StartTagToken && tx != html.SelfClosingTagToken) ||
		len(zx.Raw()) != len(x) || len(zy.Raw()) != len(y) {
		return false
	}
	nx, ax := zx.TagName()
	ny, ay := zy.TagName()
	if !bytes.Equal(nx, ny) {
		return false
	}
	for ax && ay {
		var kx, ky, vx, vy []byte
		kx, vx, ax = zx.TagAttr()
		ky, vy, ay = zy.TagAttr()
		if !bytes.Equal(kx, ky) {
			return false
		}
		if !bytes.Equal(vx, vy) && reuseExcludedAttr(kx) {
			return false
		}
	}
	return ax == ay
}

// repeatsAttr reports whether the start tag tag names an attribute twice
// (ASCII case folded), as the tagScanner reads it.
func repeatsAttr(tag []byte) bool {
	seen := map[string]bool{}
	sc := newTagScanner(tag)
	for {
		a, ok := sc.next()
		if !ok {
			return false
		}
		k := string(bytes.ToLower(tag[a.k0:a.k1]))
		if seen[k] {
			return true
		}
		seen[k] = true
	}
}

// htmlTokenLen is tokenLenIn by x/net/html's own tokenizer: the oracle of
// FuzzReuseScanners.
func htmlTokenLen(b []byte, tt html.TokenType) int32 {
	z := html.NewTokenizer(bytes.NewReader(b))
	if z.Next() != tt {
		return 0
	}
	return int32(len(z.Raw()))
}
