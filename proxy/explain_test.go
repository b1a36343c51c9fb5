package proxy

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tailor-edge/tailor/cache"
	"github.com/tailor-edge/tailor/config"
	"github.com/tailor-edge/tailor/identity"
	"github.com/tailor-edge/tailor/internal/testkit/fixtures"
)

const equivalenceRules = `stages: [awareness, interest, intent]
segments:
  returning: { visits: ">= 2" }
  beta: { cookie: { beta: "1" } }
  in-app: { header: { X-Requested-With: com.shop.app } }
  brazil: { language: pt-BR }
journey:
  - { path: "/", stage: interest }
interests:
  half_life: 14d
  rules:
    - { path: "/", add: { running: 3 } }
personas:
  runner: { running: 1.0 }
pages:
  - match: ["/"]
    rules:
      - { id: known, when: { known: true }, select: .greeting, text: "Welcome back, {{ or .Traits.first_name \"friend\" }}" }
      - { id: returning, when: { segment: returning }, select: .greeting, text: "Good to see you again" }
      - { id: app, when: { segment: in-app }, select: .greeting, text: "Hello, app user" }
      - id: by-stage
        select: .cta
        map:
          by: stage
          interest: { text: "See more" }
          intent: { text: "Buy now" }
      - ` + fixtures.HeroExperiment + `
      - { id: vip, when: { segment: vip }, select: .promo, text: "VIP deal" }
      - { id: beta, when: { segment: beta }, select: .promo, append: "<b>beta</b>" }
      - { id: runner, when: { persona: runner }, select: .picks, text: "For runners" }
      - { id: brazil, when: { segment: brazil }, select: .lang, text: "Olá" }
`

const equivalencePage = `<!doctype html><html><body><p class="greeting">Welcome!</p><div class="cta">Shop</div>` +
	`<div id="hero"><h1>Run</h1></div><p class="promo">Deals</p><ul class="picks"></ul><p class="lang">Hi</p></body></html>`

// TestExplainMatchesTheProxy (issue 16): tailor explain claimed to work
// "exactly as a request through the proxy would" but skipped identity and
// the journey. For 100 generated visitors — first and later page views,
// state with stages and visits, interests and personas, tokens with
// segments, known profiles, headers and languages — explain with the same
// headers names the same rules (experiment variants included) and renders
// the same bytes as the proxy serves.
func TestExplainMatchesTheProxy(t *testing.T) {
	const secret = "equivalence-secret-0123456789abcdef"
	_, edit := withRules(t, map[string]string{"r.yaml": equivalenceRules})
	profiles, err := cache.NewProfiles(1000, time.Hour, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		p, err := cache.ParseProfile([]byte(fmt.Sprintf(`{"id":"cust-%d","segments":%s,"stage":%q,"traits":{"first_name":"Jo%d"}}`,
			i, []string{`[]`, `["vip"]`, `["vip","beta"]`}[i%3], []string{"", "interest", "intent"}[i%3], i)))
		if err != nil {
			t.Fatal(err)
		}
		profiles.Put(p.ID, p, 1)
	}
	fixed := time.Now()
	p := startProxy(t, pageOrigin(t, equivalencePage, nil), func(c *config.Config, o *Options) {
		edit(c, o)
		c.Debug.DecisionHeader = true
		c.Identity.Cookie.Keys = []string{"equivalence-cookie-key-0123456789"}
		c.Identity.JWT = &config.JWT{Header: "Authorization", Algorithms: []string{"HS256"}, Keys: []string{"hmac:" + secret},
			SubjectClaim: "sub", SegmentsClaim: "segments"}
		o.Profiles = profiles
		o.Clock = func() time.Time { return fixed }
	})
	rng := rand.New(rand.NewPCG(16, 100))
	for i := range 100 {
		// A person: a bot would see every experiment's control. Every
		// other visitor sends the browser explain assumes, and explain is
		// asked without a User-Agent.
		hdr := []string{"User-Agent", fixtures.BrowserUA}
		if i%2 == 0 {
			hdr[1] = ExplainUserAgent
		}
		var cookies []string
		// Every visitor has an id: one without gets a new one from each
		// of the two, and experiments bucket by it. A visitor without a
		// state cookie is on their first page view.
		anon, idValue := p.signer.Mint()
		cookies = append(cookies, p.signer.Name()+"="+idValue)
		{
			if rng.IntN(3) > 0 {
				st := identity.State{Visits: 1 + rng.IntN(4), LastSeen: fixed.Unix() - int64(rng.IntN(4))*3600,
					Stage: []string{"", "awareness", "interest", "intent"}[rng.IntN(4)]}
				if st.Stage != "" {
					st.StageAt = st.LastSeen
				}
				if rng.IntN(2) == 0 {
					st.Interests = []identity.InterestScore{{Tag: "running", Score: float64(1 + rng.IntN(8))}}
					st.InterestsAt = st.LastSeen
				}
				cookies = append(cookies, p.signer.StateName()+"="+p.signer.EncodeState(anon, &st))
			}
		}
		if rng.IntN(4) == 0 {
			cookies = append(cookies, "beta=1")
		}
		if rng.IntN(3) == 0 {
			claims := jwt.MapClaims{"sub": fmt.Sprintf("cust-%d", rng.IntN(40)), "exp": fixed.Add(time.Hour).Unix()}
			if rng.IntN(2) == 0 {
				claims["segments"] = []string{"vip"}
			}
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
			if err != nil {
				t.Fatal(err)
			}
			hdr = append(hdr, "Authorization", "Bearer "+tok)
		}
		if rng.IntN(5) == 0 {
			hdr = append(hdr, "X-Requested-With", "com.shop.app")
		}
		hdr = append(hdr, "Accept-Language", []string{"en-US,en;q=0.8", "pt-BR,pt;q=0.9", "de"}[rng.IntN(3)])
		if len(cookies) > 0 {
			hdr = append(hdr, "Cookie", strings.Join(cookies, "; "))
		}

		resp, body := get(t, p.url+"/", hdr...)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("visitor %d: %d", i, resp.StatusCode)
		}
		var er ExplainRequest
		er.URL = "/"
		for j := 0; j+1 < len(hdr); j += 2 {
			if i%2 == 0 && hdr[j] == "User-Agent" {
				continue
			}
			er.Headers = append(er.Headers, [2]string{hdr[j], hdr[j+1]})
		}
		ex, err := p.Explain(er)
		if err != nil {
			t.Fatalf("visitor %d: %v", i, err)
		}
		proxyRules := headerField(resp.Header.Get("X-Tailor-Decision"), "rules")
		var explainRules []string
		for _, a := range ex.Decision.Actions {
			explainRules = append(explainRules, a.Rule)
		}
		slices.Sort(proxyRules)
		slices.Sort(explainRules)
		if !slices.Equal(proxyRules, explainRules) {
			t.Errorf("visitor %d (%q): the proxy applied %v, explain %v", i, hdr, proxyRules, explainRules)
		}
		if string(body) != string(ex.Personalized) {
			t.Errorf("visitor %d (%q): the proxy served\n%s\nexplain rendered\n%s", i, hdr, body, ex.Personalized)
		}
	}
}

// headerField returns the comma-separated values of field name in an
// X-Tailor-Decision header ("rules=a,b; stage=…").
func headerField(h, name string) []string {
	for _, part := range strings.Split(h, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && k == name && v != "" {
			return strings.Split(v, ",")
		}
	}
	return nil
}
