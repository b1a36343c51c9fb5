package proxy

import (
	"context"
	"errors"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/cache"
	"github.com/tailor-edge/tailor/identity"
	"github.com/tailor-edge/tailor/internal/header"
	"github.com/tailor-edge/tailor/internal/metrics"
	"github.com/tailor-edge/tailor/journey"
	natsync "github.com/tailor-edge/tailor/sync"
)

// ProfileSource is the central customer store as the proxy reads it on a
// cache miss. The sync package's Store is one.
type ProfileSource interface {
	// Get returns the profile stored under id and the revision it was
	// stored at; a nil profile and a nil error when the store has none.
	// It must return promptly (an error) when the store is unreachable.
	Get(ctx context.Context, id string) (*cache.Profile, uint64, error)
}

var _ ProfileSource = (*natsync.Store)(nil)

// fetchTimeout bounds a background fill: a request stops waiting after
// miss_budget, the fill itself after this.
const fetchTimeout = 5 * time.Second

// visit is one request's visitor: who they are and, for a page with
// rules, their profile, which may still be on its way from the store.
type visit struct {
	// now is the request's time by the proxy's clock (Options.Clock):
	// the one time its token's expiry, journey, rules and events read.
	now      time.Time
	id       visitorIdentity
	profile  *cache.Profile
	fill     <-chan cache.Fetched // a miss being fetched; nil otherwise
	deadline time.Time            // when the request stops waiting for fill
	// unsure is true while the store may hold a profile this request
	// has not got: a fetch not answered (yet, or within the budget) or
	// failed. The journey then moves no stage on the edge's word alone.
	unsure bool
	// tracked is false for a visitor who opted out (GPC, DNT, no
	// consent) and for an excluded bot: no new cookies, no events.
	tracked bool
	// device is rules.DeviceOf the User-Agent; excludedBot is true for a
	// bot that experiments.exclude_bots keeps out of experiments
	// (bots.go).
	device      string
	excludedBot bool
	// view is what this page view did to the visitor's journey; nil
	// until track runs, and for requests that are not page views.
	view *journey.View
	// preview, when not nil, is the visitor a preview link names; id
	// and profile are then unused.
	preview *identity.PreviewClaims
	// rulesVersion is the published rule version (rules.bucket) that
	// decides for this request, for the decision header; 0 for none.
	rulesVersion uint64
}

// lookup starts looking up the visitor's profile: a cache hit settles it
// now; a miss starts a fetch that the request waits for, at most until
// miss_budget after start, while the origin is being asked for the page.
func (p *Proxy) lookup(v *visit, start time.Time) {
	if p.profiles == nil {
		return
	}
	if v.id.Fresh && !v.id.Known() {
		// An id minted just now has no profile yet: asking the store
		// would cost a round trip and leave an entry nobody reads.
		return
	}
	key := v.id.Key()
	if key == "" {
		return
	}
	if prof, ok := p.profiles.Get(key); ok {
		v.profile = prof
		if prof == nil {
			p.m.Lookups.Inc(metrics.LookupMissing)
		} else {
			p.m.Lookups.Inc(metrics.LookupHit)
		}
		return
	}
	if p.source == nil {
		p.m.Lookups.Inc(metrics.LookupDisabled)
		return
	}
	v.deadline = start.Add(p.cfg.Profiles.MissBudget)
	v.unsure = true
	v.fill = p.profiles.Fill(key, func() (*cache.Profile, uint64, error) {
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		defer cancel()
		return p.source.Get(ctx, key)
	})
}

// await returns the visitor's profile, waiting for a fetch in flight no
// later than the miss budget allows; past it the visitor is served
// without one (nil) and the fetch goes on to fill the cache.
func (p *Proxy) await(v *visit) *cache.Profile {
	if v.fill == nil {
		return v.profile
	}
	ch := v.fill
	v.fill = nil
	waitStart := time.Now()
	var r cache.Fetched
	select {
	case r = <-ch:
	default:
		wait := time.Until(v.deadline)
		if wait <= 0 {
			p.m.Lookups.Inc(metrics.LookupTimeout)
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case r = <-ch:
			t.Stop()
		case <-t.C:
			p.m.Lookups.Inc(metrics.LookupTimeout)
			p.m.LookupTime.Observe(time.Since(waitStart).Seconds())
			return nil
		}
	}
	p.m.LookupTime.Observe(time.Since(waitStart).Seconds())
	switch {
	case r.Err != nil:
		if !errors.Is(r.Err, context.DeadlineExceeded) {
			p.log.Debug("fetch profile", "err", r.Err)
		}
		p.m.Lookups.Inc(metrics.LookupError)
	case r.Profile == nil:
		p.m.Lookups.Inc(metrics.LookupNotFound)
	default:
		p.m.Lookups.Inc(metrics.LookupFetched)
	}
	v.profile, v.unsure = r.Profile, r.Err != nil
	return r.Profile
}

// peek returns the visitor's profile for a page without rules: the
// cached one; on a miss, the store's answer when wait is true (within
// miss_budget), else none for now while the fetch fills the cache for the
// visitor's next page.
func (p *Proxy) peek(v *visit, wait bool) *cache.Profile {
	p.lookup(v, time.Now())
	if v.fill == nil {
		return v.profile
	}
	if wait {
		return p.await(v)
	}
	select {
	case r := <-v.fill:
		v.profile, v.unsure = r.Profile, r.Err != nil
	default:
	}
	v.fill = nil
	return v.profile
}

// setVisitorCookies gives the visitor their fresh id and, when the page
// view's outcome (conclude) says so, their state; out is nil where the
// request was no page view. A response that sets either is the
// visitor's own: no shared cache may keep it, or the next visitor would be
// handed the same id. An untracked visitor gets neither; a preview gets
// no cookie and is kept by no cache (markPreview).
func (p *Proxy) setVisitorCookies(h *fasthttp.ResponseHeader, v *visit, out *journey.Outcome) {
	if v == nil {
		return
	}
	if v.preview != nil {
		markPreview(h, v)
		return
	}
	set := false
	if v.id.SetCookie != "" {
		h.Add(fasthttp.HeaderSetCookie, v.id.SetCookie)
		set = true
	}
	if out != nil && out.Send && v.tracked {
		h.Add(fasthttp.HeaderSetCookie, p.signer.SetStateCookie(v.id.AnonymousID, &out.State))
		set = true
	}
	if set {
		header.Set(h, fasthttp.HeaderCacheControl, privateCacheControl(header.Peek(h, fasthttp.HeaderCacheControl)))
		dropSharedCacheControls(h)
	}
}

// sharedCacheControls are the headers by which an origin tells CDNs, and
// only them, how long to keep a response; they would override the
// "private" a visitor's own response gets.
var sharedCacheControls = []string{"CDN-Cache-Control", "Cloudflare-CDN-Cache-Control", "Surrogate-Control"}

func dropSharedCacheControls(h *fasthttp.ResponseHeader) {
	for _, name := range sharedCacheControls {
		header.Del(h, name)
	}
}

// markPreview keeps every cache from storing a preview (it is nobody's
// page) and the browser from sending its link, token included, as the
// Referer of what the page loads or links to.
func markPreview(h *fasthttp.ResponseHeader, v *visit) {
	if v != nil && v.preview != nil {
		header.Set(h, fasthttp.HeaderCacheControl, "no-store")
		header.Set(h, "Referrer-Policy", "no-referrer")
	}
}
