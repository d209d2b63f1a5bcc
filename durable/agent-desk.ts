// The agent side of a run (wire protocol v1, README "Agents and the wire protocol"): joining, leasing credits,
// settling them, and cutting off agents whose lease expired. Every method runs inside
// the coordinator's transaction: it reads and writes credit and agent rows through the
// store and returns the run's next state, which the coordinator commits. Refusals are
// thrown before the first write, so a refused call changes nothing.

import { StatusError } from "../contract/errors";
import { MAX_DEPTH_SHARES } from "../contract/protocol";
import type { JoinBody, LeaseBody, ReportBody, ResultItem } from "../contract/protocol";
import type { RunConfig } from "../contract/run-plan";
import { sessionItems, startSessions, wireCredit } from "./item-handout";
import type { WireCredit } from "./item-handout";
import { horizon, poolAt, tailGrant } from "./lease-sizing";
import * as repeats from "./repeats";
import type { LeaseRecord, ReportRecord, ReportRepeat } from "./repeats";
import { RESTARTED, mentionsOf, tally } from "./report-tally";
import type { Settled } from "./report-tally";
import * as m from "./run-machine";
import type { RunState } from "./run-machine";
import type { AgentRow, RunStore, Slot } from "./run-store";
import { nextSlot, rampedAt, startSchedule } from "./schedule";
import type { ScheduleCursor } from "./schedule";
import { acknowledge, shareFor } from "./shares";

export interface LeaseOutcome {
  next: RunState;
  leaseId: string;
  credits: WireCredit[];
  share: number;
  /** multi_turn: the new sessions' items. */
  sessions?: number[];
}

export interface ReportOutcome {
  next: RunState;
  accepted: number;
  duplicates: number;
  share: number;
  /** Settled measured results, for metrics and the time series. */
  measured: ResultItem[];
  /** multi_turn: the new sessions' items. */
  sessions?: number[];
}

export class AgentDesk {
  constructor(
    private readonly store: RunStore,
    private readonly cfg: RunConfig,
  ) {}

  agentOrThrow(id: string): AgentRow {
    const a = this.store.agent(id);
    if (!a) throw new StatusError(404, "unknown_agent", "No agent with that id has joined this run.");
    return a;
  }

  // Idempotency, one way for all three calls: the answer (or what rebuilds it) is kept in
  // the store's `calls` rows by the call's own key, written in the transaction that made it.

  /** The agent a join with this requestId created, if one did. */
  previousJoin(requestId: string | undefined): AgentRow | null {
    const id = requestId === undefined ? null : this.store.calls.joinedBy(requestId);
    return id === null ? null : this.agentOrThrow(id);
  }

  /** The first answer to a report with this reportId, if it was settled. */
  previousReport(agent: AgentRow, reportId: string): ReportRepeat | null {
    return repeats.previousReport(this.store, this.cfg, agent, reportId);
  }

  /** A new agent; a join retried after the drain began was answered by previousJoin before this refusal. */
  join(state: RunState, body: JoinBody, now: number): AgentRow {
    m.assertAccepting(state);
    const count = this.store.agentCount();
    if (count >= this.cfg.maxAgents) throw new StatusError(429, "too_many_agents", `This run already has ${this.cfg.maxAgents} agents.`);
    const agent: AgentRow = {
      id: `ag_${crypto.randomUUID()}`,
      ord: count,
      name: body.name ?? null,
      region: body.region ?? null,
      joinedAt: now,
      lastSeen: now,
      expiresAt: now + this.cfg.leaseTtlMs,
      alive: true,
      outstanding: 0,
      inflight: 0,
      shareSent: 0,
      shareAcked: 0,
      calls: 0,
    };
    this.store.putAgent(agent);
    if (body.colo !== undefined) this.store.setColo(agent.ord, body.colo);
    if (body.clockTickMs !== undefined) this.store.setClockTick(agent.ord, body.clockTickMs);
    if (body.requestId !== undefined) this.store.calls.recordJoin(body.requestId, agent.id, agent.ord);
    return agent;
  }

  /** Any call from an agent renews its lease (and revives it if it had expired). */
  renew(a: AgentRow, now: number, inflight: number | undefined): AgentRow {
    return {
      ...a,
      lastSeen: now,
      expiresAt: now + this.cfg.leaseTtlMs,
      alive: true,
      inflight: inflight ?? a.inflight,
      shareAcked: acknowledge(a, inflight),
    };
  }

  shareOf(agent: AgentRow, state: RunState, now: number): number {
    const all = this.store.agents().map((a) => (a.id === agent.id ? agent : a));
    const live = all.filter((a) => a.alive).map((a) => a.id);
    return shareFor(poolAt(this.cfg, state, now), all, live, agent.id);
  }

  lease(state: RunState, agent: AgentRow, body: LeaseBody, now: number): LeaseOutcome {
    m.assertAccepting(state);
    const renewed = this.renew(agent, now, body.inflight);
    const share = this.shareOf(renewed, state, now);
    const inWarmup = m.warmupPending(state) > 0 || state.warmup.outstanding > 0;
    // Concurrency mode: at most the share plus the lease depth outstanding (held, in flight
    // and unreported): the depth the agent asks for, from one share (without it) to
    // MAX_DEPTH_SHARES shares, so a dead agent strands a bounded number of credits.
    const depth = Math.min(MAX_DEPTH_SHARES * share, Math.max(share, body.depth ?? share));
    let max = Math.min(body.want, Math.max(0, share + depth - renewed.outstanding));
    let schedule: ScheduleCursor | null = null;
    let replayCursor: number | null = null;
    const slots: Slot[] = [];
    const replay = this.cfg.dataset?.replay === true;
    if (replay && !inWarmup) {
      // Trace replay: the trace's items in file order, each at its own offset (the
      // timestamps ÷ replaySpeedup), those due within leaseAheadMs, returned ones first.
      // load.concurrency caps what is in flight; an agent holds at most its share and a
      // lease depth beyond it, as in concurrency mode.
      const room = Math.max(0, share + depth - renewed.outstanding);
      max = Math.min(body.want, m.budgetRemaining(state), room);
      const upTo = horizon(this.cfg, state, now);
      slots.push(...this.store.takeSlots(max, upTo));
      const offsets = this.store.replayOffsets();
      replayCursor = this.store.getMeta<number>("replayCursor") ?? 0;
      while (slots.length < max && replayCursor < offsets.length && offsets[replayCursor]! <= upTo) {
        slots.push({ at: offsets[replayCursor]!, item: replayCursor });
        replayCursor++;
      }
      max = slots.length;
    } else if (this.cfg.rate !== null && !inWarmup) {
      // Rate mode: the slots due within leaseAheadMs, returned ones first. An agent holds at
      // most its share of the in-flight cap plus its part of one lease-ahead window, so one
      // that leases and never reports, or cannot keep up, holds a bounded number of credits
      // (and rows) however high the rate or long the run; slots it could not take stay due
      // and are handed out late, which the schedule lag shows.
      const ahead = Math.ceil((((this.cfg.rate * this.cfg.leaseAheadMs) / 1000) * share) / this.cfg.pool);
      const room = Math.max(0, share + ahead - renewed.outstanding);
      max = Math.min(body.want, m.budgetRemaining(state), room);
      const upTo = horizon(this.cfg, state, now);
      slots.push(...this.store.takeSlots(max, upTo));
      schedule = this.store.getMeta<ScheduleCursor>("schedule") ?? startSchedule(this.cfg.seed);
      // Slots are drawn at the target rate and stretched by the ramp (schedule.ts).
      const ramp = this.cfg.rampMs ?? 0;
      while (slots.length < max && rampedAt(schedule.t, ramp) <= upTo) {
        const [at, next] = nextSlot(schedule, this.cfg.rate, this.cfg.arrival, this.cfg.smoothness ?? 1);
        slots.push({ at: rampedAt(at, ramp), item: null });
        schedule = next;
      }
      max = slots.length;
    } else if (this.cfg.rate === null && !replay && !inWarmup) {
      max = Math.min(max, tailGrant(m.budgetRemaining(state), share, poolAt(this.cfg, state, now)));
    }
    const g = m.grant(state, max, now);
    const leaseId = `ls_${agent.id.slice(3, 11)}_${body.requestId}`;
    const offset = (g.state.measuredStartedAt ?? now) - (g.state.startedAt ?? now);
    const ats: Array<number | null> = [];
    const items: Array<number | null> = [];
    const credits: WireCredit[] = [];
    for (let i = 0; i < g.warmup + g.measured; i++) {
      const warmup = i < g.warmup;
      const slot = warmup ? undefined : slots[i - g.warmup];
      const at = slot === undefined ? null : offset + slot.at;
      const item = slot?.item ?? null;
      ats.push(at);
      items.push(item);
      credits.push(wireCredit({ seq: g.firstSeq + i, at, warmup, item }, this.cfg));
    }
    this.store.leases.grant(agent.ord, g.firstSeq, ats, g.warmup, replay ? items : null);
    // Slots taken but not granted go back to the pool.
    for (const unused of slots.slice(g.measured)) this.store.putSlot(unused);
    if (schedule) this.store.putMeta("schedule", schedule);
    if (replayCursor !== null && replayCursor !== (this.store.getMeta<number>("replayCursor") ?? 0))
      this.store.putMeta("replayCursor", replayCursor);
    const calls = renewed.calls + 1;
    this.store.putAgent({ ...renewed, outstanding: renewed.outstanding + credits.length, shareSent: share, calls });
    const sessions = startSessions(this.store, this.cfg, body.newSessions, share);
    const record: LeaseRecord = { id: leaseId, first: g.firstSeq, count: credits.length, ...(sessions ? { sessions } : {}) };
    this.store.calls.record(agent.ord, "lease", body.requestId, calls, JSON.stringify(record));
    return { next: g.state, leaseId, credits, share, ...(sessions ? { sessions: this.sessionItems(sessions) } : {}) };
  }

  /** The items of session numbers [first, first + count). */
  sessionItems(sessions: [number, number]): number[] {
    return sessionItems(this.cfg, sessions);
  }

  /** A lease request seen before (its answer was lost); repeatLease answers it again. */
  previousLease(agent: AgentRow, requestId: string): LeaseRecord | null {
    return repeats.previousLease(this.store, agent, requestId);
  }

  repeatLease(state: RunState, agent: AgentRow, lease: LeaseRecord, now: number): { next: RunState; credits: WireCredit[] | null } {
    return repeats.repeatLease(this.store, this.cfg, state, agent, lease, now);
  }

  /**
   * Settles a report. Credits are taken out of their leases, one write per lease; a seq never
   * granted, or another agent's, throws, and the caller's transaction undoes it all.
   */
  report(state: RunState, agent: AgentRow, body: ReportBody, now: number): ReportOutcome {
    m.assertSettleable(state);
    const { mentions, duplicates: repeated } = mentionsOf(body);
    let duplicates = repeated;
    const taken = new Map(this.store.leases.take([...mentions.keys()]).map((c) => [c.seq, c]));
    const settled: Settled[] = [];
    for (const [seq, result] of mentions) {
      const credit = taken.get(seq);
      if (!credit) {
        if (seq >= state.nextSeq) throw new StatusError(422, "unknown_seq", `Credit ${seq} was never granted.`);
        duplicates++; // settled before (or abandoned)
        continue;
      }
      if (credit.agent !== agent.ord) throw new StatusError(422, "foreign_seq", `Credit ${seq} belongs to another agent.`);
      settled.push(result ? { credit, result } : { credit });
    }

    if (body.restarted) {
      for (const credit of this.store.leases.takeOfAgent(agent.ord))
        settled.push({ credit, result: { seq: credit.seq, ok: false, latencyMs: 0, error: RESTARTED } });
    }

    const { x, measured } = tally(settled);
    const next = m.settle(state, x, now);
    const renewed = this.renew(agent, now, body.inflight);
    const share = m.isAccepting(next) ? this.shareOf(renewed, next, now) : renewed.shareSent;
    if (m.isAccepting(next)) {
      // A credit returned while running is granted again: its slot goes back to the pool.
      const schedOffset = (next.measuredStartedAt ?? 0) - (next.startedAt ?? 0);
      for (const { credit, result } of settled)
        if (!result && credit.at !== null) this.store.putSlot({ at: credit.at - schedOffset, item: credit.item });
    }
    const calls = renewed.calls + 1;
    this.store.putAgent({ ...renewed, outstanding: renewed.outstanding - settled.length, shareSent: share, calls });
    const sessions = startSessions(this.store, this.cfg, body.newSessions, share);
    const record: ReportRecord = { accepted: settled.length, duplicates, ...(sessions ? { sessions } : {}) };
    this.store.calls.record(agent.ord, "report", body.reportId, calls, JSON.stringify(record));
    return { next, accepted: settled.length, duplicates, share, measured, ...(sessions ? { sessions: this.sessionItems(sessions) } : {}) };
  }

  /**
   * Agents whose lease expired are dead: their credits are abandoned so the drain can
   * finish. `onAbandon` hears of each dead agent's measured credits (results per region).
   */
  expireAgents(state: RunState, now: number, onAbandon?: (agent: AgentRow, measured: number) => void): RunState {
    if (state.phase === "complete") return state;
    let next = state;
    for (const a of this.store.agents()) {
      if (!a.alive || a.expiresAt > now) continue;
      const held = this.store.leases.takeOfAgent(a.ord);
      const warm = held.filter((c) => c.warmup).length;
      next = m.abandon(next, held.length - warm, warm, now);
      onAbandon?.(a, held.length - warm);
      this.store.putAgent({ ...a, alive: false, outstanding: 0, inflight: 0 });
    }
    return next;
  }

  /**
   * When the run will have had no live agent for its agent timeout: the last moment any
   * agent was alive (its lease expiry; the run's creation if none ever joined) plus the
   * timeout. Null once the run no longer accepts work.
   */
  agentTimeoutAt(state: RunState): number | null {
    if (!m.isAccepting(state)) return null;
    let lastAlive = state.createdAt;
    for (const a of this.store.agents()) lastAlive = Math.max(lastAlive, a.expiresAt);
    return lastAlive + m.agentTimeoutMs(state);
  }

  /** The earliest lease expiry among live agents, if the run still needs watching. */
  nextExpiry(state: RunState): number | null {
    if (state.phase === "complete") return null;
    const times = this.store
      .agents()
      .filter((a) => a.alive)
      .map((a) => a.expiresAt);
    return times.length > 0 ? Math.min(...times) : null;
  }
}
