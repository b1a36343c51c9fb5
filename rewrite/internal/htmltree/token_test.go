package htmltree

import (
	"bytes"
	"fmt"
	"testing"

	"golang.org/x/net/html"
)

// sameTokens tokenizes page with this package's Tokenizer and with
// x/net/html's, and describes the first token where they differ (type,
// raw bytes, data, attributes, error), or returns "". It also checks that
// the page was not written to. cdata toggles AllowCDATA on every fourth
// token, as a parser in foreign content would.
func sameTokens(page []byte, cdata bool) string {
	orig := bytes.Clone(page)
	ours := newTokenizer(page)
	theirs := html.NewTokenizer(bytes.NewReader(page))
	for i := 0; ; i++ {
		if cdata {
			ours.AllowCDATA(i%4 == 1)
			theirs.AllowCDATA(i%4 == 1)
		}
		ot, tt := ours.Next(), theirs.Next()
		if ot != tt {
			return fmt.Sprintf("token %d: type %v, want %v", i, ot, tt)
		}
		if o, t := ours.Raw(), theirs.Raw(); !bytes.Equal(o, t) {
			return fmt.Sprintf("token %d: raw %q, want %q", i, o, t)
		}
		if ot == html.ErrorToken {
			if o, t := ours.Err(), theirs.Err(); fmt.Sprint(o) != fmt.Sprint(t) {
				return fmt.Sprintf("token %d: error %v, want %v", i, o, t)
			}
			break
		}
		o, t := ours.Token(), theirs.Token()
		if o.Type != t.Type || o.DataAtom != t.DataAtom || o.Data != t.Data || fmt.Sprint(o.Attr) != fmt.Sprint(t.Attr) {
			return fmt.Sprintf("token %d: %#v, want %#v", i, o, t)
		}
	}
	if !bytes.Equal(page, orig) {
		return "the tokenizer wrote to its input"
	}
	return ""
}

// TestTokenizerMatchesHTMLTokenizer: the fork's tokens, on the html5lib
// documents and the benchmark page, are x/net/html's, and its input is
// left as it was.
func TestTokenizerMatchesHTMLTokenizer(t *testing.T) {
	for _, d := range testDocs(t) {
		for _, cdata := range []bool{false, true} {
			if diff := sameTokens(d.Data, cdata); diff != "" {
				t.Errorf("%s (cdata %v): %s", d.Name, cdata, diff)
			}
		}
	}
}

// FuzzTokenizer compares the fork's tokens with x/net/html's on any input.
func FuzzTokenizer(f *testing.F) {
	for _, s := range []string{
		"", "<", "<P CLASS=A Class=b>x</P>", "<a href='?a=1&amp;b=2&copy=3&notit;'>&lt;&#x41;&#0;</a>",
		"x\r\ny\rz", "<p a\x00b=\x00c>\x00</p>", "<!--\x00\r\n-->", "<!DOCTYPE HTML\x00>", "<svg><![CDATA[x\r]]>",
		"<script>a<b</script>", "<textarea>&amp;\r\n</textarea>", "<title>&lt;</title>", "<plaintext>&amp;",
		"<a " + "b=1 B=2 c d e f g h i j k l m n o p q r s t u v w x y z A=3 Z=4>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, page []byte) {
		for _, cdata := range []bool{false, true} {
			if diff := sameTokens(page, cdata); diff != "" {
				t.Fatalf("cdata %v: %s\n%q", cdata, diff, page)
			}
		}
	})
}
