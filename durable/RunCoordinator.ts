// RunCoordinator: the single source of truth for one benchmark run (docs/ARCHITECTURE.md: "The run lifecycle", "The credit protocol").
//
// Responsibilities: the run lifecycle (run-machine.ts), the credit ledger and the
// agents (agent-desk.ts), merged metrics and the time series (run-results.ts), threshold
// aborts, token checks for the run's own tokens, the completion webhook (webhook.ts),
// and the one alarm.
//
// Stored (SQLite, run-store.ts): everything needed to continue. Every mutation runs in
// one transactionSync block, so a crash leaves either all of it or none.
// In memory only: parsed copies of stored rows (`runConfig`, `state`, `spec` here; agent
// rows, metrics, time series and webhook state in their modules), written through and
// dropped when a transaction fails, reloaded lazily after eviction; long-poll waiters,
// which die with their connections anyway; and when thresholds were last evaluated (at
// worst they are evaluated once more after a restart); and the rows this instance wrote
// (run-store.ts `rowsWritten`, a measure for tests and benchmarks, nothing depends on it).
// The alarm: set to the earliest of the duration deadline, the drain deadline, the next
// lease expiry, the next webhook attempt and the wipe time. It may fire early or twice:
// the handler applies whatever is due at `now` and sets the next one, so running it
// again changes nothing. Every call applies due deadlines first, so behaviour never
// depends on alarm timing.
// After eviction: the constructor reopens the tables; nothing is lost. A run stored by an
// earlier layout (a deploy mid-run) is converted when first loaded (RunStore.upgrade).

import { DurableObject } from "cloudflare:workers";
import type { Auth } from "../contract/tokens";
import { hashesEqual } from "../contract/tokens";
import { StatusError, asResult } from "../contract/errors";
import type { RpcResult } from "../contract/errors";
import type { JoinAnswer, JoinBody, LeaseAnswer, LeaseBody, ReportAnswer, ReportBody } from "../contract/protocol";
import type { SessionCounts } from "../contract/results";
import type { RunConfig, RunPlan } from "../contract/run-plan";
import type { RunSpec } from "../contract/spec";
import { AgentDesk } from "./agent-desk";
import { startEdgeAgents } from "./edge-agents";
import * as m from "./run-machine";
import type { RunState } from "./run-machine";
import { RunAlarm } from "./run-alarm";
import type { LoadedRun } from "./run-reads";
import { regionKey, resultsOf, sessionCounts, snapshotOf, stopFlags, thresholdsFailing } from "./run-reads";
import { RunResults } from "./run-results";
import type { AgentRow } from "./rows";
import { RunStore } from "./run-store";
import { startSchedule } from "./schedule";
import type { Results, Snapshot } from "./views";
import { Waiters } from "./waiters";
import { WebhookRecord } from "./webhook";
import type { WebhookState } from "./webhook";

export interface CreateInit {
  /** From planRun (contract/run-plan.ts): the handler derived it, the coordinator runs it. */
  plan: RunPlan;
  spec: RunSpec;
  publicSpec: unknown;
  readTokenHash: string;
  agentTokenHash: string;
  /** The service's origin as the creating request reached it: where edge agents ask for their colo. */
  origin?: string;
  /** Present when the spec has `notify`: the HMAC key the webhook is signed with. */
  notifySecret?: string;
  /** A trace replay's send offsets by item (durable/run-dataset.ts), stored once with the run. */
  replayOffsets?: number[];
}

interface Secrets {
  read: string;
  agent: string;
  notify?: string;
}

const FLEET_RETRY_MS = 1_000;
/** Live threshold evaluation (for abortOnThresholdFail) at most this often. */
const THRESHOLD_EVERY_MS = 250;

const notFound = () => new StatusError(404, "run_not_found", "No such run (it may have been wiped after its grace window).");

export class RunCoordinator extends DurableObject<Env> {
  /** The clock every deadline is measured on; tests replace it to drive time. */
  now: () => number = () => Date.now();
  /** Outbound fetch for the webhook; tests replace it with a receiver at the edge. */
  fetchOut: typeof fetch = (input, init) => fetch(input, init);

  private readonly store: RunStore;
  // Parsed copies of stored rows; `undefined` means not loaded yet, `null` means no run.
  private runConfig: RunConfig | null | undefined;
  private state: RunState | null = null;
  /** Merged metrics and time series, parsed once (run-results.ts). */
  private readonly measured: RunResults;
  /** The webhook's delivery state, cached (webhook.ts). */
  private readonly webhook: WebhookRecord;
  private thresholdsCheckedAt = Number.NEGATIVE_INFINITY;
  /** A webhook POST is under way (in memory: an attempt dies with the instance, and the stored state retries it). */
  private delivering = false;
  /** The spec, parsed once (it never changes after creation). */
  private spec: RunSpec | null = null;
  /** The token hashes, read once (they never change after creation): every call checks one. */
  private secrets: Secrets | null = null;
  /** The one alarm (run-alarm.ts). */
  private readonly alarmClock: RunAlarm;
  /** Long-poll waiters, woken on every phase change. */
  private readonly waiters = new Waiters();
  /**
   * The final documents, kept in memory by the wipe for the waiters that were connected
   * when the run completed (with graceSeconds 0 the wipe can come first). Not stored: a
   * call that arrives after the wipe finds no run and answers 404, as it must.
   */
  private lastWords: { snapshot: Snapshot; results: Results } | null = null;
  /** Wipes this instance has made (in memory): tells a call whether its own deadlines wiped the run. */
  private wipes = 0;
  /** The wiped run's read-token hash: lastWords go only to a caller who could read the run. */
  private lastReadHash: string | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new RunStore(ctx.storage.sql);
    this.measured = new RunResults(this.store);
    this.webhook = new WebhookRecord(this.store);
    this.alarmClock = new RunAlarm(ctx.storage, this.store);
  }

  /** Rows this instance has written to storage (SQLite rows and alarms), for tests and benchmarks: what Cloudflare bills. */
  get rowsWritten(): number {
    return this.store.rowsWritten;
  }

  // ── RPC: run owner and readers ─────────────────────────────────────────────

  async create(init: CreateInit): Promise<RpcResult<Snapshot>> {
    return asResult(async () => {
      if (this.load()) throw new StatusError(409, "run_exists", "This run already exists.");
      const { spec } = init;
      const { config, limits } = init.plan;
      const state = m.createRun(limits, this.now());
      this.transaction(() => {
        this.store.init();
        this.store.putMeta("run", config);
        this.store.putMeta("spec", spec);
        this.store.putMeta("publicSpec", init.publicSpec);
        const secrets: Secrets = {
          read: init.readTokenHash,
          agent: init.agentTokenHash,
          ...(init.notifySecret ? { notify: init.notifySecret } : {}),
        };
        this.store.putMeta("auth", secrets);
        this.measured.start(spec.timesliceSeconds);
        this.store.putMeta("schedule", startSchedule(config.seed));
        if (init.replayOffsets) this.store.putReplayOffsets(init.replayOffsets);
        if (spec.notify) {
          const hook: WebhookState = { url: spec.notify.url, attempts: 0, nextAt: null, delivered: false, lastError: null };
          this.webhook.put(hook);
        }
        this.store.putMeta("state", state);
      });
      this.runConfig = config;
      this.state = state;
      await this.schedule();
      await startEdgeAgents(this.env, config, init.origin);
      return this.snapshot();
    });
  }

  /** Status; with waitMs > 0, answers as soon as the phase changes or the wait ends. */
  async status(auth: Auth, waitMs = 0): Promise<RpcResult<Snapshot>> {
    return asResult(async () => {
      const { phase } = await this.open(auth, "read");
      if (waitMs > 0 && phase !== "complete") {
        await this.waitForChange(waitMs, () => this.state?.phase !== phase);
        if (!this.state && this.lastWords) return this.lastWords.snapshot;
      }
      return this.snapshot();
    });
  }

  /** Results; with waitMs > 0, answers as soon as the run completes or the wait ends. */
  async results(auth: Auth, waitMs = 0): Promise<RpcResult<Results>> {
    return asResult(async () => {
      await this.open(auth, "read");
      if (waitMs > 0 && this.state?.phase !== "complete") {
        await this.waitForChange(waitMs, () => this.state?.phase === "complete");
        if (!this.state && this.lastWords) return this.lastWords.results;
      }
      return this.resultsNow();
    });
  }

  /** The run's dataset id, for GET /v1/datasets/:id/items?run= (worker/datasets.ts): the agent token reads only that one. */
  async datasetOf(auth: Auth): Promise<RpcResult<string | null>> {
    return asResult(async () => {
      await this.open(auth, "agent");
      return this.specNow()?.workload.dataset?.id ?? null;
    });
  }

  /**
   * For an event stream: the status, and with it the final results once the run is
   * complete, read in the same call. Two calls would let a run with graceSeconds 0 be
   * wiped between them, and the stream's reader would get a 404 instead of the results.
   */
  async watch(auth: Auth, waitMs = 0): Promise<RpcResult<{ snapshot: Snapshot; results: Results | null }>> {
    return asResult(async () => {
      // A stream between two long-polls when a graceSeconds-0 run completes: this very
      // call's deadlines wipe the run, and the stream still gets the final documents.
      const wipesBefore = this.wipes;
      let phase: RunState["phase"];
      try {
        ({ phase } = await this.open(auth, "read"));
      } catch (e) {
        const mayRead = auth.role === "api" || (this.lastReadHash !== null && hashesEqual(auth.hash, this.lastReadHash));
        if (this.wipes !== wipesBefore && this.lastWords && mayRead && e instanceof StatusError && e.status === 404) return this.lastWords;
        throw e;
      }
      if (waitMs > 0 && phase !== "complete") {
        await this.waitForChange(waitMs, () => this.state?.phase !== phase);
        if (!this.state && this.lastWords) return this.lastWords;
      }
      const snapshot = this.snapshot();
      return { snapshot, results: snapshot.phase === "complete" ? this.resultsNow() : null };
    });
  }

  /** A user's stop; the Fleet's service drain passes `by: "service_drain"` with a force stop at its deadline. */
  async stop(auth: Auth, mode: "graceful" | "force", by: "user" | "service_drain" = "user"): Promise<RpcResult<Snapshot>> {
    return asResult(async () => {
      if (auth.role !== "api") throw new StatusError(401, "invalid_token", "Stopping a run needs the API token.");
      const state = await this.open(auth, "read");
      const r = m.stop(state, mode, this.now(), by);
      this.transaction(() => {
        if (r.abandonAll) this.abandonAllCredits();
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
      const cfg = this.config();
      const now = this.now();
      const desk = this.desk();
      // A join retried after its answer was lost gets the agent it created, even if the
      // drain began meanwhile (the agent then learns `stop` from its first lease).
      const known = desk.previousJoin(body.requestId);
      const agent = known ?? this.transaction(() => desk.join(state, body, now));
      await this.schedule();
      const spec = this.specNow();
      if (!spec) throw notFound();
      return {
        agentId: agent.id,
        leaseTtlMs: cfg.leaseTtlMs,
        reportIntervalMs: cfg.reportIntervalMs,
        serverTime: now,
        spec,
        concurrency: 0,
        stop: false,
        ...(cfg.dataset ? { datasetType: cfg.dataset.type } : {}),
      };
    });
  }

  async lease(auth: Auth, body: LeaseBody): Promise<RpcResult<LeaseAnswer>> {
    return asResult(async () => {
      const state = await this.open(auth, "agent");
      const desk = this.desk();
      const agent = desk.agentOrThrow(body.agentId);
      const previous = desk.previousLease(agent, body.requestId);
      if (previous !== null) {
        let credits: LeaseAnswer["credits"] | null = null;
        this.transaction(() => {
          const r = desk.repeatLease(state, agent, previous, this.now());
          credits = r.credits;
          if (r.next !== state) this.commit(r.next);
        });
        await this.schedule();
        if (credits === null) m.assertAccepting(this.state ?? state);
        const sessions = credits !== null && previous.sessions ? desk.sessionItems(previous.sessions) : undefined;
        return this.leaseAnswer(previous.id, credits ?? [], agent.shareSent, sessions);
      }
      let answer: LeaseAnswer | null = null;
      this.transaction(() => {
        const r = desk.lease(state, agent, body, this.now());
        this.commit(r.next);
        answer = this.leaseAnswer(r.leaseId, r.credits, r.share, r.sessions);
      });
      await this.schedule();
      return answer!;
    });
  }

  async report(auth: Auth, body: ReportBody): Promise<RpcResult<ReportAnswer>> {
    return asResult(async () => {
      const state = await this.open(auth, "agent");
      const desk = this.desk();
      const agent = desk.agentOrThrow(body.agentId);
      const now = this.now();
      const previous = desk.previousReport(agent, body.reportId);
      if (previous !== null) return { ...previous, ...this.stopFlags(), concurrency: agent.shareSent, serverTime: now };
      let answer: ReportAnswer | null = null;
      this.transaction(() => {
        const r = desk.report(state, agent, body, now);
        this.measured.add(r.measured, r.next, now, this.regionKey(agent), this.specNow()?.goodput);
        if (body.sessions) this.addSessions(body.sessions);
        this.commit(r.measured.length > 0 ? this.abortOnThresholds(r.next, now) : r.next);
        answer = {
          accepted: r.accepted,
          duplicates: r.duplicates,
          ...(r.sessions ? { sessions: r.sessions } : {}),
          ...this.stopFlags(),
          concurrency: r.share,
          serverTime: now,
        };
      });
      await this.schedule();
      return answer!;
    });
  }

  /**
   * A report and then a lease in one RPC (edge agents: each call costs the caller ~1 ms
   * of CPU). Exactly the two calls in that order; the lease is not tried if the report
   * was refused, and its own refusal is answered beside the report's answer.
   */
  async reportThenLease(
    auth: Auth,
    report: ReportBody,
    lease: LeaseBody,
  ): Promise<{ report: RpcResult<ReportAnswer>; lease: RpcResult<LeaseAnswer> | null }> {
    const r = await this.report(auth, report);
    return { report: r, lease: r.ok ? await this.lease(auth, lease) : null };
  }

  // ── Alarm ──────────────────────────────────────────────────────────────────

  override async alarm(): Promise<void> {
    this.alarmClock.gone();
    if (!this.load()) return;
    await this.advance(this.now(), { fromAlarm: true });
  }

  // ── Internals ──────────────────────────────────────────────────────────────

  /**
   * One atomic write. If it throws (a refusal such as a 409, or a fault) its writes were
   * rolled back: parsed copies are dropped and the state is read again from storage. The
   * config stays: it never changes after creation, and dropping it made calls suspended
   * meanwhile (on the Fleet RPC, say) answer 404 on a live run.
   */
  private transaction<T>(fn: () => T): T {
    try {
      return this.ctx.storage.transactionSync(fn);
    } catch (e) {
      this.forgetParsed();
      if (this.runConfig) this.state = this.store.getMeta<RunState>("state");
      throw e;
    }
  }

  private load(): boolean {
    if (this.runConfig === undefined && !this.store.exists()) return false;
    if (this.runConfig === undefined) {
      // A run stored by an earlier version (a deploy restarts objects mid-run) is brought to this layout first.
      this.ctx.storage.transactionSync(() => this.store.upgrade());
      this.runConfig = this.store.getMeta<RunConfig>("run");
      this.state = this.store.getMeta<RunState>("state");
      this.forgetParsed();
    }
    return this.runConfig !== null && this.state !== null;
  }

  private config(): RunConfig {
    if (!this.runConfig) throw notFound();
    return this.runConfig;
  }

  private desk(): AgentDesk {
    return new AgentDesk(this.store, this.config());
  }

  private regionKey(agent: AgentRow): string {
    return regionKey(this.store, agent);
  }

  /** A drain timeout or force stop: every outstanding credit is abandoned, counted per region. */
  private abandonAllCredits(): void {
    const agents = this.store.agents();
    for (const { ord, n } of this.store.leases.measuredOutstandingByHolder()) {
      const agent = agents[ord];
      if (agent) this.measured.regions.abandon(this.regionKey(agent), n);
    }
    this.store.deleteAllCredits();
  }

  /** Drops every parsed copy of stored rows except the config and state (the callers handle those). */
  private forgetParsed(): void {
    this.store.invalidate();
    this.measured.invalidate();
    this.webhook.invalidate();
  }

  /** Loads the run, applies due deadlines, and checks the token. */
  private async open(auth: Auth, role: "read" | "agent"): Promise<RunState> {
    if (!this.load()) throw notFound();
    await this.advance(this.now());
    if (!this.state) throw notFound();
    if (auth.role === "token") {
      this.secrets ??= this.store.getMeta<Secrets>("auth");
      const secrets = this.secrets;
      if (!secrets || !hashesEqual(auth.hash, role === "read" ? secrets.read : secrets.agent)) throw notFound();
    }
    return this.state;
  }

  /** Like k6's abortOnFail: a failing threshold on the merged distribution begins the drain. */
  private abortOnThresholds(state: RunState, now: number): RunState {
    const spec = this.specNow();
    if (!spec?.abortOnThresholdFail || !spec.thresholds || !m.isAccepting(state)) return state;
    if (now - this.thresholdsCheckedAt < THRESHOLD_EVERY_MS) return state;
    this.thresholdsCheckedAt = now;
    const failing = thresholdsFailing({ ...this.loaded(), state, now }, spec.thresholds);
    return failing ? m.beginDrain(state, "threshold", now) : state;
  }

  /**
   * Applies every deadline that has passed at `now` (lease expiries, the agent timeout,
   * duration, drain) and wipes after the grace window. Only the alarm delivers the
   * webhook: a read, report or lease never waits on the receiver.
   */
  private async advance(now: number, opts: { fromAlarm?: boolean } = {}): Promise<void> {
    const state = this.state;
    if (!state) return;
    this.transaction(() => {
      const desk = this.desk();
      let next = desk.expireAgents(state, now, (a, n) => this.measured.regions.abandon(this.regionKey(a), n));
      const gone = desk.agentTimeoutAt(next);
      if (gone !== null && now >= gone) next = m.agentsGone(next, gone);
      const t = m.tick(next, now);
      if (t.abandonAll) this.abandonAllCredits();
      next = t.state;
      if (next !== state) this.commit(next);
    });
    const current = this.state;
    if (!current) return;
    const wipe = m.wipeAt(current);
    const due = current.phase === "complete" && wipe !== null && now >= wipe;
    if (opts.fromAlarm) await this.deliverWebhook(now, due);
    // A webhook never attempted holds the wipe until the alarm has made its first attempt
    // (with graceSeconds 0 the wipe is due the moment the run completes).
    if (due && !this.webhook.neverAttempted()) {
      await this.wipe();
      return;
    }
    await this.schedule();
  }

  /**
   * Delivers the final results if an attempt is due; `last` means the grace window is
   * over. One attempt at a time: calls that arrive while the receiver is slow neither
   * wait for it nor start another POST.
   */
  private async deliverWebhook(now: number, last: boolean): Promise<void> {
    if (this.delivering) return;
    this.delivering = true;
    try {
      const secret = () => this.store.getMeta<Secrets>("auth")?.notify ?? "";
      const id = this.config().id;
      const next = await this.webhook.attempt(this.fetchOut, secret, id, () => JSON.stringify(this.resultsNow()), now, last);
      if (!next) return;
      if (next.lastError !== null) console.warn(`RunCoordinator:${id}: webhook attempt ${next.attempts} failed: ${next.lastError}`);
      if (this.state) this.webhook.put(next); // not if the run was wiped during the attempt
    } finally {
      this.delivering = false;
    }
  }

  private async wipe(): Promise<void> {
    this.lastWords = { snapshot: this.snapshot(), results: this.resultsNow() };
    this.lastReadHash = this.store.getMeta<Secrets>("auth")?.read ?? null;
    this.wipes += 1;
    await this.notifyFleet();
    await this.ctx.storage.deleteAll();
    await this.ctx.storage.deleteAlarm();
    this.alarmClock.gone();
    this.forgetParsed();
    this.spec = null;
    this.secrets = null;
    this.runConfig = null;
    this.state = null;
    this.wake();
  }

  /** Persists a new state (inside the caller's transaction) and wakes waiters on a phase change. */
  private commit(next: RunState): void {
    const before = this.state?.phase;
    this.store.putMeta("state", next);
    if (before !== "complete" && next.phase === "complete") {
      // Final from here on: the metrics keep their document instead of their sketches,
      // the time series its quantiles, and no call needs an idempotent answer.
      this.measured.freeze(next);
      this.store.calls.clear();
      this.store.putMeta("fleetNotified", false);
      this.webhook.arm(next.completedAt);
    }
    this.state = next;
    if (before !== next.phase) this.wake();
  }

  private wake(): void {
    this.waiters.wake();
  }

  /** Waits for `finished()` or `ms`; deadlines that pass meanwhile are applied. */
  private waitForChange(ms: number, finished: () => boolean): Promise<void> {
    return this.waiters.until(ms, finished, async () => {
      // A completed run is not advanced here: with graceSeconds 0 that would wipe it
      // before the waiter read the final results it was woken for.
      if (this.state && this.state.phase !== "complete") await this.advance(this.now());
    });
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
      await this.alarmClock.set(this.now() + FLEET_RETRY_MS);
      return;
    }
    const desk = this.desk();
    const deadlines = [m.nextDeadline(state), desk.nextExpiry(state), desk.agentTimeoutAt(state), this.webhook.nextAt()];
    const defined = deadlines.filter((t): t is number => t !== null);
    await this.alarmClock.to(defined.length > 0 ? Math.min(...defined) : null, state.phase === "complete");
  }

  private specNow(): RunSpec | null {
    if (!this.spec) this.spec = this.store.getMeta<RunSpec>("spec");
    return this.spec;
  }

  private stopFlags(): { stop: boolean; finishLeased: boolean } {
    return stopFlags(this.state);
  }

  private leaseAnswer(leaseId: string, credits: LeaseAnswer["credits"], share: number, sessions?: number[]): LeaseAnswer {
    return {
      leaseId,
      credits,
      ...(sessions ? { sessions } : {}),
      concurrency: share,
      expiresInMs: this.config().leaseTtlMs,
      ...this.stopFlags(),
      serverTime: this.now(),
      runStartedAt: this.state?.startedAt ?? null,
    };
  }

  /** The run as this call sees it (run-reads.ts). */
  private loaded(): LoadedRun {
    const state = this.state;
    if (!state) throw notFound();
    return { state, config: this.config(), spec: this.specNow(), store: this.store, measured: this.measured, now: this.now() };
  }

  private snapshot(): Snapshot {
    return snapshotOf(this.loaded());
  }

  private addSessions(d: SessionCounts): void {
    const c = sessionCounts(this.store, this.config());
    if (c === null) return;
    this.store.putMeta("sessions", { started: c.started + d.started, completed: c.completed + d.completed, cut: c.cut + d.cut });
  }

  private resultsNow(): Results {
    return resultsOf(this.loaded());
  }
}
