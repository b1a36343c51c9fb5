package report

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// peeking simulates runs experiments of two arms converting at p0
// (baseline) and p1, looked at after every `every` visitors (each in
// either arm by a fair coin) up to peeks looks, with the interval
// functions the readout uses. It returns how many runs were ever
// flagged (an interval excluding 0 at some look) by the always-valid and
// by the fixed-horizon interval, and how many had the true difference
// outside the always-valid interval at some look.
func peeking(seed uint64, runs, every, peeks int, p0, p1 float64) (seqFlagged, fixedFlagged, seqMissed int) {
	src := rand.NewPCG(seed, 0x5eed)
	coin := distuv.Binomial{N: float64(every), P: 0.5, Src: src}
	for range runs {
		var n0, n1, k0, k1 int
		var seqFlag, fixedFlag, missed bool
		for range peeks {
			m := int(coin.Rand())
			n1 += m
			n0 += every - m
			k1 += int(distuv.Binomial{N: float64(m), P: p1, Src: src}.Rand())
			k0 += int(distuv.Binomial{N: float64(every - m), P: p0, Src: src}.Rand())
			u := uplift(k1, n1, k0, n0)
			fixedFlag = fixedFlag || Excludes0(u.CI)
			if u.SeqCI == nil {
				continue
			}
			seqFlag = seqFlag || Excludes0(*u.SeqCI)
			missed = missed || p1-p0 < u.SeqCI[0] || p1-p0 > u.SeqCI[1]
		}
		if seqFlag {
			seqFlagged++
		}
		if fixedFlag {
			fixedFlagged++
		}
		if missed {
			seqMissed++
		}
	}
	return seqFlagged, fixedFlagged, seqMissed
}

// TestSequentialIntervalCoverageUnderPeeking is the acceptance
// of the always-valid interval: in 1,000 A/A experiments (both arms
// converting at 5%) looked at after every 1,000 visitors up to 20,000,
// at most 5% are ever flagged; the fixed-horizon interval, looked at the
// same way, is flagged far more often (what peeking does to it); and
// with a true effect the always-valid interval holds it at every look in
// at least 95% of runs.
func TestSequentialIntervalCoverageUnderPeeking(t *testing.T) {
	const runs, every, peeks = 1000, 1000, 20
	seq, fixed, _ := peeking(18, runs, every, peeks, 0.05, 0.05)
	t.Logf("A/A, %d runs peeked at %d times: always-valid interval ever flagged %d (%.1f%%), fixed-horizon %d (%.1f%%)",
		runs, peeks, seq, 100*float64(seq)/runs, fixed, 100*float64(fixed)/runs)
	if seq > runs*5/100 {
		t.Errorf("A/A: the always-valid interval flagged %d of %d runs, want at most 5%%", seq, runs)
	}
	if fixed <= runs*10/100 {
		t.Errorf("A/A: the fixed-horizon interval flagged only %d of %d peeked-at runs: the simulation does not show what peeking does", fixed, runs)
	}
	_, _, missed := peeking(19, runs, every, peeks, 0.05, 0.06)
	t.Logf("5%% vs 6%%, %d runs: the true difference outside the always-valid interval at some look in %d (%.1f%%)",
		runs, missed, 100*float64(missed)/runs)
	if missed > runs*5/100 {
		t.Errorf("with an effect: the always-valid interval missed the true difference in %d of %d runs, want at most 5%%", missed, runs)
	}
}

func TestSequentialIntervalFormula(t *testing.T) {
	// θ̂ ± sqrt(V(V+τ²)/τ² · (log((V+τ²)/V) − 2 log α)), τ² = r*·V·n/seqHorizon.
	d, v, n := 0.01, 4e-5, 5000.0
	tau2 := seqRatio * v * n / seqHorizon
	half := math.Sqrt(v * (v + tau2) / tau2 * (math.Log((v+tau2)/v) - 2*math.Log(alpha)))
	ci := seqInterval(d, v, n)
	if ci == nil || math.Abs(ci[0]-(d-half)) > 1e-12 || math.Abs(ci[1]-(d+half)) > 1e-12 {
		t.Errorf("seqInterval(%v, %v, %v) = %v, want %v ± %v", d, v, n, ci, d, half)
	}
	// r* is where the interval is narrowest for a given V.
	width := func(r float64) float64 { return (1 + 1/r) * (math.Log1p(r) - 2*math.Log(alpha)) }
	if math.Abs(seqRatio-8.2) > 0.1 || width(seqRatio) > width(seqRatio*1.05) || width(seqRatio) > width(seqRatio/1.05) {
		t.Errorf("seqRatio = %v, not where the interval is narrowest", seqRatio)
	}
	// At the horizon it is about 1.55 times the fixed-horizon interval,
	// and never narrower than it.
	for _, n := range []float64{10, 1000, seqHorizon, 1e6, 1e8} {
		ci := seqInterval(0, 1, n)
		if ratio := ci[1] / z95; ratio < 1 || n == seqHorizon && math.Abs(ratio-1.55) > 0.01 {
			t.Errorf("at %v visitors the always-valid interval is %.3f times the fixed one", n, ratio)
		}
	}
	if seqInterval(0, 0, 100) != nil || seqInterval(0, math.NaN(), 100) != nil || seqInterval(0, 1, 0) != nil {
		t.Error("an interval without variance or visitors")
	}
}

func TestValuePerVisitorIntervals(t *testing.T) {
	b := New([]Experiment{heroTest}, []string{"purchase"})
	// 100 visitors per arm; in the holdout every tenth buys for 100 (mean
	// 10), in a every fifth (mean 20); b has a single visitor.
	for i := range 200 {
		v, variant := sprint(i), "holdout"
		if i >= 100 {
			variant = "a"
		}
		b.Add(&Event{Type: "exposure", Time: at(i), Visitor: v, Experiment: "hero", Variant: variant})
		if i < 100 && i%10 == 0 || i >= 100 && i%5 == 0 {
			b.Add(&Event{Type: "goal", Time: at(i), Visitor: v, Goal: "purchase", Value: 100})
		}
	}
	b.Add(&Event{Type: "exposure", Time: at(0), Visitor: "single", Experiment: "hero", Variant: "b"})
	got := map[string]VariantResult{}
	for _, v := range b.Report(t0).Experiments[0].Variants {
		got[v.Name] = v
	}
	h, a := got["holdout"], got["a"]
	if h.ValuePerVisitor != 10 || a.ValuePerVisitor != 20 {
		t.Fatalf("value per visitor: holdout %v, a %v; want 10, 20", h.ValuePerVisitor, a.ValuePerVisitor)
	}
	// Holdout: values 0 or 100 with p = 0.1: sample variance 100·100·0.1·0.9·100/99.
	se := math.Sqrt(10000 * 0.1 * 0.9 * 100 / 99 / 100)
	if h.ValueCI == nil || math.Abs(h.ValueCI[0]-(10-z95*se)) > 1e-9 || math.Abs(h.ValueCI[1]-(10+z95*se)) > 1e-9 {
		t.Errorf("holdout value CI = %v, want 10 ± %v", h.ValueCI, z95*se)
	}
	if h.ValueUplift != nil || got["b"].ValueCI != nil || got["b"].ValueUplift != nil {
		t.Errorf("the baseline or a single visitor has a value interval: %+v %+v", h, got["b"])
	}
	u := a.ValueUplift
	if u == nil || u.Value != 10 || u.SeqCI == nil || !(u.CI[0] < 10 && u.CI[1] > 10) {
		t.Fatalf("a's value uplift = %+v", u)
	}
	// The always-valid interval is wider than the fixed-horizon one.
	if !(u.SeqCI[0] < u.CI[0] && u.SeqCI[1] > u.CI[1]) {
		t.Errorf("a's value uplift: always-valid %v inside fixed-horizon %v", *u.SeqCI, u.CI)
	}
	if gu := a.Goals["purchase"].Uplift; gu == nil || gu.SeqCI == nil || !(gu.SeqCI[0] < gu.CI[0] && gu.SeqCI[1] > gu.CI[1]) {
		t.Errorf("a's purchase uplift = %+v, want an always-valid interval around the fixed one", gu)
	}
}

// TestValueIntervalCoverageUnderPeeking does for value per visitor what
// the test above does for conversions: 1,000 A/A experiments where 5% of
// visitors buy, for a skewed amount (log-normal, median 50, mean 82),
// looked at after every 1,000 visitors up to 20,000.
func TestValueIntervalCoverageUnderPeeking(t *testing.T) {
	const runs, every, peeks = 1000, 1000, 20
	rng := rand.New(rand.NewPCG(20, 0x5eed))
	amount := distuv.LogNormal{Mu: math.Log(50), Sigma: 1, Src: rng}
	var seq, fixed int
	for range runs {
		var n, sum, sumSq [2]float64
		var seqFlag, fixedFlag bool
		for range peeks {
			for range every {
				arm := rng.IntN(2)
				n[arm]++
				if rng.Float64() < 0.05 {
					v := amount.Rand()
					sum[arm] += v
					sumSq[arm] += v * v
				}
			}
			var s [2]valueStats
			for i := range s {
				s[i] = valueStats{n: n[i], mean: sum[i] / n[i], variance: (sumSq[i] - sum[i]*sum[i]/n[i]) / (n[i] - 1)}
			}
			u := valueUplift(s[1], s[0])
			fixedFlag = fixedFlag || Excludes0(u.CI)
			seqFlag = seqFlag || u.SeqCI != nil && Excludes0(*u.SeqCI)
		}
		if seqFlag {
			seq++
		}
		if fixedFlag {
			fixed++
		}
	}
	t.Logf("value per visitor, A/A, %d runs peeked at %d times: always-valid interval ever flagged %d (%.1f%%), fixed-horizon %d (%.1f%%)",
		runs, peeks, seq, 100*float64(seq)/runs, fixed, 100*float64(fixed)/runs)
	if seq > runs*5/100 {
		t.Errorf("A/A: the always-valid interval on value flagged %d of %d runs, want at most 5%%", seq, runs)
	}
	if fixed <= runs*10/100 {
		t.Errorf("A/A: the fixed-horizon interval on value flagged only %d of %d peeked-at runs", fixed, runs)
	}
}
