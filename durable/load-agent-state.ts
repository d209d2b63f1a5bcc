// What an edge agent (LoadAgent.ts) stores, and the pure rules around it: how long a slice
// runs, the spec as an edge agent runs it (its request timeout capped), the backoff after
// a failed alarm and when to give up on an unreachable coordinator, and how the stored
// row is kept under the platform's 2 MB (fitStored).

import { countSession } from "../agent/state";
import type { AgentState, Session } from "../agent/state";
import type { RunSpec } from "../contract/spec";
import type { LoadAgentInit } from "./edge-agents";

export interface Stored {
  init: LoadAgentInit;
  state: AgentState | null;
  /** Set while a slice runs: found set at the start of the next alarm, the slice died. */
  sliceOpen?: boolean;
  /** Alarms in a row that failed; absent or 0 once one works. */
  failures?: number;
  /** When the current streak of failures began (the agent's clock); absent while things work. */
  failingSince?: number;
}

export const SLICE_MS = 20_000;
/**
 * Requests a slice sends (subrequests per invocation: 10,000 in wrangler.toml, with room
 * for the slice's coordinator calls). Each slice ends by letting what is in flight finish,
 * which dips the agent's concurrency, and costs a report, a stored state and a new
 * invocation: 2,000 rather than 500 cut six edge agents' local workerd CPU a request by
 * about a tenth and raised their delivered concurrency from 30.9 to 31.5 of 32; 5,000 was
 * no better than 2,000 (docs/BENCHMARKS.md).
 */
export const SLICE_REQUESTS = 2000;
/** Cloudflare's wall-time limit for one alarm invocation. */
export const ALARM_WALL_LIMIT_MS = 15 * 60_000;
/**
 * An edge agent's longest request. A slice stops sending at SLICE_MS and then waits for
 * what is in flight, so 20 s + 300 s (+ one report) is about a third of the alarm's 15
 * minutes; the spec's target.timeoutSeconds (up to 3,600) would let one slice run an hour.
 * External agents (`edgeperf agent`) are not invoked by alarms and honour the full timeout.
 */
export const EDGE_REQUEST_TIMEOUT_S = 300;
/** Backoff after a failed alarm: 1 s, doubling, at most 60 s. */
export const RETRY_FIRST_MS = 1_000;
export const RETRY_MAX_MS = 60_000;
/** Never give up on a coordinator sooner than this (a partition may cut off only this agent). */
export const GIVE_UP_FLOOR_MS = 60 * 60_000;
/**
 * The most the agent's one stored row may take, in UTF-8 bytes: Cloudflare caps a SQLite
 * row (and a string or blob in it) at 2 MB. Only multi_turn sessions make the state large
 * (their histories: the dataset's turns and the answers the target gave); see fitStored.
 */
export const MAX_STORED_BYTES = 1_900_000;
/** The spec as an edge agent runs it: the request timeout capped (see EDGE_REQUEST_TIMEOUT_S). */
export function edgeSpec(spec: RunSpec): RunSpec {
  if (spec.target.timeoutSeconds <= EDGE_REQUEST_TIMEOUT_S) return spec;
  return { ...spec, target: { ...spec.target, timeoutSeconds: EDGE_REQUEST_TIMEOUT_S } };
}

/** The wait before the next attempt after `failures` failed alarms in a row (1, 2, 4 … 60 s). */
export function retryDelayMs(failures: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.max(0, Math.min(failures - 1, 30)));
}

/**
 * How long an agent keeps retrying a coordinator it cannot reach. The coordinator ends a
 * run that has heard from no agent for agentTimeoutSeconds (after the last lease expired),
 * drains it for at most drainTimeoutSeconds and wipes it graceSeconds later, all on its
 * own alarm: past that sum, a run cut off from every agent is certainly over, and the
 * agent would only learn so (run_not_found) when it is reachable again. The floor covers
 * a partition that cuts off only this agent while others keep the run going, and an agent
 * that never joined (no spec yet).
 */
export function giveUpAfterMs(state: AgentState | null): number {
  if (!state) return GIVE_UP_FLOOR_MS;
  const spec = state.spec as Partial<RunSpec>;
  // Runs stored before agentTimeoutSeconds existed have the coordinator's default, 300 s.
  const seconds = (spec.agentTimeoutSeconds ?? 300) + (spec.drainTimeoutSeconds ?? 0) + (spec.graceSeconds ?? 0);
  return Math.max(GIVE_UP_FLOOR_MS, state.leaseTtlMs + seconds * 1000);
}

/**
 * The agent's row as stored: its JSON, within `limit` UTF-8 bytes. Where sessions' histories
 * would take it past that, the sessions with the longest histories are ended as `cut`
 * (counted in the next report, like any session a stop cuts) until it fits: the agent keeps
 * working and its storage writes keep succeeding, instead of failing every alarm at the
 * platform's row limit. Sessions are only ended between turns: the row is written at a
 * slice's start and end, with nothing in flight. Returns null, with the state as it was,
 * if the row cannot fit even without sessions (nothing else in it grows with the run, so
 * that is a bug).
 */
export function fitStored(s: Stored, limit = MAX_STORED_BYTES): string | null {
  let json = JSON.stringify(s);
  if (fits(json, limit)) return json;
  const state = s.state;
  const sessions = state?.sessions;
  if (!state || !sessions || sessions.length === 0) return null;
  const size = (x: Session) => x.history.reduce((n, m) => n + m.content.length, 0);
  const longestFirst = [...sessions].sort((a, b) => size(b) - size(a));
  const before = { sessions: [...sessions], counts: state.sessionCounts ? { ...state.sessionCounts } : undefined };
  for (const [i, x] of longestFirst.entries()) {
    sessions.splice(sessions.indexOf(x), 1);
    countSession(state, "cut");
    json = JSON.stringify(s);
    if (fits(json, limit)) {
      console.warn(
        `LoadAgent: sessions' histories took the agent's stored state past ${limit} bytes; cut the ${i + 1} longest (the longest ${size(longestFirst[0]!)} characters)`,
      );
      return json;
    }
  }
  sessions.splice(0, sessions.length, ...before.sessions);
  if (before.counts) state.sessionCounts = before.counts;
  else delete state.sessionCounts;
  return null;
}

/** Whether a string's UTF-8 takes at most `limit` bytes; encoded only where its length does not settle it. */
function fits(text: string, limit: number): boolean {
  if (text.length * 3 <= limit) return true; // a UTF-16 code unit is at most 3 UTF-8 bytes
  if (text.length > limit) return false;
  return new TextEncoder().encode(text).length <= limit;
}
