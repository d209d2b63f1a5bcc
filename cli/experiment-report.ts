// An experiment's results on the terminal (README, "Experiments"): the sweep table, one
// row per level in the order the levels ran (for a search, the order it tried them),
// with each level's key figures and verdicts; the search's answer; and the exit verdict.
// Every string from the server goes through visible() (escape.ts).

import type { ExperimentResults, ExperimentSummary, KeyMetrics, LevelView } from "../contract/experiment.ts";
import { visible } from "./escape.ts";
import { formatNumber, renderTable } from "./table.ts";

/** "concurrency 8", "rate 2.5 req/s". */
export function levelName(over: string, level: number): string {
  return over === "concurrency" ? `concurrency ${level}` : `rate ${level} req/s`;
}

const figure = (m: KeyMetrics | null, tag: string, stat: string): number | null => {
  const v = m?.[tag]?.[stat];
  return typeof v === "number" && Number.isFinite(v) ? v : null;
};

/** The figures the table, the CSV and the level lines show, in that order. */
export const FIGURES = [
  { tag: "request_throughput", stat: "avg", header: "Req/s", csv: "request_throughput" },
  { tag: "output_token_throughput", stat: "avg", header: "Output tok/s", csv: "output_token_throughput" },
  { tag: "time_to_first_token", stat: "p50", header: "TTFT p50 (ms)", csv: "time_to_first_token_p50" },
  { tag: "time_to_first_token", stat: "p99", header: "TTFT p99 (ms)", csv: "time_to_first_token_p99" },
  { tag: "inter_token_latency", stat: "p50", header: "ITL p50 (ms)", csv: "inter_token_latency_p50" },
  { tag: "request_latency", stat: "p50", header: "Latency p50 (ms)", csv: "request_latency_p50" },
  { tag: "request_latency", stat: "p99", header: "Latency p99 (ms)", csv: "request_latency_p99" },
  { tag: "goodput", stat: "avg", header: "Goodput", csv: "goodput" },
  { tag: "request_error_rate", stat: "avg", header: "Error %", csv: "request_error_rate" },
] as const;

export const levelFigure = (l: LevelView, tag: string, stat: string) => figure(l.metrics, tag, stat);

/** The level's SLO verdict in a search (null: none yet, or not a search). */
export function sloOk(s: ExperimentSummary, l: LevelView): boolean | null {
  if (!s.search) return null;
  if (l.status === "error") return false;
  const t = l.runId === null ? undefined : s.search.tried.find((x) => x.runId === l.runId);
  return t ? t.ok : null;
}

const STOPPED_BY: Record<string, string> = {
  user: "stopped by a user",
  force: "force-stopped by a user",
  threshold: "a threshold failed and the spec says abortOnThresholdFail",
  start_timeout: "no agent joined within agentTimeoutSeconds",
  no_agents: "every agent died and none came back within agentTimeoutSeconds",
  service_drain: "force-stopped by the service drain's deadline",
};

/**
 * Why a sweep's level fails the exit code, as `run`'s verdict would fail its run: a
 * threshold failed, the run was cancelled or partial, or no measured request succeeded.
 * A search's levels never do: failing an SLO is what a search finds out.
 */
export function levelReasons(s: ExperimentSummary, l: LevelView): string[] {
  if (s.kind === "search") return [];
  const reasons: string[] = [];
  const failed = l.verdicts.filter((t) => !t.ok).length;
  if (failed > 0) reasons.push(`${failed} threshold${failed === 1 ? "" : "s"} failed`);
  if (l.status === "cancelled") reasons.push(`the run was cancelled (${visible(STOPPED_BY[l.stopReason ?? ""] ?? l.stopReason ?? "?")})`);
  if ((l.counts?.abandoned ?? 0) > 0) reasons.push(`the run is partial: ${visible(l.counts?.abandoned)} abandoned`);
  if (l.warnings.includes("all_requests_failed")) reasons.push("no measured request succeeded (all_requests_failed)");
  return reasons;
}

/** A sweep level passes when its run completed with none of the reasons above; a search level, when every SLO held. */
export function levelOk(s: ExperimentSummary, l: LevelView): boolean | null {
  if (s.kind === "search") return sloOk(s, l);
  if (l.status === "error") return false;
  if (l.status !== "complete" && l.status !== "cancelled") return null;
  return levelReasons(s, l).length === 0;
}

const END: Record<string, string> = {
  converged: "the bracket between the highest pass and the lowest failure narrowed to the search's resolution",
  reached_max: "every level up to --search-max passed",
  min_failed: "even --search-min failed",
  level_cap: "the search tried as many levels as it may (32)",
  stopped: "the experiment was stopped",
  level_error: "a level's run could not be created",
};

/** The search's answer in one line; "no level met every SLO" when best is null. */
export function searchLine(s: ExperimentSummary): string | null {
  const q = s.search;
  if (!q) return null;
  const slo = q.slo.map(visible).join(" and ");
  const why = q.end ? `; ended: ${visible(q.end)} (${END[q.end] ?? "?"})` : "";
  if (q.best === null) return `Search: no level met every SLO (${slo})${why}`;
  return `Search: highest ${visible(s.over)} meeting every SLO (${slo}): ${visible(q.best)}${why}`;
}

/** One line for a level that ended, for the progress log. */
export function levelLine(s: ExperimentSummary, l: LevelView, index: number): string {
  const of = s.kind === "sweep" ? ` of ${s.levels.length}` : "";
  const head = `Level ${index + 1}${of} · ${levelName(s.over, l.level)}: ${visible(l.status)}`;
  if (l.status === "error") return `${head}: ${visible(l.error?.code ?? "")}: ${visible(l.error?.message ?? "")}`;
  if (l.status === "skipped" || l.status === "pending") return head;
  const c = l.counts;
  const parts = [head];
  if (c) parts.push(`${visible(c.completed)} completed, ${visible(c.failed)} failed`);
  parts.push(`${formatNumber(levelFigure(l, "request_throughput", "avg"))} req/s`);
  const ttft = levelFigure(l, "time_to_first_token", "p99");
  if (ttft !== null) parts.push(`TTFT p99 ${formatNumber(ttft)} ms`);
  const ok = levelOk(s, l);
  if (s.kind === "search" && ok !== null) parts.push(ok ? "SLO pass" : "SLO fail");
  if (s.kind === "sweep" && l.verdicts.length > 0) parts.push(ok ? "thresholds pass" : "thresholds fail");
  return parts.join(" · ");
}

function verdictCell(s: ExperimentSummary, l: LevelView): string {
  if (s.kind === "search") {
    const ok = sloOk(s, l);
    const best = s.search?.best === l.level && ok === true ? " ◀ best" : "";
    return ok === null ? "–" : `${ok ? "PASS" : "FAIL"}${best}`;
  }
  if (l.verdicts.length === 0) return "–";
  const failed = l.verdicts.filter((t) => !t.ok).length;
  return failed === 0 ? "PASS" : `FAIL ${failed}/${l.verdicts.length}`;
}

export function sweepTable(s: ExperimentSummary): string {
  // Goodput only when some level has it; thresholds only when the base set any.
  const figures = FIGURES.filter(
    (f) => !f.tag.startsWith("request_latency") && (f.tag !== "goodput" || s.levels.some((l) => levelFigure(l, f.tag, f.stat) !== null)),
  );
  const verdicts = s.kind === "search" || s.levels.some((l) => l.verdicts.length > 0);
  const header = [
    s.over === "concurrency" ? "Concurrency" : "Rate (req/s)",
    "Status",
    ...figures.map((f) => f.header),
    ...(verdicts ? [s.kind === "search" ? "SLO" : "Thresholds"] : []),
  ];
  const body = s.levels.map((l) => [
    visible(l.level),
    visible(l.status),
    ...figures.map((f) => formatNumber(levelFigure(l, f.tag, f.stat))),
    ...(verdicts ? [verdictCell(s, l)] : []),
  ]);
  const title = s.kind === "search" ? `edgeperf | Capacity search over ${s.over}` : `edgeperf | Sweep over ${s.over}`;
  return renderTable(title, header, body);
}

const clock = (iso: string) => new Date(iso).toLocaleTimeString("en-GB", { hour12: false });

/** How long the experiment page works: the experiment serves its summary for its grace window, then is wiped. */
export function pageLifetime(r: ExperimentResults): string {
  if (!r.wipeAt) return "(works while the experiment goes on and for its grace window after it ends)";
  const left = Math.round((Date.parse(r.wipeAt) - Date.parse(r.serverTime ?? r.wipeAt)) / 1000);
  if (!(left > 0)) return `(no longer works: the experiment was wiped at ${visible(clock(r.wipeAt))})`;
  return `(works until ${visible(clock(r.wipeAt))}, in ${left} s; each level's run page, linked from it, until that run's own grace window ends)`;
}

export interface ExperimentVerdict {
  exitCode: 0 | 1;
  reasons: string[];
}

/**
 * Exit 0 when the experiment completed: every level ran, or the search ended (with an
 * answer or without one: "no level met every SLO" is an answer). Exit 1 when it was
 * stopped or failed (a level's run could not be created), or when a sweep's level fails
 * as `run` would fail it (levelReasons).
 */
export function experimentVerdict(r: ExperimentResults): ExperimentVerdict {
  const reasons: string[] = [];
  if (r.outcome === "stopped") reasons.push("the experiment was stopped");
  else if (r.outcome === "failed") {
    const bad = r.levels.find((l) => l.status === "error");
    reasons.push(
      `the experiment failed${bad ? `: ${levelName(r.over, bad.level)}: ${visible(bad.error?.message ?? bad.error?.code ?? "")}` : ""}`,
    );
  } else if (r.outcome === null) reasons.push("the experiment has not completed");
  for (const l of r.levels) {
    // A level cut short by the experiment's own stop is said once, above.
    if (r.outcome === "stopped" && (l.stopReason === "user" || l.stopReason === "force")) continue;
    const why = levelReasons(r, l);
    if (why.length > 0) reasons.push(`${levelName(r.over, l.level)}: ${why.join(", ")}`);
  }
  return { exitCode: reasons.length > 0 ? 1 : 0, reasons };
}

export function renderExperiment(r: ExperimentResults, pageUrl: string): string {
  const state = `${visible(r.status)}${r.outcome ? ` (${visible(r.outcome)})` : ""}`;
  const ran = r.levels.filter((l) => l.status === "complete" || l.status === "cancelled").length;
  const lines = [
    sweepTable(r),
    `Experiment ${visible(r.id)}: ${state} · ${r.kind === "search" ? "capacity search" : "sweep"} over ${visible(r.over)} · ${ran} of ${r.levels.length} level${r.levels.length === 1 ? "" : "s"} ran`,
  ];
  const search = searchLine(r);
  if (search) lines.push(search);
  for (const l of r.levels)
    if (l.status === "error") lines.push(`Error: ${levelName(r.over, l.level)}: ${visible(l.error?.code)}: ${visible(l.error?.message)}`);
  lines.push(`Dashboard: ${visible(pageUrl)}`, `  ${pageLifetime(r)}`);
  return `${lines.join("\n")}\n`;
}
