package report

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

func TestI128SumsExactly(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var got, gotSq i128
	want, wantSq := new(big.Int), new(big.Int)
	var added []int64
	for i := range 20_000 {
		v := rng.Int64N(2*maxValue*maxGoalsPerVisitor) - maxValue*maxGoalsPerVisitor
		if i%3 == 2 && len(added) > 0 { // retract one added before
			j := rng.IntN(len(added))
			v = added[j]
			added = append(added[:j], added[j+1:]...)
			got, gotSq = got.sub(i128of(v)), gotSq.sub(square(v))
			want.Sub(want, big.NewInt(v))
			wantSq.Sub(wantSq, new(big.Int).Mul(big.NewInt(v), big.NewInt(v)))
		} else {
			added = append(added, v)
			got, gotSq = got.add(i128of(v)), gotSq.add(square(v))
			want.Add(want, big.NewInt(v))
			wantSq.Add(wantSq, new(big.Int).Mul(big.NewInt(v), big.NewInt(v)))
		}
	}
	for _, c := range []struct {
		got  i128
		want *big.Int
	}{{got, want}, {gotSq, wantSq}} {
		f, _ := new(big.Float).SetInt(c.want).Float64()
		if c.got.float() != f {
			t.Errorf("i128 %v = %v, want %v", c.got, c.got.float(), f)
		}
	}
	if got := i128of(-5).float(); got != -5 {
		t.Errorf("i128of(-5) = %v", got)
	}
	if got := i128of(math.MinInt64).neg().float(); got != 0x1p63 {
		t.Errorf("-MinInt64 = %v", got)
	}
}
