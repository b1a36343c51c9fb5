// Package content compiles and renders the content a rule writes into a
// page: markup, text, an attribute's value or a class name, with data (the
// visitor, for package rules) in Go template actions.
//
// What is guaranteed:
//
//   - Data is escaped for the context html/template finds it in (text,
//     attribute, URL, <script> as JSON, <style>), so a profile field can
//     never inject markup. Text and attribute values escape the author's
//     own words too; markup keeps them as written.
//   - An href or src is URL-filtered as html/template filters it; a
//     content attribute that reads as a refresh ("5; url=…") keeps only
//     http(s) and relative URLs (filterRefresh); srcdoc is escaped twice.
//   - Content written into an element that turns out to be a <script> or
//     <style> (EnableRaw, RenderRaw) is escaped as JavaScript or CSS, or
//     not written at all.
//   - Errors html/template finds on escaping (an action in an ambiguous
//     context) are reported by Compile, not on a request; so is
//     {{range}} over a number.
//   - Content without {{ is rendered once by Compile. A template that
//     reads only scalar fields named by Compile's fields, with no logic,
//     is executed once per distinct value (up to 256 kept) and then served
//     from memory.
//
// Content is generic over its data type: the field readers memoization
// uses are typed, with no assertion per request, and the data reaches the
// template as the pointer it is. The package knows nothing of rules and
// must not import it; it takes config.Truncate for its messages.
package content
