// tailor's goal script, served at beacon_path + ".js". Its tag (added by
// tailor to pages with click goals) names the beacon and the click goals:
//   <script src="/_tailor/goal.js" defer data-tailor-beacon="/_tailor/goal"
//           data-tailor-goals='[{"goal":"add_to_cart","click":[".add-to-cart"]}]'></script>
// A click on (or inside) an element that matches a goal's selector reports
// the goal, with the element's data-tailor-value if it has one. Pages may
// report goals themselves: tailor.goal("signup", 20). No eval, no inline
// code: it runs under a strict Content-Security-Policy.
(function () {
  "use strict";
  var tag = document.currentScript;
  if (!tag) return;
  var endpoint = tag.getAttribute("data-tailor-beacon");
  if (!endpoint) return;
  var goals = [];
  try {
    goals = JSON.parse(tag.getAttribute("data-tailor-goals") || "[]") || [];
  } catch (e) {}

  // A random id per report: the beacon counts a report sent twice once.
  function newID() {
    var b = new Uint8Array(12), s = "";
    window.crypto.getRandomValues(b);
    for (var i = 0; i < b.length; i++) s += ("0" + b[i].toString(16)).slice(-2);
    return s;
  }

  function send(goal, value) {
    var report = { goal: goal, id: newID() };
    if (typeof value === "number" && isFinite(value)) report.value = value;
    var body = JSON.stringify(report);
    try {
      if (navigator.sendBeacon && navigator.sendBeacon(endpoint, body)) return true;
    } catch (e) {}
    if (window.fetch) {
      fetch(endpoint, {
        method: "POST", body: body, keepalive: true, credentials: "same-origin",
        headers: { "Content-Type": "text/plain;charset=UTF-8" }
      }).catch(function () {});
      return true;
    }
    return false;
  }

  // One listener for the whole document, in the capture phase: it sees
  // clicks on elements added later, and clicks a page handler stops.
  document.addEventListener("click", function (ev) {
    var t = ev.target;
    if (t && t.nodeType !== 1) t = t.parentElement;
    if (!t || !t.closest) return;
    for (var i = 0; i < goals.length; i++) {
      var g = goals[i], sels = g.click || [];
      for (var j = 0; j < sels.length; j++) {
        var el = null;
        try { el = t.closest(sels[j]); } catch (e) {}
        if (el) {
          var v = el.getAttribute("data-tailor-value");
          send(g.goal, v === null || v === "" ? undefined : Number(v));
          break;
        }
      }
    }
  }, true);

  window.tailor = window.tailor || {};
  window.tailor.goal = function (goal, value) { return send(String(goal), value); };
})();
