package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	udiff "github.com/aymanbagabas/go-udiff"

	"github.com/tailor-edge/tailor/cache"
	"github.com/tailor-edge/tailor/identity"
	"github.com/tailor-edge/tailor/proxy"
)

// repeated is a flag that may be given several times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ", ") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// explain fetches a page from the origin, applies the rules in-process and
// prints which rules fired and why the others did not, then a unified diff
// from the origin's page to the personalized one.
func (m *Main) explain(args []string) int {
	var c commonFlags
	flags := m.flagSet("explain", &c)
	target := flags.String("url", "", "page to explain: a path (/products/) or a full URL")
	profileArg := flags.String("profile", "", "the visitor's profile: a JSON document or a file holding one")
	var headers, cookies repeated
	flags.Var(&headers, "header", "request header 'Name: value' (repeatable)")
	flags.Var(&cookies, "cookie", "request cookie 'name=value' (repeatable)")
	if code, ok := parseFlags(flags, args); !ok {
		return code
	}
	if *target == "" {
		fmt.Fprintln(m.Stderr, "tailor explain: --url is required")
		return exitUsage
	}
	er := proxy.ExplainRequest{URL: *target, Cookies: cookies}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(k) == "" {
			fmt.Fprintf(m.Stderr, "tailor explain: --header %q: want 'Name: value'\n", h)
			return exitUsage
		}
		er.Headers = append(er.Headers, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
	}
	if *profileArg != "" {
		p, err := readProfile(*profileArg)
		if err != nil {
			fmt.Fprintf(m.Stderr, "tailor explain: --profile: %v\n", err)
			return exitInvalid
		}
		er.Profile = p
	}
	cfg, code := m.loadConfig(c.config)
	if code != exitOK {
		return code
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := proxy.New(cfg, proxy.Options{Logger: log})
	if err != nil {
		fmt.Fprintln(m.Stderr, err)
		return exitInvalid
	}
	ex, err := p.Explain(er)
	if err != nil {
		fmt.Fprintf(m.Stderr, "tailor explain: %v\n", err)
		return exitRuntime
	}
	m.printExplanation(ex)
	if cfg.Preview.Key != "" {
		link, err := previewLink(cfg.Preview.Key, *target, er.Profile, time.Now())
		if err != nil {
			fmt.Fprintf(m.Stderr, "tailor explain: preview link: %v\n", err)
			return exitRuntime
		}
		fmt.Fprintf(m.Stdout, "\npreview link (valid %v): %s\n", previewTTL, link)
	}
	return exitOK
}

// previewTTL is how long the preview link explain prints stays valid.
const previewTTL = 24 * time.Hour

// previewLink returns target with a preview token for the visitor with
// profile (nil: an anonymous visitor) appended.
func previewLink(key, target string, profile *cache.Profile, now time.Time) (string, error) {
	var c identity.PreviewClaims
	if profile != nil {
		c.Segments, c.Stage, c.Traits, c.Scores = profile.Segments, profile.Stage, profile.TraitMap(), profile.ScoreMap()
		c.Known, c.Subject, c.Label = true, profile.ID, profile.ID
	}
	tok, err := identity.SignPreview(key, c, previewTTL, now)
	if err != nil {
		return "", err
	}
	target, fragment, _ := strings.Cut(target, "#")
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	link := target + sep + identity.PreviewParam + "=" + tok
	if fragment != "" {
		link += "#" + fragment
	}
	return link, nil
}

// readProfile takes a JSON document, or the name of a file holding one.
func readProfile(arg string) (*cache.Profile, error) {
	b := []byte(arg)
	if !strings.HasPrefix(strings.TrimSpace(arg), "{") {
		var err error
		if b, err = os.ReadFile(arg); err != nil {
			return nil, err
		}
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err == nil {
		if _, ok := probe["id"]; !ok {
			// A profile given by hand for explain may leave out its id.
			probe["id"] = json.RawMessage(`"explain"`)
			b, _ = json.Marshal(probe)
		}
	}
	return cache.ParseProfile(b)
}

func (m *Main) printExplanation(ex *proxy.Explanation) {
	w := m.Stdout
	fmt.Fprintf(w, "GET %s → %d\n", ex.URL, ex.Status)
	if !ex.Page {
		fmt.Fprintf(w, "not personalized: %s\n", ex.Reason)
		return
	}
	d := ex.Decision
	fmt.Fprintf(w, "stage: %s\nsegments: %s\n", d.Stage, strings.Join(d.Segments, ", "))
	fmt.Fprintln(w, "\nselectors:")
	for _, s := range ex.Selectors {
		fmt.Fprintf(w, "  %-30s %d matched", s.Selector, s.Matched)
		if s.Skipped > 0 {
			fmt.Fprintf(w, ", %d skipped (implied by the parser, no source tag to rewrite)", s.Skipped)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "\nrules:")
	for _, t := range d.Trace {
		mark := "  -"
		if t.Fired {
			mark = "  ✓"
		}
		fmt.Fprintf(w, "%s %s (%s): %s\n", mark, t.Rule, t.Selector, t.Reason)
	}
	for _, c := range d.Cases {
		fmt.Fprintf(w, "map %s: %s\n", c.Map, c.Case)
	}
	printChanges(w, ex)
	for _, e := range d.Exposures {
		fmt.Fprintf(w, "experiment %s: variant %s\n", e.Experiment, e.Variant)
	}
	for _, warn := range ex.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	fmt.Fprintln(w)
	diff := udiff.Unified("origin"+ex.URL, "personalized"+ex.URL, string(ex.Original), string(ex.Personalized))
	if diff == "" {
		fmt.Fprintln(w, "no change to the page")
		return
	}
	fmt.Fprint(w, diff)
}

// printChanges prints, per selector, which rule made each kind of change
// (the content, an attribute, a class) and which rules' changes of the
// same kind were overridden, by which rule: for one element, the first
// matching rule wins per kind of change.
func printChanges(w io.Writer, ex *proxy.Explanation) {
	d := ex.Decision
	header := false
	for i, s := range ex.Selectors {
		var lines []string
		for j := range d.Actions {
			if a := &d.Actions[j]; a.Sel == i {
				lines = append(lines, fmt.Sprintf("    %-24s %s", a.Change(), a.Rule))
			}
		}
		for _, t := range d.Trace {
			if t.Selector != s.Selector {
				continue
			}
			for _, o := range t.Overridden {
				lines = append(lines, fmt.Sprintf("    %-24s %s: overridden by %s", o.Change, t.Rule, o.By))
			}
		}
		if len(lines) == 0 {
			continue
		}
		if !header {
			fmt.Fprintln(w, "\nchanges (per element, the first matching rule makes each kind of change):")
			header = true
		}
		fmt.Fprintf(w, "  %s\n", s.Selector)
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
	}
}
