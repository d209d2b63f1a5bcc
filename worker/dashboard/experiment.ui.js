// Browser side: the experiment page's entry module (/experiments/:id#token=…). Reads the
// experiment's id from the path and its read token from the fragment, then follows it:
//
// 1. GET /v1/experiments/:id/events as Server-Sent Events, read with fetch() and a stream
//    reader (EventSource cannot send an Authorization header). Each `status` event is the
//    whole summary: the header, the levels table, the Pareto charts. `complete` carries
//    the final summary. A stream ends after a few minutes with `event: reconnect` (or
//    drops): the page opens a new one with Last-Event-ID.
// 2. If a stream cannot be opened, or ends before its first event (a proxy that buffers
//    streams), it polls GET /v1/experiments/:id every POLL_MS instead.
// 3. While a level runs, its run's status (GET /v1/runs/:runId: the experiment's read
//    token reads every level's run) is read every second for the progress bar: the
//    summary has a level's figures only once its run completed.
// 4. Each level links to its run's dashboard with the same token in the fragment.
//
// Rendering is experiment-render.ui.js's and the charts experiment-charts.ui.js's; the
// token only ever travels in an Authorization header, or in a same-origin link's fragment.

import { createParetoCharts } from "./experiment-charts.ui.js";
import { renderHeader, renderLevels, renderOverview, renderWipe } from "./experiment-render.ui.js";
import { $, renderConnection, renderGone, showNotice } from "./render.ui.js";
import { HttpError, apiWith, fatal, followEvents, streamUntilDone } from "./http.ui.js";

const POLL_MS = 2_000;
const PROGRESS_EVERY_MS = 1_000;

const experimentId = decodeURIComponent(location.pathname.split("/")[2] ?? "");
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const base = `/v1/experiments/${encodeURIComponent(experimentId)}`;

const state = {
  summary: null,
  /** server clock − local clock, from the last summary: the wipe countdown uses the server's. */
  skewMs: 0,
  lastEventId: null,
  retryMs: 1_000,
  /** The current level's run status: { runId, snapshot }. */
  run: null,
  runInFlight: false,
};

let charts = null;

const api = apiWith(token);

const serverNow = () => Date.now() + state.skewMs;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function applySummary(s) {
  // A status event can trail the final summary it preceded on the wire; the final wins.
  if (state.summary?.phase === "complete" && s.phase !== "complete") return;
  state.summary = s;
  state.skewMs = Date.parse(s.serverTime) - Date.now();
  renderHeader(s);
  renderOverview(s, state.run);
  renderLevels(s, token);
  renderWipe(s, serverNow());
  charts?.update(s.levels);
}

/** The current level's run status, for the progress bar: one request at a time. */
function refreshRun() {
  const s = state.summary;
  const runId = s && s.phase !== "complete" ? s.current?.runId : null;
  if (!runId || state.runInFlight) return;
  state.runInFlight = true;
  api(`/v1/runs/${encodeURIComponent(runId)}`)
    .then((r) => r.json())
    .then((snapshot) => {
      state.run = { runId, snapshot };
      if (state.summary) renderOverview(state.summary, state.run);
    })
    .catch(() => {}) // the next tick tries again; the summary says how the level ended
    .finally(() => (state.runInFlight = false));
}

/** Streams until the experiment completes; returns early, for polling to take over, when a stream will not work. */
async function stream() {
  const follow = () =>
    followEvents(
      api,
      `${base}/events`,
      state,
      (event, payload) => {
        if (event === "status" || event === "complete") applySummary(payload);
      },
      "experiment_not_found",
    );
  await streamUntilDone(follow, state, (label) => renderConnection("live", label));
}

async function poll() {
  while (state.summary?.phase !== "complete") {
    try {
      applySummary(await (await api(base)).json());
      renderConnection("polling", "polling every 2 s");
    } catch (e) {
      if (fatal(e)) throw e;
      renderConnection("offline", "reconnecting…");
    }
    if (state.summary?.phase !== "complete") await sleep(POLL_MS);
  }
}

function explain(e) {
  if (e instanceof HttpError && e.status === 404) return "No such experiment: it may have finished and been wiped after its grace window.";
  if (e instanceof HttpError && (e.status === 401 || e.status === 403))
    return "The token in this page's URL is not valid for this experiment.";
  return `Could not load the experiment: ${e.message}`;
}

async function follow() {
  await stream();
  if (state.summary?.phase !== "complete") await poll();
  renderConnection("final", "final results");
}

function main() {
  window.addEventListener("hashchange", () => location.reload());
  $("experiment-id").textContent = experimentId.slice(0, 12);
  if (!token) {
    renderConnection("offline", "no token");
    renderGone(401, "This page needs the experiment's read token in its URL fragment: /experiments/<id>#token=<read token>.");
    return;
  }
  try {
    charts = createParetoCharts();
  } catch (e) {
    showNotice(`Charts are unavailable: ${e.message}`);
  }
  setInterval(() => {
    refreshRun();
    if (state.summary) renderWipe(state.summary, serverNow());
  }, PROGRESS_EVERY_MS);
  follow().catch((e) => {
    renderConnection("offline", "stopped");
    // Once the final summary is on screen, a wiped experiment is no error: the page keeps it.
    if (state.summary?.phase !== "complete") renderGone(e instanceof HttpError ? e.status : 0, explain(e));
  });
}

main();
