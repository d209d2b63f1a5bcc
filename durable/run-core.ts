// The stored run behind RunCoordinator (docs/ARCHITECTURE.md, "RunCoordinator"): loading
// it, one transaction per mutation, the deadlines every call applies first, the alarm, the
// completion webhook, the Fleet's notice, and the wipe. RunCoordinator.ts is the RPC
// surface over it: who may call, what each call changes, what it answers.
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

import type { Auth } from "../contract/tokens";
import { hashesEqual } from "../contract/tokens";
import { StatusError } from "../contract/errors";
import type { LeaseAnswer } from "../contract/protocol";
import type { SessionCounts } from "../contract/results";
import type { RunConfig } from "../contract/run-plan";
import type { RunSpec } from "../contract/spec";
import { AgentDesk } from "./agent-desk";
import * as m from "./run-machine";
import type { RunState } from "./run-machine";
import { RunAlarm } from "./run-alarm";
import type { LoadedRun } from "./run-reads";
import { regionKey, resultsOf, sessionCounts, snapshotOf, stopFlags, thresholdsFailing } from "./run-reads";
import { RunResults } from "./run-results";
import type { AgentRow } from "./rows";
import { RunStore } from "./run-store";
import type { Results, Snapshot } from "./views";
import { Waiters } from "./waiters";
import { WebhookRecord } from "./webhook";

export interface Secrets {
  read: string;
  agent: string;
  notify?: string;
}

const FLEET_RETRY_MS = 1_000;
/** Live threshold evaluation (for abortOnThresholdFail) at most this often. */
const THRESHOLD_EVERY_MS = 250;

export const notFound = () => new StatusError(404, "run_not_found", "No such run (it may have been wiped after its grace window).");

export class RunCore {
  private readonly ctx: DurableObjectState;
  private readonly env: Env;
  /** The coordinator's clock (tests replace it on the coordinator to drive time). */
  readonly now: () => number;
  /** Outbound fetch for the webhook (the coordinator's; tests replace it there). */
  private readonly fetchOut: typeof fetch;

  readonly store: RunStore;
  // Parsed copies of stored rows; `undefined` means not loaded yet, `null` means no run.
  runConfig: RunConfig | null | undefined;
  state: RunState | null = null;
  /** Merged metrics and time series, parsed once (run-results.ts). */
  readonly measured: RunResults;
  /** The webhook's delivery state, cached (webhook.ts). */
  readonly webhook: WebhookRecord;
  private thresholdsCheckedAt = Number.NEGATIVE_INFINITY;
  /** A webhook POST is under way (in memory: an attempt dies with the instance, and the stored state retries it). */
  private delivering = false;
  /** The spec, parsed once (it never changes after creation). */
  private spec: RunSpec | null = null;
  /** The token hashes, read once (they never change after creation): every call checks one. */
  private secrets: Secrets | null = null;
  /** The one alarm (run-alarm.ts). */
  readonly alarmClock: RunAlarm;
  /** Long-poll waiters, woken on every phase change. */
  private readonly waiters = new Waiters();
  /**
   * The final documents, kept in memory by the wipe for the waiters that were connected
   * when the run completed (with graceSeconds 0 the wipe can come first). Not stored: a
   * call that arrives after the wipe finds no run and answers 404, as it must.
   */
  lastWords: { snapshot: Snapshot; results: Results } | null = null;
  /** Wipes this instance has made (in memory): tells a call whether its own deadlines wiped the run. */
  wipes = 0;
  /** The wiped run's read-token hash: lastWords go only to a caller who could read the run. */
  lastReadHash: string | null = null;

  constructor(ctx: DurableObjectState, env: Env, now: () => number, fetchOut: typeof fetch) {
    this.ctx = ctx;
    this.env = env;
    this.now = now;
    this.fetchOut = fetchOut;
    this.store = new RunStore(ctx.storage.sql);
    this.measured = new RunResults(this.store);
    this.webhook = new WebhookRecord(this.store);
    this.alarmClock = new RunAlarm(ctx.storage, this.store);
  }

  /**
   * One atomic write. If it throws (a refusal such as a 409, or a fault) its writes were
   * rolled back: parsed copies are dropped and the state is read again from storage. The
   * config stays: it never changes after creation, and dropping it made calls suspended
   * meanwhile (on the Fleet RPC, say) answer 404 on a live run.
   */
  transaction<T>(fn: () => T): T {
    try {
      return this.ctx.storage.transactionSync(fn);
    } catch (e) {
      this.forgetParsed();
      if (this.runConfig) this.state = this.store.getMeta<RunState>("state");
      throw e;
    }
  }

  load(): boolean {
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

  config(): RunConfig {
    if (!this.runConfig) throw notFound();
    return this.runConfig;
  }

  desk(): AgentDesk {
    return new AgentDesk(this.store, this.config());
  }

  regionKey(agent: AgentRow): string {
    return regionKey(this.store, agent);
  }

  /** A drain timeout or force stop: every outstanding credit is abandoned, counted per region. */
  abandonAllCredits(): void {
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
  async open(auth: Auth, role: "read" | "agent"): Promise<RunState> {
    if (!this.load()) throw notFound();
    await this.advance(this.now());
    if (!this.state) throw notFound();
    if (auth.role === "token") {
      const secrets = this.secretsNow();
      if (!secrets || !hashesEqual(auth.hash, role === "read" ? secrets.read : secrets.agent)) throw notFound();
    }
    return this.state;
  }

  /** Like k6's abortOnFail: a failing threshold on the merged distribution begins the drain. */
  abortOnThresholds(state: RunState, now: number): RunState {
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
  async advance(now: number, opts: { fromAlarm?: boolean } = {}): Promise<void> {
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
      const secret = () => this.secretsNow()?.notify ?? "";
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
    this.lastReadHash = this.secretsNow()?.read ?? null;
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
  commit(next: RunState): void {
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
  waitForChange(ms: number, finished: () => boolean): Promise<void> {
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

  async schedule(): Promise<void> {
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

  /** The token hashes and webhook key, read once: they never change after creation. */
  private secretsNow(): Secrets | null {
    this.secrets ??= this.store.getMeta<Secrets>("auth");
    return this.secrets;
  }

  specNow(): RunSpec | null {
    if (!this.spec) this.spec = this.store.getMeta<RunSpec>("spec");
    return this.spec;
  }

  stopFlags(): { stop: boolean; finishLeased: boolean } {
    return stopFlags(this.state);
  }

  leaseAnswer(leaseId: string, credits: LeaseAnswer["credits"], share: number, sessions?: number[]): LeaseAnswer {
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

  snapshot(): Snapshot {
    return snapshotOf(this.loaded());
  }

  addSessions(d: SessionCounts): void {
    const c = sessionCounts(this.store, this.config());
    if (c === null) return;
    this.store.putMeta("sessions", { started: c.started + d.started, completed: c.completed + d.completed, cut: c.cut + d.cut });
  }

  resultsNow(): Results {
    return resultsOf(this.loaded());
  }
}
