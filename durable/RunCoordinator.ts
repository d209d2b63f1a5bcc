// RunCoordinator: the single source of truth for one benchmark run (DESIGN §3, §5).
//
// Responsibilities: the run lifecycle (durable/run-machine.ts), the credit ledger and
// which agent holds which credit, concurrency shares, the rate schedule, merged metrics,
// token checks for the run's own tokens, and the one alarm.
//
// Stored (SQLite, durable/run-store.ts): everything needed to continue. Every mutation
// runs in one transactionSync block, so a crash leaves either all of it or none.
// In memory only: parsed copies of the stored rows (`run`, `state`, `metrics`, …),
// reloaded lazily after eviction, and long-poll waiters, which die with their
// connections anyway.
// The alarm: set to the earliest of the duration deadline, the drain deadline, the
// next lease expiry and the wipe time. It may fire early or twice: the handler applies
// whatever is due at `now` and sets the next one, so running it again changes nothing.
// Every call applies due deadlines first, so behaviour never depends on alarm timing.
// After eviction: the constructor reopens the tables; nothing is lost.

import { DurableObject } from "cloudflare:workers";
import type { Auth } from "../worker/auth";
import { hashesEqual } from "../worker/auth";
import { StatusError, asResult } from "../worker/errors";
import type { RpcResult } from "../worker/errors";
import type { JoinBody, LeaseBody, ReportBody } from "../worker/protocol";
import type { RunSpec } from "../worker/spec";
import { RunMetrics } from "./metrics";
import * as m from "./run-machine";
import type { RunState } from "./run-machine";
import { RunStore } from "./run-store";
import type { AgentRow } from "./run-store";
import { acknowledge, shareFor } from "./shares";
import { nextSlot, startSchedule } from "./schedule";
import type { ScheduleCursor } from "./schedule";
import { buildResults, buildSnapshot } from "./views";
import type { Results, Snapshot } from "./views";

export interface RunConfig {
  id: string;
  /** In-flight pool split into shares: load.concurrency, or load.maxConcurrency / the operator cap in rate mode. */
  pool: number;
  rate: number | null;
  arrival: "constant" | "poisson";
  seed: number;
  leaseTtlMs: number;
  reportIntervalMs: number;
  /** Rate mode: how far ahead of its intended send time a credit is handed out. */
  leaseAheadMs: number;
  maxAgents: number;
}

export interface CreateInit {
  config: RunConfig;
  spec: RunSpec;
  publicSpec: unknown;
  readTokenHash: string;
  agentTokenHash: string;
}

interface AuthHashes {
  read: string;
  agent: string;
}

export interface JoinAnswer {
  agentId: string;
  leaseTtlMs: number;
  reportIntervalMs: number;
  serverTime: number;
  spec: RunSpec;
  concurrency: number;
  stop: boolean;
}

export interface LeaseAnswer {
  leaseId: string;
  credits: Array<{ seq: number; at?: number; warmup?: boolean }>;
  concurrency: number;
  expiresInMs: number;
  stop: boolean;
  /** Extension: with stop, true when held credits should still be sent (the budget was fully granted). */
  finishLeased: boolean;
  /** Extension: the coordinator's clock (epoch ms) and the run's start on it, for `at` and offset estimates. */
  serverTime: number;
  runStartedAt: number | null;
}

export interface ReportAnswer {
  accepted: number;
  duplicates: number;
  stop: boolean;
  finishLeased: boolean;
  concurrency: number;
  serverTime: number;
}

const FLEET_RETRY_MS = 1_000;

const notFound = () => new StatusError(404, "run_not_found", "No such run (it may have been wiped after its grace window).");

export class RunCoordinator extends DurableObject<Env> {
  /** The clock every deadline is measured on; tests replace it to drive time. */
  now: () => number = () => Date.now();

  private readonly store: RunStore;
  // Parsed copies of stored rows; `undefined` means not loaded yet, `null` means no run.
  private runConfig: RunConfig | null | undefined;
  private state: RunState | null = null;
  private metrics: RunMetrics | null = null;
  /** Long-poll waiters, woken on every phase change. Not stored: they die with their connections. */
  private readonly waiters = new Set<() => void>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new RunStore(ctx.storage.sql);
  }

  // ── RPC: run owner ─────────────────────────────────────────────────────────

  async create(init: CreateInit): Promise<RpcResult<Snapshot>> {
    return asResult(async () => {
      if (this.load()) throw new StatusError(409, "run_exists", "This run already exists.");
      const { spec } = init;
      const now = this.now();
      const state = m.createRun(
        {
          requests: spec.stop.requests ?? null,
          warmupRequests: spec.warmup.requests,
          durationMs: spec.stop.durationSeconds === undefined ? null : Math.round(spec.stop.durationSeconds * 1000),
          drainTimeoutMs: Math.round(spec.drainTimeoutSeconds * 1000),
          graceMs: spec.graceSeconds * 1000,
        },
        now,
      );
      this.transaction(() => {
        this.store.putMeta("run", init.config);
        this.store.putMeta("spec", spec);
        this.store.putMeta("publicSpec", init.publicSpec);
        this.store.putMeta("auth", { read: init.readTokenHash, agent: init.agentTokenHash } satisfies AuthHashes);
        this.store.putMeta("metrics", RunMetrics.empty().toJSON());
        this.store.putMeta("schedule", startSchedule(init.config.seed));
        this.store.putMeta("state", state);
      });
      this.runConfig = init.config;
      this.state = state;
      this.metrics = RunMetrics.empty();
      await this.schedule();
      return this.snapshot();
    });
  }

  /** Status; with waitMs > 0, answers as soon as the phase changes or the wait ends. */
  async status(auth: Auth, waitMs = 0): Promise<RpcResult<Snapshot>> {
    return asResult(async () => {
      const { phase } = await this.open(auth, "read");
      if (waitMs > 0 && phase !== "complete") await this.waitForChange(waitMs, () => this.state?.phase !== phase);
      return this.snapshot();
    });
  }

  /** Results; with waitMs > 0, answers as soon as the run completes or the wait ends. */
  async results(auth: Auth, waitMs = 0): Promise<RpcResult<Results>> {
    return asResult(async () => {
      await this.open(auth, "read");
      if (waitMs > 0 && this.state?.phase !== "complete") await this.waitForChange(waitMs, () => this.state?.phase === "complete");
      if (!this.state) throw notFound();
      const thresholds = this.store.getMeta<RunSpec>("spec")?.thresholds ?? {};
      return buildResults(this.snapshot(), this.state, this.metricsNow(), thresholds, this.store.getMeta<unknown>("publicSpec"));
    });
  }

  async stop(auth: Auth, mode: "graceful" | "force"): Promise<RpcResult<Snapshot>> {
    return asResult(async () => {
      if (auth.role !== "api") throw new StatusError(401, "invalid_token", "Stopping a run needs the API token.");
      const state = await this.open(auth, "read");
      const now = this.now();
      const r = m.stop(state, mode, now);
      this.transaction(() => {
        if (r.abandonAll) this.store.deleteAllCredits();
        this.commit(r.state);
      });
      await this.schedule();
      return this.snapshot();
    });
  }

  // ── RPC: agents (wire protocol v1) ─────────────────────────────────────────

  async join(auth: Auth, body: JoinBody): Promise<RpcResult<JoinAnswer>> {
    return asResult(async () => {
      const state = await this.open(auth, "agent");
      m.assertAccepting(state);
      const cfg = this.config();
      const count = this.store.agentCount();
      if (count >= cfg.maxAgents) throw new StatusError(429, "too_many_agents", `This run already has ${cfg.maxAgents} agents.`);
      const now = this.now();
      const agent: AgentRow = {
        id: `ag_${crypto.randomUUID()}`,
        ord: count,
        name: body.name ?? null,
        region: body.region ?? null,
        joinedAt: now,
        lastSeen: now,
        expiresAt: now + cfg.leaseTtlMs,
        alive: true,
        outstanding: 0,
        inflight: 0,
        shareSent: 0,
        shareAcked: 0,
        calls: 0,
      };
      this.store.putAgent(agent);
      await this.schedule();
      const spec = this.store.getMeta<RunSpec>("spec");
      if (!spec) throw notFound();
      return {
        agentId: agent.id,
        leaseTtlMs: cfg.leaseTtlMs,
        reportIntervalMs: cfg.reportIntervalMs,
        serverTime: now,
        spec,
        concurrency: 0,
        stop: false,
      };
    });
  }

  async lease(auth: Auth, body: LeaseBody): Promise<RpcResult<LeaseAnswer>> {
    return asResult(async () => {
      const state = await this.open(auth, "agent");
      const agent = this.agentOrThrow(body.agentId);
      const cfg = this.config();
      const now = this.now();
      const previous = this.store.call(agent.id, "lease", body.requestId);
      if (previous !== null) return this.repeatLease(agent, previous, now);
      m.assertAccepting(state);

      const renewed = this.renew(agent, now, body.inflight);
      const share = this.shareOf(renewed);
      const inWarmup = m.warmupPending(state) > 0 || state.warmup.outstanding > 0;
      let max = Math.min(body.want, Math.max(0, 2 * share - renewed.outstanding));
      let schedule: ScheduleCursor | null = null;
      const slots: number[] = [];
      if (cfg.rate !== null && !inWarmup) {
        // Rate mode: hand out the slots due within leaseAheadMs, returned ones first.
        max = Math.min(body.want, m.budgetRemaining(state));
        const origin = state.measuredStartedAt ?? now;
        const horizon = now - origin + cfg.leaseAheadMs;
        slots.push(...this.store.takeSlots(max, horizon));
        schedule = this.store.getMeta<ScheduleCursor>("schedule") ?? startSchedule(cfg.seed);
        while (slots.length < max && schedule.t <= horizon) {
          const [at, next] = nextSlot(schedule, cfg.rate, cfg.arrival);
          slots.push(at);
          schedule = next;
        }
        max = slots.length;
      }
      const g = m.grant(state, max, now);
      const leaseId = `ls_${agent.id.slice(3, 11)}_${body.requestId}`;
      const credits: LeaseAnswer["credits"] = [];
      const offset = (g.state.measuredStartedAt ?? now) - (g.state.startedAt ?? now);
      this.transaction(() => {
        for (let i = 0; i < g.warmup + g.measured; i++) {
          const seq = g.firstSeq + i;
          const warmup = i < g.warmup;
          const slot = warmup ? undefined : slots[i - g.warmup];
          const at = slot === undefined ? null : offset + slot;
          this.store.insertCredit({ seq, agentId: agent.id, leaseId, at, warmup });
          credits.push({ seq, ...(at === null ? {} : { at }), ...(warmup ? { warmup: true } : {}) });
        }
        // Slots taken but not granted go back to the pool.
        for (const unused of slots.slice(g.measured)) this.store.putSlot(unused);
        if (schedule) this.store.putMeta("schedule", schedule);
        const calls = renewed.calls + 1;
        this.store.putAgent({ ...renewed, outstanding: renewed.outstanding + credits.length, shareSent: share, calls });
        this.store.recordCall(agent.id, "lease", body.requestId, calls, leaseId);
        this.commit(g.state);
      });
      await this.schedule();
      return this.leaseAnswer(leaseId, credits, share);
    });
  }

  async report(auth: Auth, body: ReportBody): Promise<RpcResult<ReportAnswer>> {
    return asResult(async () => {
      const state = await this.open(auth, "agent");
      const agent = this.agentOrThrow(body.agentId);
      const now = this.now();
      const previous = this.store.call(agent.id, "report", body.reportId);
      if (previous !== null) {
        const answer = JSON.parse(previous) as Pick<ReportAnswer, "accepted" | "duplicates">;
        return { ...answer, ...this.stopFlags(), concurrency: agent.shareSent, serverTime: now };
      }
      m.assertSettleable(state);

      // Pass 1, read-only: classify every seq, refusing the whole report on a bad one.
      const seen = new Set<number>();
      const settled: Array<{ seq: number; warmup: boolean; at: number | null; result?: ReportBody["results"][number] }> = [];
      let duplicates = 0;
      const classify = (seq: number) => {
        if (seen.has(seq)) return null;
        seen.add(seq);
        const credit = this.store.credit(seq);
        if (!credit) {
          if (seq >= state.nextSeq) throw new StatusError(422, "unknown_seq", `Credit ${seq} was never granted.`);
          return null; // settled before (or abandoned): a duplicate
        }
        if (credit.agentId !== agent.id) throw new StatusError(422, "foreign_seq", `Credit ${seq} belongs to another agent.`);
        return credit;
      };
      for (const result of body.results) {
        const c = classify(result.seq);
        if (c) settled.push({ seq: c.seq, warmup: c.warmup, at: c.at, result });
        else duplicates++;
      }
      for (const seq of body.returned) {
        const c = classify(seq);
        if (c) settled.push({ seq: c.seq, warmup: c.warmup, at: c.at });
        else duplicates++;
      }

      // Pass 2: apply.
      const x = m.noSettlement();
      for (const s of settled) {
        if (!s.result) {
          if (s.warmup) x.warmupReturned++;
          else x.returned++;
        } else if (s.warmup) {
          if (s.result.ok) x.warmupCompleted++;
          else x.warmupFailed++;
        } else if (s.result.ok) x.completed++;
        else x.failed++;
      }
      const next = m.settle(state, x, now);
      const metrics = this.metricsNow();
      for (const s of settled) if (s.result && !s.warmup) metrics.add(s.result);
      const renewed = this.renew(agent, now, body.inflight);
      const accepted = settled.length;
      const share = m.isAccepting(next) ? this.shareOf(renewed) : renewed.shareSent;
      this.transaction(() => {
        for (const s of settled) {
          this.store.deleteCredit(s.seq);
          // A credit returned while running is granted again: its slot goes back to the pool.
          if (!s.result && s.at !== null && m.isAccepting(next)) this.store.putSlot(s.at - ((next.measuredStartedAt ?? 0) - (next.startedAt ?? 0)));
        }
        const calls = renewed.calls + 1;
        this.store.putAgent({ ...renewed, outstanding: renewed.outstanding - accepted, shareSent: share, calls });
        this.store.recordCall(agent.id, "report", body.reportId, calls, JSON.stringify({ accepted, duplicates }));
        if (x.completed + x.failed > 0) this.store.putMeta("metrics", metrics.toJSON());
        this.commit(next);
      });
      await this.schedule();
      return { accepted, duplicates, ...this.stopFlags(), concurrency: share, serverTime: now };
    });
  }

  // ── Alarm ──────────────────────────────────────────────────────────────────

  override async alarm(): Promise<void> {
    if (!this.load()) return;
    await this.advance(this.now());
  }

  // ── Internals ──────────────────────────────────────────────────────────────

  /** One atomic write; if it fails, in-memory copies are dropped and reloaded from storage. */
  private transaction(fn: () => void): void {
    try {
      this.ctx.storage.transactionSync(fn);
    } catch (e) {
      this.runConfig = undefined;
      this.metrics = null;
      throw e;
    }
  }

  private load(): boolean {
    if (this.runConfig === undefined) {
      this.runConfig = this.store.getMeta<RunConfig>("run");
      this.state = this.store.getMeta<RunState>("state");
      this.metrics = null;
    }
    return this.runConfig !== null && this.state !== null;
  }

  private config(): RunConfig {
    if (!this.runConfig) throw notFound();
    return this.runConfig;
  }

  private metricsNow(): RunMetrics {
    if (!this.metrics) this.metrics = RunMetrics.fromJSON(this.store.getMeta<unknown>("metrics") ?? RunMetrics.empty().toJSON());
    return this.metrics;
  }

  /** Loads the run, applies due deadlines, and checks the token. */
  private async open(auth: Auth, role: "read" | "agent"): Promise<RunState> {
    if (!this.load()) throw notFound();
    await this.advance(this.now());
    if (!this.state) throw notFound();
    if (auth.role === "token") {
      const hashes = this.store.getMeta<AuthHashes>("auth");
      if (!hashes || !hashesEqual(auth.hash, role === "read" ? hashes.read : hashes.agent)) throw notFound();
    }
    return this.state;
  }

  /** Applies every deadline that has passed at `now`, wipes after the grace window, sets the next alarm. */
  private async advance(now: number): Promise<void> {
    const state = this.state;
    if (!state) return;
    let next = state;
    this.transaction(() => {
      if (state.phase !== "complete") {
        for (const a of this.store.agents()) {
          if (!a.alive || a.expiresAt > now) continue;
          // A dead agent's credits are abandoned so the drain can finish.
          const held = this.store.creditsOfAgent(a.id);
          for (const c of held) this.store.deleteCredit(c.seq);
          const warm = held.filter((c) => c.warmup).length;
          next = m.abandon(next, held.length - warm, warm, now);
          this.store.putAgent({ ...a, alive: false, outstanding: 0, inflight: 0 });
        }
      }
      const t = m.tick(next, now);
      if (t.abandonAll) this.store.deleteAllCredits();
      next = t.state;
      if (next !== state) this.commit(next);
    });
    const wipe = m.wipeAt(next);
    if (next.phase === "complete" && wipe !== null && now >= wipe) {
      await this.wipe();
      return;
    }
    await this.schedule();
  }

  private async wipe(): Promise<void> {
    await this.notifyFleet();
    await this.ctx.storage.deleteAll();
    await this.ctx.storage.deleteAlarm();
    this.runConfig = null;
    this.state = null;
    this.metrics = null;
    this.wake();
  }

  /** Persists a new state (inside the caller's transaction) and wakes waiters on a phase change. */
  private commit(next: RunState): void {
    const before = this.state?.phase;
    this.store.putMeta("state", next);
    if (before !== "complete" && next.phase === "complete") this.store.putMeta("fleetNotified", false);
    this.state = next;
    if (before !== next.phase) this.wake();
  }

  private wake(): void {
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  private async waitForChange(ms: number, finished: () => boolean): Promise<void> {
    const deadline = Date.now() + ms;
    while (!finished() && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(1, deadline - Date.now()));
        this.waiters.add(done);
      });
      // Deadlines (duration, drain, lease expiry) may have passed while waiting.
      if (this.state) await this.advance(this.now());
    }
  }

  /**
   * Tells the Fleet the run is no longer active, once, after completion. Until that
   * succeeds the alarm keeps retrying, so a service drain never waits on a finished run.
   */
  private async notifyFleet(): Promise<boolean> {
    if (this.store.getMeta<boolean>("fleetNotified") !== false) return true;
    try {
      await this.env.FLEET.get(this.env.FLEET.idFromName("fleet")).ended(this.config().id);
      this.store.putMeta("fleetNotified", true);
      return true;
    } catch (e) {
      console.error(`RunCoordinator:${this.config().id}: fleet notification failed`, e instanceof Error ? e.message : e);
      return false;
    }
  }

  private async schedule(): Promise<void> {
    const state = this.state;
    if (!state) return;
    if (state.phase === "complete" && !(await this.notifyFleet())) {
      await this.ctx.storage.setAlarm(this.now() + FLEET_RETRY_MS);
      return;
    }
    const deadlines = [m.nextDeadline(state)];
    if (state.phase !== "complete") for (const a of this.store.agents()) if (a.alive) deadlines.push(a.expiresAt);
    const defined = deadlines.filter((t): t is number => t !== null);
    if (defined.length === 0) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(Math.min(...defined));
  }

  private agentOrThrow(id: string): AgentRow {
    const a = this.store.agent(id);
    if (!a) throw new StatusError(404, "unknown_agent", "No agent with that id has joined this run.");
    return a;
  }

  /** Any call from an agent renews its lease (and revives it if it had expired). */
  private renew(a: AgentRow, now: number, inflight: number | undefined): AgentRow {
    return {
      ...a,
      lastSeen: now,
      expiresAt: now + this.config().leaseTtlMs,
      alive: true,
      inflight: inflight ?? a.inflight,
      shareAcked: acknowledge(a, inflight),
    };
  }

  private shareOf(agent: AgentRow): number {
    const all = this.store.agents().map((a) => (a.id === agent.id ? agent : a));
    const live = all.filter((a) => a.alive).map((a) => a.id);
    return shareFor(this.config().pool, all, live, agent.id);
  }

  /** `stop` from the drain's first instant; `finishLeased` when held credits should still be sent. */
  private stopFlags(): { stop: boolean; finishLeased: boolean } {
    const s = this.state;
    const stop = !s || !m.isAccepting(s);
    return { stop, finishLeased: stop && s?.stopReason === "budget" };
  }

  private leaseAnswer(leaseId: string, credits: LeaseAnswer["credits"], share: number): LeaseAnswer {
    const now = this.now();
    return {
      leaseId,
      credits,
      concurrency: share,
      expiresInMs: this.config().leaseTtlMs,
      ...this.stopFlags(),
      serverTime: now,
      runStartedAt: this.state?.startedAt ?? null,
    };
  }

  /**
   * A lease request seen before (its answer was lost). While the run accepts work the
   * same credits are answered again. Once draining, no credit may be handed out: the
   * agent never saw these, so they are counted as returned, which lets the drain finish.
   */
  private repeatLease(agent: AgentRow, leaseId: string, now: number): LeaseAnswer {
    const state = this.state;
    if (!state) throw notFound();
    const held = this.store.creditsOfLease(leaseId);
    if (m.isAccepting(state)) {
      const credits = held.map((c) => ({ seq: c.seq, ...(c.at === null ? {} : { at: c.at }), ...(c.warmup ? { warmup: true } : {}) }));
      return this.leaseAnswer(leaseId, credits, agent.shareSent);
    }
    if (state.phase === "draining" && held.length > 0) {
      const x = m.noSettlement();
      for (const c of held) if (c.warmup) x.warmupReturned++; else x.returned++;
      const next = m.settle(state, x, now);
      this.transaction(() => {
        for (const c of held) this.store.deleteCredit(c.seq);
        this.store.putAgent({ ...agent, outstanding: agent.outstanding - held.length });
        this.commit(next);
      });
    }
    m.assertAccepting(this.state ?? state);
    throw notFound();
  }

  private snapshot(): Snapshot {
    const state = this.state;
    if (!state) throw notFound();
    return buildSnapshot(this.config().id, state, this.store.agents(), this.metricsNow(), this.now());
  }
}
