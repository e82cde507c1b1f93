// Dashboard: asks for the current numbers every few seconds and redraws what changed (the
// decision, the leaderboard, the charts) of the feature it shows (data-feature, if any).
// Text is set with textContent, never as HTML.
(function () {
  "use strict";
  var root = document.getElementById("dashboard");
  if (!root) { return; }
  var version = root.getAttribute("data-version") || "";
  var every = Math.max(1000, parseInt(root.getAttribute("data-poll-ms") || "3000", 10));
  var feature = root.getAttribute("data-feature");
  var which = feature ? "&feature=" + encodeURIComponent(feature) : "";
  function text(id, value) { var el = document.getElementById(id); if (el) { el.textContent = value; } }
  function table(rows) {
    var body = document.getElementById("board-rows");
    if (!body) { return; }
    while (body.firstChild) { body.removeChild(body.firstChild); }
    rows.forEach(function (cells) {
      var tr = document.createElement("tr");
      cells.forEach(function (cell, i) {
        var td = document.createElement(i === 1 ? "th" : "td");
        if (i === 1) { td.setAttribute("scope", "row"); }
        td.textContent = cell;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }
  function charts(list) {
    list.forEach(function (c) {
      var img = document.getElementById("chart-" + c.name);
      if (img && img.getAttribute("src") !== c.url) { img.setAttribute("src", c.url); }
      if (img) { img.setAttribute("alt", c.alt); }
    });
  }
  function poll() {
    fetch("/dashboard/state?since=" + encodeURIComponent(version) + which, {
      credentials: "same-origin", headers: { "Accept": "application/json" }
    }).then(function (r) {
      if (r.status === 204) { return null; }
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    }).then(function (s) {
      if (s) {
        version = s.version;
        root.setAttribute("data-version", version);
        text("decision", s.decision);
        text("caption", s.caption);
        text("notes", s.notes);
        table(s.rows);
        charts(s.charts);
        text("updated", "Updated " + s.updated);
      }
      text("live", "Live: checking for new votes every " + Math.round(every / 1000) + " s.");
    }).catch(function () {
      text("live", "Cannot reach the bot right now; trying again.");
    }).then(function () { window.setTimeout(poll, every); });
  }
  window.setTimeout(poll, every);
})();
