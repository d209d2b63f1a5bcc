// What an experiment keeps of a level's run, and the summary it answers with (README,
// "Experiments"). Pure functions of stored state: a level's record is made once, from the
// run's final results document, so the run can be wiped on its own schedule while the
// experiment goes on serving its figures.

import type { ExperimentPlan, ExperimentSummary, KeyMetrics, SearchView, Slo } from "../contract/experiment";
import { bracket } from "../contract/experiment-search";
import type { MetricsDocument, Results, ThresholdResult } from "../contract/results";
import type { ExperimentState, LevelRecord } from "./experiment-machine";
import { currentLevel, status, trials, wipeAt } from "./experiment-machine";
import { evaluateThresholds } from "./views";

/** A level's key figures: tag → the stats kept of it. `goodput` is kept when the run's metrics have it. */
export const KEY_FIGURES: ReadonlyArray<readonly [string, readonly string[]]> = [
  ["request_throughput", ["avg"]],
  ["output_token_throughput", ["avg"]],
  ["time_to_first_token", ["p50", "p99"]],
  ["inter_token_latency", ["p50"]],
  ["output_token_throughput_per_user", ["p50"]],
  ["request_latency", ["p50", "p99"]],
  ["request_error_rate", ["avg"]],
  ["goodput", ["avg"]],
];

const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

export function keyMetrics(doc: MetricsDocument): KeyMetrics {
  const out: KeyMetrics = {};
  for (const [tag, stats] of KEY_FIGURES) {
    const entry = (doc as unknown as Record<string, Record<string, unknown> | undefined>)[tag];
    if (!entry) continue;
    const figures: KeyMetrics[string] = { unit: String(entry.unit ?? "") };
    for (const k of stats) {
      const v = entry[k];
      figures[k] = typeof v === "number" && Number.isFinite(v) ? v : null;
    }
    out[tag] = figures;
  }
  return out;
}

/** The SLO verdicts on a level's final results, each as its own expression (two may share a metric). */
export function sloVerdicts(results: Results, slo: readonly Slo[]): ThresholdResult[] {
  const regions = new Map(Object.entries(results.regions ?? {}).map(([k, v]) => [k, v.metrics]));
  return slo.map((s) => {
    const [verdict] = evaluateThresholds(results.metrics, { [s.key]: s.comparison }, regions);
    return { expr: s.expr, ok: verdict?.ok ?? false, value: verdict?.value ?? null };
  });
}

/**
 * What the experiment keeps of a level whose run completed. A search level passes when
 * every SLO holds and the run ended on its own (a run stopped, failed or timed out without
 * agents shows nothing about the target's capacity at that level).
 */
export function levelRecordOf(results: Results, slo: readonly Slo[] | null): Partial<LevelRecord> {
  const verdicts = slo ? sloVerdicts(results, slo) : null;
  return {
    status: results.status === "complete" ? "complete" : "cancelled",
    createdAt: results.createdAt,
    completedAt: results.completedAt,
    outcome: results.outcome,
    stopReason: results.stopReason,
    counts: { ...results.counts },
    metrics: keyMetrics(results.metrics),
    verdicts: results.thresholds,
    warnings: results.warnings.map((w) => w.code),
    slo: verdicts,
    ok: verdicts ? results.outcome === "completed" && verdicts.every((v) => v.ok) : null,
  };
}

function searchView(s: ExperimentState, plan: ExperimentPlan): SearchView | null {
  if (!plan.search) return null;
  const { over, min, max } = plan.search;
  const tried = s.levels
    .filter((l) => l.slo !== null || l.status === "error")
    .map((l) => ({ level: l.level, ok: l.ok === true, verdicts: l.slo ?? [], runId: l.runId }));
  // While the search goes on (or after a stop), the best so far; once it ended, its answer.
  const best = s.searchEnd !== null ? s.best : bracket(trials(s)).lo;
  const end = s.searchEnd ?? (s.stopReason === "user" ? "stopped" : s.stopReason === "level_error" ? "level_error" : null);
  return { over, slo: plan.search.slo.map((x) => x.expr), min, max, tried, best, end };
}

export function summaryOf(id: string, s: ExperimentState, plan: ExperimentPlan, now: number): ExperimentSummary {
  const cur = currentLevel(s);
  return {
    id,
    kind: plan.kind,
    over: plan.over,
    phase: s.phase,
    status: status(s),
    outcome: s.outcome,
    stopReason: s.stopReason,
    createdAt: new Date(s.createdAt).toISOString(),
    startedAt: iso(s.startedAt),
    drainStartedAt: iso(s.drainStartedAt),
    completedAt: iso(s.completedAt),
    wipeAt: iso(wipeAt(s)),
    serverTime: new Date(now).toISOString(),
    base: plan.publicBase,
    current: cur ? { level: cur.level, runId: cur.status === "starting" ? null : cur.runId } : null,
    levels: s.levels.map(({ slo: _slo, ok: _ok, ...view }) => view),
    search: searchView(s, plan),
  };
}
