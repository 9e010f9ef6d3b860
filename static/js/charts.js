// Draws every Plotly figure that a page embeds as <script type="application/json" class="chart">.
"use strict";

function drawCharts(root) {
  for (const data of root.querySelectorAll("script.chart[type='application/json']")) {
    const target = document.getElementById(data.dataset.target);
    if (!target || target.dataset.drawn) continue;
    const figure = JSON.parse(data.textContent);
    window.Plotly.newPlot(target, figure.data, figure.layout, { responsive: true, displaylogo: false });
    target.dataset.drawn = "1";
  }
}

document.addEventListener("DOMContentLoaded", () => drawCharts(document));
// An outerHTML swap (a polled report that finished) leaves event.target detached: look again
// from the document, where figures already drawn are skipped.
document.addEventListener("htmx:afterSwap", (event) =>
  drawCharts(event.target.isConnected ? event.target : document));
