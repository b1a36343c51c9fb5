package report

import (
	"math"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// alpha is the error rate of every interval: they are 95% intervals.
const alpha = 0.05

// z95 is the standard normal quantile of a two-sided 95% interval.
var z95 = distuv.UnitNormal.Quantile(1 - alpha/2)

// wilson is the 95% Wilson score interval of k successes in n trials: it
// stays inside [0, 1] and behaves at small counts, where the normal
// approximation does not.
func wilson(k, n int) [2]float64 {
	p, nf, z2 := float64(k)/float64(n), float64(n), z95*z95
	centre := (p + z2/(2*nf)) / (1 + z2/nf)
	half := z95 / (1 + z2/nf) * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	lo, hi := math.Max(0, centre-half), math.Min(1, centre+half)
	if k == 0 {
		lo = 0 // not 3e-17 from rounding
	}
	if k == n {
		hi = 1
	}
	return [2]float64{lo, hi}
}

// uplift is the difference of two conversion rates with its 95%
// intervals. The fixed-horizon one is Newcombe's hybrid score interval
// (the Wilson intervals of both rates combined): unlike the plain normal
// approximation it stays honest at small counts and at rates of 0 or 1,
// and agrees with it on large samples. The always-valid one is
// seqInterval's on the normal approximation's variance. nil when either
// side has no visitors.
func uplift(k1, n1, k0, n0 int) *Uplift {
	if n1 == 0 || n0 == 0 {
		return nil
	}
	p1, p0 := float64(k1)/float64(n1), float64(k0)/float64(n0)
	w1, w0 := wilson(k1, n1), wilson(k0, n0)
	d := p1 - p0
	lo := d - math.Sqrt((p1-w1[0])*(p1-w1[0])+(w0[1]-p0)*(w0[1]-p0))
	hi := d + math.Sqrt((w1[1]-p1)*(w1[1]-p1)+(p0-w0[0])*(p0-w0[0]))
	u := &Uplift{Value: d, CI: [2]float64{lo, hi}}
	// The variance of the normal approximation, with a success and a
	// failure added to each side (Laplace): never 0 when a rate is 0 or
	// 1, and the same as the plain one on large samples.
	l1, l0 := float64(k1+1)/float64(n1+2), float64(k0+1)/float64(n0+2)
	v := l1*(1-l1)/float64(n1) + l0*(1-l0)/float64(n0)
	if ci := seqInterval(d, v, float64(n1+n0)); ci != nil {
		ci[0], ci[1] = math.Max(ci[0], -1), math.Min(ci[1], 1)
		u.SeqCI = ci
	}
	return u
}

// Always-valid intervals: the mixture sequential probability ratio test
// (mSPRT) of Johari, Koomen, Pekelis and Walsh, "Peeking at A/B Tests:
// Why it matters, and what to do about it" (KDD 2017), and "Always Valid
// Inference: Continuous Monitoring of A/B Tests" (Operations Research 70(3),
// 2022) — the method behind Optimizely's Stats Engine.
//
// For an estimate θ̂ of a difference, approximately normal with variance
// V, the mSPRT with a normal mixing distribution N(θ₀, τ²) over the true
// difference has the likelihood ratio
//
//	Λ = sqrt(V/(V+τ²)) · exp( τ²(θ̂−θ₀)² / (2V(V+τ²)) ),
//
// and rejects θ₀ once Λ ≥ 1/α. By Ville's inequality Λ, a martingale
// under θ₀, ever reaches 1/α with probability at most α, however often it
// is looked at: the set of θ₀ not rejected,
//
//	θ̂ ± sqrt( V(V+τ²)/τ² · (log((V+τ²)/V) − 2 log α) ),
//
// is an interval that covers the true difference at every look at once
// with probability at least 1−α. (The running intersection of the
// intervals over the looks is valid too and narrower; a readout computed
// from its tallies alone reports each look's.)
//
// Choosing τ²: the interval is narrowest, relative to the fixed-horizon
// z·√V, when τ²/V is the r* solving r = log(1+r) − 2 log α (r* ≈ 8.2 at
// α = 0.05: the interval is then 1.55 times the fixed-horizon one).
// Since V shrinks as 1/n, τ² = r*·V·n/seqHorizon makes it narrowest when
// the two arms together have seqHorizon visitors; V·n, the per-visitor
// variance, is estimated from the data as the normal approximation's V
// is (as Optimizely's and Statsig's implementations do). Then τ²/V =
// r*·n/seqHorizon and the interval is θ̂ ± √V · sqrt((1+1/r)(log(1+r) −
// 2 log α)) with r = r*·n/seqHorizon: relative to the fixed-horizon
// interval, 1.55 times at seqHorizon visitors, 1.95 at a tenth of it,
// 4.6 at a hundredth, 1.66 at ten times and 1.82 at a hundred times. An
// experiment looks early with a wide interval rather than late with a
// slightly wider one: seqHorizon errs on the small side.
const seqHorizon = 10_000

// seqRatio is r*, the τ²/V at which the always-valid interval is
// narrowest: the fixed point of r = log(1+r) − 2 log α.
var seqRatio = func() float64 {
	r := 1.0
	for range 100 {
		r = math.Log1p(r) - 2*math.Log(alpha)
	}
	return r
}()

// seqInterval is the always-valid 95% interval of a difference d with
// variance v, on n visitors in both arms together (see above); nil when
// v is 0 (no variance yet: every visitor the same) or not a number.
func seqInterval(d, v, n float64) *[2]float64 {
	if !(v > 0) || math.IsInf(v, 0) || !(n > 0) {
		return nil
	}
	r := seqRatio * n / seqHorizon
	half := math.Sqrt(v * (1 + 1/r) * (math.Log1p(r) - 2*math.Log(alpha)))
	return &[2]float64{d - half, d + half}
}

// valueStats is what the intervals on value per visitor need of a tally.
type valueStats struct {
	n, mean, variance float64
}

// valueStats is the mean and the sample variance of the value per
// exposed visitor (visitors without a goal count as 0).
func (t *tally) valueStats() valueStats {
	if t.exposed <= 0 {
		return valueStats{}
	}
	n := float64(t.exposed)
	sum := t.sum.float() / unitsPerValue
	s := valueStats{n: n, mean: sum / n}
	if t.exposed > 1 {
		sumSq := t.sumSq.float() / (unitsPerValue * unitsPerValue)
		s.variance = math.Max(0, (sumSq-sum*s.mean)/(n-1))
	}
	return s
}

// ci is the fixed-horizon 95% interval of the mean value per visitor, by
// the normal approximation; nil under 2 visitors.
func (s valueStats) ci() *[2]float64 {
	if s.n < 2 {
		return nil
	}
	half := z95 * math.Sqrt(s.variance/s.n)
	return &[2]float64{s.mean - half, s.mean + half}
}

// valueUplift is the difference of the values per visitor of v and the
// baseline base, with its fixed-horizon (normal, Welch's variance) and
// always-valid intervals; nil under 2 visitors either side.
func valueUplift(v, base valueStats) *Uplift {
	if v.n < 2 || base.n < 2 {
		return nil
	}
	d := v.mean - base.mean
	variance := v.variance/v.n + base.variance/base.n
	half := z95 * math.Sqrt(variance)
	return &Uplift{Value: d, CI: [2]float64{d - half, d + half}, SeqCI: seqInterval(d, variance, v.n+base.n)}
}

// srm tests the exposed counts of the configured variants against their
// configured shares. A variant the configuration does not know is
// expected at zero: any exposure to it flags the split.
func srm(variants []VariantResult) *SRM {
	var obs, exp []float64
	var unknown []string
	known := 0
	for _, v := range variants {
		if v.Expected == 0 {
			if v.Exposed > 0 {
				unknown = append(unknown, v.Name)
			}
			continue
		}
		known += v.Exposed
		obs = append(obs, float64(v.Exposed))
		exp = append(exp, v.Expected)
	}
	res := &SRM{P: 1, Unknown: unknown}
	if len(obs) >= 2 && known > 0 {
		for i := range exp {
			exp[i] *= float64(known)
		}
		res.ChiSquare = stat.ChiSquare(obs, exp)
		res.P = distuv.ChiSquared{K: float64(len(obs) - 1)}.Survival(res.ChiSquare)
	}
	if len(unknown) > 0 {
		res.P = 0
	}
	res.Flag = res.P < SRMThreshold
	return res
}
