package metrics

import "github.com/prometheus/client_golang/prometheus"

// The constructors below are prometheus's, minus the Opts literal that
// every metric here would otherwise repeat: a name and a help text.

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

func gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
}

func histogram(name, help string, buckets []float64) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
}

// counterFunc and gaugeFunc are read at scrape time from a store that
// keeps its own counts.
func counterFunc(name, help string, f func() float64) prometheus.CounterFunc {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
}

func gaugeFunc(name, help string, f func() float64) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
}

// Counters is a counter vector of one label whose values are known when
// it is made: each is resolved then, so that counting is a map read and
// an atomic add (WithLabelValues hashes the labels and takes a lock on
// every call), and each is exported from the start, at 0. A value not
// declared is counted all the same, the slow way.
type Counters struct {
	vec *prometheus.CounterVec
	of  map[string]prometheus.Counter
}

func newCounters(name, help, label string, values ...string) Counters {
	c := Counters{
		vec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label}),
		of:  make(map[string]prometheus.Counter, len(values)),
	}
	for _, v := range values {
		c.of[v] = c.vec.WithLabelValues(v)
	}
	return c
}

// Inc counts one of value.
func (c Counters) Inc(value string) {
	if n, ok := c.of[value]; ok {
		n.Inc()
		return
	}
	c.vec.WithLabelValues(value).Inc()
}

// Add counts n of value.
func (c Counters) Add(value string, n float64) {
	if m, ok := c.of[value]; ok {
		m.Add(n)
		return
	}
	c.vec.WithLabelValues(value).Add(n)
}
