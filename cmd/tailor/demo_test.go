package main

import (
	"context"
	"io"
	"net/http"
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
}
