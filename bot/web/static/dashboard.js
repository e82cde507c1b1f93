// Dashboard: asks for the current numbers every few seconds and redraws what changed (the
// decision, the leaderboard's table and phone cards, the charts) of the feature it shows
// (data-feature, if any).
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
  // A phone's cards: the same cells as the table (the main ones up front, the rest behind
  // "More"), as bot/web/pages.py draws them.
  var MAIN = ["quality", "decision", "votes", "$ per 1K output"];
  var SKIP = ["#", "model"];
  function item(dl, name, value) {
    var div = document.createElement("div");
    var dt = document.createElement("dt");
    var dd = document.createElement("dd");
    dt.textContent = name;
    dd.textContent = value;
    div.appendChild(dt);
    div.appendChild(dd);
    dl.appendChild(div);
  }
  function cards(headers, rows) {
    var list = document.getElementById("board-cards");
    if (!list || !headers) { return; }
    while (list.firstChild) { list.removeChild(list.firstChild); }
    rows.forEach(function (cells) {
      var by = {};
      headers.forEach(function (h, i) { by[h] = cells[i]; });
      var li = document.createElement("li");
      li.className = "card";
      var h3 = document.createElement("h3");
      h3.textContent = by["#"] + ". " + by.model;
      li.appendChild(h3);
      var main = document.createElement("dl");
      main.className = "main";
      MAIN.forEach(function (h) { if (h in by) { item(main, h, by[h]); } });
      li.appendChild(main);
      var details = document.createElement("details");
      var summary = document.createElement("summary");
      summary.textContent = "More: latency, availability, style, monthly cost";
      details.appendChild(summary);
      var rest = document.createElement("dl");
      headers.forEach(function (h) {
        if (MAIN.indexOf(h) < 0 && SKIP.indexOf(h) < 0) { item(rest, h, by[h]); }
      });
      details.appendChild(rest);
      li.appendChild(details);
      list.appendChild(li);
    });
  }
  function charts(list) {
    list.forEach(function (c) {
      var img = document.getElementById("chart-" + c.name);
      if (img && img.getAttribute("src") !== c.url) { img.setAttribute("src", c.url); }
      if (img) { img.setAttribute("alt", c.alt); }
      var link = img && img.closest("a");
      if (link && link.getAttribute("href") !== c.url) { link.setAttribute("href", c.url); }
      var phone = document.getElementById("chart-" + c.name + "-phone");
      if (phone && c.phone_url && phone.getAttribute("srcset") !== c.phone_url) {
        phone.setAttribute("srcset", c.phone_url);
      }
    });
  }
  // The table's scroll hint shows only while the table is wider than its box.
  function scrollHint() {
    var wrap = document.querySelector(".table-wrap");
    var hint = document.getElementById("scroll-hint");
    if (!wrap || !hint) { return; }
    if (wrap.scrollWidth > wrap.clientWidth + 1) { hint.removeAttribute("hidden"); }
    else { hint.setAttribute("hidden", ""); }
  }
  scrollHint();
  window.addEventListener("resize", scrollHint);
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
        cards(s.headers, s.rows);
        scrollHint();
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
