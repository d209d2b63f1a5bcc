// Browser side: the entry of report.html (contract/report-html.ts links it with the
// dashboard's other modules into the file). It draws the results document the file
// holds, with the same functions the live dashboard uses, at the moment it was saved.

import { createCharts } from "./charts.ui.js";
import { renderAgents, renderConnection, renderHeader, renderProgress } from "./render.ui.js";
import { renderDelivered, renderRegions, renderResults } from "./results.ui.js";

const results = JSON.parse(document.getElementById("edgeperf-results").textContent);
// The report's "now" is when it was saved, on the server's clock.
const savedAt = Date.parse(results.serverTime) || Date.now();

renderHeader(results, results.spec);
renderProgress(results, results.spec, savedAt);
renderAgents(results, savedAt);
renderDelivered(results.delivered);
renderRegions(results.regions);
renderResults(results);
renderConnection(
  "report",
  `saved ${new Date(savedAt).toISOString().replace("T", " ").slice(0, 19)} UTC${results.final ? "" : " (live, not final)"}`,
);
createCharts().update(results);
