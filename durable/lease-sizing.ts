// How much a lease may hand out, as arithmetic on the run's config and state alone: the
// in-flight pool under a concurrency ramp, how far ahead rate mode and trace replay may
// hand out intended times, and the cap near the end of a request budget. Apart from
// AgentDesk, which reads and writes the store, so each rule reads (and is tested) on its own.

import type { RunConfig } from "../contract/run-plan";
import type { RunState } from "./run-machine";

/**
 * The in-flight pool now: with a ramp in concurrency mode it rises linearly from one to
 * load.concurrency over rampMs from the first credit (AIPerf's
 * --concurrency-ramp-duration); agents see their share grow at their next call.
 */
export function poolAt(cfg: RunConfig, state: RunState, now: number): number {
  const ramp = cfg.rampMs ?? 0;
  if (ramp <= 0 || cfg.rate !== null) return cfg.pool;
  const elapsed = now - (state.startedAt ?? now);
  return Math.max(1, Math.min(cfg.pool, Math.ceil((cfg.pool * elapsed) / ramp)));
}

/**
 * Rate mode and trace replay: the latest intended time (ms after the measured start) a
 * lease may hand out now: leaseAheadMs ahead, and never at or after the end of
 * stop.durationSeconds (counted from the run's start).
 */
export function horizon(cfg: RunConfig, state: RunState, now: number): number {
  const origin = state.measuredStartedAt ?? now;
  const horizon = now - origin + cfg.leaseAheadMs;
  if (state.limits.durationMs === null) return horizon;
  const runToMeasured = origin - (state.startedAt ?? now);
  return Math.min(horizon, state.limits.durationMs - runToMeasured - 1e-6);
}

/**
 * Concurrency mode, near the end of a request budget: one lease grants at most the
 * agent's share of the pool's part of what is left to grant, or its share where that is
 * more. The rest is handed out in shrinking pieces to the agents that ask, and agents ask
 * as they run low, so a faster agent takes more and every agent stays busy until the end.
 * Without it the first agents to ask took the rest into their lease depth and the others
 * went idle: a run of 3,000 requests over six edge agents delivered a mean of 28.0 of 32
 * in flight, 30.3–31.1 with it. Capping what an agent holds at its share of the unfinished
 * work instead (strictly by share, whatever each agent's speed) delivered 26.4–27.9
 * (docs/BENCHMARKS.md). No cap without a budget (`left` infinite).
 */
export function tailGrant(left: number, share: number, pool: number): number {
  if (!Number.isFinite(left)) return Number.POSITIVE_INFINITY;
  return Math.max(Math.min(share, left), Math.ceil((left * share) / Math.max(1, pool)));
}
