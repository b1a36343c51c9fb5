//go:build browser

// The browser test drives a real headless Chromium against "tailor demo".
// It needs Chromium, so it is behind the "browser" build tag and run by
// scripts/browser-test.sh, which installs Debian's chromium when it is
// missing:
//
//	bash scripts/browser-test.sh
//
// It saves its screenshots in $TAILOR_SCREENSHOTS, or a temporary folder;
// the README shows those saved in docs/screenshots.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// personalizedBlocks are the home page's blocks that examples/rules
// rewrite; everything else must reach every persona unchanged. (The footer's
// promo loses its class "promo" for customers, so it is found by place.)
var personalizedBlocks = []string{"#hero", ".greeting", ".cta", ".picks", "footer > p:first-child"}

// sharedBlocks are elements outside them, compared pixel for pixel.
var sharedBlocks = []string{"header", "main > h2", ".cards", "footer > p:last-child", ".demo-switcher"}

// homePage is what the browser showed one persona.
type homePage struct {
	full   []byte            // full-page screenshot, PNG
	blocks map[string]string // personalized block → its outer HTML
	shots  map[string][]byte // element → its screenshot, PNG
	rest   string            // the body with the personalized blocks cut out
}

func TestBrowserShowsEachPersonaTheirOwnHomePage(t *testing.T) {
	chrome := os.Getenv("TAILOR_CHROMIUM")
	if chrome == "" {
		for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if p, err := exec.LookPath(name); err == nil {
				chrome = p
				break
			}
		}
	}
	if chrome == "" {
		t.Fatal("no Chromium found: run `bash scripts/browser-test.sh`, which installs Debian's chromium, or set TAILOR_CHROMIUM")
	}
	out := os.Getenv("TAILOR_SCREENSHOTS")
	if out == "" {
		out = t.TempDir()
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}

	listen, _, _ := startDemo(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.NoSandbox, // root in CI
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	ctx, cancelBrowser := chromedp.NewContext(ctx)
	defer cancelBrowser()

	// Each persona through the switcher at the foot of every demo page, as
	// a person would click it: it logs the browser in and redirects home.
	visit := func(persona string) homePage {
		t.Helper()
		p := homePage{blocks: map[string]string{}, shots: map[string][]byte{}}
		err := chromedp.Do(ctx,
			chromedp.EmulateViewport(1024, 900),
			chromedp.Navigate("http://"+listen+"/demo/as/"+persona),
			chromedp.WaitVisible(chromedp.CSS("#hero")),
		)
		if err != nil {
			t.Fatalf("%s: %v", persona, err)
		}
		// A viewport as tall as the page, so that the switcher, fixed to the
		// viewport's foot, shows at the page's foot as a reader scrolls to it.
		height, err := soon(ctx, chromedp.Evaluate[int64](`document.documentElement.scrollHeight`))
		if err != nil {
			t.Fatalf("%s: %v", persona, err)
		}
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(1024, height)); err != nil {
			t.Fatal(err)
		}
		if p.full, err = soon(ctx, chromedp.FullScreenshot(100)); err != nil {
			t.Fatalf("%s: screenshot: %v", persona, err)
		}
		if err := os.WriteFile(filepath.Join(out, "home-"+persona+".png"), p.full, 0o644); err != nil {
			t.Fatal(err)
		}
		// A viewport taller than the page, so that no element screenshot
		// scrolls and the fixed switcher overlaps nothing.
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(1024, 3000)); err != nil {
			t.Fatal(err)
		}
		for _, sel := range personalizedBlocks {
			if p.blocks[sel], err = soon(ctx, chromedp.OuterHTML(chromedp.CSS(sel))); err != nil {
				t.Fatalf("%s: %s: %v", persona, sel, err)
			}
		}
		for _, sel := range append(personalizedBlocks[:len(personalizedBlocks):len(personalizedBlocks)], sharedBlocks...) {
			if p.shots[sel], err = soon(ctx, chromedp.Screenshot(chromedp.CSS(sel))); err != nil {
				t.Fatalf("%s: screenshot of %s: %v", persona, sel, err)
			}
		}
		p.rest, err = soon(ctx, chromedp.Evaluate[string](`(() => {
			const body = document.body.cloneNode(true);
			for (const sel of `+jsList(personalizedBlocks)+`) {
				for (const el of body.querySelectorAll(sel)) el.replaceWith(document.createComment(sel));
			}
			return body.outerHTML;
		})()`))
		if err != nil {
			t.Fatalf("%s: %v", persona, err)
		}
		return p
	}

	newcomer, jane := visit("new"), visit("jane")

	for _, sel := range personalizedBlocks {
		if newcomer.blocks[sel] == jane.blocks[sel] {
			t.Errorf("%s is the same for a new visitor and for Jane: %s", sel, jane.blocks[sel])
		}
		if samePixels(t, newcomer.shots[sel], jane.shots[sel]) {
			t.Errorf("%s looks the same for a new visitor and for Jane", sel)
		}
	}
	if newcomer.rest != jane.rest {
		t.Errorf("the page outside the personalized blocks differs:\nnew visitor:\n%s\nJane:\n%s", newcomer.rest, jane.rest)
	}
	for _, sel := range sharedBlocks {
		if !samePixels(t, newcomer.shots[sel], jane.shots[sel]) {
			name := strings.NewReplacer(" ", "", ">", "-", ":", "-", ".", "", "#", "").Replace(sel)
			for persona, png := range map[string][]byte{"new": newcomer.shots[sel], "jane": jane.shots[sel]} {
				os.WriteFile(filepath.Join(out, "differs-"+name+"-"+persona+".png"), png, 0o644)
			}
			t.Errorf("%s looks different for a new visitor and for Jane (both saved in %s)", sel, out)
		}
	}
	if bytes.Equal(newcomer.full, jane.full) {
		t.Error("the two home pages' screenshots are identical")
	}
	t.Logf("screenshots in %s", out)
}

// soon runs a on the browser, failing after 10 s: a selector that never
// matches would otherwise wait for the whole test's deadline.
func soon[T any](ctx context.Context, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// jsList writes ss as a JavaScript array of strings.
func jsList(ss []string) string {
	b, _ := json.Marshal(ss)
	return string(b)
}

// samePixels reports whether two PNG screenshots show the same picture:
// the same size, and pixels that differ at most by anti-aliasing. An
// element that sits at a fractional offset (below a hero of another
// height) gets its rounded corners blended a level differently; seen: 2
// pixels off by 1 of 255 on a 768×438 shot.
func samePixels(t *testing.T, a, b []byte) bool {
	t.Helper()
	ia, err := png.Decode(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	ib, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if ia.Bounds() != ib.Bounds() {
		return false
	}
	r, off := ia.Bounds(), 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, a1 := ia.At(x, y).RGBA()
			r2, g2, b2, a2 := ib.At(x, y).RGBA()
			if r1 == r2 && g1 == g2 && b1 == b2 && a1 == a2 {
				continue
			}
			for _, c := range [][2]uint32{{r1, r2}, {g1, g2}, {b1, b2}, {a1, a2}} {
				if d := int(c[0]>>8) - int(c[1]>>8); d > 8 || d < -8 {
					return false
				}
			}
			off++
		}
	}
	return off*1000 <= r.Dx()*r.Dy()
}
