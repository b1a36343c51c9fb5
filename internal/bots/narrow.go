package bots

// Narrowed replaces patterns of the crawler list that also match people's
// browsers: an app's link fetcher and its in-app browser, or a search
// engine's crawlers and its mobile browser, can share a name. The key is
// the pattern as the list has it; the value matches every instance the
// list gives for it (the tests check) but not the browser named in the
// comment. The table is tailor's, not the list's: scripts/update-bots.sh
// leaves it in place, and a test fails when the list no longer has a key
// (the entry is then out of date: drop it, or narrow the new pattern).
var Narrowed = map[string]string{
	// "SogouMobileBrowser/5.28.2", Sogou's mobile browser.
	`Sogou`: `^Sogou|Sogou[ -][^/]*[Ss]pider`,
	// "… Mobile Safari/537.36 Viber/20.8.0.1", Viber's in-app browser.
	`Viber`: `^Viber`,
	// "… Mobile/15E148 Tumblr/iPhone/33.8/338010/en_US", Tumblr's.
	`Tumblr\/`: `^Tumblr\/`,
	// "… Mobile/15E148 PayPal/8.48.0 (iPhone; …)", PayPal's.
	`PayPal\/`: `^PayPal\/|PayPal IPN`,
}
