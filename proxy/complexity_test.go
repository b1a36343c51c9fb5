//go:build unix

package proxy

import (
	"bytes"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// processCPU returns the CPU time the test process has used.
func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// deepSelector is issue 14's: with cascadia, matching it on a page nested
// 60 divs deep never finished and kept the request's goroutine spinning.
const deepSelector = "span div div div div div div div div div div div div div p"

func deepPage(open string) string {
	return "<!DOCTYPE html><title>deep</title>" + open + strings.Repeat("<div>", 60) +
		"<p>origin</p>" + strings.Repeat("</div>", 60)
}

func TestDeepSelectorPageIsAnsweredAndLeavesNoSpinningGoroutine(t *testing.T) {
	_, edit := withRules(t, map[string]string{"deep.yaml": `pages:
  - match: ["/**"]
    rules:
      - id: deep
        select: "` + deepSelector + `"
        text: "personalized"
      - id: title
        select: "title"
        text: "rewritten"
`})
	for _, tc := range []struct {
		name, page, want string
	}{
		// No span: cascadia tried every way of choosing 13 of 60 ancestors.
		{"no match", deepPage(""), strings.Replace(deepPage(""), "deep</title>", "rewritten</title>", 1)},
		{"match", deepPage("<span>"), strings.Replace(strings.Replace(deepPage("<span>"), "deep</title>", "rewritten</title>", 1), "<p>origin</p>", "<p>personalized</p>", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, pageOrigin(t, tc.page, nil), edit)
			start := time.Now()
			resp, body := get(t, p.url+"/")
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("answered in %v, want under 2 s", d)
			}
			if resp.StatusCode != 200 || string(body) != tc.want {
				t.Errorf("got %d %q\nwant 200 %q", resp.StatusCode, body, tc.want)
			}
			if v := counterValue(t, p.Registry(), "tailor_rewrites_total", "result", "rewritten"); v != 1 {
				t.Errorf("tailor_rewrites_total{result=rewritten} = %v, want 1", v)
			}
			// Nothing keeps working once the page is served: the process
			// idles (a spinning goroutine would burn a whole core).
			checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
				before := processCPU(t)
				time.Sleep(200 * time.Millisecond)
				if used := processCPU(t) - before; used > 100*time.Millisecond {
					return fmt.Errorf("the process used %v of CPU in 200 ms after the response", used)
				}
				return nil
			})
		})
	}
}

func TestPagesTooComplexToMatchAreServedUnchanged(t *testing.T) {
	// 20000 paragraphs 400 deep, each looking for a span among all its
	// ancestors: 8M steps, past the budget of one page.
	page := "<!DOCTYPE html><title>t</title>" + strings.Repeat("<div>", 400) + strings.Repeat("<p>a</p>", 20000)
	_, edit := withRules(t, map[string]string{"wide.yaml": `pages:
  - match: ["/**"]
    rules:
      - id: walk
        select: "span p"
        text: "personalized"
`})
	p := startProxy(t, pageOrigin(t, page, nil), edit)
	resp, body := get(t, p.url+"/")
	if resp.StatusCode != 200 || !bytes.Equal(body, []byte(page)) {
		t.Fatalf("got %d and %d bytes, want 200 and the origin's %d bytes", resp.StatusCode, len(body), len(page))
	}
	if v := counterValue(t, p.Registry(), "tailor_rewrites_total", "result", "too_complex"); v != 1 {
		t.Errorf("tailor_rewrites_total{result=too_complex} = %v, want 1", v)
	}
	ex, err := p.Explain(ExplainRequest{URL: "/"})
	if err != nil {
		t.Fatalf("Explain: %v", err)
	}
	if ex.Page || !strings.Contains(ex.Reason, "more work than a page may") {
		t.Errorf("Explain = page %v, reason %q; want not personalized, with the reason", ex.Page, ex.Reason)
	}
}
