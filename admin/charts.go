package admin

import (
	"math"
	"slices"
	"strings"

	"github.com/tailor-edge/tailor/report"
)

// The console's plots are inline SVG drawn by charts.html from the
// values laid out here: every name and number reaches the page through
// html/template's escaping, as the rest of the console does.

// ratePlot draws each variant's conversion rate as a dot with its 95%
// interval as a line, on one scale.
type ratePlot struct {
	Width, Height float64
	Ticks         []rateTick
	Rows          []rateDot
}

// rateTick is a grid line across the plot, labelled with its rate in
// percent.
type rateTick struct {
	X, Y1, Y2 float64
	Percent   float64
}

// rateDot is one variant's row: its name at LabelX, and when it has
// visitors, its interval from X1 to X2 and its rate at X, labelled at
// TextX.
type rateDot struct {
	Variant   string
	Y, LabelX float64
	Exposed   bool
	X1, X2, X float64
	TextX     float64
	Rate      float64
	Colour    string
}

// Plot geometry, in SVG user units.
const (
	plotWidth                                   = 560.0
	rateLeft, rateRight, rateRowHeight, rateTop = 90.0, 70.0, 30.0, 24.0
	barLeft, barLongest, barRowHeight           = 130.0, 340.0, 24.0
	holdoutColour, variantColour                = "#777", "#2d6a4f"
)

// newRatePlot lays out a goal's rows on a scale from 0 to a round rate
// past the highest interval.
func newRatePlot(rows []goalRow) ratePlot {
	hi := 0.0
	for _, r := range rows {
		hi = math.Max(hi, r.CI[1])
	}
	hi = niceCeil(hi)
	if hi == 0 {
		hi = 0.01
	}
	x := func(f float64) float64 { return rateLeft + (plotWidth-rateLeft-rateRight)*f/hi }
	p := ratePlot{Width: plotWidth, Height: rateTop + rateRowHeight*float64(len(rows)) + 10}
	for i := 0; i <= 4; i++ {
		f := hi * float64(i) / 4
		p.Ticks = append(p.Ticks, rateTick{X: x(f), Y1: rateTop - 6, Y2: p.Height - 6, Percent: 100 * f})
	}
	for i, r := range rows {
		d := rateDot{Variant: r.Variant, Y: rateTop + rateRowHeight*float64(i) + rateRowHeight/2, LabelX: rateLeft - 10,
			Exposed: r.Exposed > 0, X1: x(r.CI[0]), X2: x(r.CI[1]), X: x(r.Rate), TextX: x(r.CI[1]) + 8, Rate: r.Rate, Colour: variantColour}
		if r.Variant == report.Holdout {
			d.Colour = holdoutColour
		}
		p.Rows = append(p.Rows, d)
	}
	return p
}

// niceCeil rounds f up to 1, 2 or 5 times a power of ten.
func niceCeil(f float64) float64 {
	if f <= 0 {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(f)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= f {
			return m * p
		}
	}
	return 10 * p
}

// barChart draws counts as horizontal bars.
type barChart struct {
	Width, Height float64
	Bars          []bar
}

// bar is one name's row: its name right-aligned at LabelX, a bar from
// X of length Length, its count at CountX.
type bar struct {
	Name              string
	Count             int
	Y, Middle         float64 // the bar's top, the row's middle
	LabelX, X, Length float64
	CountX, Height    float64
}

// newBarChart lays out counts largest first (or in order, when given,
// then the rest); nil when there are none.
func newBarChart(counts map[string]int, order []string) *barChart {
	if len(counts) == 0 {
		return nil
	}
	keys := make([]string, 0, len(counts))
	for _, k := range order {
		if _, ok := counts[k]; ok {
			keys = append(keys, k)
		}
	}
	var rest []string
	for k := range counts {
		if !slices.Contains(keys, k) {
			rest = append(rest, k)
		}
	}
	slices.SortFunc(rest, func(a, b string) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		return strings.Compare(a, b)
	})
	keys = append(keys, rest...)
	most := 0
	for _, n := range counts {
		most = max(most, n)
	}
	c := &barChart{Width: plotWidth, Height: barRowHeight*float64(len(keys)) + 4}
	for i, k := range keys {
		y := barRowHeight * float64(i)
		length := barLongest * float64(counts[k]) / float64(max(most, 1))
		c.Bars = append(c.Bars, bar{Name: k, Count: counts[k], Y: y + 4, Middle: y + barRowHeight/2, LabelX: barLeft - 8,
			X: barLeft, Length: length, CountX: barLeft + length + 6, Height: barRowHeight - 8})
	}
	return c
}
