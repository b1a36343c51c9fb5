package proxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tailor-edge/tailor/internal/testkit"
	"github.com/tailor-edge/tailor/rules"
)

// TestUADevicesAreDeviceOf: the devices the proxy remembers are
// rules.DeviceOf's, for the User-Agent asked and not another that shared
// its slot: asked for more distinct User-Agents than there are slots,
// twice over and in another order, it gives DeviceOf's answer every
// time; a User-Agent too long to be kept, and a nil table, likewise.
func TestUADevicesAreDeviceOf(t *testing.T) {
	uas := []string{
		testkit.BrowserUA,
		"",
		"   ",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Linux; Android 14; SM-T870) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"curl/8.5.0",
		"Mozilla/5.0 (X11; Linux x86_64) " + strings.Repeat("x", uaMaxCached) + " Googlebot/2.1",
		strings.Repeat("Mozilla/5.0 (iPad) ", 40),
	}
	// Browsers, tablets and bots whose strings differ in a byte or two,
	// more of them than slots, so that slots are shared and replaced.
	for i := range 3 * uaSlots {
		switch i % 3 {
		case 0:
			uas = append(uas, fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/%d.0.0.0 Safari/537.36", i))
		case 1:
			uas = append(uas, fmt.Sprintf("Mozilla/5.0 (iPad; CPU OS %d like Mac OS X) Mobile/15E148", i))
		default:
			uas = append(uas, fmt.Sprintf("Mozilla/5.0 (compatible; Bingbot/%d.0)", i))
		}
	}
	kinds := map[string]int{}
	for _, c := range []*uaDevices{newUADevices(), nil} {
		for pass := range 2 {
			for i := range uas {
				ua := uas[i]
				if pass == 1 {
					ua = uas[len(uas)-1-i]
				}
				want := rules.DeviceOf(ua)
				if got := c.of([]byte(ua)); got != want {
					t.Fatalf("pass %d: device of %.80q = %q, DeviceOf says %q", pass, ua, got, want)
				}
				kinds[want]++
			}
		}
	}
	for _, d := range []string{"desktop", "mobile", "tablet", "bot"} {
		if kinds[d] == 0 {
			t.Errorf("no User-Agent of the test is a %s: %v", d, kinds)
		}
	}
}
