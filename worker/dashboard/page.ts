// GET /runs/:id — the live dashboard page. The page is static: it holds no run data and
// no secret. The browser reads the run's id from the path and the read token from the
// URL fragment (#token=…), which browsers never send to a server, and sends the token
// itself as an Authorization header (see dashboard.ui.js).
//
// No inline script or style: everything comes from /assets/ (worker/dashboard/assets.ts),
// so the Content-Security-Policy can be 'self' only. uPlot styles its elements through
// the CSSOM (element.style), which style-src does not restrict.

import type { IRequest } from "itty-router";
import { StatusError } from "../../contract/errors";

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>edgeperf · run</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/uplot.min.css">
<link rel="stylesheet" href="/assets/dashboard.ui.css">
<script defer src="/assets/uplot.min.js"></script>
<script type="module" src="/assets/dashboard.ui.js"></script>
</head>
<body>
<header class="top">
  <div class="top-row">
    <span class="brand">edgeperf</span>
    <span id="phase" class="badge" data-phase="loading">loading</span>
    <span id="conn" class="conn" data-mode="connecting">connecting</span>
  </div>
  <div class="top-row sub">
    <span id="run-id" class="mono" title="Run id"></span>
    <span id="target" class="muted"></span>
  </div>
</header>
<main>
  <p id="notice" class="notice" role="alert" hidden></p>

  <section id="wipe" class="wipe" hidden>
    <span id="wipe-text">Results are wiped from the server in <strong id="wipe-in">–</strong>. Download them before then.</span>
  </section>

  <section class="card" aria-labelledby="progress-h">
    <div class="card-head">
      <h2 id="progress-h">Progress</h2>
      <span id="progress-label" class="muted"></span>
    </div>
    <div class="bar" role="progressbar" aria-labelledby="progress-h" aria-valuemin="0" aria-valuemax="100" id="progress">
      <div id="progress-fill"></div>
    </div>
    <dl id="kpis" class="kpis"></dl>
  </section>

  <section class="card downloads" aria-labelledby="downloads-h">
    <h2 id="downloads-h">Download results</h2>
    <div class="buttons">
      <button type="button" data-format="json">JSON</button>
      <button type="button" data-format="aiperf">AIPerf JSON</button>
      <button type="button" data-format="csv">CSV</button>
    </div>
    <span id="download-status" class="muted" aria-live="polite"></span>
  </section>

  <section class="card" aria-labelledby="agents-h">
    <div class="card-head">
      <h2 id="agents-h">Agents</h2>
      <span id="agents-summary" class="muted"></span>
    </div>
    <div id="regions" class="chips"></div>
    <div class="table-wrap">
      <table id="agents">
        <thead><tr><th>Agent</th><th>Region</th><th class="num">Credits held</th><th class="num">In flight</th><th class="num">Share</th><th class="seen">Seen</th></tr></thead>
        <tbody></tbody>
      </table>
    </div>
  </section>

  <section class="charts" aria-label="Charts">
    <figure class="card chart" id="chart-throughput" data-points="0">
      <figcaption><h2>Throughput</h2><span class="muted">per second, by completion time</span></figcaption>
      <div class="plot"></div>
    </figure>
    <figure class="card chart" id="chart-latency" data-points="0">
      <figcaption><h2>Request latency</h2><span class="muted">ms, per second</span></figcaption>
      <div class="plot"></div>
    </figure>
    <figure class="card chart" id="chart-ttft" data-points="0">
      <figcaption><h2>Time to first token</h2><span class="muted">ms, per second</span></figcaption>
      <div class="plot"></div>
    </figure>
    <figure class="card chart" id="chart-ttft-dist" data-points="0">
      <figcaption><h2>TTFT distribution</h2><span class="muted">ms by percentile, whole run</span></figcaption>
      <div class="plot"></div>
    </figure>
    <figure class="card chart" id="chart-itl-dist" data-points="0">
      <figcaption><h2>Inter-token latency distribution</h2><span class="muted">ms by percentile, whole run</span></figcaption>
      <div class="plot"></div>
    </figure>
  </section>

  <section class="card" aria-labelledby="results-h">
    <div class="card-head">
      <h2 id="results-h">Results</h2>
      <span id="results-state" class="muted"></span>
    </div>
    <dl id="scalars" class="kpis small"></dl>
    <div class="table-wrap">
      <table id="metrics">
        <thead><tr><th>Metric</th>${["avg", "min", "p50", "p90", "p99", "max", "std"].map((k) => `<th class="num" data-stat="${k}">${k}</th>`).join("")}</tr></thead>
        <tbody></tbody>
      </table>
    </div>
  </section>

  <section class="card" aria-labelledby="thresholds-h">
    <h2 id="thresholds-h">Thresholds</h2>
    <ul id="thresholds" class="thresholds"></ul>
  </section>

  <section class="card" id="errors-card" aria-labelledby="errors-h" hidden>
    <h2 id="errors-h">Errors</h2>
    <div class="table-wrap">
      <table id="errors">
        <thead><tr><th>Code</th><th>Type</th><th class="num">Count</th></tr></thead>
        <tbody></tbody>
      </table>
    </div>
  </section>
</main>
<footer class="muted">The read token stays in this page's URL fragment and is never sent in a URL.</footer>
</body>
</html>
`;

const HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-cache",
  "content-security-policy": [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    // data: for the empty favicon (without one, the browser asks for /favicon.ico).
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; "),
  // The fragment holds the read token: never hand this URL to anyone else.
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
};

export function serveDashboard(request: IRequest): Response {
  // A malformed id cannot be a run; the page itself never looks the run up (it cannot:
  // the token is in the fragment), the browser does.
  if (!/^[0-9a-f]{64}$/.test(request.params.id ?? "")) throw new StatusError(404, "run_not_found", "No such run.");
  return new Response(PAGE, { headers: HEADERS });
}
