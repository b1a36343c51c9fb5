//go:build !nonats

package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/internal/testkit"
	natsync "github.com/tailor-edge/tailor/sync"
)

// botRules run an experiment on the home page's heading with no holdout,
// so a tracked visitor always sees a variant, and a greeting for
// everyone, which is no experiment: bots get it too.
const botRules = `pages:
  - match: ["/"]
    rules:
      - id: greeting
        select: ".cta"
        text: "Hello"
      - id: hero-test
        select: "#hero h1"
        experiment: { holdout: 0, variants: { a: { weight: 50, text: "Run further" }, b: { weight: 50, text: "Run faster" } } }
`

const botPage = `<!doctype html><html><body><p class="cta">Shop now</p><div id="hero"><h1>Run</h1></div></body></html>`

// botUAs are the User-Agents of crawlers, previewers, monitors, headless
// browsers and HTTP libraries, as they send them.
var botUAs = []string{
	"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
	"DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
	"Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
	"Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
	"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
	"Twitterbot/1.0",
	"LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
	"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
	"Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
	"WhatsApp/2.23.20.0",
	"TelegramBot (like TwitterBot)",
	"Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
	"Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
	"Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)",
	"Mozilla/5.0 (compatible; DotBot/1.2; +https://opensiteexplorer.org/dotbot; help@moz.com)",
	"Mozilla/5.0 (compatible;PetalBot;+https://webmaster.petalsearch.com/site/petalbot)",
	"Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)",
	"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
	"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)",
	"CCBot/2.0 (https://commoncrawl.org/faq/)",
	"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; PerplexityBot/1.0; +https://perplexity.ai/perplexitybot)",
	"Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
	"Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
	"Mozilla/5.0 (compatible; StatusCake)",
	"Mozilla/5.0 (compatible; Site24x7)",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
	"Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
	"curl/8.5.0",
	"Wget/1.21.4",
	"python-requests/2.32.3",
	"Go-http-client/1.1",
	"fasthttp",
	"axios/1.7.7",
	"Java/17.0.2",
	"Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)",
	"", // no User-Agent at all
}

// browserVisits are people, with the device their events must say.
var browserVisits = []struct{ ua, device string }{
	{testkit.BrowserUA, "desktop"},
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "desktop"},
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "desktop"},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", "desktop"},
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", "mobile"},
	{"Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", "mobile"},
	{"Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "tablet"},
}

// startBotProxy starts a proxy with botRules in front of an origin
// serving botPage, trusting loopback's country headers and publishing
// its events to the NATS server at url.
func startBotProxy(t *testing.T, url string, excludeBots bool) *testProxy {
	t.Helper()
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, botPage)
	}))
	store, err := natsync.Open(context.Background(), natsync.Options{URL: url, Bucket: "tailor_profiles", Name: "bots test"})
	if err != nil {
		t.Fatal(err)
	}
	var pub *natsync.Publisher
	_, rulesEdit := withRules(t, map[string]string{"bots.yaml": botRules})
	p := startProxy(t, origin.URL, func(c *config.Config, opts *Options) {
		rulesEdit(c, opts)
		c.Identity.Cookie.Keys = []string{"cookie-key-0123456789abcdef0123456789"}
		c.Identity.Cookie.Secure = false
		c.TrustedProxies = []string{"127.0.0.0/8"}
		c.Experiments.ExcludeBots = excludeBots
		pub, err = store.Events(natsync.PublisherOptions{Stream: c.NATS.EventsStream, Queue: c.NATS.EventsQueue})
		if err != nil {
			t.Fatal(err)
		}
		opts.Events = pub
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pub.Close(ctx)
		store.Close()
	})
	return p
}

// visitAs asks for the home page as a first-time visitor with userAgent
// ("" sends none), from Germany by a trusted proxy's header, arriving
// from a newsletter's campaign.
func visitAs(t *testing.T, base, userAgent string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/?utm_source=newsletter&utm_campaign=spring", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header["User-Agent"] = []string{userAgent} // Go sends none when it is ""
	req.Header.Set("CF-IPCountry", "de")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET / as %q: %d, %v", userAgent, resp.StatusCode, err)
	}
	return resp, string(body)
}

func heading(page string) string { return between(page, "<h1>", "</h1>") }

func TestBotsSeeTheControlAndLeaveNoTrace(t *testing.T) {
	ns := testkit.JetStream(t, t.TempDir(), -1)
	p := startBotProxy(t, ns.ClientURL(), true)

	for _, ua := range botUAs {
		resp, page := visitAs(t, p.url, ua)
		if got := heading(page); got != "Run" {
			t.Errorf("%q saw heading %q, want the control %q", ua, got, "Run")
		}
		if got := text(page, "cta"); got != "Hello" {
			t.Errorf("%q saw cta %q, want %q: rules that are no experiment apply to bots too", ua, got, "Hello")
		}
		if c := resp.Header.Values("Set-Cookie"); len(c) > 0 {
			t.Errorf("%q was given cookies %q", ua, c)
		}
	}
	// People after the bots: the stream holds their events and no other.
	variants := map[string]bool{}
	for _, bv := range browserVisits {
		resp, page := visitAs(t, p.url, bv.ua)
		h := heading(page)
		if h != "Run further" && h != "Run faster" {
			t.Errorf("%q saw heading %q, want a variant", bv.ua, h)
		}
		variants[h] = true
		var names []string
		for _, c := range resp.Cookies() {
			names = append(names, c.Name)
		}
		if slices.Sort(names); !slices.Equal(names, []string{"tailor_id", "tailor_state"}) {
			t.Errorf("%q was given cookies %q, want tailor_id and tailor_state", bv.ua, names)
		}
	}
	// pageview and exposure, per person.
	events := eventsLanded(t, ns.ClientURL(), 2*len(browserVisits))
	for i, e := range events {
		bv := browserVisits[i/2]
		want := []string{natsync.EventPageview, natsync.EventExposure}[i%2]
		if e.Type != want || e.Device != bv.device || e.Country != "DE" || e.UTMSource != "newsletter" || e.UTMCampaign != "spring" || e.Bot {
			t.Errorf("event %d = %s device %q country %q utm %q/%q bot %v; want %s from a %s, DE, newsletter/spring, no bot",
				i, e.Type, e.Device, e.Country, e.UTMSource, e.UTMCampaign, e.Bot, want, bv.device)
		}
	}
	metrics := metricsText(t, p.Registry())
	for _, want := range []string{
		fmt.Sprintf(`tailor_page_views_total{tracking="bot"} %d`, len(botUAs)),
		fmt.Sprintf(`tailor_page_views_total{tracking="tracked"} %d`, len(browserVisits)),
		`tailor_page_views_total{tracking="opted_out"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestBotsAreTrackedWithoutExcludeBots(t *testing.T) {
	ns := testkit.JetStream(t, t.TempDir(), -1)
	p := startBotProxy(t, ns.ClientURL(), false)
	bots := []string{botUAs[0], "GPTBot/1.2", "curl/8.5.0"}
	for _, ua := range bots {
		resp, page := visitAs(t, p.url, ua)
		if h := heading(page); h != "Run further" && h != "Run faster" {
			t.Errorf("%q saw heading %q, want a variant: bots take part without exclude_bots", ua, h)
		}
		if len(resp.Cookies()) != 2 {
			t.Errorf("%q was given cookies %v, want tailor_id and tailor_state", ua, resp.Cookies())
		}
	}
	for i, e := range eventsLanded(t, ns.ClientURL(), 2*len(bots)) {
		if !e.Bot || e.Device != "bot" || e.Country != "DE" {
			t.Errorf("event %d (%s) bot %v device %q country %q, want a bot's from DE", i, e.Type, e.Bot, e.Device, e.Country)
		}
	}
	if m := metricsText(t, p.Registry()); !strings.Contains(m, fmt.Sprintf(`tailor_page_views_total{tracking="tracked"} %d`, len(bots))) {
		t.Errorf("bots not counted as tracked page views:\n%s", m)
	}
}
