package bots

// Extra are tailor's own patterns, for User-Agents the crawler list lacks
// or matches only in one case: generic words that unknown crawlers use,
// HTTP libraries and tools, headless browsers and their drivers, uptime
// monitors and AI crawlers. Each has an example, which the tests match.
var Extra = []Crawler{
	// "bot" anywhere but in "Cubot", a phone maker ("CUBOT KING KONG").
	{Pattern: `(?i)(?:^|[^u])bot|(?:^|[^c])ubot`, Instances: []string{"ExampleBot/1.0", "Mozilla/5.0 (compatible; robot)", "ubot/2"}},
	{Pattern: `(?i)crawl|spider|slurp|scraper|mediapartners`, Instances: []string{"NewCrawler/0.1", "Spider-Man-Indexer", "Mediapartners-Google"}},
	{Pattern: `(?i)preview|facebookexternalhit|headless|phantomjs|lighthouse|pingdom`, Instances: []string{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36", "Mozilla/5.0 (X11; Linux x86_64) Chrome/120 Safari/537.36 Chrome-Lighthouse", "PINGDOM.COM_BOT_VERSION_1.4"}},
	// HTTP libraries and command-line tools, in any case. Ruby's Net::HTTP
	// sends "Ruby" alone; "ruby" elsewhere can be a phone's codename (the
	// Redmi Note 12 Pro's, in Instagram's in-app browser).
	{Pattern: `(?i)curl/|wget/|python-requests|python-urllib|python-httpx|python/|aiohttp|go-http-client|fasthttp|okhttp|java/|apache-httpclient|httpclient|libwww|axios/|node-fetch|undici|got \(|deno/|bun/|reqwest|guzzlehttp|^ruby|ruby/|faraday|httpie|postmanruntime|insomnia/|dart:io|dart/|winhttp|powershell|http_request2|lwp::`,
		Instances: []string{"CURL/8.5.0", "Go-http-client/1.1", "fasthttp", "Java/17.0.2", "axios/1.6.8", "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", "undici", "PostmanRuntime/7.37.0", "Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.19041.3803", "Python/3.12 aiohttp/3.9.5", "Deno/1.43.1", "Ruby", "rest-client/2.1.0 (linux x86_64) ruby/3.2.2p53"}},
	// Browser automation.
	{Pattern: `(?i)puppeteer|playwright|selenium|webdriver|slimerjs|prerender|rendertron|splash|cypress|electron-headless`, Instances: []string{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36 Prerender (+https://github.com/prerender/prerender)"}},
	// Uptime and synthetic monitoring.
	{Pattern: `(?i)uptime|statuscake|site24x7|datadog|newrelicpinger|checkly|stackdrivermonitoring|catchpoint|zabbix|nagios|check_http|monitoring|freshping|updown\.io|hetrixtools|gtmetrix|pagespeed`, Instances: []string{"Datadog/Synthetics", "check_http/v2.3.3 (nagios-plugins 2.3.3)", "Mozilla/5.0 (compatible; Site24x7)", "GoogleStackdriverMonitoring-UptimeChecks(https://cloud.google.com/monitoring)"}},
	// AI crawlers and assistants' fetchers.
	{Pattern: `(?i)gptbot|chatgpt|oai-searchbot|claude|anthropic|perplexity|cohere-ai|meta-externalagent|meta-externalfetcher|mistralai|bytespider|ccbot|diffbot|youbot|ai2bot|timpibot|omgili|imagesift|amazonbot|applebot|google-extended|googleother|google-cloudvertexbot|firecrawl`, Instances: []string{"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)", "meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)", "Mozilla/5.0 (compatible; MistralAI-User/1.0; +https://docs.mistral.ai/robots)"}},
}
