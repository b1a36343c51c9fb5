package admin

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/testkit/fixtures"
)

// TestConsoleDrawsAGridWithEachCellsHits sends visitors of each row and
// stage through the proxy, cell (row i, stage j) i+j+1 times, and finds
// the console's grid: 12 cells, each with its count and a preview link,
// the content escaped.
func TestConsoleDrawsAGridWithEachCellsHits(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, `<html><body><h1 id="hero">Hello</h1></body></html>`)
	}))
	t.Cleanup(origin.Close)
	a := startAdmin(t, func(c *config.Config, _ *Options) {
		c.Origin = origin.URL
		c.Rules.Dir = t.TempDir()
		if err := os.WriteFile(filepath.Join(c.Rules.Dir, "g.yaml"), []byte(fixtures.Grid), 0o644); err != nil {
			t.Fatal(err)
		}
		c.Admin.Token = "s3cret-token"
		c.Preview.Key = "preview-key-0123456789abcdef0123456789"
		c.Identity.Cookie.Keys = []string{"cookie-key-0123456789abcdef0123456789"}
		c.Identity.Cookie.Secure = false
	})
	shown, err := fixtures.VisitGrid(a.visitors)
	if err != nil {
		t.Fatal(err)
	}
	_, body := call(t, "GET", a.url+"/", "", "Authorization", "Bearer s3cret-token")
	table := between(body, `<table class="drm grid" data-rule="hero-drm"`, "</table>")
	if table == "" {
		t.Fatalf("the console has no grid for hero-drm:\n%s", body)
	}
	if got := strings.Count(table, "<td data-cell="); got != 12 {
		t.Errorf("the grid has %d cells, want 12:\n%s", got, table)
	}
	header := regexp.MustCompile(`<th>([^<]*)</th>`).FindAllStringSubmatch(between(table, "<tr>", "</tr>"), -1)
	var cols []string
	for _, m := range header {
		cols = append(cols, m[1])
	}
	if want := "segment \\ stage,awareness,interest,intent,purchase"; strings.Join(cols, ",") != want {
		t.Errorf("grid columns = %v, want %s", cols, want)
	}
	cell := regexp.MustCompile(`<td data-cell="([^"]+)"><code>([^<]*(?:&lt;[^<]*)*)</code><span class="hits" data-hits="(\d+)">[^<]*</span><a class="preview" href="[^"]+tailor_preview=`)
	found := map[string]string{}
	for _, m := range cell.FindAllStringSubmatch(table, -1) {
		found[m[1]] = m[3]
	}
	if len(shown) != 12 {
		t.Fatalf("VisitGrid showed %d cells, want 12", len(shown))
	}
	for name, n := range shown {
		if want := fmt.Sprint(n); found[name] != want {
			t.Errorf("cell %s shows %q hits, want %s", name, found[name], want)
		}
	}
	if !strings.Contains(table, "inner: &lt;h1&gt;* purchase&lt;/h1&gt;") {
		t.Errorf("the grid does not show the escaped content of */purchase:\n%s", table)
	}
}

// between returns what s holds from the first from (included) to the
// next to; "" when from is not in s.
func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	j := strings.Index(s[i:], to)
	if j < 0 {
		return s[i:]
	}
	return s[i : i+j]
}
