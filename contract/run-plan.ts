// A RunSpec and the service's caps become a run plan here, and only here: the handler
// that creates a run and the RunCoordinator that runs it both take this result, so the
// pool, the rate, the edge agents and every limit are derived once (docs/ARCHITECTURE.md,
// "The run plan").

import type { Config } from "./config";
import type { RunSpec } from "./spec";

/** How long a lease lives without a renewal before its credits are abandoned. */
export const LEASE_TTL_MS = 15_000;
/** How often agents report. */
export const REPORT_INTERVAL_MS = 1_000;
/** Rate mode: how far ahead of its intended send time a credit is handed out. */
export const LEASE_AHEAD_MS = 1_000;
/** Edge agents when the spec does not say: one per this many requests in flight… */
const CONCURRENCY_PER_EDGE_AGENT = 16;
/** …or per this rate (requests/s)… */
const RATE_PER_EDGE_AGENT = 100;
/** …and at most this many. */
const MAX_DEFAULT_EDGE_AGENTS = 16;

/** What the coordinator needs of a run besides its spec; stored with the run. */
export interface RunConfig {
  id: string;
  /** In-flight pool split into shares: load.concurrency, or load.maxConcurrency / the operator cap in rate mode. */
  pool: number;
  rate: number | null;
  arrival: "constant" | "poisson" | "gamma";
  /** Gamma arrivals' shape; absent otherwise (and in runs stored before it existed). */
  smoothness?: number;
  /** load.rampSeconds in ms: the pool, or the rate, rises linearly to its target over this long; absent: no ramp. */
  rampMs?: number;
  seed: number;
  leaseTtlMs: number;
  reportIntervalMs: number;
  /** Rate mode: how far ahead of its intended send time a credit is handed out. */
  leaseAheadMs: number;
  maxAgents: number;
  /** LoadAgent Durable Objects to start with the run, placed round-robin over `regions`. */
  edgeAgents: number;
  regions: string[];
}

/** The lifecycle's limits, in milliseconds and credits (the run machine's input). */
export interface RunLimits {
  /** stop.requests: measured credits that may be granted net of returns; null = no budget. */
  requests: number | null;
  warmupRequests: number;
  durationMs: number | null;
  drainTimeoutMs: number;
  graceMs: number;
  /** With no live agent for this long the run ends (start_timeout, or no_agents once it has sent). */
  agentTimeoutMs: number;
}

export interface RunPlan {
  config: RunConfig;
  limits: RunLimits;
}

/**
 * Edge agents when the spec does not say: one per 16 requests in flight (or per 100/s of
 * rate), so no agent waits on more than a few connections at once; at most 16.
 */
export function defaultEdgeAgents(spec: RunSpec, maxAgents: number): number {
  const load = spec.load;
  const want =
    "rate" in load
      ? Math.max(Math.ceil(load.rate / RATE_PER_EDGE_AGENT), Math.ceil((load.maxConcurrency ?? 0) / CONCURRENCY_PER_EDGE_AGENT))
      : Math.ceil(load.concurrency / CONCURRENCY_PER_EDGE_AGENT);
  return Math.max(1, Math.min(want, MAX_DEFAULT_EDGE_AGENTS, maxAgents));
}

/** The plan for run `id` from a validated spec and the operator's config. */
export function planRun(id: string, spec: RunSpec, cfg: Config): RunPlan {
  const { load, stop } = spec;
  const config: RunConfig = {
    id,
    pool: "rate" in load ? (load.maxConcurrency ?? cfg.maxConcurrency) : load.concurrency,
    rate: "rate" in load ? load.rate : null,
    arrival: "rate" in load ? load.arrival : "constant",
    ...("rate" in load && load.smoothness !== undefined ? { smoothness: load.smoothness } : {}),
    ...(load.rampSeconds !== undefined ? { rampMs: Math.round(load.rampSeconds * 1000) } : {}),
    seed: spec.workload.seed,
    leaseTtlMs: LEASE_TTL_MS,
    reportIntervalMs: REPORT_INTERVAL_MS,
    leaseAheadMs: LEASE_AHEAD_MS,
    maxAgents: cfg.maxAgents,
    edgeAgents: spec.agents?.edge ?? defaultEdgeAgents(spec, cfg.maxAgents),
    regions: spec.agents?.regions ?? [],
  };
  const limits: RunLimits = {
    requests: stop.requests ?? null,
    warmupRequests: spec.warmup.requests,
    durationMs: stop.durationSeconds === undefined ? null : Math.round(stop.durationSeconds * 1000),
    drainTimeoutMs: Math.round(spec.drainTimeoutSeconds * 1000),
    graceMs: spec.graceSeconds * 1000,
    agentTimeoutMs: spec.agentTimeoutSeconds * 1000,
  };
  return { config, limits };
}
