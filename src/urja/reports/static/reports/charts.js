// Managers' dashboards: the 12-month trend drawn with the vendored uPlot (static/vendor/uplot).
// No inline script (CSP): the data come from a json_script block; the server-drawn SVG stays as the
// fallback when this file or the library does not run.
(function () {
  "use strict";
  function draw() {
    var box = document.getElementById("trend-chart");
    var data = document.getElementById("trend-data");
    if (!box || !data || typeof window.uPlot !== "function") return;
    var s = JSON.parse(data.textContent);
    var names = (box.dataset.labels || "AT&C loss|Billing efficiency|Collection efficiency").split("|");
    var xs = s.periods.map(function (_, i) { return i; });
    var pct = function (u, v) { return v == null ? "—" : v.toFixed(2) + "%"; };
    var opts = {
      width: Math.min(box.clientWidth || 560, 720),
      height: 220,
      scales: { x: { time: false } },
      axes: [
        { values: function (u, ticks) { return ticks.map(function (t) { return s.periods[t] || ""; }); } },
        { values: function (u, ticks) { return ticks.map(function (t) { return t + "%"; }); } },
      ],
      series: [
        { label: "", value: function (u, v) { return v == null ? "" : s.periods[v]; } },
        { label: names[0], stroke: "#c0392b", width: 2, value: pct },
        { label: names[1], stroke: "#2e86c1", width: 2, value: pct },
        { label: names[2], stroke: "#27ae60", width: 2, value: pct },
      ],
    };
    new window.uPlot(opts, [xs, s.atc_loss, s.billing_efficiency, s.collection_efficiency], box);
    box.dataset.drawn = "uplot";
    var svg = document.getElementById("trend-svg");
    if (svg) svg.style.display = "none";
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
