// Idempotent repeats (README, "Agents and the wire protocol": leases and reports are
// idempotent by requestId / reportId). A call retried because its answer was lost is
// answered again from the record its first run kept in the `calls` rows (call-log.ts),
// never applied twice; the records' shapes sit here beside the code that reads them back.

import type { RunConfig } from "../contract/run-plan";
import { sessionItems, wireCredit } from "./item-handout";
import type { WireCredit } from "./item-handout";
import * as m from "./run-machine";
import type { RunState } from "./run-machine";
import type { AgentRow, RunStore } from "./run-store";

/** What the idempotency record of a lease keeps: its id and its range of seqs. */
export interface LeaseRecord {
  id: string;
  first: number;
  count: number;
  /** multi_turn: the session numbers handed out with the lease [first, count]. */
  sessions?: [number, number];
}

/** What the idempotency record of a report keeps: its counts and, multi_turn, the sessions started with it [first, count]. */
export interface ReportRecord {
  accepted: number;
  duplicates: number;
  sessions?: [number, number];
}

/** A report's first answer, as given again. */
export interface ReportRepeat {
  accepted: number;
  duplicates: number;
  sessions?: number[];
}

/** The first answer to a report with this reportId, if it was settled. */
export function previousReport(store: RunStore, cfg: RunConfig, agent: AgentRow, reportId: string): ReportRepeat | null {
  const answer = store.calls.answer(agent.ord, "report", reportId);
  if (answer === null) return null;
  const { accepted, duplicates, sessions } = JSON.parse(answer) as ReportRecord;
  return { accepted, duplicates, ...(sessions ? { sessions: sessionItems(cfg, sessions) } : {}) };
}

/**
 * A lease request seen before (its answer was lost). While the run accepts work the
 * same credits are answered again. Once draining, no credit may be handed out: the
 * agent never saw these, so they are counted as returned, which lets the drain finish.
 */
export function previousLease(store: RunStore, agent: AgentRow, requestId: string): LeaseRecord | null {
  const answer = store.calls.answer(agent.ord, "lease", requestId);
  return answer === null ? null : (JSON.parse(answer) as LeaseRecord);
}

export function repeatLease(
  store: RunStore,
  cfg: RunConfig,
  state: RunState,
  agent: AgentRow,
  lease: LeaseRecord,
  now: number,
): { next: RunState; credits: WireCredit[] | null } {
  const held = store.leases.creditsInRange(agent.ord, lease.first, lease.count);
  if (m.isAccepting(state)) return { next: state, credits: held.map((c) => wireCredit(c, cfg)) };
  if (state.phase !== "draining" || held.length === 0) return { next: state, credits: null };
  const x = m.noSettlement();
  for (const c of held)
    if (c.warmup) x.warmupReturned++;
    else x.returned++;
  store.leases.take(held.map((c) => c.seq));
  store.putAgent({ ...agent, outstanding: agent.outstanding - held.length });
  return { next: m.settle(state, x, now), credits: null };
}
