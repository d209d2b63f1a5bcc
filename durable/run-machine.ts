// The run lifecycle as data plus pure functions (docs/ARCHITECTURE.md, "The run lifecycle"). No Cloudflare imports: the
// RunCoordinator applies each result and persists it in one synchronous block.
//
//   created ──► running ──► draining ──► complete ──(grace alarm)──► wiped
//
// The machine owns the phase, the two credit ledgers (measured and warmup) and the
// deadlines. Which credit belongs to which agent is the coordinator's business; the
// machine only sees counts, so every function here is O(1).

import { StatusError } from "../contract/errors";
import type { RunLimits } from "../contract/run-plan";
import type { Ledger, Outcome, Phase, StopReason } from "../contract/results";
export type { Ledger, Outcome, Phase, StopReason };

export type { RunLimits };

export interface RunState {
  phase: Phase;
  outcome: Outcome | null;
  stopReason: StopReason | null;
  partial: boolean;
  limits: RunLimits;
  counts: Ledger;
  warmup: Ledger;
  createdAt: number;
  startedAt: number | null;
  /** When the first measured (non-warmup) credit was granted: the rate schedule's origin. */
  measuredStartedAt: number | null;
  /** When the last measured credit was settled: the end of benchmark_duration. */
  lastSettledAt: number | null;
  drainStartedAt: number | null;
  completedAt: number | null;
  /** Next credit number; every seq below it has been granted exactly once. */
  nextSeq: number;
}

export const emptyLedger = (): Ledger => ({ granted: 0, returned: 0, completed: 0, failed: 0, abandoned: 0, outstanding: 0 });

export function createRun(limits: RunLimits, now: number): RunState {
  return {
    phase: "created",
    outcome: null,
    stopReason: null,
    partial: false,
    limits,
    counts: emptyLedger(),
    warmup: emptyLedger(),
    createdAt: now,
    startedAt: null,
    measuredStartedAt: null,
    lastSettledAt: null,
    drainStartedAt: null,
    completedAt: null,
    nextSeq: 0,
  };
}

export function status(s: RunState): "running" | "complete" | "cancelled" {
  if (s.phase !== "complete") return "running";
  return s.outcome === "completed" ? "complete" : "cancelled";
}

export function isAccepting(s: RunState): boolean {
  return s.phase === "created" || s.phase === "running";
}

export function wipeAt(s: RunState): number | null {
  return s.completedAt === null ? null : s.completedAt + s.limits.graceMs;
}

export function drainDeadline(s: RunState): number | null {
  return s.phase === "draining" && s.drainStartedAt !== null ? s.drainStartedAt + s.limits.drainTimeoutMs : null;
}

export function durationDeadline(s: RunState): number | null {
  return s.phase === "running" && s.startedAt !== null && s.limits.durationMs !== null ? s.startedAt + s.limits.durationMs : null;
}

/** Refuses the calls that may only happen before shutdown began (join, lease). */
export function assertAccepting(s: RunState): void {
  if (s.phase === "complete") throw new StatusError(409, "run_complete", "The run is complete.");
  if (s.phase === "draining") throw new StatusError(409, "run_draining", "The run is draining: no new work is accepted.");
}

/** Refuses settling once results are frozen. */
export function assertSettleable(s: RunState): void {
  if (s.phase === "complete") throw new StatusError(409, "run_complete", "The run is complete: results are final.");
}

const clone = (s: RunState): RunState => ({ ...s, counts: { ...s.counts }, warmup: { ...s.warmup } });

/** Warmup credits still to grant; measured credits wait until warmup is fully settled. */
export function warmupPending(s: RunState): number {
  return s.limits.warmupRequests - (s.warmup.granted - s.warmup.returned);
}

/** Measured credits that may still be granted (Infinity without a request budget). */
export function budgetRemaining(s: RunState): number {
  if (s.limits.requests === null) return Number.POSITIVE_INFINITY;
  return s.limits.requests - (s.counts.granted - s.counts.returned);
}

export interface Grant {
  state: RunState;
  /** First seq granted; the grant is [firstSeq, firstSeq + warmup + measured). */
  firstSeq: number;
  warmup: number;
  measured: number;
}

/**
 * Grants up to `max` credits (the caller has applied the agent's share and pacing).
 * Warmup credits come first, and no measured credit is granted while a warmup credit
 * is outstanding, so warmup requests finish before measurement starts. Granting the
 * last credit of the budget begins the drain in the same step.
 */
export function grant(prev: RunState, max: number, now: number): Grant {
  // The caller has applied tick() and persisted it: a drain the deadline began must
  // not be lost in the refusal below.
  assertAccepting(prev);
  const s = clone(prev);
  const firstSeq = s.nextSeq;
  const w = Math.max(0, Math.min(max, warmupPending(s)));
  let m = 0;
  if (w === 0 && warmupPending(s) <= 0 && s.warmup.outstanding === 0) {
    m = Math.max(0, Math.min(max, budgetRemaining(s)));
  }
  if (w + m === 0) return { state: s, firstSeq, warmup: 0, measured: 0 };
  if (s.phase === "created") {
    s.phase = "running";
    s.startedAt = now;
  }
  if (m > 0 && s.measuredStartedAt === null) s.measuredStartedAt = now;
  s.warmup.granted += w;
  s.warmup.outstanding += w;
  s.counts.granted += m;
  s.counts.outstanding += m;
  s.nextSeq += w + m;
  const drained = budgetRemaining(s) <= 0 && warmupPending(s) <= 0 ? beginDrain(s, "budget", now) : s;
  return { state: drained, firstSeq, warmup: w, measured: m };
}

export interface Settlement {
  completed: number;
  failed: number;
  returned: number;
  warmupCompleted: number;
  warmupFailed: number;
  warmupReturned: number;
}

export const noSettlement = (): Settlement => ({
  completed: 0,
  failed: 0,
  returned: 0,
  warmupCompleted: 0,
  warmupFailed: 0,
  warmupReturned: 0,
});

/**
 * Settles outstanding credits. Completion is checked synchronously right here, after
 * the decrement, so the run completes in the same turn as its last settle (the
 * lost-wakeup race of a waiter registered after the check cannot happen).
 */
export function settle(prev: RunState, x: Settlement, now: number): RunState {
  assertSettleable(prev);
  const s = clone(prev);
  const measured = x.completed + x.failed + x.returned;
  const warm = x.warmupCompleted + x.warmupFailed + x.warmupReturned;
  if (measured > s.counts.outstanding || warm > s.warmup.outstanding) {
    throw new StatusError(500, "ledger_violation", "More credits settled than outstanding.");
  }
  s.counts.completed += x.completed;
  s.counts.failed += x.failed;
  s.counts.returned += x.returned;
  s.counts.outstanding -= measured;
  s.warmup.completed += x.warmupCompleted;
  s.warmup.failed += x.warmupFailed;
  s.warmup.returned += x.warmupReturned;
  s.warmup.outstanding -= warm;
  if (x.completed + x.failed > 0) s.lastSettledAt = now;
  return completeIfDrained(s, now);
}

/** Counts outstanding credits as abandoned (dead agent, drain deadline, force stop). */
export function abandon(prev: RunState, measured: number, warmup: number, now: number): RunState {
  if (measured === 0 && warmup === 0) return prev;
  const s = clone(prev);
  if (measured > s.counts.outstanding || warmup > s.warmup.outstanding) {
    throw new StatusError(500, "ledger_violation", "More credits abandoned than outstanding.");
  }
  s.counts.abandoned += measured;
  s.counts.outstanding -= measured;
  s.warmup.abandoned += warmup;
  s.warmup.outstanding -= warmup;
  s.partial = true;
  return completeIfDrained(s, now);
}

function outstanding(s: RunState): number {
  return s.counts.outstanding + s.warmup.outstanding;
}

/** A drain deadline with nothing left outstanding still ends the run. */
function completeAt(s: RunState, at: number): RunState {
  return completeIfDrained(s, at);
}

function completeIfDrained(s: RunState, now: number): RunState {
  if (s.phase !== "draining" || outstanding(s) > 0) return s;
  const done = clone(s);
  done.phase = "complete";
  done.completedAt = now;
  done.outcome = outcomeOf(s.stopReason);
  return done;
}

/** From this instant no credit is ever granted again. */
export function beginDrain(prev: RunState, reason: StopReason, now: number): RunState {
  if (!isAccepting(prev)) return prev;
  const s = clone(prev);
  s.phase = "draining";
  s.stopReason = reason;
  s.drainStartedAt = now;
  // Draining with nothing outstanding completes at once.
  return completeIfDrained(s, now);
}

export interface StopResult {
  state: RunState;
  /** Force stop: the caller must delete every outstanding credit (they were abandoned). */
  abandonAll: boolean;
}

/** POST /stop. Idempotent: stopping a draining run gracefully, or a complete run, changes nothing. */
/** A stop by a user, or by the service drain's deadline (`service_drain`, always a force stop). */
export function stop(prev: RunState, mode: "graceful" | "force", now: number, by: "user" | "service_drain" = "user"): StopResult {
  if (prev.phase === "complete") return { state: prev, abandonAll: false };
  const reason: StopReason = by === "service_drain" ? "service_drain" : mode === "force" ? "force" : "user";
  let s = beginDrain(prev, reason, now);
  if (mode === "force" && s.phase === "draining") {
    s = clone(s);
    if (outstanding(s) > 0) s.stopReason = reason;
    return { state: abandon(s, s.counts.outstanding, s.warmup.outstanding, now), abandonAll: true };
  }
  return { state: s, abandonAll: false };
}

export interface TickResult {
  state: RunState;
  /** The drain deadline passed: the caller must delete every outstanding credit. */
  abandonAll: boolean;
}

/** Applies the deadlines that have passed; safe to call any number of times. */
export function tick(prev: RunState, now: number): TickResult {
  let s = prev;
  const dd = durationDeadline(s);
  if (dd !== null && now >= dd) s = beginDrain(s, "duration", dd);
  const dl = drainDeadline(s);
  if (dl !== null && now >= dl) {
    // Dated at the deadline, not when a (possibly late) alarm noticed it.
    const abandoned = abandon(s, s.counts.outstanding, s.warmup.outstanding, dl);
    return { state: abandoned.phase === "complete" ? abandoned : completeAt(abandoned, dl), abandonAll: true };
  }
  return { state: s, abandonAll: false };
}

/** The earliest time the machine needs to be woken, apart from lease expiries. */
export function nextDeadline(s: RunState): number | null {
  const candidates = [durationDeadline(s), drainDeadline(s), s.phase === "complete" ? wipeAt(s) : null];
  const defined = candidates.filter((t): t is number => t !== null);
  return defined.length > 0 ? Math.min(...defined) : null;
}

export function ledgerHolds(l: Ledger): boolean {
  return l.granted === l.returned + l.completed + l.failed + l.abandoned + l.outstanding && l.outstanding >= 0;
}

/** Budget and duration complete a run; a threshold fails it; anything else stopped it. */
function outcomeOf(reason: StopReason | null): Outcome {
  switch (reason) {
    case "budget":
    case "duration":
    case null:
      return "completed";
    case "threshold":
      return "failed";
    case "user":
    case "force":
    case "start_timeout":
    case "no_agents":
    case "service_drain":
      return "stopped";
  }
}

/** Runs stored by builds before agentTimeoutSeconds existed have no such limit stored. */
const DEFAULT_AGENT_TIMEOUT_MS = 300_000;

export function agentTimeoutMs(s: RunState): number {
  return s.limits.agentTimeoutMs ?? DEFAULT_AGENT_TIMEOUT_MS;
}

/**
 * No agent has been alive since `at` minus the agent timeout: a run that never sent a
 * credit ends at once (start_timeout), one that did drains (no_agents); either way it is
 * then served for its grace window and wiped, so no run waits forever for agents.
 */
export function agentsGone(prev: RunState, at: number): RunState {
  if (!isAccepting(prev)) return prev;
  return beginDrain(prev, prev.phase === "created" ? "start_timeout" : "no_agents", at);
}
