// The dashboard's markup, and report.html: the dashboard of one finished (or live) run
// as one self-contained file that opens from disk and never touches the network. Both
// the Worker (the live page, GET /v1/runs/:id/report) and the CLI (`--out DIR`) build
// it here, from the same browser modules (worker/dashboard/*.ui.js), which each side
// hands in as text: the Worker has them as Text modules, the CLI reads them from the
// package. So a report looks exactly like the dashboard, and there is one builder.
//
// A page from file:// cannot load module scripts (its origin is opaque, and module
// scripts need CORS), so the modules are linked into one inline module: each becomes a
// function scope that returns its exports, and its imports read earlier modules'
// exports. The data is a JSON data block, never executed. A Content-Security-Policy
// (a <meta> in the file, the same one as a header from the Worker) allows exactly these
// inline scripts and styles by hash and nothing else: no network, by construction.
//
// Pure functions of their inputs, Web Crypto only (contract/ runs in workerd and Node).

import { METRICS } from "./metric-catalog";

/** The columns of the dashboard's metric table, in order. */
const TABLE_STATS = ["avg", "min", "p50", "p90", "p99", "max", "std"] as const;

/**
 * The dashboard's body: every section the browser modules render into. The live page
 * adds what only a live page has: the notice, the wipe countdown and the downloads.
 */
export function dashboardMarkup(mode: "live" | "report"): string {
  const live = mode === "live";
  const onlyLive = (html: string) => (live ? html : "");
  return `<header class="top">
  <div class="top-row">
    <span class="brand">edgeperf</span>
    <span id="phase" class="badge" data-phase="loading">loading</span>
    <span id="conn" class="conn" data-mode="${live ? "connecting" : "report"}">${live ? "connecting" : "saved report"}</span>
  </div>
  <div class="top-row sub">
    <span id="run-id" class="mono" title="Run id"></span>
    <span id="target" class="muted"></span>
  </div>
</header>
<main>
${onlyLive(`  <p id="notice" class="notice" role="alert" hidden></p>

  <section id="wipe" class="wipe" hidden>
    <span id="wipe-text">Results are wiped from the server in <strong id="wipe-in">–</strong>. Download them before then.</span>
  </section>
`)}
  <section class="card" aria-labelledby="progress-h">
    <div class="card-head">
      <h2 id="progress-h">Progress</h2>
      <span id="progress-label" class="muted"></span>
    </div>
    <progress id="progress" class="bar" max="1000" aria-labelledby="progress-h"></progress>
    <dl id="kpis" class="kpis"></dl>
  </section>

  <section class="card" id="warnings-card" aria-labelledby="warnings-h" hidden>
    <h2 id="warnings-h">Warnings</h2>
    <ul id="warnings" class="warnings"></ul>
  </section>

  <section class="card" aria-labelledby="delivered-h">
    <div class="card-head">
      <h2 id="delivered-h">Delivered load</h2>
      <span class="muted">what the run really sent, beside what it asked for</span>
    </div>
    <dl id="delivered" class="kpis small"></dl>
  </section>
${onlyLive(`
  <section class="card downloads" id="downloads" aria-labelledby="downloads-h">
    <h2 id="downloads-h">Download results</h2>
    <div class="buttons">
      <button type="button" data-format="json">JSON</button>
      <button type="button" data-format="aiperf">AIPerf JSON</button>
      <button type="button" data-format="csv">CSV</button>
      <button type="button" data-format="report">Report (HTML)</button>
    </div>
    <span id="download-status" class="muted" aria-live="polite"></span>
  </section>
`)}
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

  <section class="card" id="regions-card" aria-labelledby="regions-h" hidden>
    <div class="card-head">
      <h2 id="regions-h">Regions</h2>
      <span class="muted">what users in each place see</span>
    </div>
    <div class="table-wrap">
      <table id="region-results">
        <thead><tr><th>Region</th><th class="num">Agents</th><th class="num">Requests</th><th class="num">TTFT p50</th><th class="num">TTFT p99</th><th class="num">Latency p50</th><th class="num">Latency p99</th><th class="num">Error %</th><th>Latency p99, compared</th></tr></thead>
        <tbody></tbody>
      </table>
    </div>
  </section>

  <section class="charts" aria-label="Charts">
    <figure class="card chart" id="chart-throughput" data-points="0">
      <figcaption><h2>Throughput</h2><span class="muted">per second, by completion time, 5 s moving average</span></figcaption>
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
        <thead><tr><th>Metric</th>${TABLE_STATS.map((k) => `<th class="num" data-stat="${k}">${k}</th>`).join("")}</tr></thead>
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
<footer class="muted" id="footer">${
    live
      ? "The read token stays in this page's URL fragment and is never sent in a URL."
      : "Saved by edgeperf: this file holds the run's results and draws them without any network access."
  }</footer>`;
}

/** The browser module of the catalog, so the dashboard names no metric itself. */
export function metricsModule(): string {
  return `export const METRICS = ${JSON.stringify(METRICS)};\n`;
}

/** The files a report is built from, by the name the dashboard's modules import them by. */
export interface ReportAssets {
  /** uPlot's IIFE build (node_modules/uplot/dist/uPlot.iife.min.js): defines the global uPlot. */
  uplotJs: string;
  uplotCss: string;
  dashboardCss: string;
  /** The dashboard's modules (worker/dashboard/*.ui.js), by file name; report.ui.js is the entry. */
  modules: Record<string, string>;
}

/** The modules a report links, besides metrics.ui.js, which is generated from the catalog. */
export const REPORT_MODULES = ["charts.ui.js", "render.ui.js", "results.ui.js", "report.ui.js"] as const;
const ENTRY = "report.ui.js";

export interface Report {
  html: string;
  /** The policy in the file's <meta>, for a server to send as a header too. */
  csp: string;
}

const IMPORT = /^import\s*\{([^}]*)\}\s*from\s*"\.\/([\w.-]+)";?/gm;
const EXPORT = /^export\s+((?:async\s+)?(?:function\*?|const|let|class)\s+([A-Za-z_$][\w$]*))/gm;

/**
 * The dashboard's modules as one script: each module a function scope returning its
 * exports, in dependency order from the entry. Handles the two forms these modules use
 * (named imports of a sibling, `{ a, b as c }` from ./x.ui.js, and `export` of a
 * function, const, let or class) and refuses anything else, so a module written another way fails the report's tests
 * instead of silently breaking the file.
 */
export function linkModules(modules: Record<string, string>, entry: string): string {
  const order: string[] = [];
  const visiting = new Set<string>();
  const visit = (name: string) => {
    if (order.includes(name)) return;
    if (visiting.has(name)) throw new Error(`report: import cycle through ${name}`);
    const source = modules[name];
    if (source === undefined) throw new Error(`report: no module ${name}`);
    visiting.add(name);
    for (const m of source.matchAll(IMPORT)) visit(m[2] ?? "");
    visiting.delete(name);
    order.push(name);
  };
  visit(entry);
  const parts = ["const __modules = Object.create(null);"];
  for (const name of order) {
    const exported: string[] = [];
    const body = (modules[name] ?? "")
      .replace(IMPORT, (_, names: string, from: string) => `const {${names.replace(/\bas\b/g, ":")}} = __modules[${JSON.stringify(from)}];`)
      .replace(EXPORT, (_, declaration: string, id: string) => {
        exported.push(id);
        return declaration;
      });
    const stray = /^\s*(import|export)\b.*$/m.exec(body);
    if (stray) throw new Error(`report: ${name} has an import or export the report cannot link: ${stray[0].trim().slice(0, 80)}`);
    parts.push(`__modules[${JSON.stringify(name)}] = (() => {\n${body}\nreturn { ${exported.join(", ")} };\n})();`);
  }
  return parts.join("\n");
}

/** Text that sits inside <script> or <style>: only its end tag could break out of it. */
function rawText(text: string, tag: "script" | "style"): string {
  // `<\/script` means the same in every place a script may hold it (strings, regexps, comments).
  return text.replace(new RegExp(`</(${tag})`, "gi"), "<\\/$1");
}

async function sha256Base64(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** report.html for a results document (final or live). */
export async function buildReport(results: { id: string; status?: string; phase?: string }, assets: ReportAssets): Promise<Report> {
  const uplot = rawText(assets.uplotJs, "script");
  const app = rawText(linkModules({ ...assets.modules, "metrics.ui.js": metricsModule() }, ENTRY), "script");
  const style = rawText(`${assets.uplotCss}\n${assets.dashboardCss}`, "style");
  const [uplotHash, appHash, styleHash] = await Promise.all([sha256Base64(uplot), sha256Base64(app), sha256Base64(style)]);
  const csp = [
    "default-src 'none'",
    `script-src 'sha256-${uplotHash}' 'sha256-${appHash}'`,
    `style-src 'sha256-${styleHash}'`,
    // data: for the empty favicon (without one, the browser asks for /favicon.ico).
    "img-src data:",
    "base-uri 'none'",
    "form-action 'none'",
  ].join("; ");
  // JSON in a data block: `<` escaped, so nothing in the data can end the block. The
  // browser never runs it; report.ui.js parses it.
  const data = JSON.stringify(results).replace(/</g, "\\u003c");
  const title = `edgeperf report · ${results.id.slice(0, 12)} · ${results.status ?? results.phase ?? ""}`;
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<style>${style}</style>
<script type="application/json" id="edgeperf-results">${data}</script>
<script>${uplot}</script>
<script type="module">${app}</script>
</head>
<body data-mode="report">
${dashboardMarkup("report")}
</body>
</html>
`;
  return { html, csp };
}
