package admin

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tailor-edge/tailor/identity"
	"github.com/tailor-edge/tailor/proxy"
	"github.com/tailor-edge/tailor/report"
	"github.com/tailor-edge/tailor/rules"
)

// The console (SPEC "Admin listener": GET /) is the marketer's view of a
// running proxy: each page's Digital Relevancy Maps as grids with live hit
// counts and a preview link per cell, the experiments' readouts with a
// plot of conversion per variant, and segment, stage and persona sizes.
// Server-rendered with html/template, no JavaScript. Behind the admin
// token: as a bearer token, or typed once into its form, which sets an
// HttpOnly cookie (proxy.ConsoleCookie) holding an expiry and a MAC under
// a per-process key (never the token), which the proxy never forwards to
// the origin.

const (
	// consoleSessionTTL is how long a console login lasts.
	consoleSessionTTL = 12 * time.Hour
	// previewTTL is how long the console's preview links work.
	previewTTL = 24 * time.Hour
)

//go:embed console.html charts.html
var consoleFiles embed.FS

var consoleTmpl = template.Must(template.New("console.html").Funcs(template.FuncMap{
	"pct":       func(f float64) string { return fmt.Sprintf("%.2f%%", 100*f) },
	"thousands": func(n int) string { return report.Thousands(int64(n)) },
	"count":     func(f float64) string { return report.Thousands(int64(f)) },
	"signed":    func(f float64) string { return fmt.Sprintf("%+.2f", 100*f) },
	"value":     func(f float64) string { return fmt.Sprintf("%.2f", f) },
	"signedv":   func(f float64) string { return fmt.Sprintf("%+.2f", f) },
	"group": func(s string) string {
		if s == "" {
			return "(none)"
		}
		return s
	},
	"hits": func(f float64) string {
		if f == 1 {
			return "1 hit"
		}
		return report.Thousands(int64(f)) + " hits"
	},
}).ParseFS(consoleFiles, "console.html", "charts.html"))

// consoleRoutes adds the console: GET / and its token form's POST /login.
func (a *Admin) consoleRoutes(mux *http.ServeMux) {
	mux.Handle("GET /{$}", a.consolePage(http.HandlerFunc(a.console)))
	mux.Handle("/{$}", a.consolePage(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", "GET, HEAD")
		text(w, http.StatusMethodNotAllowed, "use GET\n")
	})))
	mux.Handle("POST /login", a.consolePage(http.HandlerFunc(a.login)))
	mux.Handle("/login", a.consolePage(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})))
}

// consolePage answers 404 while admin.token is not set, and otherwise
// lets h answer with headers that keep the console out of caches, frames
// and other sites' reach.
func (a *Admin) consolePage(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.enabled {
			text(w, http.StatusNotFound, "the console is off: set admin.token to turn it on\n")
			return
		}
		hdr := w.Header()
		hdr.Set("Cache-Control", "no-store")
		hdr.Set("X-Frame-Options", "DENY")
		hdr.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'")
		hdr.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// console serves GET /: the console, or its token form.
func (a *Admin) console(w http.ResponseWriter, r *http.Request) {
	bearer := r.Header.Get("Authorization") != ""
	if bearer && a.limited(w, r) {
		return
	}
	if !a.consoleAuthorized(r) {
		if bearer {
			a.loginFailed(r)
		}
		a.render(w, http.StatusUnauthorized, &consoleView{Login: true})
		return
	}
	a.render(w, http.StatusOK, a.view(r))
}

// login checks the token typed into the form and sets the cookie.
func (a *Admin) login(w http.ResponseWriter, r *http.Request) {
	if a.limited(w, r) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	got := sha256.Sum256([]byte(r.PostFormValue("token")))
	if subtle.ConstantTimeCompare(got[:], a.tokenHash[:]) != 1 {
		a.loginFailed(r)
		a.render(w, http.StatusUnauthorized, &consoleView{Login: true, LoginFailed: true})
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     proxy.ConsoleCookie,
		Value:    a.session(time.Now().Add(consoleSessionTTL).Unix()),
		Path:     "/",
		MaxAge:   int(consoleSessionTTL.Seconds()),
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// session is the console cookie's value until expires:
// "<expires>.<mac>", the MAC under a key made when the process started
// and the admin token, so that a copy works only on this process, only
// until it expires, and not after the token changes.
func (a *Admin) session(expires int64) string {
	m := hmac.New(sha256.New, a.sessionKey[:])
	m.Write([]byte(a.cfg.Admin.Token))
	m.Write([]byte{0})
	m.Write(strconv.AppendInt(nil, expires, 10))
	return strconv.FormatInt(expires, 10) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// consoleAuthorized accepts the bearer token or an unexpired console
// cookie.
func (a *Admin) consoleAuthorized(r *http.Request) bool {
	if a.authorized(r) {
		return true
	}
	c, err := r.Cookie(proxy.ConsoleCookie)
	if err != nil {
		return false
	}
	exp, _, ok := strings.Cut(c.Value, ".")
	if !ok {
		return false
	}
	expires, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || time.Now().Unix() > expires {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(c.Value), []byte(a.session(expires))) == 1
}

// render answers with the console's page; a page that does not render
// is a 500, not half a page.
func (a *Admin) render(w http.ResponseWriter, status int, v *consoleView) {
	var b bytes.Buffer
	if err := consoleTmpl.Execute(&b, v); err != nil {
		a.log.Error("rendering the console", "err", err)
		text(w, http.StatusInternalServerError, "the console could not be rendered; see the log\n")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// consoleView is what the console's template shows.
type consoleView struct {
	Login, LoginFailed bool
	Version            string
	RulesLoaded        string
	RulesVersion       uint64 // the published version serving (rules.bucket); 0 for rules.dir
	PreviewNote        string
	Pages              []consolePage
	Readout            *report.Report
	ReadoutNote        string
	// By is the breakdown shown (?by=device), "" for none; Dimensions
	// the ones offered.
	By          report.Dimension
	Dimensions  []report.Dimension
	Experiments []experimentView
	Sizes       []sizeChart
}

// consolePage is one page of rules: its maps as grids, its other rules.
type consolePage struct {
	Patterns string
	// Personas link to the page as each declared persona sees it.
	Personas []personaLink
	Grids    []drmGrid
	// Tables are the page's two-dimensional maps, one grid each.
	Tables []drmTable
	Others []ruleRow
}

type personaLink struct{ Name, Preview string }

// drmGrid is the Digital Relevancy Maps of a page that are by the same
// thing: a row per stage or segment, a column per block.
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
	Action string // "" for no case or an empty one: the origin's block
	// Name is a two-dimensional map's cell as its hits count it
	// ("vip/intent"); "" for a cell with no case.
	Name string
	// Fallback says what a cell without a case shows: the row's or the
	// map's default; "" for the origin's block.
	Fallback string
	Hits     float64
	Preview  string
}

// drmTable is a two-dimensional map: a row per case of its first
// dimension (a segment), a column per case of its second (a stage, all
// the declared ones), then the row's default.
type drmTable struct {
	Rule, Selector, By, Across string
	Columns                    []string
	Rows                       []drmRow
}

type ruleRow struct {
	ID, Selector, Kind, Action string
	Conditional                bool
	Hits                       float64
}

type experimentView struct {
	report.ExperimentResult
	Goals  []goalView
	Values []valueRow
	// Breakdown is the readout per group of the breakdown asked for, per goal.
	Breakdown []breakdownView
}

type goalView struct {
	Goal string
	Rows []goalRow
	Plot ratePlot
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
	SeqClear  bool // its always-valid interval does
	Group     string
}

// sizeChart is one of the audience's charts; nil Bars when nothing was
// counted.
type sizeChart struct {
	Title string
	Bars  *barChart
}

func (a *Admin) view(r *http.Request) *consoleView {
	v := &consoleView{Version: a.opts.Version, RulesVersion: a.proxy.RulesVersion()}
	set, loaded := a.proxy.Rules()
	if set == nil {
		v.RulesLoaded = "no rules: every page passes through"
	} else {
		v.RulesLoaded = loaded.UTC().Format("2006-01-02 15:04:05 MST")
		v.Pages = a.consolePages(r, set, &v.PreviewNote)
	}
	v.Dimensions = report.Dimensions
	by, badBy := consoleBy(r)
	v.Readout, v.ReadoutNote = a.consoleReadout(by)
	if v.Readout != nil {
		v.By, v.ReadoutNote = by, v.ReadoutNote+badBy
		for _, x := range v.Readout.Experiments {
			v.Experiments = append(v.Experiments, experimentView{ExperimentResult: x, Goals: goalViews(x),
				Values: valueRows(x.Variants), Breakdown: breakdownViews(x)})
		}
		var stages []string
		if set != nil {
			stages = set.Stages()
		}
		v.Sizes = []sizeChart{
			{"Visitors by stage", newBarChart(v.Readout.Stages, stages)},
			{"Visitors by segment", newBarChart(v.Readout.Segments, nil)},
			{"Visitors by persona", newBarChart(v.Readout.Personas, nil)},
		}
	}
	return v
}

// consolePages lays out each page's rules: maps in grids, the rest as a
// list, with their hit counts since start and preview links.
func (a *Admin) consolePages(req *http.Request, set *rules.Set, note *string) []consolePage {
	p := a.proxy
	previews := newPreviewer(a.cfg.Preview.Key, a.previewBase(req))
	if a.cfg.Preview.Key == "" {
		*note = "Set preview.key to get a preview link in every cell."
	}
	var out []consolePage
	for _, page := range set.Pages() {
		pv := consolePage{Patterns: strings.Join(page.Patterns(), " ")}
		path := previewPath(page.Patterns())
		for _, per := range set.Personas() {
			if link := previews.link(path, identity.PreviewClaims{Persona: per.Name, Label: "persona " + per.Name}); link != "" {
				pv.Personas = append(pv.Personas, personaLink{per.Name, link})
			}
		}
		grids := map[string]*drmGrid{}
		var order []string
		for _, r := range page.Rules() {
			if r.Kind == "map" && r.Across != "" {
				pv.Tables = append(pv.Tables, a.drmTable(set, r, previews, path))
				continue
			}
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
				if k != "default" {
					claims := identity.PreviewClaims{Label: r.By + " " + k}
					if r.By == "stage" {
						claims.Stage = k
					} else {
						claims.Segments = []string{k}
					}
					cell.Preview = previews.link(path, claims)
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

// drmTable lays out the two-dimensional map r with its hit counts and a
// preview link per cell.
func (a *Admin) drmTable(set *rules.Set, r rules.RuleInfo, previews previewer, path string) drmTable {
	t := drmTable{Rule: r.ID, Selector: r.Selector, By: r.By, Across: r.Across}
	if r.Across == "stage" {
		t.Columns = set.Stages()
	}
	hasDefault := false
	for _, row := range r.Rows {
		for _, c := range row.Cells {
			if c.Key == "default" {
				hasDefault = true
			} else if !slices.Contains(t.Columns, c.Key) {
				t.Columns = append(t.Columns, c.Key)
			}
		}
	}
	mapDefault := len(r.Cases) > 0
	if hasDefault || mapDefault {
		t.Columns = append(t.Columns, "default")
	}
	cell := func(c rules.CaseInfo, name string, claims identity.PreviewClaims) drmCell {
		return drmCell{Action: c.Action, Name: name, Hits: a.proxy.MapCaseHits(r.ID, name), Preview: previews.link(path, claims)}
	}
	for _, row := range r.Rows {
		dr := drmRow{Key: row.Key}
		rowDefault := slices.IndexFunc(row.Cells, func(c rules.CaseInfo) bool { return c.Key == "default" }) >= 0
		for _, col := range t.Columns {
			claims := identity.PreviewClaims{Label: r.ID + " " + row.Key + rules.CellSep + col}
			previewAs(&claims, r.By, row.Key)
			previewAs(&claims, r.Across, col)
			i := slices.IndexFunc(row.Cells, func(c rules.CaseInfo) bool { return c.Key == col })
			switch {
			case i >= 0:
				dr.Cells = append(dr.Cells, cell(row.Cells[i], row.Key+rules.CellSep+col, claims))
			case rowDefault:
				dr.Cells = append(dr.Cells, drmCell{Fallback: "the row's default", Preview: previews.link(path, claims)})
			case mapDefault:
				dr.Cells = append(dr.Cells, drmCell{Fallback: "the map's default", Preview: previews.link(path, claims)})
			default:
				dr.Cells = append(dr.Cells, drmCell{Preview: previews.link(path, claims)})
			}
		}
		t.Rows = append(t.Rows, dr)
	}
	if mapDefault {
		dr := drmRow{Key: "default"}
		for range t.Columns[:len(t.Columns)-1] {
			dr.Cells = append(dr.Cells, drmCell{})
		}
		dr.Cells = append(dr.Cells, cell(r.Cases[0], "default", identity.PreviewClaims{}))
		dr.Cells[len(dr.Cells)-1].Preview = ""
		t.Rows = append(t.Rows, dr)
	}
	return t
}

// previewAs makes claims preview a visitor whose dim (what a map is by)
// is key; "*" and "default" are any visitor, and set nothing.
func previewAs(claims *identity.PreviewClaims, dim, key string) {
	if key == "*" || key == "default" {
		return
	}
	switch dim {
	case "segment":
		claims.Segments = append(claims.Segments, key)
	case "stage":
		claims.Stage = key
	case "persona":
		claims.Persona = key
	case "interest":
		claims.Interests = map[string]float64{key: 1}
	}
}

// previewer signs the console's preview links.
type previewer struct {
	key, base string
	now       time.Time
}

// newPreviewer signs with key (preview.key) links to the proxy at base;
// either empty makes no links.
func newPreviewer(key, base string) previewer {
	return previewer{key: key, base: base, now: time.Now()}
}

// link is a link to path on the proxy that renders the page for the
// visitor claims describes; "" when there can be none (no key, no base,
// no path).
func (pr previewer) link(path string, claims identity.PreviewClaims) string {
	if pr.key == "" || pr.base == "" || path == "" {
		return ""
	}
	tok, err := identity.SignPreview(pr.key, claims, previewTTL, pr.now)
	if err != nil {
		return ""
	}
	return pr.base + path + "?" + identity.PreviewParam + "=" + tok
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
func (a *Admin) previewBase(r *http.Request) string {
	host, port, err := net.SplitHostPort(a.cfg.Listen)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// goalViews lays out an experiment's results per goal, with a plot.
func goalViews(x report.ExperimentResult) []goalView {
	var out []goalView
	for _, g := range x.GoalNames() {
		gv := goalView{Goal: g}
		for _, v := range x.Variants {
			gv.Rows = append(gv.Rows, newGoalRow(v, g))
		}
		gv.Plot = newRatePlot(gv.Rows)
		out = append(out, gv)
	}
	return out
}
