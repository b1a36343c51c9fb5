package main

import (
	"bytes"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tailor-edge/tailor/examples"
)

// The demo's shop: a home page, product listings and pages, a cart, a
// checkout, a blog page and an account page, rendered from
// examples/site/templates, so that the example rules and the journey
// (interest → intent → purchase → retention) have pages to act on.

// demoProduct is one item of the demo shop.
type demoProduct struct {
	Category, Slug, Name, Blurb string
	Price                       int
}

var demoCatalog = []demoProduct{
	{"running", "road-racer", "Road Racer 3", "A light, springy road shoe for tempo days and race days.", 129},
	{"running", "trail-blazer", "Trail Blazer GTX", "Grippy, waterproof and built for mud, rock and roots.", 159},
	{"running", "tempo-socks", "Tempo socks, 3 pairs", "Seamless merino socks that stay dry past the half marathon.", 24},
	{"hiking", "alpine-pack", "Alpine pack 38L", "Carries a weekend in the hills without weighing on your back.", 139},
	{"hiking", "storm-shell", "Storm shell", "Three-layer waterproof jacket that packs into its own pocket.", 219},
	{"camping", "ultralight-tent", "Ultralight tent", "Two people, 1.1 kg, pitched in three minutes.", 349},
	{"camping", "pocket-stove", "Pocket stove", "Boils a litre in three minutes; folds to the size of an egg.", 49},
}

// demoSwitch is one entry of the persona switcher at the foot of every
// demo page: /demo/as/<Key> makes the browser that visitor.
type demoSwitch struct {
	Key, Label string
	// token is the persona's login token; "" for an anonymous visitor.
	token string
	// landing is where the switch sends the browser.
	landing string
}

// demoTokenCookie carries a demo persona's login token: the demo's proxy
// reads tokens from it (identity.jwt.cookie), so a link can log a browser
// in as a persona.
const demoTokenCookie = "tailor_demo_token"

// demoSite serves the demo shop.
type demoSite struct {
	tpl      map[string]*template.Template
	static   http.Handler
	switches []demoSwitch
}

// newDemoSite parses the templates; switches are the persona switcher's
// entries.
func newDemoSite(switches []demoSwitch) (*demoSite, error) {
	root, err := fs.Sub(examples.Files, "site")
	if err != nil {
		return nil, err
	}
	s := &demoSite{tpl: map[string]*template.Template{}, static: http.FileServerFS(root), switches: switches}
	for _, page := range []string{"home", "list", "product", "page"} {
		t, err := template.ParseFS(root, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, err
		}
		s.tpl[page] = t
	}
	return s, nil
}

// demoPage is what a template renders.
type demoPage struct {
	Title, Heading, Text, Next, NextLabel string
	Products                              []demoProduct
	Product                               *demoProduct
	Personas                              []demoSwitch
}

// demoTextPages are the shop's pages of a heading, a line of text and a
// link onward, by path; "/blog/trail/" serves every path under it.
var demoTextPages = map[string]demoPage{
	"/cart": {Title: "Your cart", Heading: "Your cart", Text: "Road Racer 3, size 42: €129. Shipping is free over €50.",
		Next: "/checkout/done", NextLabel: "Pay now"},
	"/checkout/done": {Title: "Thank you", Heading: "Thank you for your order!", Text: "Order #4711 is on its way; you will get an email when it ships.",
		Next: "/account/orders", NextLabel: "See your orders"},
	"/account/orders": {Title: "Your orders", Heading: "Your orders", Text: "#4711 Road Racer 3, shipped.",
		Next: "/products/", NextLabel: "Keep shopping"},
	"/newsletter/ok": {Title: "Subscribed", Heading: "You are on the list", Text: "One email a month, trail tips and early access.",
		Next: "/", NextLabel: "Back to the shop"},
	"/blog/trail/": {Title: "Trail blog", Heading: "From the trail", Text: "Five climbs in the Vercors that every trail runner should know.",
		Next: "/products/running/trail-blazer", NextLabel: "Shoes for the Vercors"},
}

// textPage returns the text page at path, or nil.
func textPage(path string) *demoPage {
	if strings.HasPrefix(path, "/blog/trail/") {
		path = "/blog/trail/"
	}
	if p, ok := demoTextPages[path]; ok {
		return &p
	}
	return nil
}

func (s *demoSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	page := &demoPage{Personas: s.switches}
	tpl := "page"
	text := textPage(path)
	switch {
	case path == "/" || path == "/index.html":
		tpl, page.Title, page.Products = "home", "Gear for every trail", demoCatalog[:4]
	case strings.HasPrefix(path, "/demo/as/"):
		s.switchPersona(w, r, strings.TrimPrefix(path, "/demo/as/"))
		return
	case path == "/products/":
		tpl, page.Title, page.Heading, page.Products = "list", "All products", "Everything we sell, tested outdoors.", demoCatalog
	case strings.HasPrefix(path, "/products/"):
		rest := strings.Trim(strings.TrimPrefix(path, "/products/"), "/")
		cat, slug, _ := strings.Cut(rest, "/")
		var list []demoProduct
		for i := range demoCatalog {
			p := &demoCatalog[i]
			if p.Category == cat && p.Slug == slug {
				tpl, page.Title, page.Product = "product", p.Name, p
			}
			if p.Category == cat {
				list = append(list, *p)
			}
		}
		if page.Product == nil {
			if slug != "" || len(list) == 0 {
				http.NotFound(w, r)
				return
			}
			tpl, page.Title, page.Heading, page.Products = "list", strings.ToUpper(cat[:1])+cat[1:], "Our "+cat+" range.", list
		}
	case text != nil:
		page = text
		page.Personas = s.switches
	case path == "/style.css":
		s.static.ServeHTTP(w, r)
		return
	default:
		http.NotFound(w, r)
		return
	}
	var b bytes.Buffer
	if err := s.tpl[tpl].ExecuteTemplate(&b, "layout", page); err != nil {
		http.Error(w, "demo page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b.Bytes())
}

// switchPersona makes the browser the persona key: it sets (or clears)
// the demo's login cookie and sends the browser to the persona's landing
// page. Any switch also clears the visitor's tailor cookies, so that each
// persona starts as a fresh browser would.
func (s *demoSite) switchPersona(w http.ResponseWriter, r *http.Request, key string) {
	for _, sw := range s.switches {
		if sw.Key != key {
			continue
		}
		for _, name := range []string{"tailor_id", "tailor_state", demoTokenCookie} {
			http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1})
		}
		if sw.token != "" {
			http.SetCookie(w, &http.Cookie{Name: demoTokenCookie, Value: sw.token, Path: "/", HttpOnly: true,
				SameSite: http.SameSiteLaxMode, MaxAge: 30 * 24 * 3600})
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, sw.landing, http.StatusSeeOther)
		return
	}
	http.NotFound(w, r)
}

// demoOrigin serves the demo shop over HTTP on a loopback port.
type demoOrigin struct {
	ln  net.Listener
	srv *http.Server
}

func startDemoOrigin(site http.Handler) (*demoOrigin, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: site, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return &demoOrigin{ln: ln, srv: srv}, nil
}

func (o *demoOrigin) Addr() net.Addr { return o.ln.Addr() }
func (o *demoOrigin) Close() error   { return o.srv.Close() }
