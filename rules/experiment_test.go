package rules

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

const experimentRules = `
pages:
  - match: ["/"]
    rules:
      - id: hero-copy-test
        select: "#hero h1"
        experiment:
          holdout: 10
          variants:
            a: { weight: 50, text: "Run further" }
            b: { weight: 30, text: "Run faster" }
            c: { weight: 20, text: "Run" }
      - id: other-test
        select: ".cta"
        experiment:
          variants:
            x: { weight: 50, text: x }
            y: { weight: 50, text: y }
`

func TestBucketingIsStable(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": experimentRules})
	again := mustLoad(t, map[string]string{"a.yaml": experimentRules})
	p, p2 := s.Match("/"), again.Match("/")
	for i := range 200 {
		v := &Visitor{ID: fmt.Sprintf("visitor-%d", i)}
		first := s.Decide(p, v, nil).Exposures
		for range 3 {
			if got := again.Decide(p2, v, nil).Exposures; fmt.Sprint(got) != fmt.Sprint(first) {
				t.Fatalf("visitor %s: exposures %v, then %v", v.ID, first, got)
			}
		}
	}
	// Pinned: bucketing must not change between releases, or visitors
	// would switch variants mid-experiment.
	for id, want := range map[string]string{"cust-42": "a", "v1.abc": "a", "": "b"} {
		if got := s.Decide(p, &Visitor{ID: id}, nil).Exposures[0].Variant; got != want {
			t.Errorf("visitor %q is in %s, want %s (bucketing changed)", id, got, want)
		}
	}
}

func TestBucketingDistribution(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": experimentRules})
	p := s.Match("/")
	// 100,000 visitors with ids as the proxy mints them (128 random bits,
	// base64url), from a seeded generator: within 1 percentage point of
	// the weights is over 6 standard deviations for every share here.
	const n = 100_000
	counts := map[string]map[string]int{"hero-copy-test": {}, "other-test": {}}
	together := map[string]int{}
	rng := rand.New(rand.NewPCG(6, 2026))
	var raw [16]byte
	for range n {
		binary.LittleEndian.PutUint64(raw[:8], rng.Uint64())
		binary.LittleEndian.PutUint64(raw[8:], rng.Uint64())
		d := s.Decide(p, &Visitor{ID: base64.RawURLEncoding.EncodeToString(raw[:])}, nil)
		if len(d.Exposures) != 2 {
			t.Fatalf("exposures = %v, want both experiments", d.Exposures)
		}
		for _, e := range d.Exposures {
			counts[e.Experiment][e.Variant]++
		}
		together[d.Exposures[0].Variant+d.Exposures[1].Variant]++
	}
	want := map[string]map[string]float64{
		"hero-copy-test": {"holdout": 0.10, "a": 0.45, "b": 0.27, "c": 0.18},
		"other-test":     {"x": 0.5, "y": 0.5},
	}
	var worst float64
	for x, shares := range want {
		for v, share := range shares {
			got := float64(counts[x][v]) / n
			worst = max(worst, math.Abs(got-share))
			if math.Abs(got-share) > 0.01 {
				t.Errorf("%s/%s: %.4f of visitors, want %.2f ± 0.01", x, v, got, share)
			}
		}
	}
	t.Logf("%d visitors: the largest gap between a variant's share and its weight is %.2f percentage points", n, worst*100)
	// The experiments are independent: a's visitors split evenly in the
	// other experiment.
	if ax, a := float64(together["ax"]), float64(counts["hero-copy-test"]["a"]); math.Abs(ax/a-0.5) > 0.03 {
		t.Errorf("of variant a, %.3f are in x, want 0.5: experiments are correlated", ax/a)
	}
}

func TestBucketZeroWeights(t *testing.T) {
	x := &experiment{variants: []variant{{name: "a", weight: 0}, {name: "b", weight: 100}, {name: "c", weight: 0}}}
	for i := range 1000 {
		if v := x.bucket("r", fmt.Sprint(i)); v == nil || v.name != "b" {
			t.Fatalf("bucket = %v, want b", v)
		}
	}
}

func TestExperiments(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": experimentRules})
	got := fmt.Sprint(s.Experiments())
	want := "[{hero-copy-test 10 [{a 50} {b 30} {c 20}]} {other-test 0 [{x 50} {y 50}]}]"
	if got != want {
		t.Errorf("Experiments() = %s, want %s", got, want)
	}
}

// A visitor's variant must not move between versions of tailor: the
// bucketing hash is pinned.
func TestUnitHashIsPinned(t *testing.T) {
	for _, tc := range []struct {
		rule, visitor string
		want          float64
	}{
		{"hero-copy-test", "Qk3xZ", 0.7482675655722663},
		{"", "", 0.722706486340339},
		{"x", "cust-42", 0.4110535509391978},
	} {
		if got := unitHash(tc.rule, tc.visitor); got != tc.want {
			t.Errorf("unitHash(%q, %q) = %v, want %v", tc.rule, tc.visitor, got, tc.want)
		}
	}
}
