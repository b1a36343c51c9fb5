package proxy

import (
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/coding"
	"github.com/tailor-edge/tailor/rules"
)

// BenchmarkAddGoalScript is the cost the goal script adds to a page with
// click goals: finding the end of its body with an HTML tokenizer, and
// copying it with the tag in, for a 100 KB blog page.
func BenchmarkAddGoalScript(b *testing.B) {
	page, err := os.ReadFile("../bench/pages/nightly-blog.html")
	if err != nil {
		b.Skip(err)
	}
	bc, err := newBeacon(config.Default(), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	p := &Proxy{beacon: bc}
	var resp fasthttp.Response
	goals := []rules.ClickGoal{{Goal: "add_to_cart", Click: []string{".add-to-cart"}}}
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		if _, result := p.addGoalScript(&resp, page, goals, coding.Identity, 5<<20); result != scriptAdded {
			b.Fatal(result)
		}
	}
}
