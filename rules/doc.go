// Package rules reads tailor's rule files and decides, per request, which
// blocks of a page a visitor sees.
//
// Load (or LoadFS) reads every *.yaml file of a directory, in name order,
// and compiles it into a Set: path globs, CSS selectors (with cascadia, so
// that a bad selector is an error at load rather than a block that silently
// never matches), conditions, expr-lang programs type-checked against the
// visitor and the request, and content templates. Every problem in every
// file is reported at once, as config.Errors, each at the file:line:col a
// user can jump to:
//
//	rules/home.yaml:12:17: select: invalid selector "#hero >": expected selector, found EOF instead
//	rules/home.yaml:20:24: when.stage: undeclared stage "intrest" (did you mean "interest"?); stages: awareness, interest, intent
//	rules/home.yaml:31:13: if: request has no field contry (did you mean request.country?) (1:9)
//
// Two jobs live in packages of their own, which rules imports and which
// never import rules: internal/match parses and matches the path globs,
// value wildcards, time windows and number comparisons of conditions, and
// internal/content compiles and renders content templates (escaping per
// HTML context, URL and refresh filtering, the memo of outputs by visitor
// field). Their messages reach the user with the position rules adds.
//
// Selectors are compiled by internal/selector, which matches what
// cascadia matches in time polynomial in the page's size. Those whose
// matching still grows with the page's depth or width (two or more
// descendant or general-sibling combinators in a row, :has() over a
// descendant combinator) load, with a warning (Set.Warnings,
// ErrCostlySelector) that tailor check prints as
//
//	rules/home.yaml:8:17: warning: select: "main .grid .card" has 2 descendant or sibling combinators in a row: …
//
// Only regular files are read: an entry of the directory named *.yaml that
// is a named pipe, a socket or a device is left out with a warning
// (ErrSkippedFile), and a fragment that is not a regular file is an error
// (ErrNotRegular), so that nothing a load reads can block it or never end.
// A rule file may be at most MaxRuleFileBytes (16 MiB), a fragment
// MaxFragmentBytes (1 MiB) (ErrTooLarge):
//
//	rules/huge.yaml: file too large: 20.3 MiB, more than the 16 MiB allowed
//	rules/home.yaml:9:24: replace.file: read fragment /dev/zero: not a regular file (a character device)
//
// Loading takes time and memory in proportion to the rules: a selector
// text or an if: expression is compiled once however many rules repeat it.
//
// A Set is immutable and safe for concurrent use. Per request, the proxy
// calls Match with the path to find the page's rules (nil: leave the page
// alone), then Decide with the visitor and the request facts. Every page
// whose match: fits the path applies, in file order: Match returns one
// Page holding their rules in that order and their selectors once each,
// made once per combination of pages and kept in the Set (issue 17).
//
// Rules compose. For one element, the first matching rule wins per kind
// of change (Action.Change): the content (replace, inner, text, prepend,
// append, before, after, remove: one kind together), each attribute name,
// each class name. An attr: takes any number of pairs, each a change of
// its own kind. A later rule's change of a kind already made is dropped
// and its trace names the rule that made it (Trace.Overridden); a rule
// left with no change does not fire. Decide judges this per selector,
// not knowing the page; where rules with different selectors match one
// element, the rewrite engine keeps the first's content (rewrite.Edit's
// Sole, which the proxy sets) and the first's attribute or class of each
// name, and reports per edit whether it applied
// (rewrite.Template.RenderApplied): the proxy's decision header, hit
// counts and explain, which has the page, add the overrides Decide could
// not see (Trace.Overridden) and count a rule as fired only where its
// change is on the page. An
// experiment's holdout makes, by
// keeping the origin's, the changes its variants would. Where an
// experiment's change goes, a Probe (Decision.Probes) stands for the
// visitor in whichever arm, which the proxy renders as a rewrite.Probe
// edit.
//
// Experiments (experiment.go) bucket a visitor by a hash of (experiment
// id, Visitor.ID), unless Visitor.Assigned keeps a variant the
// experiment still has: the one the visitor's first exposure fixed, so
// that a login (a new ID) or new weights move no one. A control visitor
// (Visitor.Control: a bot, an opted-out visitor) sees every holdout and
// is reported in none. Decision.Exposures holds the experiments that are
// live for the visitor (some arm would make a change for them that no
// earlier rule made), in the visitor's arm; each is true, for the proxy
// to report and keep, only when a probe of its experiment applied to the
// rendered page (exposure truth): one test for every arm, decided per
// visitor whatever arm they are in. A rule file's experiments: gives a set
// of rules (maps, experiments or plain rules, in any file) one holdout
// (a ruleSet): held-out visitors get the origin's blocks for all of them
// (their trace says "held out by experiment NAME"), the others the rules
// as usual; it is reported under its name with the variants holdout and
// TreatedVariant, and listed by Set.Experiments. Where a replace
// or a remove and attribute changes meet on one element, the rewrite
// engine lets the replace or remove win. Set.Warnings holds a warning
// (ErrShadowedRule) for a plain rule that can never fire because an
// earlier rule of its page without when: or if: makes every change it
// makes on the same selector. Decide is a
// pure function of its arguments: it reads no clock (the request carries
// its time), no network and no globals, so "tailor explain" and the proxy
// see the same decision for the same inputs.
//
// A Decision lists the actions to apply, each naming one of the page's
// compiled selectors, with content that is final bytes: visitor values in
// templates are escaped for their HTML context by html/template, so a
// profile field can never inject markup. Content written into an element
// (inner, text, prepend, append) with visitor values also carries
// RawText, the same content escaped as JavaScript or CSS, which the
// rewrite engine writes when the element turns out to be a <script> or a
// <style>; srcdoc values are escaped twice and refresh URLs filtered.
// Content without {{ is rendered once at load. Its trace says, for every rule of the page, whether it
// fired and if not why.
//
// A Digital Relevancy Map (map:) is by one or two of segment, stage,
// persona and interest. With two, its keys are rows of the first (the
// first row the visitor fits, in file order; "*" fits everyone), each a
// mapping of cells by the second with an optional default:, and the map
// may have a default: of its own for visitors no row or cell takes. A
// case or cell that is empty ({}) leaves the block; one may hold an
// experiment, and an experiment's variant may hold a map. A nested
// experiment buckets under, and is reported (Decision.Exposures,
// Set.Experiments) as, the rule's id with the case in brackets
// ("hero-drm[vip/intent]"). Decision.Cases names each case chosen, a
// cell as row and column joined by CellSep ("vip/intent"), which the
// proxy's decision header, tailor explain and the per-case hit counter
// show.
//
// Set also answers the questions of the visitor's journey, which the
// proxy tracks: what a page view means (Journey), what interests it adds
// (Interests, InterestHalfLife) and which persona a visitor's interests
// are nearest to (NearestPersona); and which goals the browser may report
// to the beacon (Goal: those goals: declares, not the journey's alone)
// and which click goals the goal script reports on a page (ClickGoals).
package rules
