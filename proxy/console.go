package proxy

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/report"
	"github.com/tailor-edge/tailor/rules"
	natsync "github.com/tailor-edge/tailor/sync"
)

// The console (SPEC "Admin listener": GET /) is the marketer's view of a
// running proxy: each page's Digital Relevancy Maps as grids with live hit
// counts and a preview link per cell, the experiments' readouts with a
// plot of conversion per variant, and segment, stage and persona sizes.
// Server-rendered with html/template, no JavaScript. Behind the admin
// token: as a bearer token, or typed once into its form, which sets an
// HttpOnly cookie holding an expiry and a MAC under a per-process key
// (never the token), which the proxy never forwards to the origin.

// EventReader reads the events stream; *sync.Store is one.
type EventReader interface {
	ReadEvents(ctx context.Context, stream string, since time.Time, progress func(read, total uint64), fn func(data []byte)) (uint64, error)
}

const (
	// readoutTTL is how long the console reuses a readout: reading the
	// stream costs a few seconds per million events.
	readoutTTL = 30 * time.Second
	// readoutMinAge is how often ?refresh may read the stream again.
	readoutMinAge = 2 * time.Second
	// readoutWindow is how far back the console's readout reads.
	readoutWindow = 7 * 24 * time.Hour
	// readoutTimeout bounds one read of the stream.
	readoutTimeout = 20 * time.Second
	// consoleSessionTTL is how long a console login lasts.
	consoleSessionTTL = 12 * time.Hour
	// previewTTL is how long the console's preview links work.
	previewTTL = 24 * time.Hour
)

//go:embed console.html
var consoleHTML string

var consoleTmpl = template.Must(template.New("console").Funcs(template.FuncMap{
	"pct":       func(f float64) string { return fmt.Sprintf("%.2f%%", 100*f) },
	"thousands": func(n int) string { return report.Thousands(int64(n)) },
	"count":     func(f float64) string { return report.Thousands(int64(f)) },
	"signed":    func(f float64) string { return fmt.Sprintf("%+.2f", 100*f) },
	"hits": func(f float64) string {
		if f == 1 {
			return "1 hit"
		}
		return report.Thousands(int64(f)) + " hits"
	},
}).Parse(consoleHTML))

// consoleState is what the console keeps between requests.
type consoleState struct {
	mu      sync.Mutex
	readout *report.Report
	partial bool
	err     error
	at      time.Time
	took    time.Duration
}

// consoleSession is the console cookie's value until expires:
// "<expires>.<mac>", the MAC under a key made when the process started
// and the admin token, so that a copy works only on this process, only
// until it expires, and not after the token changes.
func (a *Admin) consoleSession(expires int64) string {
	m := hmac.New(sha256.New, a.sessionKey[:])
	m.Write([]byte(a.proxy.cfg.Admin.Token))
	m.Write([]byte{0})
	m.Write(strconv.AppendInt(nil, expires, 10))
	return strconv.FormatInt(expires, 10) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// consoleAuthorized accepts the bearer token or an unexpired console
// cookie.
func (a *Admin) consoleAuthorized(ctx *fasthttp.RequestCtx) bool {
	if a.authorized(ctx) {
		return true
	}
	c := ctx.Request.Header.Cookie(ConsoleCookie)
	exp, _, ok := strings.Cut(string(c), ".")
	if !ok {
		return false
	}
	expires, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || time.Now().Unix() > expires {
		return false
	}
	return subtle.ConstantTimeCompare(c, []byte(a.consoleSession(expires))) == 1
}

// console serves GET / (the console, or its token form) and POST /login.
func (a *Admin) console(ctx *fasthttp.RequestCtx) {
	if !a.enabled {
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetBodyString("the console is off: set admin.token to turn it on\n")
		return
	}
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.Set("X-Frame-Options", "DENY")
	ctx.Response.Header.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'")
	ctx.Response.Header.Set("Referrer-Policy", "no-referrer")
	if string(ctx.Path()) == "/login" {
		a.consoleLogin(ctx)
		return
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Error("use GET\n", fasthttp.StatusMethodNotAllowed)
		return
	}
	bearer := len(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)) > 0
	if bearer && a.limited(ctx) {
		return
	}
	if !a.consoleAuthorized(ctx) {
		if bearer {
			a.loginFailed(ctx)
		}
		a.renderConsole(ctx, fasthttp.StatusUnauthorized, &consoleView{Login: true})
		return
	}
	a.renderConsole(ctx, fasthttp.StatusOK, a.consoleView(ctx))
}

// consoleLogin checks the token typed into the form and sets the cookie.
func (a *Admin) consoleLogin(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		ctx.Redirect("/", fasthttp.StatusSeeOther)
		return
	}
	if a.limited(ctx) {
		return
	}
	got := sha256.Sum256(ctx.PostArgs().Peek("token"))
	if subtle.ConstantTimeCompare(got[:], a.tokenHash[:]) != 1 {
		a.loginFailed(ctx)
		a.renderConsole(ctx, fasthttp.StatusUnauthorized, &consoleView{Login: true, LoginFailed: true})
		return
	}
	var c fasthttp.Cookie
	c.SetKey(ConsoleCookie)
	c.SetValue(a.consoleSession(time.Now().Add(consoleSessionTTL).Unix()))
	c.SetPath("/")
	c.SetHTTPOnly(true)
	c.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	c.SetMaxAge(int(consoleSessionTTL.Seconds()))
	ctx.Response.Header.SetCookie(&c)
	ctx.Redirect("/", fasthttp.StatusSeeOther)
}

func (a *Admin) renderConsole(ctx *fasthttp.RequestCtx, status int, v *consoleView) {
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.SetStatusCode(status)
	if err := consoleTmpl.Execute(ctx, v); err != nil {
		a.log.Error("rendering the console", "err", err)
	}
}

// consoleView is what the console's template shows.
type consoleView struct {
	Login, LoginFailed bool
	Version            string
	RulesLoaded        string
	PreviewNote        string
	Pages              []consolePage
	Readout            *report.Report
	ReadoutNote        string
	Experiments        []experimentView
	Sizes              []sizeChart
}

// consolePage is one page of rules: its maps as grids, its other rules.
type consolePage struct {
	Patterns string
	// Personas link to the page as each declared persona sees it.
	Personas []personaLink
	Grids    []drmGrid
	Others   []ruleRow
}

// drmGrid is the Digital Relevancy Maps of a page that are by the same
// thing: a row per stage or segment, a column per block.
type personaLink struct{ Name, Preview string }

type drmGrid struct {
	By     string
	Blocks []string // each map's selector (and rule id)
	Rows   []drmRow
}

type drmRow struct {
	Key   string
	Cells []drmCell
}

type drmCell struct {
	Action  string // "" for no case: the origin's block
	Hits    float64
	Preview string
}

type ruleRow struct {
	ID, Selector, Kind, Action string
	Conditional                bool
	Hits                       float64
}

type experimentView struct {
	report.ExperimentResult
	Goals []goalView
}

type goalView struct {
	Goal string
	Rows []goalRow
	Plot template.HTML
}

type goalRow struct {
	Baseline  bool
	Variant   string
	Exposed   int
	Converted int
	Rate      float64
	CI        [2]float64
	Uplift    *report.Uplift
	Clear     bool // the uplift's interval excludes 0
}

type sizeChart struct {
	Title string
	Plot  template.HTML
}

func (a *Admin) consoleView(ctx *fasthttp.RequestCtx) *consoleView {
	p := a.proxy
	v := &consoleView{Version: p.version}
	set, loaded := p.Rules()
	if set == nil {
		v.RulesLoaded = "no rules: every page passes through"
	} else {
		v.RulesLoaded = loaded.UTC().Format("2006-01-02 15:04:05 MST")
		v.Pages = a.consolePages(ctx, set, &v.PreviewNote)
	}
	v.Readout, v.ReadoutNote = a.consoleReadout(ctx.QueryArgs().Has("refresh"))
	if v.Readout != nil {
		for _, x := range v.Readout.Experiments {
			v.Experiments = append(v.Experiments, experimentView{ExperimentResult: x, Goals: goalViews(x)})
		}
		v.Sizes = []sizeChart{
			{"Visitors by stage", barChart(v.Readout.Stages, stageOrder(set))},
			{"Visitors by segment", barChart(v.Readout.Segments, nil)},
			{"Visitors by persona", barChart(v.Readout.Personas, nil)},
		}
	}
	return v
}

func stageOrder(set *rules.Set) []string {
	if set == nil {
		return nil
	}
	return set.Stages()
}

// consolePages lays out each page's rules: maps in grids, the rest as a
// list, with their hit counts since start and preview links.
func (a *Admin) consolePages(ctx *fasthttp.RequestCtx, set *rules.Set, note *string) []consolePage {
	p := a.proxy
	base := a.previewBase(ctx)
	key := p.cfg.Preview.Key
	if key == "" {
		*note = "Set preview.key to get a preview link in every cell."
	}
	now := time.Now()
	var out []consolePage
	for _, page := range set.Pages() {
		pv := consolePage{Patterns: strings.Join(page.Patterns(), " ")}
		path := previewPath(page.Patterns())
		if key != "" && path != "" && base != "" {
			for _, per := range set.Personas() {
				if tok, err := SignPreview(key, PreviewClaims{Persona: per.Name, Label: "persona " + per.Name}, previewTTL, now); err == nil {
					pv.Personas = append(pv.Personas, personaLink{per.Name, base + path + "?" + PreviewParam + "=" + tok})
				}
			}
		}
		grids := map[string]*drmGrid{}
		var order []string
		for _, r := range page.Rules() {
			if r.Kind != "map" {
				pv.Others = append(pv.Others, ruleRow{ID: r.ID, Selector: r.Selector, Kind: r.Kind, Action: r.Action,
					Conditional: r.Conditional, Hits: p.RuleHits(r.ID)})
				continue
			}
			g := grids[r.By]
			if g == nil {
				g = &drmGrid{By: r.By}
				grids[r.By] = g
				order = append(order, r.By)
			}
			col := len(g.Blocks)
			g.Blocks = append(g.Blocks, r.Selector+" ("+r.ID+")")
			keys := make([]string, 0, len(r.Cases))
			if r.By == "stage" {
				keys = append(keys, set.Stages()...)
			}
			for _, c := range r.Cases {
				if !slices.Contains(keys, c.Key) {
					keys = append(keys, c.Key)
				}
			}
			for _, k := range keys {
				i := slices.IndexFunc(g.Rows, func(row drmRow) bool { return row.Key == k })
				if i < 0 {
					g.Rows = append(g.Rows, drmRow{Key: k})
					i = len(g.Rows) - 1
				}
				row := &g.Rows[i]
				for len(row.Cells) <= col {
					row.Cells = append(row.Cells, drmCell{})
				}
				cell := &row.Cells[col]
				if c := slices.IndexFunc(r.Cases, func(c rules.CaseInfo) bool { return c.Key == k }); c >= 0 {
					cell.Action = r.Cases[c].Action
					cell.Hits = p.MapCaseHits(r.ID, k)
				}
				if key != "" && path != "" && base != "" && k != "default" {
					claims := PreviewClaims{Label: r.By + " " + k}
					if r.By == "stage" {
						claims.Stage = k
					} else {
						claims.Segments = []string{k}
					}
					if tok, err := SignPreview(key, claims, previewTTL, now); err == nil {
						cell.Preview = base + path + "?" + PreviewParam + "=" + tok
					}
				}
			}
		}
		for _, by := range order {
			g := grids[by]
			for i := range g.Rows {
				for len(g.Rows[i].Cells) < len(g.Blocks) {
					g.Rows[i].Cells = append(g.Rows[i].Cells, drmCell{})
				}
			}
			pv.Grids = append(pv.Grids, *g)
		}
		out = append(out, pv)
	}
	return out
}

// previewPath is a path the page's match takes: the first pattern
// without wildcards; "" when every one has some.
func previewPath(patterns []string) string {
	for _, p := range patterns {
		if !strings.ContainsAny(p, "*?[") {
			return p
		}
	}
	return ""
}

// previewBase is where visitors reach the proxy, as seen from the
// operator's browser: the listen address, its host taken from the admin
// request when the proxy listens on every address.
func (a *Admin) previewBase(ctx *fasthttp.RequestCtx) string {
	host, port, err := net.SplitHostPort(a.proxy.cfg.Listen)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = string(ctx.Host())
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// consoleReadout returns the readout of the last readoutWindow of events,
// read again at most every readoutTTL, or readoutMinAge when refresh is
// asked for (?refresh); a note says why there is none.
func (a *Admin) consoleReadout(refresh bool) (*report.Report, string) {
	p := a.proxy
	if p.eventReader == nil || p.cfg.NATS.EventsStream == "" {
		return nil, "Events are off (no NATS, or nats.events_stream is empty): no experiment readout."
	}
	cs := &a.readout
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if age := time.Since(cs.at); cs.at.IsZero() || age > readoutTTL || refresh && age > readoutMinAge {
		start := time.Now()
		cs.readout, cs.partial, cs.err = a.readEvents(start.Add(-readoutWindow))
		cs.at, cs.took = time.Now(), time.Since(start)
	}
	if cs.err != nil {
		return nil, "Could not read the events: " + cs.err.Error()
	}
	note := fmt.Sprintf("%s events of the last %d days, read %s ago in %s.",
		report.Thousands(cs.readout.Events), int(readoutWindow.Hours()/24), time.Since(cs.at).Round(time.Second), cs.took.Round(time.Millisecond))
	if cs.partial {
		note = fmt.Sprintf("Partial: only the first %s events of the last %d days could be read in %s; tailor report reads them all.",
			report.Thousands(cs.readout.Events), int(readoutWindow.Hours()/24), readoutTimeout)
	}
	return cs.readout, note
}

// readEvents reads the events stream since then into a readout, with the
// experiments and goals of the rules serving now.
func (a *Admin) readEvents(since time.Time) (*report.Report, bool, error) {
	p := a.proxy
	set, _ := p.Rules()
	ctx, cancel := context.WithTimeout(context.Background(), readoutTimeout)
	defer cancel()
	r, err := Readout(ctx, p.eventReader, p.cfg.NATS.EventsStream, set, since, nil)
	if errors.Is(err, natsync.ErrNoStream) {
		return report.New(nil, nil).Report(since), false, nil // no events yet
	}
	if err != nil {
		return nil, false, err
	}
	return r.Report, r.Partial, nil
}

// goalViews lays out an experiment's results per goal, with a plot.
func goalViews(x report.ExperimentResult) []goalView {
	var out []goalView
	for _, g := range x.GoalNames() {
		gv := goalView{Goal: g}
		for _, v := range x.Variants {
			r := v.Goals[g]
			row := goalRow{Baseline: v.Baseline, Variant: v.Name, Exposed: v.Exposed, Converted: r.Converted, Rate: r.Rate, CI: r.CI, Uplift: r.Uplift}
			row.Clear = r.Uplift != nil && (r.Uplift.CI[0] > 0 || r.Uplift.CI[1] < 0)
			gv.Rows = append(gv.Rows, row)
		}
		gv.Plot = ratePlot(gv.Rows)
		out = append(out, gv)
	}
	return out
}

// ratePlot draws each variant's conversion rate as a dot with its 95%
// interval as a line, on one scale: inline SVG.
func ratePlot(rows []goalRow) template.HTML {
	const (
		width, left, right, rowH, top = 560.0, 90.0, 70.0, 30.0, 24.0
	)
	hi := 0.0
	for _, r := range rows {
		hi = math.Max(hi, r.CI[1])
	}
	hi = niceCeil(hi)
	if hi == 0 {
		hi = 0.01
	}
	x := func(f float64) float64 { return left + (width-left-right)*f/hi }
	height := top + rowH*float64(len(rows)) + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot" role="img" aria-label="conversion rate per variant, with 95%% intervals" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" xmlns="http://www.w3.org/2000/svg">`, width, height, width, height)
	for i := 0; i <= 4; i++ {
		f := hi * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#ddd"/><text x="%.1f" y="14" font-size="11" text-anchor="middle" fill="#666">%.1f%%</text>`,
			x(f), top-6, x(f), height-6, x(f), 100*f)
	}
	for i, r := range rows {
		y := top + rowH*float64(i) + rowH/2
		colour := "#2d6a4f"
		if r.Variant == report.Holdout {
			colour = "#777"
		}
		fmt.Fprintf(&b, `<text class="variant" x="%.0f" y="%.1f" font-size="13" text-anchor="end" dominant-baseline="middle">%s</text>`, left-10, y, template.HTMLEscapeString(r.Variant))
		if r.Exposed == 0 {
			continue
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/>`, x(r.CI[0]), y, x(r.CI[1]), y, colour)
		fmt.Fprintf(&b, `<circle class="rate" data-variant="%s" data-rate="%.4f" cx="%.1f" cy="%.1f" r="5" fill="%s"/>`, template.HTMLEscapeString(r.Variant), r.Rate, x(r.Rate), y, colour)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="12" dominant-baseline="middle" fill="#333">%.2f%%</text>`, x(r.CI[1])+8, y, 100*r.Rate)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built from numbers and escaped names only
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

// barChart draws counts as horizontal bars, largest first (or in order,
// when given, then the rest): inline SVG.
func barChart(counts map[string]int, order []string) template.HTML {
	if len(counts) == 0 {
		return template.HTML(`<p class="none">None yet.</p>`)
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
	const width, left, barMax, rowH = 560.0, 130.0, 340.0, 24.0
	height := rowH*float64(len(keys)) + 4
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="bars" role="img" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" xmlns="http://www.w3.org/2000/svg">`, width, height, width, height)
	for i, k := range keys {
		y := rowH * float64(i)
		w := barMax * float64(counts[k]) / float64(max(most, 1))
		name := template.HTMLEscapeString(k)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" font-size="13" text-anchor="end" dominant-baseline="middle">%s</text>`, left-8, y+rowH/2, name)
		fmt.Fprintf(&b, `<rect class="bar" data-name="%s" data-count="%d" x="%.0f" y="%.1f" width="%.1f" height="%.0f" fill="#52b788"/>`, name, counts[k], left, y+4, w, rowH-8)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="12" dominant-baseline="middle" fill="#333">%s</text>`, left+w+6, y+rowH/2, report.Thousands(int64(counts[k])))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // numbers and escaped names only
}
