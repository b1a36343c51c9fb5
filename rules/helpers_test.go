package rules

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/tailor-edge/tailor/config"
)

// loadFiles loads rule files given by name (under rules/), plus any other
// files (fragments) given by a path with a slash.
func loadFiles(t testing.TB, files map[string]string) (*Set, error) {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, src := range files {
		p := name
		if !strings.Contains(name, "/") {
			p = "rules/" + name
		}
		fsys[p] = &fstest.MapFile{Data: []byte(src)}
	}
	return LoadFS(fsys, "rules")
}

// mustLoad loads files and fails the test on any error.
func mustLoad(t testing.TB, files map[string]string) *Set {
	t.Helper()
	s, err := loadFiles(t, files)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return s
}

// loadErrors returns the problems of loading files as strings.
func loadErrors(t testing.TB, files map[string]string) []string {
	t.Helper()
	_, err := loadFiles(t, files)
	if err == nil {
		t.Fatalf("load succeeded, want errors")
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("load: %v (%T), want config.Errors", err, err)
	}
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

// headers makes a Request.Header function from pairs.
func headers(kv ...string) func(string) string {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h.Get
}

// cookies makes a Request.Cookie function from pairs.
func cookies(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(name string) string { return m[name] }
}

// exampleFS is a small rule set for examples.
func exampleFS() fstest.MapFS {
	return fstest.MapFS{"rules/home.yaml": &fstest.MapFile{Data: []byte(`
pages:
  - match: ["/"]
    rules:
      - id: greet
        when: { known: true }
        select: ".greeting"
        text: "Welcome back, {{ .Traits.first_name }}!"
      - id: vip-hero
        when: { segment: vip }
        select: "#hero"
        inner: "<h1>Hello, VIP</h1>"
`)}}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
