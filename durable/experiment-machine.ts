// The experiment lifecycle as data plus pure functions (README, "Experiments"). No
// Cloudflare imports: the Experiment object applies each result and persists it in one
// synchronous block, like the run machine (run-machine.ts) for a run.
//
//   created ──first level's run created──► running ──stop / last level done / level error──► draining
//     ──current level's run complete──► complete ──(grace alarm)──► wiped
//
// A level is one run with the whole run lifecycle. At most one level is `current`; the
// next is chosen only after the current one's run has completed (drained), so no request
// of a level is sent before every request of the previous one has settled. Reaching the
// end with no level under way drains and completes in the same step, as a run whose
// budget is granted with nothing outstanding does.

import type { ExperimentOutcome, ExperimentPlan, ExperimentStopReason, LevelView, SearchEnd } from "../contract/experiment";
import { MAX_SEARCH_LEVELS, bracket, searchStep } from "../contract/experiment-search";
import type { SearchStep, Trial } from "../contract/experiment-search";
import type { Phase, ThresholdResult } from "../contract/results";

/** A level as stored: its view, and what the search reads of it. */
export interface LevelRecord extends LevelView {
  /** Search only: the SLO verdicts on the level's final metrics. */
  slo: ThresholdResult[] | null;
  /** Search only: every SLO held and the run completed on its own; null without results. */
  ok: boolean | null;
}

export interface ExperimentState {
  phase: Phase;
  outcome: ExperimentOutcome | null;
  stopReason: ExperimentStopReason | null;
  createdAt: number;
  startedAt: number | null;
  drainStartedAt: number | null;
  completedAt: number | null;
  graceMs: number;
  /** A sweep's every level from the start (pending until run); a search's levels as it tries them. */
  levels: LevelRecord[];
  /** Index into `levels` of the level under way. */
  current: number | null;
  /** How the current level's run is stopped once the experiment drains: POST /stop's mode. */
  stopMode: "graceful" | "force";
  /** The current level's run has been told to stop in that mode. */
  stopSent: boolean;
  /** Search only: the answer, once the search ended. */
  best: number | null;
  searchEnd: SearchEnd | null;
  /** Bumped on every change: long-polls and event streams wait for it to move. */
  version: number;
}

export function pendingLevel(level: number): LevelRecord {
  return {
    level,
    status: "pending",
    runId: null,
    createdAt: null,
    completedAt: null,
    outcome: null,
    stopReason: null,
    counts: null,
    metrics: null,
    verdicts: [],
    warnings: [],
    error: null,
    slo: null,
    ok: null,
  };
}

export function createExperiment(plan: ExperimentPlan, now: number): ExperimentState {
  return {
    phase: "created",
    outcome: null,
    stopReason: null,
    createdAt: now,
    startedAt: null,
    drainStartedAt: null,
    completedAt: null,
    graceMs: plan.graceMs,
    levels: plan.levels.map(pendingLevel),
    current: null,
    stopMode: "graceful",
    stopSent: false,
    best: null,
    searchEnd: null,
    version: 0,
  };
}

const changed = (s: ExperimentState): ExperimentState => ({ ...s, levels: s.levels.slice(), version: s.version + 1 });

export function isAccepting(s: ExperimentState): boolean {
  return s.phase === "created" || s.phase === "running";
}

export function status(s: ExperimentState): "running" | "complete" | "cancelled" {
  if (s.phase !== "complete") return "running";
  return s.outcome === "completed" ? "complete" : "cancelled";
}

export function wipeAt(s: ExperimentState): number | null {
  return s.completedAt === null ? null : s.completedAt + s.graceMs;
}

export function currentLevel(s: ExperimentState): LevelRecord | null {
  return s.current === null ? null : (s.levels[s.current] ?? null);
}

/**
 * What the search has learnt, in the order tried: every level with results. (A level the
 * experiment's own stop cut short counts as failed, but no step follows a stop, and the
 * best so far is never above a level the search proposed: it cannot change the answer.)
 */
export function trials(s: ExperimentState): Trial[] {
  return s.levels.filter((l) => l.ok !== null).map((l) => ({ level: l.level, ok: l.ok === true }));
}

/** The next level to run (and its index in a sweep), or the end; only asked with no level under way. */
export function nextStep(s: ExperimentState, plan: ExperimentPlan): SearchStep & { index?: number } {
  if (plan.search) {
    const tried = trials(s);
    // Levels without a verdict (results lost) are tried again, but count towards the cap.
    if (s.levels.length >= MAX_SEARCH_LEVELS) return { done: true, best: bracket(tried).lo, end: "level_cap" };
    return searchStep(plan.search, tried);
  }
  const index = s.levels.findIndex((l) => l.status === "pending");
  const level = s.levels[index];
  return level ? { done: false, next: level.level, index } : { done: true, best: null, end: "converged" };
}

function outcomeOf(reason: ExperimentStopReason): ExperimentOutcome {
  return reason === "done" ? "completed" : reason === "user" ? "stopped" : "failed";
}

function completeIfDrained(s: ExperimentState, now: number): ExperimentState {
  if (s.phase !== "draining" || s.current !== null) return s;
  return { ...s, phase: "complete", completedAt: now };
}

/** From this instant no new level starts; with none under way the experiment completes at once. */
export function beginDrain(prev: ExperimentState, reason: ExperimentStopReason, now: number): ExperimentState {
  if (!isAccepting(prev)) return prev;
  const s = changed(prev);
  s.phase = "draining";
  s.stopReason = reason;
  s.outcome = outcomeOf(reason);
  s.drainStartedAt = now;
  s.levels = s.levels.map((l) => (l.status === "pending" ? { ...l, status: "skipped" } : l));
  return completeIfDrained(s, now);
}

/**
 * POST /stop. Idempotent: stopping a draining experiment gracefully, or a complete one,
 * changes nothing; a force stop of a draining one force-stops its current level's run.
 */
export function stop(prev: ExperimentState, mode: "graceful" | "force", now: number): ExperimentState {
  if (prev.phase === "draining" && mode === "force" && prev.stopMode !== "force") {
    return { ...changed(prev), stopMode: "force", stopSent: false };
  }
  if (!isAccepting(prev)) return prev;
  return beginDrain({ ...prev, stopMode: mode }, "user", now);
}

/** The current level's run was told to stop. */
export function stopSent(prev: ExperimentState): ExperimentState {
  return { ...prev, stopSent: true };
}

/** A level is about to start: its run id is chosen (and stored) before the run is created, so a retry creates the same run. */
export function beginLevel(prev: ExperimentState, step: { next: number; index?: number }, runId: string): ExperimentState {
  const s = changed(prev);
  const index = step.index ?? s.levels.length;
  s.levels[index] = { ...(s.levels[index] ?? pendingLevel(step.next)), status: "starting", runId };
  s.current = index;
  s.stopSent = false;
  return s;
}

/** The current level's run exists. */
export function levelStarted(prev: ExperimentState, runCreatedAt: string, now: number): ExperimentState {
  const level = currentLevel(prev);
  if (!level || level.status !== "starting") return prev;
  const s = changed(prev);
  s.levels[s.current!] = { ...level, status: "running", createdAt: runCreatedAt };
  if (s.phase === "created") s.phase = "running";
  s.startedAt ??= now;
  return s;
}

/** The current level ended: its run completed (`record` holds its final figures), or it has no results (`error`). */
export function levelEnded(prev: ExperimentState, record: Partial<LevelRecord>, now: number): ExperimentState {
  const level = currentLevel(prev);
  if (!level) return prev;
  const s = changed(prev);
  s.levels[s.current!] = { ...level, ...record };
  s.current = null;
  s.stopSent = false;
  return completeIfDrained(s, now);
}

/** The current level's run could not be created: the level has an error and the experiment ends. */
export function levelRefused(prev: ExperimentState, error: { code: string; message: string }, now: number): ExperimentState {
  const ended = levelEnded(prev, { status: "error", error, runId: null, ok: false }, now);
  return beginDrain(ended, "level_error", now);
}

/** The current level never started and the experiment is stopping: it is skipped. */
export function levelSkipped(prev: ExperimentState, now: number): ExperimentState {
  return levelEnded(prev, { status: "skipped", runId: null }, now);
}

/** No level is left to run: the search's answer is kept, and the experiment completes. */
export function finish(
  prev: ExperimentState,
  step: { best: number | null; end: SearchEnd },
  search: boolean,
  now: number,
): ExperimentState {
  const s = search ? { ...changed(prev), best: step.best, searchEnd: step.end } : prev;
  return beginDrain(s, "done", now);
}

/** The earliest time the experiment needs its alarm for its own sake: the wipe. Polling the current level is the object's. */
export function nextDeadline(s: ExperimentState): number | null {
  return s.phase === "complete" ? wipeAt(s) : null;
}
