// The results as AIPerf's console shows them: one row per metric with avg, min, max,
// p99, p90, p50 and std; scalars (throughput, counts, duration) as rows with only avg.
// Then the run's outcome, the load it delivered, errors, threshold PASS/FAIL lines and
// warnings, the dashboard link and how long it works, and the exit verdict. Every
// string from the server goes through visible() (escape.ts).

import { METRICS } from "../contract/metric-catalog.ts";
import { visible } from "./escape.ts";
import type { Delivered, Metric, Results, Warning } from "./types.ts";

const STATS = ["avg", "min", "max", "p99", "p90", "p50", "std"] as const;

const fmt2 = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const fmt0 = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

export function formatNumber(v: unknown, integer = false): string {
  if (typeof v !== "number" || !Number.isFinite(v)) return "N/A";
  return (integer ? fmt0 : fmt2).format(v);
}

function rows(results: Results): string[][] {
  const out: string[][] = [];
  for (const { tag, header, kind, precision } of METRICS) {
    const m: Metric | undefined = results.metrics[tag];
    if (!m) continue;
    const name = `${header} (${visible(m.unit)})`;
    if (kind === "distribution") {
      // Like AIPerf, metrics that do not apply (TTFT of a non-streaming run…) are left out.
      if (!m.count) continue;
      out.push([name, ...STATS.map((s) => formatNumber(m[s]))]);
    } else {
      // A scalar with no value does not apply (token throughput of an HTTP run): left out too.
      if (typeof m.avg !== "number" || !Number.isFinite(m.avg)) continue;
      out.push([name, formatNumber(m.avg, precision === 0), ...STATS.slice(1).map(() => "N/A")]);
    }
  }
  return out;
}

/** A box table in the style of rich (which AIPerf uses): heavy header, light body. */
export function renderTable(title: string, header: string[], body: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? "").length)));
  const line = (l: string, fill: string, mid: string, r: string) => l + widths.map((w) => fill.repeat(w + 2)).join(mid) + r;
  const row = (cells: string[], edge: string) => edge + cells.map((c, i) => ` ${c.padStart(widths[i] ?? 0)} `).join(edge) + edge;
  const total = widths.reduce((a, w) => a + w + 3, 1);
  return [
    title.padStart(Math.floor((total + title.length) / 2)),
    line("┏", "━", "┳", "┓"),
    row(header, "┃"),
    line("┡", "━", "╇", "┩"),
    ...body.map((r) => row(r, "│")),
    line("└", "─", "┴", "┘"),
  ].join("\n");
}

export function metricsTable(results: Results): string {
  const kind = results.spec?.target?.api === "http" ? "HTTP Metrics" : "LLM Metrics";
  return renderTable(`edgeperf | ${kind}`, ["Metric", ...STATS], rows(results));
}

const STOPPED_BY: Record<string, string> = {
  user: " (stopped by a user)",
  force: " (force-stopped by a user)",
  threshold: " (a threshold failed and the spec says abortOnThresholdFail)",
  start_timeout: " (no agent joined within agentTimeoutSeconds)",
  no_agents: " (every agent died and none came back within agentTimeoutSeconds)",
  service_drain: " (force-stopped by the service drain's deadline)",
};

/** A warning that makes the run's numbers meaningless: the verdict is a failure. */
const FAILING_WARNINGS = new Set(["all_requests_failed"]);

/** The results document's warnings; absent from servers that predate them. */
export function warningsOf(results: Results): Warning[] {
  return Array.isArray(results.warnings) ? results.warnings.filter((w) => typeof w === "object" && w !== null) : [];
}

export interface Verdict {
  exitCode: 0 | 1;
  /** Why the exit code is 1, one reason a line. */
  reasons: string[];
}

/** Exit 1 when a threshold failed, the run was cancelled or partial, or no measured request succeeded. */
export function verdict(results: Results): Verdict {
  const reasons: string[] = [];
  if (!results.final) return { exitCode: 0, reasons };
  const failed = results.thresholds.filter((t) => !t.ok).length;
  if (failed > 0) reasons.push(`${failed} threshold${failed === 1 ? "" : "s"} failed`);
  if (results.status === "cancelled") reasons.push(`the run was cancelled${STOPPED_BY[results.stopReason ?? ""] ?? ""}`);
  if (results.partial)
    reasons.push(
      `the run is partial: ${visible(results.counts.abandoned)} request${results.counts.abandoned === 1 ? " was" : "s were"} abandoned`,
    );
  for (const w of warningsOf(results)) {
    if (FAILING_WARNINGS.has(w.code)) reasons.push(`${visible(w.message)} (${visible(w.code)})`);
  }
  return { exitCode: reasons.length > 0 ? 1 : 0, reasons };
}

export function summary(results: Results, dashboardUrl?: string): string {
  const c = results.counts;
  const v = visible;
  const state = results.final
    ? `${v(results.status)}${results.outcome ? ` (${v(results.outcome)})` : ""}`
    : `${v(results.phase)} (live, not final)`;
  const lines = [
    `Run ${v(results.id)}: ${state}${results.partial ? ", partial" : ""}`,
    `Requests: ${v(c.completed)} completed, ${v(c.failed)} failed, ${v(c.abandoned)} abandoned (granted ${v(c.granted)}, returned unused ${v(c.returned)}, outstanding ${v(c.outstanding)})`,
  ];
  if (results.delivered) lines.push(deliveredLine(results.delivered));
  const sessions = results.sessions;
  if (sessions) {
    lines.push(
      `Sessions: ${v(sessions.started)} started, ${v(sessions.completed)} completed, ${v(sessions.cut)} cut short (requests count turns)`,
    );
  }
  if (results.errors.length > 0) {
    lines.push(`Errors: ${results.errors.map((e) => `${v(e.code)} (${v(e.type)}) × ${v(e.count)}`).join(", ")}`);
  }
  if (results.thresholds.length > 0) {
    lines.push("Thresholds:");
    for (const t of results.thresholds) lines.push(`  ${t.ok === true ? "PASS" : "FAIL"}  ${v(t.expr)}  (value ${formatNumber(t.value)})`);
  }
  for (const w of warningsOf(results)) lines.push(`Warning: ${v(w.message)} (${v(w.code)})`);
  if (dashboardUrl) lines.push(`Dashboard: ${v(dashboardUrl)}`, `  ${dashboardLifetime(results)}`);
  return lines.join("\n");
}

/** README, "Delivered load", in one line: mean concurrency of its target, achieved rate, schedule lag. */
export function deliveredLine(d: Delivered): string {
  const of = (value: number | null, target: number | null) =>
    `${formatNumber(value)}${typeof target === "number" ? ` of ${formatNumber(target, Number.isInteger(target))}` : ""}`;
  const lag = d.scheduleLagMs
    ? `schedule lag p50 ${formatNumber(d.scheduleLagMs.p50)} ms, p99 ${formatNumber(d.scheduleLagMs.p99)} ms`
    : "no schedule lag (closed loop)";
  return `Delivered: concurrency ${of(d.concurrency?.mean ?? null, d.concurrency?.target ?? null)} (mean in flight) · rate ${of(d.rate?.achieved ?? null, d.rate?.target ?? null)} req/s achieved · ${lag}`;
}

const clock = (iso: string) => new Date(iso).toLocaleTimeString("en-GB", { hour12: false });

/**
 * How long the dashboard link works: the run serves its results for its grace window
 * after completing, then is wiped, and the link finds nothing. Times are this machine's
 * local clock; "in N s" is reckoned on the server's, so a skewed clock cannot shift it.
 */
export function dashboardLifetime(results: Results): string {
  const grace = results.spec?.graceSeconds;
  if (!results.final || !results.wipeAt) {
    const window = typeof grace === "number" ? `its grace window (${grace} s)` : "its grace window";
    return `(works while the run goes on and for ${window} after it ends; then the run is wiped and the link stops working)`;
  }
  const left = Math.round((Date.parse(results.wipeAt) - Date.parse(results.serverTime ?? results.wipeAt)) / 1000);
  if (!(left > 0)) return `(no longer works: the run was wiped at ${visible(clock(results.wipeAt))}, when its grace window ended)`;
  return `(works until ${visible(clock(results.wipeAt))}, in ${left} s: then the run's grace window ends and the server wipes it)`;
}

/**
 * README, "Results per region": one row a region (region, agents, requests, TTFT and
 * latency p50/p99, error rate); nothing when the run has at most one region.
 */
export function regionsTable(results: Results): string | null {
  const regions = Object.entries(results.regions ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (regions.length < 2) return null;
  const stat = (m: Metric | undefined, s: "p50" | "p99" | "avg") => formatNumber(m?.[s]);
  const body = regions.map(([name, r]) => [
    visible(name),
    String(r.agents),
    formatNumber(r.counts.completed + r.counts.failed, true),
    stat(r.metrics.time_to_first_token, "p50"),
    stat(r.metrics.time_to_first_token, "p99"),
    stat(r.metrics.request_latency, "p50"),
    stat(r.metrics.request_latency, "p99"),
    stat(r.metrics.request_error_rate, "avg"),
  ]);
  return renderTable(
    "edgeperf | Per Region",
    ["Region", "Agents", "Requests", "TTFT p50", "TTFT p99", "Latency p50", "Latency p99", "Error %"],
    body,
  );
}

export function renderResults(results: Results, dashboardUrl?: string): string {
  const regions = regionsTable(results);
  return `${metricsTable(results)}\n${regions ? `${regions}\n` : ""}${summary(results, dashboardUrl)}\n`;
}
