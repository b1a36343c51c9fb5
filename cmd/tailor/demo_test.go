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
)

func TestDemoServesSeededPersonas(t *testing.T) {
	listen, admin := freeAddr(t), freeAddr(t)
	var out, errs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- NewMain(&out, &errs).Run(ctx, []string{"demo", "--listen", listen, "--admin", admin}) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("demo exited %d: %s", code, errs.String())
		}
	}()
	jane := regexp.MustCompile(`As Jane.*\n.*Bearer ([A-Za-z0-9_.-]+)'`)
	var tok string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if m := jane.FindStringSubmatch(out.String()); m != nil {
			tok = m[1]
			resp, err := http.Get("http://" + admin + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo not up after 20s:\n%s\n%s", out.String(), errs.String())
		}
	}
	req, _ := http.NewRequest("GET", "http://"+listen+"/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
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
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
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
