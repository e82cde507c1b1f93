// Rating page: one submission per page (a double click or a held key sends one vote) and
// keyboard shortcuts A, B, T, X (and U to retract). Without this script the forms still work.
(function () {
  "use strict";
  var sent = false;
  document.querySelectorAll("form.vote").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (sent) { event.preventDefault(); return; }
      sent = true;
      // Disable after the browser has taken the submitter's value into the request.
      window.setTimeout(function () {
        document.querySelectorAll("form.vote button").forEach(function (b) { b.disabled = true; });
        var status = document.getElementById("status");
        if (status) { status.textContent = "Saving your vote…"; }
      }, 0);
    });
  });
  var keys = { a: "A", b: "B", t: "tie", x: "both_bad", u: "retract" };
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) { return; }
    var tag = (event.target && event.target.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") { return; }
    var value = keys[(event.key || "").toLowerCase()];
    if (!value) { return; }
    var button = document.querySelector('form.vote button[name="choice"][value="' + value + '"]');
    if (!button || button.disabled) { return; }
    event.preventDefault();
    button.click();
  });
})();
