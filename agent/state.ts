// The agent's persistent state and the pure rules that change it. Everything here is
// JSON: a LoadAgent Durable Object stores the state between slices and hands it to a
// fresh engine, which continues exactly where the last slice stopped.

import type { ChatMessage, DatasetType } from "../contract/dataset";
import type { ReportBody, ResultItem } from "../contract/protocol";
import type { RunSpec } from "../contract/spec";

export interface Credit {
  seq: number;
  /** Rate mode: intended send time, ms after the run's start on the coordinator's clock. */
  at?: number;
  warmup?: boolean;
  /** With workload.dataset: the item this credit sends (multi_turn: the session it starts). */
  item?: number;
}

/** A multi_turn session under way on this agent (README, "Datasets and workloads"). */
export interface Session {
  /** The dataset item: the session's turns. */
  item: number;
  /** The next turn to send. */
  turn: number;
  /** Earlier turns' messages and the answers the target really gave, in order. */
  history: ChatMessage[];
  /** Wall-clock ms from which the next turn may go (the turn's delay after the last answer). */
  readyAt: number;
}

export type SessionCounts = NonNullable<ReportBody["sessions"]>;

/**
 * What the run has said about stopping.
 *   running  no stop seen
 *   asking   a lease was refused with run_draining: the next report's answer says how to stop
 *   finish   stop with finishLeased: send the held credits, lease nothing more
 *   return   stop: send nothing new, give every held credit back
 *   gone     the run is complete or wiped: nothing can be settled any more
 */
export type StopMode = "running" | "asking" | "finish" | "return" | "gone";

export interface AgentState {
  version: 1;
  agentId: string;
  spec: RunSpec;
  leaseTtlMs: number;
  reportIntervalMs: number;
  /** Coordinator clock − local wall clock (ms), from the fastest round trip seen. */
  offsetMs: number;
  offsetRttMs: number | null;
  /** The run's start on the coordinator's clock (epoch ms): the origin of credits' `at`. */
  runStartedAt: number | null;
  /** The latest concurrency share answered: the most requests this agent may have in flight. */
  share: number;
  /** Leased, not yet sent; in send order (rate mode: by `at`). */
  held: Credit[];
  /** Settled here, not yet put in a report. */
  results: ResultItem[];
  /** Credits to give back unused in the next report. */
  returning: number[];
  /** A report sent whose answer never came: sent again with the same reportId. */
  unacked: { reportId: string; results: ResultItem[]; returned: number[]; sessions?: SessionCounts; newSessions?: number } | null;
  /** A lease asked for whose answer never came: asked again with the same requestId. */
  openLease: { requestId: string; want: number; sessions?: number } | null;
  stop: StopMode;
  /** Requests this agent has sent, over all slices. */
  sent: number;
  /** With workload.dataset, its type (from the join). */
  datasetType?: DatasetType;
  /** multi_turn: sessions started here and not yet ended (at most the share). */
  sessions?: Session[];
  /** multi_turn: items of sessions the coordinator handed out, not yet started. */
  sessionItems?: number[];
  /** multi_turn: sessions started, completed and cut since the last report. */
  sessionCounts?: SessionCounts;
  /**
   * The pacing estimates (ms, moving averages) behind the lease depth: the coordinator's
   * round trip and the target's latency. Kept across slices, so a new slice paces its
   * leases from its first call instead of one share at a time until it has measured again.
   */
  pace?: { rttMs: number | null; latencyMs: number | null };
}

export const isRateMode = (spec: RunSpec): boolean => "rate" in spec.load;

/**
 * NTP-style estimate: the coordinator read its clock about halfway through the round
 * trip. The fastest round trip bounds the error best (±rtt/2), so it is kept.
 */
export function observeClock(s: AgentState, serverTime: number, sentAt: number, answeredAt: number): void {
  const rtt = Math.max(0, answeredAt - sentAt);
  if (s.offsetRttMs !== null && rtt > s.offsetRttMs) return;
  s.offsetRttMs = rtt;
  s.offsetMs = serverTime - (sentAt + answeredAt) / 2;
}

/** When a credit is due on the local wall clock; -Infinity for "now" (concurrency mode, warmup). */
export function dueWall(s: AgentState, c: Credit): number {
  if (c.at === undefined || s.runStartedAt === null) return Number.NEGATIVE_INFINITY;
  return s.runStartedAt + c.at - s.offsetMs;
}

/**
 * Rate mode: the credit is due at or after the end of stop.durationSeconds (`at` and the
 * duration both count from the run's start on the coordinator's clock), when the run is
 * over: it is never sent, however late the agent hears of the drain, and goes back
 * unused. The coordinator hands out the schedule up to a second ahead; without this the
 * credits of the last leases went out after the run's end.
 */
export function pastDuration(s: AgentState, c: Credit): boolean {
  const seconds = s.spec.stop.durationSeconds;
  return c.at !== undefined && seconds !== undefined && c.at >= Math.round(seconds * 1000);
}

export function addCredits(s: AgentState, credits: readonly Credit[]): void {
  if (credits.length === 0) return;
  s.held.push(...credits.map((c) => ({ ...c })));
  // Returned slots may be granted again out of order; undefined `at` (warmup) goes first.
  if (credits.some((c) => c.at !== undefined)) {
    s.held.sort((a, b) => (a.at ?? Number.NEGATIVE_INFINITY) - (b.at ?? Number.NEGATIVE_INFINITY) || a.seq - b.seq);
  }
}

/** Gives every held credit back in the next report. */
export function returnHeld(s: AgentState): void {
  for (const c of s.held) s.returning.push(c.seq);
  s.held = [];
}

/**
 * Applies the stop flags of an answer. A stop never un-happens, and a stricter mode
 * (return) is never relaxed to a looser one (finish). Returns true when a stop was new.
 */
export function applyStop(s: AgentState, stop: boolean, finishLeased: boolean): boolean {
  if (!stop) {
    // run_draining refused a lease, yet the run accepts work again: it cannot, but if it
    // ever did, carrying on is the only sensible reading.
    if (s.stop === "asking") s.stop = "running";
    return false;
  }
  if (s.stop === "gone" || s.stop === "return") return false;
  const was = s.stop;
  // A share of zero while draining never grows again: held credits could not be sent.
  s.stop = finishLeased && s.share > 0 ? "finish" : "return";
  if (s.stop === "return") returnHeld(s);
  return was !== s.stop;
}

/** The run is complete or wiped: nothing held, settled or pending can be reported any more. */
export function markGone(s: AgentState): void {
  s.stop = "gone";
  s.held = [];
  s.results = [];
  s.returning = [];
  s.unacked = null;
  s.openLease = null;
  if (s.sessions) s.sessions = [];
}

/** Nothing waits to be reported. */
export const flushed = (s: AgentState): boolean =>
  s.results.length === 0 && s.returning.length === 0 && s.unacked === null && !hasSessionCounts(s);

export const hasSessionCounts = (s: AgentState): boolean =>
  s.sessionCounts !== undefined && s.sessionCounts.started + s.sessionCounts.completed + s.sessionCounts.cut > 0;

/** Counts a session event for the next report. */
export function countSession(s: AgentState, what: keyof SessionCounts, n = 1): void {
  s.sessionCounts ??= { started: 0, completed: 0, cut: 0 };
  s.sessionCounts[what] += n;
}

/** Takes the session counts for a report (undefined when there are none). */
export function takeSessionCounts(s: AgentState): SessionCounts | undefined {
  if (!hasSessionCounts(s)) return undefined;
  const c = s.sessionCounts;
  s.sessionCounts = { started: 0, completed: 0, cut: 0 };
  return c;
}

/** multi_turn: new sessions to ask the coordinator for, so that sessions under way and those handed out fill the share. */
export function sessionsWanted(s: AgentState): number {
  if (!s.sessions) return 0;
  return Math.max(0, s.share - s.sessions.length - (s.sessionItems?.length ?? 0));
}
