// A RunSpec and the service's caps become a run plan here, and only here: the handler
// that creates a run and the RunCoordinator that runs it both take this result, so the
// pool, the rate, the edge agents and every limit are derived once (docs/ARCHITECTURE.md,
// "The run plan").

import type { Config } from "./config";
import type { DatasetType, Sampling } from "./dataset";
import { MOCK_URL } from "./spec";
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
/** …and at most this many (for a target that waits for headers, MAX_AGENTS is the only cap). */
const MAX_DEFAULT_EDGE_AGENTS = 16;
/**
 * Connections one invocation may have waiting for response headers; a seventh waits in
 * the runtime until one of them gets its headers (docs/ARCHITECTURE.md, "Cloudflare's
 * limits"). An edge agent's slice is one alarm invocation, so this is what one edge agent
 * can really have in flight against a target that answers only when it is done.
 */
export const HEADER_WAIT_LIMIT = 6;

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
  /** workload.dataset, resolved when the run is created (durable/run-dataset.ts); absent without one. */
  dataset?: RunDataset;
  /** The target answers only when done (waitsForHeaders); absent in runs stored before it existed. */
  waitsForHeaders?: boolean;
}

/** A run's dataset as the coordinator needs it: enough to hand out item indices, never the items. */
export interface RunDataset {
  id: string;
  type: DatasetType;
  items: number;
  sampling: Sampling;
  /** mooncake_trace: items are sent in file order at their timestamps ÷ replaySpeedup (trace replay). */
  replay: boolean;
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
 * Does a request to this target spend its whole latency waiting for response headers?
 * A non-streaming answer (and an `http` target's, read whole) comes with its headers
 * only when it is done, so each request in flight holds one of the invocation's
 * HEADER_WAIT_LIMIT connections for all of it. A stream's headers come at its start. The
 * built-in mock is served inside the agent's own isolate and opens no connection.
 */
export function waitsForHeaders(target: Pick<RunSpec["target"], "url" | "api" | "stream">): boolean {
  return target.url !== MOCK_URL && (target.api === "http" || !target.stream);
}

/**
 * The most requests one edge agent should have in flight against this target: the
 * header-wait limit for a target that waits for headers, else no limit of its own
 * (its coordinator's share).
 */
export function edgeInflightCap(target: Pick<RunSpec["target"], "url" | "api" | "stream">): number {
  return waitsForHeaders(target) ? HEADER_WAIT_LIMIT : Number.POSITIVE_INFINITY;
}

/**
 * Edge agents when the spec does not say. For a target that waits for headers, one per
 * HEADER_WAIT_LIMIT requests in flight, so no agent's share is queued by the runtime
 * and counted as the target's latency; in rate mode the in-flight count is rate × a
 * latency not known yet, so `maxConcurrency` sizes it when given, else one agent per
 * 100/s; at most MAX_AGENTS. Otherwise one per 16 in flight (or per 100/s), at most 16.
 */
export function defaultEdgeAgents(spec: RunSpec, maxAgents: number): number {
  const load = spec.load;
  const perAgent = waitsForHeaders(spec.target) ? HEADER_WAIT_LIMIT : CONCURRENCY_PER_EDGE_AGENT;
  const want =
    "rate" in load
      ? Math.max(Math.ceil(load.rate / RATE_PER_EDGE_AGENT), Math.ceil((load.maxConcurrency ?? 0) / perAgent))
      : Math.ceil(load.concurrency / perAgent);
  const cap = waitsForHeaders(spec.target) ? maxAgents : Math.min(MAX_DEFAULT_EDGE_AGENTS, maxAgents);
  return Math.max(1, Math.min(want, cap));
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
    waitsForHeaders: waitsForHeaders(spec.target),
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
