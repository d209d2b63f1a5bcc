// Browser side: the dashboard's entry module. Reads the run id from the path and the
// read token from the fragment (#token=…), then follows the run:
//
// 1. GET /v1/runs/:id/results once: the spec (for progress), metrics and time series.
// 2. GET /v1/runs/:id/events as Server-Sent Events, read with fetch() and a stream
//    reader, because EventSource cannot send an Authorization header. Each `status`
//    event updates the header, progress, delivered load and agents; the heavier results
//    document (for charts and the table) is fetched again every RESULTS_EVERY_MS on the
//    page's own clock, one request at a time, so the charts keep pace with "Elapsed".
//    A stream lives a few minutes: the server ends it with `event: reconnect`, and the
//    page opens a new one at once with Last-Event-ID (the id of the last event it read).
//    A stream that drops after it delivered events is reopened the same way, after the
//    server's `retry:` delay. Snapshots are whole states: nothing shown is cleared, and
//    nothing missed in between is needed; a run that completed meanwhile answers the new
//    stream with `complete` at once.
// 3. If a stream cannot be opened, or breaks before its first event (a proxy that
//    buffers or blocks streaming), poll GET /results every POLL_MS instead.
// 4. On `complete` (or a final document), render the final results and count down to
//    the end of the grace window, when the server wipes the run.
// 5. A run that cannot be shown (no token, a token that does not open it, wiped before
//    the page opened) says so in the badge and the notice, and shows no empty sections.
//
// The token only ever travels in an Authorization header, to this origin.

import { createCharts } from "./charts.ui.js";
import { renderAgents, renderConnection, renderGone, renderHeader, renderProgress, renderWipe } from "./render.ui.js";
import { installDownloads } from "./downloads.ui.js";
import { renderDelivered, renderRegions, renderResults } from "./results.ui.js";
import { HttpError, apiWith, fatal, followEvents, streamUntilDone } from "./http.ui.js";

const POLL_MS = 2_000;
const RESULTS_EVERY_MS = 1_000;

const runId = decodeURIComponent(location.pathname.split("/")[2] ?? "");
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const base = `/v1/runs/${encodeURIComponent(runId)}`;

const state = {
  snapshot: null,
  results: null,
  /** server clock − local clock, from the last snapshot: the countdown uses the server's. */
  skewMs: 0,
  /** When the last results request went out: the tick sends the next one RESULTS_EVERY_MS later. */
  resultsRequestedAt: 0,
  resultsInFlight: false,
  wiped: false,
  /** The id of the last event read: sent as Last-Event-ID when a stream is reopened. */
  lastEventId: null,
  /** The server's `retry:` delay: how long to wait before reopening a dropped stream. */
  retryMs: 1_000,
  /** Following over SSE: the tick refreshes the results (polling fetches them itself). */
  streaming: false,
};

let charts = null;

const api = apiWith(token);

const serverNow = () => Date.now() + state.skewMs;

function applySnapshot(s) {
  // A status event can trail the final document it preceded on the wire; the final wins.
  if (state.results?.final && s !== state.results) return;
  state.snapshot = s;
  state.skewMs = Date.parse(s.serverTime) - Date.now();
  renderHeader(s, state.results?.spec);
  renderProgress(s, state.results?.spec, serverNow());
  renderAgents(s, serverNow());
  renderDelivered(s.delivered);
  renderRegions(s.regions);
  renderWipe(s.wipeAt, serverNow());
}

function applyResults(r) {
  if (state.results?.final && !r.final) return;
  state.results = r;
  applySnapshot(r);
  renderResults(r);
  charts?.update(r);
}

async function loadResults() {
  applyResults(await (await api(`${base}/results`)).json());
}

/**
 * Results for the charts while the run goes on: at most one request at a time. Timed from
 * when the previous one was sent (a little early is fine), so a one-second tick sends one
 * every second rather than every other second.
 */
function maybeRefreshResults() {
  if (state.resultsInFlight || state.results?.final || Date.now() - state.resultsRequestedAt < RESULTS_EVERY_MS - 200) return;
  state.resultsInFlight = true;
  state.resultsRequestedAt = Date.now();
  loadResults()
    .catch(() => {}) // the next tick tries again
    .finally(() => (state.resultsInFlight = false));
}

/**
 * Follows the run over one stream after another until it completes. Returns early, for
 * polling to take over, when a stream cannot be opened or ends before its first event.
 */
async function stream() {
  state.streaming = true;
  try {
    const follow = () =>
      followEvents(
        api,
        `${base}/events`,
        state,
        (event, payload) => {
          if (event === "status") applySnapshot(payload);
          else if (event === "complete") applyResults(payload);
        },
        "run_not_found",
      );
    await streamUntilDone(follow, state, (label) => renderConnection("live", label));
  } finally {
    state.streaming = false;
  }
}

async function poll() {
  renderConnection("polling", "polling every 2 s");
  while (!state.results?.final) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    try {
      await loadResults();
      renderConnection("polling", "polling every 2 s");
    } catch (e) {
      if (fatal(e)) throw e;
      renderConnection("offline", "reconnecting…");
    }
  }
}

async function follow() {
  try {
    await loadResults();
  } catch (e) {
    if (fatal(e)) throw e; // otherwise the network blinked: polling retries
  }
  if (!state.results?.final && state.results) await stream();
  if (!state.results?.final) await poll();
  renderConnection("final", "final results");
}

function tick() {
  const s = state.snapshot;
  if (!s) return;
  renderWipe(s.wipeAt, serverNow());
  if (s.phase !== "complete") {
    renderProgress(s, state.results?.spec, serverNow());
    if (s.phase !== "created" && state.streaming) maybeRefreshResults();
  } else if (!state.wiped && s.wipeAt && Date.parse(s.wipeAt) <= serverNow()) {
    // Only the JSON download works without the server: the page holds the final document.
    state.wiped = true;
    for (const b of document.querySelectorAll("button[data-format]")) b.disabled = b.dataset.format !== "json";
  }
}

function explain(e) {
  if (e instanceof HttpError && e.status === 404) return "No such run: it may have finished and been wiped after its grace window.";
  if (e instanceof HttpError && (e.status === 401 || e.status === 403)) return "The token in this page's URL is not valid for this run.";
  return `Could not load the run: ${e.message}`;
}

function main() {
  window.addEventListener("hashchange", () => location.reload());
  document.getElementById("run-id").textContent = runId.slice(0, 12);
  if (!token) {
    renderConnection("offline", "no token");
    renderGone(
      401,
      "This page needs the run's read token in its URL fragment: /runs/<id>#token=<read token>. The fragment is never sent to the server.",
    );
    return;
  }
  installDownloads({
    runId,
    // The final document is already here, and outlives the server's copy.
    held: () => (state.results?.final ? state.results : null),
    fetch: async (path) => (await api(`${base}${path}`)).blob(),
  });
  try {
    charts = createCharts();
  } catch (e) {
    document.getElementById("notice").hidden = false;
    document.getElementById("notice").textContent = `Charts are unavailable: ${e.message}`;
  }
  setInterval(tick, 1_000);
  follow().catch((e) => {
    renderConnection("offline", "stopped");
    // Once the final results are on screen, a wiped run is no error: the page keeps them.
    if (!state.results?.final) renderGone(e instanceof HttpError ? e.status : 0, explain(e));
  });
}

main();
