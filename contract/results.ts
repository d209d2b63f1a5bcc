// The documents the API answers with: the status snapshot and the results document,
// with the metric document inside (one entry per catalog tag, contract/metric-catalog.ts).
// Built by the RunCoordinator (durable/views.ts), read by the CLI, the dashboard and
// anything else that polls a run. Fields are only ever added (README, "The API").

import type { MetricTag } from "./metric-catalog";

export type Phase = "created" | "running" | "draining" | "complete";
export type Outcome = "completed" | "stopped" | "failed";
/** Why the drain began; the README lists every value. */
export type StopReason = "budget" | "duration" | "user" | "force" | "threshold" | "start_timeout" | "no_agents" | "service_drain";

/** The load the run delivered, beside what it asked for (README, "Delivered load"). */
export interface Delivered {
  /** target: load.concurrency (null in rate mode); mean: time-weighted requests in flight over the measured period. */
  concurrency: { target: number | null; mean: number | null };
  /** target: load.rate (null in concurrency mode); achieved: settled measured requests per second. */
  rate: { target: number | null; achieved: number | null };
  /** Rate mode: how late requests were sent after their intended time; null in concurrency mode. */
  scheduleLagMs: { p50: number | null; p99: number | null } | null;
}

/** One region's results (README, "Results per region"). */
export interface RegionView {
  /** Agents whose results count under this region. */
  agents: number;
  counts: { completed: number; failed: number; abandoned: number };
  /** The same tags and stats as the run's metrics, over the run's benchmark duration. */
  metrics: MetricsDocument;
}

/** A warning in the results document: the run ended, but its numbers need a caveat. */
export interface Warning {
  /** `all_requests_failed`, `generator_bound`, … */
  code: string;
  message: string;
}

/** granted = returned + completed + failed + abandoned + outstanding, always. */
export interface Ledger {
  granted: number;
  returned: number;
  completed: number;
  failed: number;
  abandoned: number;
  outstanding: number;
}

export interface Quantiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface Bucket {
  /** Start of the bucket, seconds since the measured phase began. */
  t: number;
  completed: number;
  failed: number;
  outputTokens: number;
  latency: Quantiles | null;
  ttft: Quantiles | null;
}

export interface TimeSeriesView {
  bucketSeconds: number;
  buckets: Bucket[];
}

export type Percentile = "p1" | "p5" | "p10" | "p25" | "p50" | "p75" | "p90" | "p95" | "p99" | "p999";

export interface DistributionMetric extends Record<Percentile, number | null> {
  unit: string;
  avg: number | null;
  min: number | null;
  max: number | null;
  sum: number | null;
  std: number | null;
  count: number;
}

export interface ScalarMetric {
  unit: string;
  avg: number | null;
}

export type MetricsDocument = Record<MetricTag, DistributionMetric | ScalarMetric>;

export interface ErrorSummaryEntry {
  code: string;
  type: string;
  count: number;
}

export interface AgentView {
  agentId: string;
  name: string | null;
  region: string | null;
  /** The Cloudflare colo the agent said it runs in (edge agents; "local" in wrangler dev). */
  colo: string | null;
  /**
   * How often the clock the agent measured with ticks, in ms, as it said at join: 1 for
   * edge agents (workerd's clock; their durations are spread over the tick), 0 for the
   * Node agent's fine clock; null for an agent that did not say.
   */
  clockTickMs: number | null;
  alive: boolean;
  outstanding: number;
  inflight: number;
  concurrency: number;
  lastSeenAt: string;
}

export interface Snapshot {
  id: string;
  phase: Phase;
  status: "running" | "complete" | "cancelled";
  outcome: Outcome | null;
  stopReason: StopReason | null;
  partial: boolean;
  counts: Ledger;
  warmup: Ledger;
  agents: AgentView[];
  createdAt: string;
  startedAt: string | null;
  drainStartedAt: string | null;
  completedAt: string | null;
  wipeAt: string | null;
  serverTime: string;
  live: {
    requestThroughput: number | null;
    latencyP50: number | null;
    latencyP99: number | null;
    ttftP50: number | null;
    errorRate: number | null;
  };
  delivered: Delivered;
  /** Results per region, keyed by region (an agent's placement or name, else its colo). */
  regions: Record<string, RegionView>;
  /** A multi_turn dataset's sessions (README, "Datasets and workloads"); null for other runs. */
  sessions: SessionCounts | null;
}

/** Sessions as agents counted them: started, ended after their last turn, and cut short (a stop or drain between turns, or a failed turn). */
export interface SessionCounts {
  started: number;
  completed: number;
  cut: number;
}

export interface ThresholdResult {
  expr: string;
  ok: boolean;
  value: number | null;
}

export interface Results extends Snapshot {
  final: boolean;
  warnings: Warning[];
  spec: unknown;
  metrics: MetricsDocument;
  errors: ErrorSummaryEntry[];
  thresholds: ThresholdResult[];
  timeseries: TimeSeriesView;
}
