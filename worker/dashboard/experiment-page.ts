// GET /experiments/:id — the experiment page: the levels of a sweep or capacity search
// side by side, with a Pareto chart of throughput against latency and against the speed
// each user sees, and a link to each level's run dashboard. Like the run dashboard
// (page.ts) the page is static: no experiment data and no secret in it. The browser reads
// the id from the path and the read token from the fragment (#token=…), which browsers
// never send to a server, and sends the token itself as an Authorization header
// (experiment.ui.js). The read token of an experiment reads each of its levels' runs, so
// the links carry the same token in their fragments.
//
// No inline script or style: the same policy as the run dashboard ('self' only), the
// same stylesheet and uPlot, and two modules of its own (experiment.ui.js and
// experiment-charts.ui.js), served from /assets by assets.ts.

import type { IRequest } from "itty-router";
import { StatusError } from "../../contract/errors";
import { PAGE_HEADERS, pageHtml } from "./page";

/** The page's body: every element experiment.ui.js renders into. */
export function experimentMarkup(): string {
  return `<header class="top">
  <div class="top-row">
    <span class="brand">edgeperf</span>
    <span id="phase" class="badge" data-phase="loading">loading</span>
    <span id="conn" class="conn" data-mode="connecting">connecting</span>
  </div>
  <div class="top-row sub">
    <span id="experiment-id" class="mono" title="Experiment id"></span>
    <span id="target" class="muted"></span>
  </div>
</header>
<main>
  <p id="notice" class="notice" role="alert" hidden></p>

  <section id="wipe" class="wipe" hidden>
    <span id="wipe-text"></span>
  </section>

  <section class="card" aria-labelledby="experiment-h">
    <div class="card-head">
      <h2 id="experiment-h">Experiment</h2>
      <span id="experiment-kind" class="muted"></span>
    </div>
    <progress id="progress" class="bar" max="1000" aria-labelledby="experiment-h"></progress>
    <p id="progress-label" class="muted"></p>
    <dl id="kpis" class="kpis"></dl>
  </section>

  <section class="charts" aria-label="Pareto charts">
    <figure class="card chart" id="chart-pareto-latency" data-points="0">
      <figcaption><h2>Throughput against <span data-axis>TTFT p99</span></h2><span class="muted">output tokens/s, a point per level; the line joins the Pareto front</span></figcaption>
      <div class="plot"></div>
    </figure>
    <figure class="card chart" id="chart-pareto-user" data-points="0">
      <figcaption><h2>Throughput against tokens/s per user</h2><span class="muted">output tokens/s, a point per level; per user: 1000 / ITL p50</span></figcaption>
      <div class="plot"></div>
    </figure>
  </section>

  <section class="card" aria-labelledby="levels-h">
    <div class="card-head">
      <h2 id="levels-h">Levels</h2>
      <span class="muted">each level is a run of its own; its link opens that run's dashboard</span>
    </div>
    <div class="table-wrap">
      <table id="levels">
        <thead></thead>
        <tbody></tbody>
      </table>
    </div>
  </section>
</main>
<footer class="muted" id="footer">The read token stays in this page's URL fragment (and in the fragments of its links to the level runs) and is never sent in a URL.</footer>`;
}

const PAGE = pageHtml({
  title: "edgeperf · experiment",
  styles: ["experiment.ui.css"],
  script: "experiment.ui.js",
  bodyAttrs: 'data-page="experiment"',
  body: experimentMarkup(),
});

export function serveExperimentPage(request: IRequest): Response {
  // A malformed id cannot be an experiment; the page itself never looks it up (the token is in the fragment).
  if (!/^[0-9a-f]{64}$/.test(request.params.id ?? "")) throw new StatusError(404, "experiment_not_found", "No such experiment.");
  return new Response(PAGE, { headers: PAGE_HEADERS });
}
