package proxy

import (
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

// deviceOf classifies the request's User-Agent (rules.DeviceOf) and says
// whether it is a bot that exclude_bots keeps out of experiments.
func (p *Proxy) deviceOf(req *fasthttp.Request) (device string, excluded bool) {
	// DeviceOf keeps nothing of the string: no copy of the header.
	ua := req.Header.UserAgent()
	device = rules.DeviceOf(unsafe.String(unsafe.SliceData(ua), len(ua)))
	return device, device == "bot" && p.cfg.Experiments.ExcludeBots
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
