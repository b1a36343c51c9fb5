package proxy

import (
	"hash/maphash"
	"sync/atomic"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/rules"
)

// Bots (experiments.exclude_bots). A page view's device is read from its
// User-Agent once, in visitorFor (rules.DeviceOf, which knows the crawler
// list of internal/bots): the rules and the events take it from the
// visit. With exclude_bots, a bot is not tracked — no identity cookie, no
// state cookie, no events, counted in tailor_page_views_total{tracking=
// "bot"} — and sees the control of every experiment (rules.Visitor.
// Control), while the rules' other changes still apply: crawlers index
// the site as people who are in no experiment see it.
//
// DeviceOf costs some 0.5 µs for a browser's User-Agent (most of it the
// crawler list), a sixth of a page view's tracking, and a site's page
// views come from far fewer User-Agents than visitors: the proxy keeps
// the device of the last few hundred it classified (uaDevices).

// deviceOf classifies the request's User-Agent (rules.DeviceOf) and says
// whether it is a bot that exclude_bots keeps out of experiments.
func (p *Proxy) deviceOf(req *fasthttp.Request) (device string, excluded bool) {
	device = p.devices.of(req.Header.UserAgent())
	return device, device == "bot" && p.cfg.Experiments.ExcludeBots
}

// uaDevices remembers rules.DeviceOf of recent User-Agents, byte for
// byte: a direct-mapped table of uaSlots entries, each the last
// User-Agent whose hash fell on it, replaced without a lock. DeviceOf is
// a pure function of the string, so a remembered device is the one
// DeviceOf would give. Its memory is bounded (uaSlots × uaMaxCached
// bytes at most); a User-Agent longer than uaMaxCached is classified
// every time, and one that keeps missing costs a copy of itself on top
// of DeviceOf.
type uaDevices struct {
	seed  maphash.Seed
	slots [uaSlots]atomic.Pointer[uaDevice]
}

type uaDevice struct{ ua, device string }

const (
	uaSlots     = 512
	uaMaxCached = 512
)

func newUADevices() *uaDevices { return &uaDevices{seed: maphash.MakeSeed()} }

// of is rules.DeviceOf(string(ua)); a nil c remembers nothing.
func (c *uaDevices) of(ua []byte) string {
	if c == nil || len(ua) > uaMaxCached {
		// DeviceOf keeps nothing of the string: no copy of the header.
		return rules.DeviceOf(unsafe.String(unsafe.SliceData(ua), len(ua)))
	}
	slot := &c.slots[maphash.Bytes(c.seed, ua)%uaSlots]
	if e := slot.Load(); e != nil && e.ua == string(ua) {
		return e.device
	}
	e := &uaDevice{ua: string(ua)}
	e.device = rules.DeviceOf(e.ua)
	slot.Store(e)
	return e.device
}

// asSeen completes what visitorOf built for the rules with what the visit
// knows of the visitor's device: the device, read once per page view, and
// for an excluded bot the control of every experiment.
func (v *visit) asSeen(visitor *rules.Visitor, request *rules.Request) {
	request.Device = v.device
	if v.excludedBot {
		visitor.Control = true
	}
}
