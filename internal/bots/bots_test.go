package bots

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// Browsers are people's User-Agents, desktop and mobile, that no pattern
// may match.
var browsers = []string{
	// Chrome: Windows, macOS, Linux, Android, iOS.
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
	// Firefox: Windows, macOS, Linux, Android, iOS.
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15",
	// Safari: macOS, iPhone, iPad (which asks for the desktop site).
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
	// Edge: Windows, macOS, Android, iOS.
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
	"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.0.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 EdgiOS/131.2903.68 Mobile/15E148 Safari/605.1.15",
	// Samsung Internet: phone and tablet.
	"Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Safari/537.36",
	// Others people use.
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 YaBrowser/24.12.0.0 Safari/537.36",
	"Mozilla/5.0 (Linux; Android 13; 2201117TG) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 Vivaldi/7.0",
	"Mozilla/5.0 (Linux; U; Android 12; en-US; RMX3491 Build/SKQ1.211019.001) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/100.0.4896.58 UCBrowser/13.6.0.1315 Mobile Safari/537.36",
	"Mozilla/5.0 (Linux; Android 9; CUBOT KING KONG 3) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/AP2A.240805.005; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/128.0.6613.127 Mobile Safari/537.36",
	"Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko",
	// In-app browsers: people reading a link shared in an app.
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.38.109;FBBV/620409046;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 334.0.4.32.98 (iPhone14,5; iOS 17_5; en_US; en; scale=3.00; 1170x2532; 604392209)",
	"Mozilla/5.0 (Linux; Android 14; SM-A546B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.39 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/489.0.0.66.81;]",
	// Instagram on a Redmi Note 12 Pro, whose codename is "ruby".
	"Mozilla/5.0 (Linux; Android 13; 22101316G Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36 Instagram 314.0.0.20.114 Android (33/13; 440dpi; 1080x2220; Xiaomi/Redmi; 22101316G; ruby; mt6877; en_US; 553067624)",
	"Mozilla/5.0 (Linux; Android 13; 22101316G Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/448.0.0.40.106;]",
	// Line, WeChat, TikTok, Snapchat, Pinterest: Android, then iOS.
	"Mozilla/5.0 (Linux; Android 13; SM-G991B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36 Line/13.21.1/IAB",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Safari Line/13.22.0",
	"Mozilla/5.0 (Linux; Android 12; M2012K11AC Build/SKQ1.220303.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/107.0.5304.141 Mobile Safari/537.36 XWEB/5043 MMWEBSDK/20221109 MMWEBID/6856 MicroMessenger/8.0.31.2280(0x28001F37) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.40(0x18002831) NetType/WIFI Language/zh_CN",
	"Mozilla/5.0 (Linux; Android 12; SM-A525F Build/SP1A.210812.016; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/110.0.5481.153 Mobile Safari/537.36 trill_2022903030 JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/trill app_version/29.3.3 ByteLocale/en ByteFullLocale/en Region/US Spark/1.2.7-alpha.8 AppVersion/29.3.3 PIA/1.5.11 BytedanceWebview/d8a21c6",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 musical_ly_30.1.0 JsSdk/2.0 NetType/WIFI Channel/App Store ByteLocale/en Region/US ByteFullLocale/en isDarkMode/0 WKWebView/1 RevealType/Dialog BytedanceWebview/d8a21c6",
	"Mozilla/5.0 (Linux; Android 13; Pixel 6 Build/TQ3A.230805.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.5845.163 Mobile Safari/537.36 Snapchat/12.50.0.39 (like Safari/604.1)",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Snapchat/12.47.0.35 (like Safari/8615.3.12.10.3, panda)",
	"Mozilla/5.0 (Linux; Android 13; SM-S908B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/117.0.5938.60 Mobile Safari/537.36 [Pinterest/Android]",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [Pinterest/iOS]",
	// Viber, Tumblr and PayPal, whose crawlers the list names by the app.
	"Mozilla/5.0 (Linux; Android 11; SM-A125F Build/RP1A.200720.012; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/114.0.5735.196 Mobile Safari/537.36 Viber/20.8.0.1",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Tumblr/iPhone/33.8/338010/en_US",
	"Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.163 Mobile Safari/537.36 Tumblr/Android/33.8.0.110",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 PayPal/8.48.0 (iPhone; iOS 17.0; Scale/3.00)",
	// Mobile browsers of Xiaomi (MIUI), Huawei, Tencent (QQ), Sogou, Yandex.
	"Mozilla/5.0 (Linux; U; Android 12; en-us; M2101K6G Build/SKQ1.210908.001) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/100.0.4896.127 Mobile Safari/537.36 XiaoMi/MiuiBrowser/13.27.0-gn",
	"Mozilla/5.0 (Linux; Android 10; HarmonyOS; ELS-NX9; HMSCore 6.12.0.302) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.88 HuaweiBrowser/14.0.2.311 Mobile Safari/537.36",
	"Mozilla/5.0 (Linux; U; Android 12; zh-cn; PGKM10 Build/SP1A.210812.016) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/109.0.5414.86 MQQBrowser/14.5 Mobile Safari/537.36 COVC/046831",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/94.0.4606.71 Safari/537.36 Core/1.94.218.400 QQBrowser/12.1.5496.400",
	"Mozilla/5.0 (Linux; Android 10; V1990A; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/87.0.4280.141 Mobile Safari/537.36 SogouMobileBrowser/5.28.2",
	"Mozilla/5.0 (Linux; arm_64; Android 13; SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 YaBrowser/24.4.1.71.00 SA/3 Mobile Safari/537.36",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 YaBrowser/24.4.4.341.10 SA/3 Mobile/15E148 Safari/604.1",
}

// brute is what Match must answer: any pattern's regular expression run
// on the User-Agent's first MaxLen bytes.
func brute(res []*regexp.Regexp, ua string) bool {
	if len(ua) > MaxLen {
		ua = ua[:MaxLen]
	}
	for _, re := range res {
		if re.MatchString(ua) {
			return true
		}
	}
	return false
}

func compileAll(t testing.TB) []*regexp.Regexp {
	var res []*regexp.Regexp
	for _, p := range Patterns() {
		re, err := regexp.Compile(p)
		if err != nil {
			t.Fatalf("pattern %q: %v", p, err)
		}
		res = append(res, re)
	}
	return res
}

func TestEveryPatternCompiles(t *testing.T) {
	if _, err := New(Patterns()); err != nil {
		t.Fatal(err)
	}
	if len(List()) < 1000 {
		t.Fatalf("List() has %d crawlers, want the whole list", len(List()))
	}
}

func TestEveryPatternMatchesOneOfItsInstances(t *testing.T) {
	without := 0
	for _, c := range append(List(), Extra...) {
		if len(c.Instances) == 0 {
			without++
			continue
		}
		re := regexp.MustCompile(c.Pattern)
		matched := false
		for _, in := range c.Instances {
			matched = matched || re.MatchString(in)
		}
		if !matched {
			t.Errorf("pattern %q matches none of its instances %q", c.Pattern, c.Instances)
		}
	}
	t.Logf("%d patterns, %d without instances", len(Patterns()), without)
}

func TestEveryInstanceIsABot(t *testing.T) {
	for _, c := range append(List(), Extra...) {
		for _, in := range c.Instances {
			if !Is(in) {
				t.Errorf("Is(%q) = false, want true (an instance of %q)", in, c.Pattern)
			}
		}
	}
}

// TestNarrowedPatterns: every pattern Narrowed replaces is in the list,
// and its replacement matches every instance the list gives for it.
func TestNarrowedPatterns(t *testing.T) {
	found := map[string]bool{}
	for _, c := range List() {
		n, ok := Narrowed[c.Pattern]
		if !ok {
			continue
		}
		found[c.Pattern] = true
		re := regexp.MustCompile(n)
		for _, in := range c.Instances {
			if !re.MatchString(in) {
				t.Errorf("Narrowed[%q] = %q does not match the instance %q", c.Pattern, n, in)
			}
		}
	}
	for p := range Narrowed {
		if !found[p] {
			t.Errorf("Narrowed has %q, which the crawler list no longer has: drop the entry", p)
		}
	}
}

func TestBrowsersAreNotBots(t *testing.T) {
	res := compileAll(t)
	for _, ua := range browsers {
		if Is(ua) {
			for i, re := range res {
				if re.MatchString(ua) {
					t.Errorf("Is(%q) = true, want false: pattern %q matches", ua, Patterns()[i])
				}
			}
		}
	}
}

// TestMatchAgreesWithTheRegexps checks the prefilter: it must never skip
// a pattern that matches, in any case or cut of the text.
func TestMatchAgreesWithTheRegexps(t *testing.T) {
	res := compileAll(t)
	m := Default()
	var uas []string
	for _, c := range append(List(), Extra...) {
		for _, in := range c.Instances {
			uas = append(uas, in, strings.ToUpper(in), strings.ToLower(in), in[len(in)/3:], in[:len(in)/2])
		}
	}
	uas = append(uas, browsers...)
	uas = append(uas, "", "a", "ab", "bot", strings.Repeat("x", MaxLen-3)+"GPTBot", strings.Repeat("x", MaxLen)+"GPTBot")
	if raceEnabled {
		// A sample, and the odd cases: the whole takes minutes.
		var sample []string
		for i := 0; i < len(uas)-6; i += 25 {
			sample = append(sample, uas[i])
		}
		uas = append(sample, uas[len(uas)-6:]...)
	}
	for _, ua := range uas {
		if got, want := m.Match(ua), brute(res, ua); got != want {
			t.Errorf("Match(%q) = %v, want %v", ua, got, want)
		}
	}
}

// TestHostileUserAgents: User-Agents made of the literals the patterns
// look for, in a case that the patterns do not match, repeated: the
// answers are still those of the regexps.
func TestHostileUserAgents(t *testing.T) {
	res := compileAll(t)
	m := Default()
	r := rand.New(rand.NewPCG(1, 2))
	n := 200
	if raceEnabled {
		n = 20
	}
	for range n {
		var b strings.Builder
		for b.Len() < 2*MaxLen {
			l := m.literals[r.IntN(len(m.literals))].text
			if r.IntN(2) == 0 {
				l = strings.ToUpper(l)
			}
			b.WriteString(l)
			b.WriteByte(" /;()"[r.IntN(5)])
		}
		ua := b.String()
		if got, want := m.Match(ua), brute(res, ua); got != want {
			t.Errorf("Match(%q) = %v, want %v", ua, got, want)
		}
	}
}

func TestNewReportsBadPatterns(t *testing.T) {
	m, err := New([]string{"good", "(bad"})
	if err == nil || !strings.Contains(err.Error(), "(bad") {
		t.Fatalf("New error = %v, want one naming (bad", err)
	}
	if !m.Match("a good one") || m.Match("nothing") {
		t.Errorf("Match of the good pattern wrong")
	}
}

func TestLiteralsOfPatterns(t *testing.T) {
	tests := []struct {
		pattern string
		want    []string // the required set, lower case; nil for none
		plain   bool
	}{
		{`Googlebot\/`, []string{"googlebot/"}, true},
		{`[wW]get`, []string{"wget"}, false},
		{`^curl`, []string{"curl"}, false},
		{`(?i)gptbot`, []string{"gptbot"}, false},
		{`Mediapartners( \(Googlebot\))?`, []string{"mediapartners"}, true},
		{`^Mozilla\/5\.0 \(compatible; (Yeti|Yandex)`, []string{"mozilla/5.0 (compatible; yandex", "mozilla/5.0 (compatible; yeti"}, false},
		{`a.*bcd+efg`, []string{"defg"}, false},
		{`x[0-9]+y`, nil, false},
	}
	for _, tt := range tests {
		m, err := New([]string{tt.pattern})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range m.literals {
			got = append(got, l.text)
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("literals of %q = %q, want %q", tt.pattern, got, tt.want)
		}
		if plain := m.patterns[0].exact != nil; plain != tt.plain {
			t.Errorf("plain(%q) = %v, want %v", tt.pattern, plain, tt.plain)
		}
	}
}

func FuzzMatch(f *testing.F) {
	res := compileAll(f)
	m := Default()
	for _, ua := range browsers {
		f.Add(ua)
	}
	f.Add("Googlebot/2.1")
	f.Fuzz(func(t *testing.T, ua string) {
		if got, want := m.Match(ua), brute(res, ua); got != want {
			t.Errorf("Match(%q) = %v, want %v", ua, got, want)
		}
	})
}

func TestStats(t *testing.T) {
	m := Default()
	plain := 0
	for _, p := range m.patterns {
		if p.exact != nil {
			plain++
		}
	}
	var un []string
	for _, id := range m.unindexed {
		un = append(un, m.patterns[id].source)
	}
	t.Logf("%d patterns (%d plain), %d literals, %d keys, unindexed %q", len(m.patterns), plain, len(m.literals), len(m.byKey), un)
}

func compileOne(t testing.TB) *regexp.Regexp {
	return regexp.MustCompile(strings.Join(Patterns(), "|"))
}
