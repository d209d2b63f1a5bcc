// The documents a run answers with: the status snapshot and the results document
// (README, "The API"). Pure functions of stored state.

import { parseThreshold } from "../contract/spec";
import type { MetricsDocument, ErrorSummaryEntry, RunMetrics } from "./metrics";
import type { Ledger, Outcome, Phase, RunState, StopReason } from "./run-machine";
import { status, wipeAt } from "./run-machine";
import type { AgentRow } from "./rows";
import type { TimeSeriesView } from "./timeseries";
import type { AgentView, Delivered, RegionView, Results, SessionCounts, Snapshot, ThresholdResult, Warning } from "../contract/results";
import type { RunConfig } from "../contract/run-plan";
import { connectionBound, generatorBound } from "./delivered";
export type { AgentView, Results, Snapshot, ThresholdResult };

const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

/** benchmark_duration: first measured grant → last measured settle (or now while running), coordinator clock. */
export function benchmarkDurationMs(s: RunState, now: number): number {
  if (s.measuredStartedAt === null) return 0;
  const end = s.phase === "complete" ? (s.lastSettledAt ?? s.completedAt ?? now) : now;
  return Math.max(0, end - s.measuredStartedAt);
}

function stat(doc: MetricsDocument, tag: keyof MetricsDocument, key: string): number | null {
  const entry = doc[tag] as unknown as Record<string, unknown>;
  const v = entry[key];
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

export function buildSnapshot(
  id: string,
  s: RunState,
  agents: AgentRow[],
  joined: { colos: ReadonlyArray<string | null>; ticks: ReadonlyArray<number | null> },
  metrics: RunMetrics,
  delivered: Delivered,
  regions: Record<string, RegionView>,
  sessions: SessionCounts | null,
  now: number,
): Snapshot {
  const doc = metrics.document(benchmarkDurationMs(s, now));
  return {
    id,
    phase: s.phase,
    status: status(s),
    outcome: s.outcome,
    stopReason: s.stopReason,
    partial: s.partial,
    counts: { ...s.counts },
    warmup: { ...s.warmup },
    agents: agents.map((a) => ({
      agentId: a.id,
      name: a.name,
      region: a.region,
      colo: joined.colos[a.ord] ?? null,
      clockTickMs: joined.ticks[a.ord] ?? null,
      alive: a.alive,
      outstanding: a.outstanding,
      inflight: a.inflight,
      concurrency: a.shareSent,
      lastSeenAt: new Date(a.lastSeen).toISOString(),
    })),
    createdAt: new Date(s.createdAt).toISOString(),
    startedAt: iso(s.startedAt),
    drainStartedAt: iso(s.drainStartedAt),
    completedAt: iso(s.completedAt),
    wipeAt: iso(wipeAt(s)),
    serverTime: new Date(now).toISOString(),
    live: {
      requestThroughput: stat(doc, "request_throughput", "avg"),
      latencyP50: stat(doc, "request_latency", "p50"),
      latencyP99: stat(doc, "request_latency", "p99"),
      ttftP50: stat(doc, "time_to_first_token", "p50"),
      errorRate: stat(doc, "request_error_rate", "avg"),
    },
    delivered,
    regions,
    sessions,
  };
}

const compare: Record<string, (a: number, b: number) => boolean> = {
  "<": (a, b) => a < b,
  "<=": (a, b) => a <= b,
  ">": (a, b) => a > b,
  ">=": (a, b) => a >= b,
  "==": (a, b) => a === b,
};

/** Thresholds on the merged distribution; a metric with no value yet does not pass. */
export function evaluateThresholds(
  doc: MetricsDocument,
  thresholds: Record<string, string>,
  regions: ReadonlyMap<string, MetricsDocument> = new Map(),
): ThresholdResult[] {
  return Object.entries(thresholds).map(([key, expr]) => {
    const t = parseThreshold(key, expr);
    // A region threshold reads that region's document; a region with no results yet has no value.
    const source = t.region === undefined ? doc : regions.get(t.region);
    const value = source ? stat(source, t.metric, t.stat) : null;
    const op = compare[t.op];
    return { expr: `${key}${expr.replace(/\s+/g, "")}`, ok: value !== null && op !== undefined && op(value, t.value), value };
  });
}

export function buildResults(
  snapshot: Snapshot,
  s: RunState,
  metrics: RunMetrics,
  thresholds: Record<string, string>,
  spec: unknown,
  timeseries: TimeSeriesView,
  cfg: RunConfig,
): Results {
  const doc = metrics.document(benchmarkDurationMs(s, Date.parse(snapshot.serverTime)));
  return {
    ...snapshot,
    final: s.phase === "complete",
    warnings: warningsOf(s, snapshot.delivered, cfg),
    spec,
    metrics: doc,
    errors: metrics.errors(),
    thresholds: evaluateThresholds(doc, thresholds, new Map(Object.entries(snapshot.regions).map(([k, v]) => [k, v.metrics]))),
    timeseries,
  };
}

/** Caveats on a finished run's numbers (README, "Warnings"). */
export function warningsOf(s: RunState, delivered: Delivered, cfg: RunConfig): Warning[] {
  const warnings: Warning[] = [];
  const c = s.counts;
  if (s.phase === "complete" && c.completed === 0 && c.failed + c.abandoned > 0) {
    warnings.push({
      code: "all_requests_failed",
      message: `No measured request succeeded: ${c.failed} failed, ${c.abandoned} abandoned. The latency metrics are empty.`,
    });
  }
  const bound = s.phase === "complete" && c.completed + c.failed > 0 ? generatorBound(delivered) : null;
  if (bound) warnings.push(bound);
  const connections = connectionBound(cfg, delivered, s.phase === "complete");
  if (connections) warnings.push(connections);
  return warnings;
}
