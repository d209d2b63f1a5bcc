// What the CLI reads from the public API (README, "The API"). Written against the
// contract rather than imported from durable/views.ts: the CLI talks to any deployed
// version over HTTP, and needs only the fields the contract promises.

export interface Counts {
  granted: number;
  returned: number;
  completed: number;
  failed: number;
  abandoned: number;
  outstanding: number;
}

export interface AgentView {
  agentId: string;
  name: string | null;
  region: string | null;
  alive: boolean;
  outstanding: number;
  inflight: number;
  concurrency: number;
}

export interface Snapshot {
  id: string;
  phase: "created" | "running" | "draining" | "complete";
  status: "running" | "complete" | "cancelled";
  outcome: "completed" | "stopped" | "failed" | null;
  stopReason?: string | null;
  partial: boolean;
  counts: Counts;
  agents: AgentView[];
  createdAt?: string;
  startedAt: string | null;
  drainStartedAt?: string | null;
  completedAt: string | null;
  wipeAt: string | null;
  serverTime?: string;
  live?: { requestThroughput: number | null; errorRate: number | null };
  /** What load was delivered (README, "Delivered load"); absent from servers that predate it. */
  delivered?: Delivered;
}

export interface Delivered {
  concurrency: { target: number | null; mean: number | null };
  rate: { target: number | null; achieved: number | null };
  scheduleLagMs: { p50: number | null; p99: number | null } | null;
}

export interface Metric {
  unit: string;
  avg: number | null;
  min?: number | null;
  max?: number | null;
  std?: number | null;
  count?: number;
  p50?: number | null;
  p90?: number | null;
  p99?: number | null;
  [stat: string]: unknown;
}

export interface ThresholdResult {
  expr: string;
  ok: boolean;
  value: number | null;
}

/** The public form of the spec, as the results document echoes it. */
export interface PublicSpec {
  target?: { url?: string; api?: string; model?: string; stream?: boolean };
  load?: { concurrency?: number; rate?: number; arrival?: string; maxConcurrency?: number };
  stop?: { requests?: number; durationSeconds?: number };
  graceSeconds?: number;
}

/** A caveat on a finished run's numbers: `all_requests_failed`, `generator_bound`, … */
export interface Warning {
  code: string;
  message: string;
}

/** One region's results (README, "Results per region"). */
export interface RegionResults {
  agents: number;
  counts: { completed: number; failed: number; abandoned: number };
  metrics: Record<string, Metric>;
}

export interface Results extends Snapshot {
  final: boolean;
  /** Absent from servers that predate results per region. */
  regions?: Record<string, RegionResults>;
  /** Absent from servers that predate warnings. */
  warnings?: Warning[];
  /** A multi_turn dataset's sessions; null for other runs, absent from older servers. */
  sessions?: { started: number; completed: number; cut: number } | null;
  spec: PublicSpec;
  metrics: Record<string, Metric>;
  errors: Array<{ code: string; type: string; count: number }>;
  thresholds: ThresholdResult[];
}

export interface DrainView {
  phase: "accepting" | "draining" | "drained";
  activeRuns: number;
  /** When still-active runs are force-stopped (ISO); null: never. Absent from older servers. */
  deadline?: string | null;
  /** The oldest 100 active runs. Absent from older servers. */
  activeRunIds?: string[];
}
