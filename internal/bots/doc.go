// Package bots tells crawlers, headless browsers, uptime monitors and
// HTTP libraries from people, by their User-Agent.
//
// The list is crawler-user-agents by Martin Monperrus and contributors
// (github.com/monperrus/crawler-user-agents, MIT licence, see
// LICENSE.crawler-user-agents), version 1.60.0 as published on npm:
// crawler-user-agents.json, embedded as published, some 1,500 patterns
// of search, social, SEO, AI and monitoring crawlers, each with example
// User-Agents (instances). Extra adds tailor's own patterns where the
// list lacks them or matches in one case only: the words unknown
// crawlers use (bot, crawl, spider), HTTP libraries (curl, Go, fasthttp,
// Java, axios…), browser automation, monitors and AI crawlers. Narrowed
// replaces the few list patterns that match people's browsers too (an
// app's fetcher and its in-app browser sharing a name).
//
// To refresh the list, run scripts/update-bots.sh: it fetches the latest
// version with npm, replaces the JSON, writes the version here and runs
// this package's tests, which check that every pattern compiles, matches
// one of its own instances, that every Narrowed key is still in the list,
// and that no common browser, in-app ones included, is a bot.
//
// Matching costs one pass over the User-Agent (about 0.3 µs for a
// browser's, 0.5 µs for Googlebot's; BenchmarkMatch) where one regular
// expression of all the patterns takes some 2 ms (BenchmarkAlternation):
// see Matcher. Only the first MaxLen bytes are read, so a hostile
// User-Agent costs no more than a few ordinary ones (1.5 µs for 1 KiB of
// the literals the patterns look for), and no memory is kept per
// User-Agent. Default is built once, in some 8 ms, and holds about 0.4 MB: a
// pattern that is a set of strings keeps those, not its compiled regular
// expression.
package bots
