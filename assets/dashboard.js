// Accord dashboard: draws the charts from the numbers the page already shows in its tables
// (a chart never holds a figure the table does not). Marks the body when done, so a test in a
// headless browser knows the page has rendered.
(function () {
  "use strict";
  function series() {
    var canvas = document.getElementById("series-chart");
    if (!canvas || typeof Chart === "undefined") return;
    var points = JSON.parse(canvas.dataset.series);
    // Okabe-Ito colours, and a different dash per line: told apart without colour too.
    var line = function (label, key, colour, dash) {
      return { label: label, data: points.map(function (p) { return p[key]; }), borderColor: colour,
               backgroundColor: colour, borderDash: dash, spanGaps: false };
    };
    new Chart(canvas, {
      type: "line",
      data: { labels: points.map(function (p) { return p.period; }),
              datasets: [line("sender", "sender", "#E69F00", [6, 3]),
                         line("receiver", "receiver", "#0072B2", [2, 2]),
                         line("reconciled", "reconciled", "#000000", [])] },
      options: { animation: false, responsive: true,
                 plugins: { tooltip: { mode: "index", intersect: false } } }
    });
  }
  try { series(); } finally {
    document.body.dataset.rendered = "1";
    // Milliseconds from navigation start until the page is drawn (read by the benchmark).
    document.body.dataset.renderedMs = String(Math.round(performance.now()));
  }
})();
