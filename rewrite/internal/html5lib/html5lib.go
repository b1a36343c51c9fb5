// Package html5lib reads the documents of the html5lib tree-construction
// tests (https://github.com/html5lib/html5lib-tests), for differential tests.
package html5lib

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/net/html"
)

// Doc is the input of one test.
type Doc struct {
	Name string // file:line of its #data section
	Data []byte
}

// Dir finds the corpus: $TAILOR_HTML5LIB_CORPUS when set, else the copy
// kept in this package's testdata (from html5lib-tests, MIT licensed, see
// its LICENSE), so the differential tests run the same on any clone. It
// looks for the copy from the working directory (a test's package
// directory) upwards, and returns "" when there is none. The argument is
// kept for callers; the search does not need it.
func Dir(string) string {
	if d := os.Getenv("TAILOR_HTML5LIB_CORPUS"); d != "" {
		return d
	}
	d := "rewrite/internal/html5lib/testdata/tree-construction"
	for range 5 {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
		d = filepath.Join("..", d)
	}
	return ""
}

// Load reads every document of every *.dat file in dir, leaving out
// fragment tests (#document-fragment), which parse in an element's context.
func Load(dir string) ([]Doc, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.dat"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var docs []Doc
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		ds, err := parse(filepath.Base(f), b)
		if err != nil {
			return nil, err
		}
		docs = append(docs, ds...)
	}
	return docs, nil
}

func parse(name string, b []byte) ([]Doc, error) {
	var (
		docs     []Doc
		cur      *Doc
		data     bytes.Buffer
		inData   bool
		fragment bool
		line     int
	)
	flush := func() {
		if cur != nil && !fragment {
			d := bytes.TrimSuffix(data.Bytes(), []byte("\n"))
			cur.Data = append([]byte(nil), d...)
			docs = append(docs, *cur)
		}
		cur, fragment, inData = nil, false, false
		data.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line++
		l := sc.Bytes()
		switch {
		case bytes.Equal(l, []byte("#data")):
			flush()
			cur = &Doc{Name: fmt.Sprintf("%s:%d", name, line)}
			inData = true
		case cur != nil && len(l) > 0 && l[0] == '#' && inData:
			inData = false
			if bytes.Equal(l, []byte("#document-fragment")) {
				fragment = true
			}
		case cur != nil && bytes.Equal(l, []byte("#document-fragment")):
			fragment = true
		case inData:
			data.Write(l)
			data.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	flush()
	return docs, nil
}

// Tree writes the tree under n in the html5lib test format, which shows
// what html.Render would hide (text node boundaries, namespaces): two
// parsers agree on a document when their Trees are equal.
func Tree(n *html.Node) string {
	var b strings.Builder
	writeTree(&b, n, 0)
	return b.String()
}

func writeTree(b *strings.Builder, n *html.Node, depth int) {
	b.WriteString(strings.Repeat("  ", depth))
	switch n.Type {
	case html.ElementNode:
		b.WriteString("<" + n.Namespace + " " + n.Data)
		for _, a := range n.Attr {
			b.WriteString(" " + a.Namespace + ":" + a.Key + "=" + a.Val)
		}
		b.WriteString(">")
	case html.TextNode:
		b.WriteString("\"" + n.Data + "\"")
	case html.CommentNode:
		b.WriteString("<!--" + n.Data + "-->")
	case html.DoctypeNode:
		b.WriteString("<!DOCTYPE " + n.Data + ">")
	case html.DocumentNode:
		b.WriteString("#document")
	}
	b.WriteString("\n")
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		writeTree(b, c, depth+1)
	}
}
