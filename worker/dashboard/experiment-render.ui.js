// Browser side: renders an experiment's summary into the experiment page's sections
// (experiment-page.ts): the header, the overview with the level under way, the levels
// table with each level's figures, verdict and link to its run's dashboard, and the wipe
// banner. Every value from the server goes in through textContent (render.ui.js's h()).

import { perUser } from "./experiment-charts.ui.js";
import { $, fmt, fmtDuration, h, isNum, kpi } from "./render.ui.js";

const levelName = (over, level) => (over === "concurrency" ? `concurrency ${level}` : `${level} req/s`);
const fig = (m, tag, stat) => (isNum(m?.[tag]?.[stat]) ? m[tag][stat] : null);
const ENDED = new Set(["complete", "cancelled", "error", "skipped"]);

/** Why a search ended (search.end), in words. */
const END = {
  converged: "converged",
  reached_max: "max passed",
  min_failed: "min failed",
  level_cap: "level cap",
  stopped: "stopped",
  level_error: "level error",
};

/** The level's run dashboard: the experiment's read token opens it. */
export function runLink(runId, token) {
  return `/runs/${encodeURIComponent(runId)}#token=${encodeURIComponent(token ?? "")}`;
}

/** A search level's SLO verdict, or a sweep level's thresholds: { ok, text }, or null without one. */
function verdictOf(s, l) {
  if (s.search) {
    if (l.status === "error") return { ok: false, text: "fail" };
    const t = l.runId ? s.search.tried.find((x) => x.runId === l.runId) : null;
    if (!t) return null;
    return { ok: t.ok, text: `${t.ok ? "pass" : "fail"}${t.ok && s.search.best === l.level ? " · best" : ""}` };
  }
  if (!l.verdicts?.length) return null;
  const failed = l.verdicts.filter((v) => !v.ok).length;
  return { ok: failed === 0, text: failed === 0 ? "pass" : `fail ${failed}/${l.verdicts.length}` };
}

export function renderHeader(s) {
  $("experiment-id").textContent = `${s.id.slice(0, 12)}…`;
  $("experiment-id").title = s.id;
  const badge = $("phase");
  badge.dataset.phase = s.phase;
  badge.dataset.outcome = s.outcome ?? "";
  const label = s.phase === "created" ? "starting" : s.phase;
  badge.textContent = s.phase === "complete" && s.outcome ? `complete · ${s.outcome}` : label;
  const t = s.base?.target;
  if (t) $("target").textContent = [t.model, t.url].filter(Boolean).join(" @ ");
  document.title = `edgeperf · ${s.kind} · ${label} · ${s.id.slice(0, 8)}`;
}

/** The overview card; `run` is the current level's run status ({ runId, snapshot }), or null. */
export function renderOverview(s, run) {
  const q = s.search;
  $("experiment-kind").textContent = q
    ? `Capacity search over ${s.over}, ${q.min} to ${q.max}, under ${q.slo.join(" and ")}`
    : `Sweep over ${s.over}: ${s.levels.map((l) => l.level).join(", ")}`;
  const ended = s.levels.filter((l) => ENDED.has(l.status)).length;
  const cur = s.levels.find((l) => l.status === "running" || l.status === "starting");
  const snapshot = cur && run?.runId === cur.runId ? run.snapshot : null;
  const total = snapshot ? (s.base?.stop?.requests ?? null) : null;
  const done = snapshot ? snapshot.counts.completed + snapshot.counts.failed + snapshot.counts.abandoned : null;
  const inLevel = isNum(total) && total > 0 ? Math.min(1, done / total) : 0;
  const bar = $("progress");
  bar.dataset.phase = s.phase;
  // A sweep knows how many levels it has; a search does not, until it ends.
  if (s.phase === "complete") bar.value = 1000;
  else if (q) bar.removeAttribute("value");
  else bar.value = Math.round(((ended + inLevel) / Math.max(1, s.levels.length)) * 1000);
  $("progress-label").textContent =
    s.phase === "complete"
      ? `${ended} level${ended === 1 ? "" : "s"} ended`
      : cur
        ? `Level ${s.levels.indexOf(cur) + 1}${q ? "" : ` of ${s.levels.length}`} · ${levelName(s.over, cur.level)}: ${
            snapshot ? `${snapshot.phase}, ${fmt(done)}${isNum(total) ? ` / ${fmt(total)}` : ""} requests` : cur.status
          }`
        : "choosing the next level";
  const tiles = [
    kpi("levels", "Levels ended", q ? fmt(ended) : `${ended} of ${s.levels.length}`),
    kpi("current", "Current level", cur ? levelName(s.over, cur.level) : "–"),
  ];
  if (q) {
    const best = q.best === null ? (q.end ? "none met the SLO" : "none yet") : levelName(s.over, q.best);
    tiles.push(kpi("best", q.end ? "Answer" : "Best so far", best, "The highest level at which every SLO held"));
    if (q.end) tiles.push(kpi("end", "Search ended", END[q.end] ?? q.end, `search.end: ${q.end}`));
  }
  if (s.phase === "complete") {
    const why = s.outcome !== "completed" && s.stopReason ? ` (${s.stopReason})` : "";
    tiles.push(kpi("outcome", "Outcome", `${s.outcome ?? "–"}${why}`));
  }
  $("kpis").replaceChildren(...tiles);
}

/** The table's figures: [data-col, header, value of a level's metrics]. */
const COLUMNS = [
  ["request_throughput", "Req/s", (m) => fig(m, "request_throughput", "avg")],
  ["output_token_throughput", "Output tok/s", (m) => fig(m, "output_token_throughput", "avg")],
  ["time_to_first_token.p50", "TTFT p50 (ms)", (m) => fig(m, "time_to_first_token", "p50")],
  ["time_to_first_token.p99", "TTFT p99 (ms)", (m) => fig(m, "time_to_first_token", "p99")],
  ["inter_token_latency.p50", "ITL p50 (ms)", (m) => fig(m, "inter_token_latency", "p50")],
  ["per_user", "Tok/s per user", (m) => perUser(m)],
  ["goodput", "Goodput", (m) => fig(m, "goodput", "avg")],
  ["request_error_rate", "Error %", (m) => fig(m, "request_error_rate", "avg")],
];

export function renderLevels(s, token) {
  // Goodput only when a level has it.
  const cols = COLUMNS.filter(([key, , get]) => key !== "goodput" || s.levels.some((l) => get(l.metrics) !== null));
  // A sweep's thresholds column only when the base set thresholds; a search always has its SLO.
  const verdicts = Boolean(s.search) || s.levels.some((l) => l.verdicts?.length > 0);
  const table = $("levels");
  table.tHead.replaceChildren(
    h(
      "tr",
      {},
      h("th", {}, s.over === "concurrency" ? "Concurrency" : "Rate (req/s)"),
      h("th", {}, "Status"),
      ...cols.map(([key, name]) => h("th", { class: "num", "data-col": key }, name)),
      verdicts ? h("th", {}, s.search ? "SLO" : "Thresholds") : null,
      h("th", {}, "Run"),
    ),
  );
  table.tBodies[0].replaceChildren(
    ...s.levels.map((l) => {
      const v = verdictOf(s, l);
      return h(
        "tr",
        { "data-level": l.level, "data-status": l.status, "data-run-id": l.runId, "data-ok": v ? String(v.ok) : null },
        h("th", { scope: "row" }, String(l.level)),
        h("td", { title: l.error ? `${l.error.code}: ${l.error.message}` : null }, l.status),
        ...cols.map(([key, , get]) => {
          const value = get(l.metrics);
          return h("td", { class: "num", "data-col": key, "data-value": value }, fmt(value));
        }),
        verdicts ? h("td", {}, v ? h("span", { class: "verdict" }, v.text) : (l.error?.code ?? "–")) : null,
        h(
          "td",
          {},
          l.runId && l.status !== "starting" ? h("a", { href: runLink(l.runId, token), class: "mono" }, `${l.runId.slice(0, 12)}…`) : "–",
        ),
      );
    }),
  );
}

/** The grace-window banner, on the server's clock. */
export function renderWipe(s, serverNow) {
  const banner = $("wipe");
  if (!s.wipeAt) {
    banner.hidden = true;
    return;
  }
  const left = Date.parse(s.wipeAt) - serverNow;
  banner.hidden = false;
  $("wipe-text").textContent =
    left > 0
      ? `This summary is wiped from the server in ${fmtDuration(left)}; each level's run page works until that run's own grace window ends.`
      : "The experiment has been wiped from the server. This page keeps what it last showed.";
}
