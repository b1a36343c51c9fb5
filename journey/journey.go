// Package journey works out what a page view means for a visitor's
// journey (SPEC "Journeys"): their visit, the stage the rules move them to,
// the goal and value reached, their interests and the nearest persona, and
// the state the next cookie carries. It is pure: the proxy decodes the
// cookie, calls Next, and sends what changed. View.Conclude, once the
// page's fate is known, records the exposures that were true on it: each
// once per visit in the state, and each variant for good (State.Keep),
// which the rules then show the visitor whatever their lookup key.
package journey

import (
	"slices"
	"time"

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

// View is what one HTML page view did to the visitor's journey: the
// state after it, and what changed, for the rules and the events.
type View struct {
	// State is the visitor state after the view, for the next cookie.
	State identity.State
	// Stage is the visitor's effective stage after this view ("" for the
	// first declared stage).
	Stage string
	// StageFrom and StageTo are set when this view moved the visitor to a
	// later stage.
	StageFrom, StageTo string
	// Goal is the goal this view reached, with its value; "" for none.
	Goal  string
	Value float64
	// Identify is true when this view links the anonymous id to a token
	// subject for the first time.
	Identify bool
	// Interests are the visitor's interest scores as the rules see them
	// (the edge's, decayed to now, with the profile's), with the top one
	// and the nearest persona.
	Interests   map[string]float64
	TopInterest string
	Persona     string
	// Changed is true when the state differs from the visitor's cookie,
	// which must then be sent again.
	Changed bool
	now     int64 // the view's time, Unix seconds
}

// Input is what a page view brings to the journey besides the state the
// visitor's cookie held.
type Input struct {
	Path    string            // the page's path
	Step    rules.JourneyStep // what the rules' journey says a view of Path means
	Profile *cache.Profile    // the visitor's profile; nil for none
	// Unsure is true while the store may hold a profile this request has
	// not got: the journey then moves no stage on the edge's word alone.
	Unsure  bool
	Subject string // a verified token's subject; "" without one
	Now     time.Time
}

// Next works out what a page view means for the visitor, from the state
// their cookie held (prev; ok is false when there was none, or it did not
// verify): the visit number (a new visit after visitGap of inactivity),
// the stage the journey rules move them to (forward only: a customer who
// has bought is not sent back to "interest" by browsing a product), the
// goal and engagement value it reaches, their interests and persona, and
// whether the state changed. It is pure: no cookie, no clock, no events.
func Next(set *rules.Set, prev identity.State, ok bool, in Input) *View {
	nowSec := in.Now.Unix()
	view := &View{now: nowSec}
	st := prev
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
	view.Stage = EffectiveStage(&st, in.Profile)
	// While the in.Profile is unknown (the store slow or down), the
	// visitor's stage is too: moving it on the edge's word could move a
	// customer backwards, for good, as the edge's newer stage would then
	// win over the in.Profile's.
	if in.Step.Stage != "" && !in.Unsure {
		if from := orFirst(set, view.Stage); set.StageIndex(in.Step.Stage) > set.StageIndex(from) {
			view.StageFrom, view.StageTo = from, in.Step.Stage
			st.Stage, st.StageAt = in.Step.Stage, nowSec
			view.Stage = in.Step.Stage
		}
	}
	if in.Step.Goal != "" {
		view.Goal, view.Value = in.Step.Goal, in.Step.Value
		st.Engagement += in.Step.Value
	}
	edge := st.Interests
	if set != nil && set.HasInterests() {
		edge = Decayed(edge, st.InterestsAt, nowSec, set.InterestHalfLife())
		if adds := set.Interests(in.Path); len(adds) > 0 {
			st.Interests, st.InterestsAt = AddInterests(edge, adds), nowSec
			edge = st.Interests
		}
	}
	view.Interests, view.TopInterest, view.Persona = Interests(set, edge, in.Profile)
	if in.Subject != "" {
		if h := identity.LinkHash(in.Subject); st.Linked != h {
			view.Identify = true
			st.Linked = h
		}
	}
	view.Changed = !ok || skewed || st.Visits != prev.Visits || st.Stage != prev.Stage || st.StageAt != prev.StageAt ||
		st.Engagement != prev.Engagement || st.Linked != prev.Linked || len(st.Exposed) != len(prev.Exposed) ||
		st.InterestsAt != prev.InterestsAt || !slices.Equal(st.Interests, prev.Interests) || nowSec-prev.LastSeen >= int64(stateRefresh/time.Second)
	if view.Changed {
		st.LastSeen = nowSec
	}
	view.State = st
	return view
}

// maxSkew is how far ahead of this edge's clock a state's times may be
// (another edge's clock, a few seconds off) before they count as now.
const maxSkew = 5 * 60

// EffectiveStage is the visitor's journey stage (SPEC "Profiles and
// sync"): the stage the edge saw them reach when that is newer than the
// profile, else the profile's stage, else "" (the first declared stage).
// A profile without a stage does not hide the edge's.
func EffectiveStage(st *identity.State, profile *cache.Profile) string {
	if profile == nil || profile.Stage == "" {
		return st.Stage
	}
	if st.Stage != "" && time.Unix(st.StageAt, 0).After(profile.UpdatedAt) {
		return st.Stage
	}
	return profile.Stage
}

// StepOf is what the rules' journey says a view of path means; none
// without rules.
func StepOf(set *rules.Set, path string) rules.JourneyStep {
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

// Outcome is what a page view leaves behind once the page's fate is
// known: the state the visitor's next cookie carries and the exposures to
// report. Conclude computes both from one view and one decision, so the
// cookie and the events cannot disagree, whatever order they are sent in.
type Outcome struct {
	// State is the state for the visitor's next cookie.
	State identity.State
	// Send is true when the cookie must be sent: State differs from the
	// one the visitor holds, or its last-seen time is stale.
	Send bool
	// Exposures are the experiments the visitor met for the first time
	// in this visit, in the decision's order: each is reported once.
	Exposures []rules.Exposure
}

// Conclude is the outcome of a view whose page went out. exposures are
// the decision's that were true on the page the visitor got (exposure
// truth: the proxy keeps those whose change, or whose holdout's probe,
// applied; nil when nothing is reported: no event sink, an opted-out
// visitor, a page served as the origin sent it). Each is kept as the
// visitor's variant (State.Keep), so that later views show it whatever
// the lookup key or the weights; a new one is recorded in the state,
// which keeps the last identity.MaxExposed of them, and reported. view is
// not changed.
func (view *View) Conclude(exposures []rules.Exposure) Outcome {
	out := Outcome{State: view.State, Send: view.Changed}
	for _, x := range exposures {
		if out.State.Keep(x.Experiment, x.Variant) {
			out.State.LastSeen = view.now
			out.Send = true
		}
		h := identity.ExposureHash(x.Experiment, x.Variant)
		if slices.Contains(out.State.Exposed, h) {
			continue
		}
		exposed := out.State.Exposed
		if len(exposed) >= identity.MaxExposed {
			exposed = exposed[1:]
		}
		// Clipped, append copies: the view's list stays as it was.
		out.State.Exposed = append(slices.Clip(exposed), h)
		out.State.LastSeen = view.now
		out.Send = true
		out.Exposures = append(out.Exposures, x)
	}
	return out
}
