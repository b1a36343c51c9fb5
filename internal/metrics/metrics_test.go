package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailor-edge/tailor/internal/testkit"
)

func TestFixedLabelsAreExportedFromTheStart(t *testing.T) {
	reg := NewRegistry()
	New(reg, "test", []string{"rewritten", "unchanged"})
	text := testkit.MetricsText(t, reg)
	for _, want := range []string{
		`tailor_requests_total{code="5xx"} 0`,
		`tailor_rejected_requests_total{reason="obs_fold"} 0`,
		`tailor_origin_errors_total{kind="pool_exhausted"} 0`,
		`tailor_rewrites_total{result="unchanged"} 0`,
		`tailor_upgrades_total{result="declined"} 0`,
		`tailor_upgraded_closes_total{reason="idle"} 0`,
		`tailor_visitors_total{kind="forged"} 0`,
		`tailor_profile_lookups_total{result="no_store"} 0`,
		`tailor_events_total{result="dropped",type="goal"} 0`,
		`tailor_previews_total{result="rejected"} 0`,
		`tailor_build_info{version="test"} 1`,
		`tailor_go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestRuleAndCaseHitsAreCountedAndRead(t *testing.T) {
	m := New(prometheus.NewRegistry(), "test", nil)
	m.RuleHit("hero")
	m.RuleHit("hero")
	m.CaseHit("map", "customer")
	m.Rewrites.Inc("a result no one declared")
	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{`RuleHits("hero")`, m.RuleHits("hero"), 2},
		{`RuleHits("never")`, m.RuleHits("never"), 0},
		{`CaseHits("map", "customer")`, m.CaseHits("map", "customer"), 1},
		{`CaseHits("map", "prospect")`, m.CaseHits("map", "prospect"), 0},
		{`the undeclared rewrite result`, counterOf(m.Rewrites.vec, "a result no one declared"), 1},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

// TestCountingDoesNotAllocate holds the package's promise: once a rule
// has counted, counting on the request path is a lookup and an atomic
// add.
func TestCountingDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	m := New(prometheus.NewRegistry(), "test", []string{"rewritten"})
	rule, kase := strings.Clone("hero"), strings.Clone("customer")
	m.RuleHit(rule)
	m.CaseHit(rule, kase)
	if n := testing.AllocsPerRun(100, func() {
		m.CountStatus(200)
		m.Rejected.Inc("obs_fold")
		m.Rewrites.Inc("rewritten")
		m.Lookups.Inc(LookupHit)
		m.RuleHit(rule)
		m.CaseHit(rule, kase)
	}); n != 0 {
		t.Errorf("counting allocates %.1f times per request, want 0", n)
	}
}
