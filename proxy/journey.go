package proxy

import (
	"slices"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/cache"
	"github.com/tailor-edge/tailor/identity"
	"github.com/tailor-edge/tailor/rules"
)

const (
	// visitGap ends a visit: a page view after this much inactivity starts
	// the next one (the usual web-analytics definition).
	visitGap = 30 * time.Minute
	// stateRefresh is how stale the state's last-seen time may get before
	// a page view that changes nothing else rewrites the cookie. It keeps
	// Set-Cookie off most page views, at the cost of a visit lasting up to
	// this much longer than visitGap.
	stateRefresh = time.Minute
)

// pageView is what one HTML page view did to the visitor's journey: the
// state after it, and what changed, for the rules and the events.
type pageView struct {
	state identity.State
	// stage is the visitor's effective stage after this view ("" for the
	// first declared stage).
	stage string
	// stageFrom and stageTo are set when this view moved the visitor to a
	// later stage.
	stageFrom, stageTo string
	// goal is the goal this view reached, with its value; "" for none.
	goal  string
	value float64
	// identify is true when this view links the anonymous id to a token
	// subject for the first time.
	identify bool
	// interests are the visitor's interest scores as the rules see them
	// (the edge's, decayed to now, with the profile's), with the top one
	// and the nearest persona.
	interests   map[string]float64
	topInterest string
	persona     string
	// changed is true when the state differs from the visitor's cookie,
	// which must then be sent again.
	changed bool
}

// track works out what a page view of path at now means for the visitor:
// the visit number (a new visit after visitGap of inactivity), the stage
// the journey rules move them to (forward only: a customer who has bought
// is not sent back to "interest" by browsing a product), and the goal and
// engagement value it reaches. The result is in v.view. It reads the
// state cookie but writes nothing: setVisitorCookies sends the new state,
// unless the visitor opted out (who still gets pages that see their visit
// and stage, from the cookie they hold).
func (p *Proxy) track(set *rules.Set, req *fasthttp.Request, v *visit, profile *cache.Profile, step rules.JourneyStep, now time.Time) {
	view := &pageView{}
	v.view = view
	anon := v.id.AnonymousID
	prev, ok := identity.State{}, false
	if c := req.Header.Cookie(p.signer.StateName()); len(c) > 0 && !v.id.Fresh {
		prev, ok = p.signer.DecodeState(anon, c)
		if !ok {
			p.m.stateResets.Inc()
		}
	}
	st := prev
	nowSec := now.Unix()
	skewed := ok && (st.LastSeen > nowSec+maxSkew || st.StageAt > nowSec+maxSkew)
	if skewed {
		// Written by an edge whose clock runs ahead: taken as seen now,
		// so that the visit and the stage's age go on from here.
		st.LastSeen, st.StageAt = min(st.LastSeen, nowSec), min(st.StageAt, nowSec)
	}
	switch {
	case !ok:
		st = identity.State{Visits: 1}
	case nowSec-st.LastSeen >= int64(visitGap/time.Second):
		st.Visits = min(st.Visits+1, identity.MaxVisits)
		st.Engagement, st.Exposed = 0, nil
	}
	if set != nil && set.StageIndex(st.Stage) < 0 {
		// A stage the rules no longer declare says nothing.
		st.Stage, st.StageAt = "", 0
	}
	view.stage = effectiveStage(&st, profile)
	// While the profile is unknown (the store slow or down), the
	// visitor's stage is too: moving it on the edge's word could move a
	// customer backwards, for good, as the edge's newer stage would then
	// win over the profile's.
	if step.Stage != "" && !v.unsure {
		if from := orFirst(set, view.stage); set.StageIndex(step.Stage) > set.StageIndex(from) {
			view.stageFrom, view.stageTo = from, step.Stage
			st.Stage, st.StageAt = step.Stage, nowSec
			view.stage = step.Stage
		}
	}
	if step.Goal != "" {
		view.goal, view.value = step.Goal, step.Value
		st.Engagement += step.Value
	}
	edge := st.Interests
	if set != nil && set.HasInterests() {
		edge = decayed(edge, st.InterestsAt, nowSec, set.InterestHalfLife())
		if adds := set.Interests(string(req.URI().Path())); len(adds) > 0 {
			st.Interests, st.InterestsAt = addInterests(edge, adds), nowSec
			edge = st.Interests
		}
	}
	view.interests, view.topInterest, view.persona = visitorInterests(set, edge, profile)
	if v.id.Subject != "" {
		if h := identity.LinkHash(v.id.Subject); st.Linked != h {
			view.identify = true
			st.Linked = h
		}
	}
	view.changed = !ok || skewed || st.Visits != prev.Visits || st.Stage != prev.Stage || st.StageAt != prev.StageAt ||
		st.Engagement != prev.Engagement || st.Linked != prev.Linked || len(st.Exposed) != len(prev.Exposed) ||
		st.InterestsAt != prev.InterestsAt || !slices.Equal(st.Interests, prev.Interests) || nowSec-prev.LastSeen >= int64(stateRefresh/time.Second)
	if view.changed {
		st.LastSeen = nowSec
	}
	view.state = st
}

// maxSkew is how far ahead of this edge's clock a state's times may be
// (another edge's clock, a few seconds off) before they count as now.
const maxSkew = 5 * 60

// effectiveStage is the visitor's journey stage (SPEC "Profiles and
// sync"): the stage the edge saw them reach when that is newer than the
// profile, else the profile's stage, else "" (the first declared stage).
// A profile without a stage does not hide the edge's.
func effectiveStage(st *identity.State, profile *cache.Profile) string {
	if profile == nil || profile.Stage == "" {
		return st.Stage
	}
	if st.Stage != "" && time.Unix(st.StageAt, 0).After(profile.UpdatedAt) {
		return st.Stage
	}
	return profile.Stage
}

// journeyStep is what the rules' journey says a view of path means; none
// without rules.
func journeyStep(set *rules.Set, path string) rules.JourneyStep {
	if set == nil {
		return rules.JourneyStep{}
	}
	step, _ := set.Journey(path)
	return step
}

// orFirst returns stage, or the first declared stage for "".
func orFirst(set *rules.Set, stage string) string {
	if stage == "" {
		return set.FirstStage()
	}
	return stage
}
