// When the agent talks to the coordinator: pure decisions over the agent's state, what
// is in flight, and when it last called. The engine asks; nothing here does I/O.

import { MAX_DEPTH_SHARES } from "../contract/protocol";
import type { AgentState } from "./state";
import { dueWall, hasSessionCounts, isRateMode, sessionsWanted } from "./state";

/**
 * Settled results that trigger a report before the interval is up. Above the window of
 * all but the largest shares: a busy agent's reports ride with its leases (the window
 * paces them), not every few hundred results, since each call has a fixed cost (a report
 * every 256 results was two-thirds of the coordinator's CPU for a Node agent on a fast
 * target: docs/BENCHMARKS.md).
 */
export const REPORT_BATCH = 4096;

/**
 * The lease depth: credits an agent keeps in hand beyond what is in flight, so that the
 * next lease answer arrives before it runs dry (a TCP window over the coordinator's round
 * trip). `cycleMs` is one report-and-lease cycle (one call where the transport combines
 * them, else two). The depth covers three cycles at the current send rate: one to last
 * until the next answer, one for what was sent meanwhile (unreported, so counted against
 * the cap until the next report), one for the round trip's jitter (two left a 20 ms
 * target 3% short of its concurrency: docs/BENCHMARKS.md). A busy agent also holds
 * enough to call no more often than every MIN_CALL_GAP_MS (gapCover). Never less than
 * one share (what the coordinator allowed before depths existed) nor more than
 * MAX_DEPTH_SHARES shares, so a dead agent strands a bounded number of credits.
 */
const DEPTH_CYCLES = 3;

/**
 * A coordinator call has a fixed cost whatever it carries: the RPC or HTTP request, a
 * transaction, the coordinator re-saving its metrics. Leasing whenever half the depth
 * has room, an agent on a fast target with a small share (an edge agent applies at most
 * six) called every three requests, and those calls took about 40% of the local workerd
 * thread (docs/BENCHMARKS.md). Holding two gaps' worth of sends spaces calls about a gap
 * apart; a gap of 250 ms rather than 100 cut six edge agents' local workerd CPU per
 * request by about a tenth (longer gaps gain nothing there: sixty-four shares of six
 * cap the depth first). Targets slower than two gaps (500 ms a request) are unaffected:
 * their sends in two gaps are under one share, the depth's floor. Between that and a fast
 * target an agent holds a little more than it used to (a 360 ms target: 6 for a share of
 * 4, where one share was the floor at 100 ms).
 */
export const MIN_CALL_GAP_MS = 250;

export function leaseDepth(share: number, sendsPerMs: number, cycleMs: number | null): number {
  if (share <= 0) return 0;
  return Math.min(MAX_DEPTH_SHARES * share, Math.max(share, cover(sendsPerMs, cycleMs), gapCover(sendsPerMs)));
}

const gapCover = (sendsPerMs: number) => Math.ceil(2 * sendsPerMs * MIN_CALL_GAP_MS);

const cover = (sendsPerMs: number, cycleMs: number | null) => (cycleMs === null ? 0 : Math.ceil(DEPTH_CYCLES * sendsPerMs * cycleMs));

/**
 * The target is so fast that even the deepest lease runs dry well within one cycle (a
 * Node agent on a fast target far from its coordinator). Leasing as credits run low, a
 * window of W credits (share + depth, the coordinator's cap) must hold a cycle's sends in
 * hand and a cycle's sends unreported, so it delivers about W / 2T a millisecond for a
 * cycle of T ms; sending the whole window first, then reporting it all with the next
 * lease, delivers W / (W/R + T) at a send rate of R a millisecond. The second is better
 * once R·T passes W. R is estimated as share / latency, which a loaded machine does not
 * sustain (measured at 1.5–2× what it delivers: docs/BENCHMARKS.md), hence the factor.
 */
export function drainFirst(share: number, sendsPerMs: number, cycleMs: number | null): boolean {
  if (share <= 0 || cycleMs === null) return false;
  return sendsPerMs * cycleMs > DRAIN_FIRST_FACTOR * (MAX_DEPTH_SHARES + 1) * share;
}

/** How far R·T must pass the window before drainFirst (see there). */
const DRAIN_FIRST_FACTOR = 2;

/** The loop at one instant. `now` is monotonic ms, `wall` epoch ms. */
export interface Moment {
  now: number;
  wall: number;
  inflight: number;
  /** Sending has ended for this slice: a limit was hit, or a fatal error. */
  winding: boolean;
}

/** Pacing of coordinator calls (monotonic ms); in memory only, a new slice starts over. */
export interface CallClock {
  lastCallAt: number;
  lastReportAt: number;
  /** After an empty lease (pacing, or a full share-plus-depth cap): ask again no sooner. */
  leaseRetryAt: number;
  /** After a transient failure: no call before this. */
  blockedUntil: number;
  /** Credits to keep in hand (leaseDepth); 0 until measured: one share. */
  depth: number;
  /** Concurrency mode: lease only once nothing is held (see drainFirst). */
  drainFirst: boolean;
  /** Concurrency mode: credits that last until a lease answer arrives (see lowWater). */
  low: number;
}

export const newCallClock = (): CallClock => ({
  lastCallAt: Number.NEGATIVE_INFINITY,
  lastReportAt: Number.NEGATIVE_INFINITY,
  leaseRetryAt: 0,
  blockedUntil: 0,
  depth: 0,
  drainFirst: false,
  low: Number.POSITIVE_INFINITY,
});

/**
 * Concurrency mode: how few credits may be held before a lease goes out. Leasing as soon
 * as half the depth had room brought half a depth a call; holding off until the credits in
 * hand only cover the lease's round trip (three cycles of sends, as in the depth) or half a
 * gap of sends, whichever is more, and then filling the window brings more of the depth a
 * call: six edge agents on a fast local target made 1.43 calls a hundred requests, not 1.73.
 * Without the half gap (the round trip's cover alone) they made 1.12, but two agents on a
 * 20 ms target then ran dry now and then behind a slow answer: 7.84 of 8 in flight on
 * average against 7.92 with it (docs/BENCHMARKS.md). Infinite until a round trip was
 * measured (the half-depth rule alone).
 */
export function lowWater(share: number, sendsPerMs: number, cycleMs: number | null): number {
  if (cycleMs === null) return Number.POSITIVE_INFINITY;
  return Math.max(share, cover(sendsPerMs, cycleMs), Math.ceil((sendsPerMs * MIN_CALL_GAP_MS) / 2));
}

/**
 * Would a lease now help keep sending without a stall? `depth`: credits to keep in hand;
 * `drain`: concurrency mode only asks once nothing is held (drainFirst); `low`: nor while
 * more than this are held (lowWater).
 */
export function needsCredits(
  s: AgentState,
  m: Pick<Moment, "wall" | "inflight">,
  depth = 0,
  drain = false,
  low = Number.POSITIVE_INFINITY,
): boolean {
  const last = s.held[s.held.length - 1];
  // Rate mode: keep about half a report interval of the schedule ahead of the clock.
  if (isRateMode(s.spec) && last?.at !== undefined) return dueWall(s, last) - m.wall < s.reportIntervalMs / 2;
  // Without a share, only a lease answer tells whether one is free (retries are paced).
  if (s.share === 0) return s.held.length === 0;
  // multi_turn: a free session place needs its item from the coordinator.
  if (sessionsWanted(s) > 0) return true;
  if (drain && s.held.length > 0) return false;
  // Below the depth held, so a round trip never stalls sending; but only once the
  // coordinator's cap (share + depth, counting held + in flight + unreported; the report
  // rides with the lease) has room for half the depth, since a smaller grant costs a
  // round trip without adding much to send, and once what is held is down to `low` (never
  // under the share: `low` was computed before the latest answer, whose share may be larger).
  const d = Math.max(depth, s.share);
  const room = s.share + d - s.held.length - m.inflight;
  return s.held.length < d && room >= Math.ceil(d / 2) && s.held.length <= Math.max(low, s.share);
}

export function leaseWant(s: AgentState, inflight: number, maxWant: number, depth = 0): number {
  if (isRateMode(s.spec) || s.share === 0) return maxWant; // the coordinator paces by schedule
  return Math.max(1, Math.min(maxWant, s.share + Math.max(depth, s.share) - s.held.length - inflight));
}

/** The coordinator call(s) to make now, if any: a report first, then a lease. */
export function plan(s: AgentState, m: Moment, c: CallClock): { report: boolean; lease: boolean } | null {
  if (s.stop === "gone" || m.now < c.blockedUntil) return null;
  const lease = !m.winding && s.stop === "running" && m.now >= c.leaseRetryAt && needsCredits(s, m, c.depth, c.drainFirst, c.low);
  const interval = s.reportIntervalMs;
  const n = s.results.length;
  const last = m.inflight === 0 && (m.winding || s.stop !== "running");
  const report =
    s.unacked !== null ||
    s.returning.length > 0 ||
    s.stop === "asking" ||
    n >= REPORT_BATCH ||
    // In concurrency mode unreported results count against the share-plus-depth cap.
    (n > 0 && (m.now - c.lastReportAt >= interval || last || (lease && !isRateMode(s.spec)))) ||
    (last && hasSessionCounts(s)) ||
    // multi_turn, finishing what it holds: only a report can bring the next sessions' items.
    (s.stop === "finish" && s.held.length > 0 && sessionsWanted(s) > 0) ||
    m.now - c.lastCallAt >= interval; // heartbeat: renews the lease before leaseTtlMs
  return report || lease ? { report, lease } : null;
}

/** The next moment plan() could answer differently on its own (without an event). */
export function nextWake(s: AgentState, m: Moment, c: CallClock): number {
  let t = c.lastCallAt + s.reportIntervalMs;
  if (s.results.length > 0) t = Math.min(t, c.lastReportAt + s.reportIntervalMs);
  if (!m.winding && s.stop === "running") {
    const last = s.held[s.held.length - 1];
    if (c.leaseRetryAt > m.now) t = Math.min(t, c.leaseRetryAt);
    else if (isRateMode(s.spec) && last?.at !== undefined) {
      t = Math.min(t, m.now + (dueWall(s, last) - s.reportIntervalMs / 2 - m.wall));
    }
  }
  return Math.max(t, c.blockedUntil, m.now + 1);
}
