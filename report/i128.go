package report

import "math/bits"

// i128 is a signed 128-bit integer, hi·2⁶⁴ + lo in two's complement: the
// sums of values and of their squares, exact where float64 would round
// differently depending on the order of additions and retractions.
type i128 struct {
	hi int64
	lo uint64
}

func i128of(v int64) i128 { return i128{v >> 63, uint64(v)} }

func (a i128) add(b i128) i128 {
	lo, carry := bits.Add64(a.lo, b.lo, 0)
	return i128{a.hi + b.hi + int64(carry), lo}
}

func (a i128) neg() i128 {
	lo, borrow := bits.Sub64(0, a.lo, 0)
	return i128{-a.hi - int64(borrow), lo}
}

func (a i128) sub(b i128) i128 { return a.add(b.neg()) }

// square is v², v being at most 2⁶³ in magnitude.
func square(v int64) i128 {
	u := uint64(v)
	if v < 0 {
		u = -u
	}
	hi, lo := bits.Mul64(u, u)
	return i128{int64(hi), lo}
}

// float is a as a float64, rounded.
func (a i128) float() float64 {
	if a.hi < 0 {
		return -a.neg().float()
	}
	return float64(a.hi)*0x1p64 + float64(a.lo)
}
