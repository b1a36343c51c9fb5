package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/internal/testkit"
)

// startDemo runs "tailor demo" on free ports until the test ends, and
// returns once it is ready, with what it has printed.
func startDemo(t *testing.T) (listen, admin string, out *syncBuffer) {
	t.Helper()
	listen, admin, out = freeAddr(t), freeAddr(t), &syncBuffer{}
	var errs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- NewMain(out, &errs).Run(ctx, []string{"demo", "--listen", listen, "--admin", admin}) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("demo exited %d: %s", code, errs.String())
		}
	})
	waitReady(t, admin, 20*time.Second, func() string { return out.String() + errs.String() })
	return listen, admin, out
}

// waitReady polls the admin listener's /readyz until it answers 200 (or
// 503 "no rule version yet": up, serving pages unchanged, with
// rules.bucket and no version yet), and
// fails the test with logs() after total.
func waitReady(t *testing.T, admin string, total time.Duration, logs func() string) {
	t.Helper()
	var err error
	if !testkit.Within(total, 20*time.Millisecond, func() bool {
		var resp *http.Response
		if resp, err = http.Get("http://" + admin + "/readyz"); err != nil {
			return false
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable { // up, serving, and waiting for its first rule version
			b, _ := io.ReadAll(resp.Body)
			return strings.Contains(string(b), "no rule version yet")
		}
		return resp.StatusCode == 200
	}) {
		t.Fatalf("not ready after %v: %v\n%s", total, err, logs())
	}
}

func TestDemoServesSeededPersonas(t *testing.T) {
	listen, _, out := startDemo(t)
	m := regexp.MustCompile(`As Jane.*\n.*Bearer ([A-Za-z0-9_.-]+)'`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("the demo printed no login token for Jane:\n%s", out.String())
	}
	req, _ := http.NewRequest("GET", "http://"+listen+"/", nil)
	req.Header.Set("Authorization", "Bearer "+m[1])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "Welcome back, Jane!") {
		t.Errorf("the demo's Jane got no greeting; decision %q", resp.Header.Get("X-Tailor-Decision"))
	}

	// A browser uses the persona switcher and walks the journey.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: testkit.Browser(nil)}
	visit := func(path string) string {
		t.Helper()
		resp, err := browser.Get("http://" + listen + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return string(b)
	}
	for path, want := range map[string]string{
		"/demo/as/jane":        "Welcome back, Jane!",
		"/demo/as/ada":         "Welcome back, Ada!",
		"/demo/as/sam":         "Finish your order",
		"/demo/as/spring-sale": "Spring sale: 20% off",
	} {
		if page := visit(path); !strings.Contains(page, want) {
			t.Errorf("%s: the page lacks %q", path, want)
		}
	}
	if page := visit("/demo/as/new"); !strings.Contains(page, `<p class="greeting">Welcome!</p>`) || strings.Contains(page, "Spring sale") {
		t.Errorf("a new visitor after the switch still gets another persona's page")
	}
	visit("/products/running/road-racer")
	if page := visit("/"); !strings.Contains(page, "Read the buyer") {
		t.Errorf("after a product page the home page's call to action is not the interest stage's")
	}
	visit("/cart")
	if page := visit("/"); !strings.Contains(page, "Finish your order") {
		t.Errorf("after the cart the home page's call to action is not the intent stage's")
	}
}
