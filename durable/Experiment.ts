// Experiment: one sweep or capacity search (README, "Experiments"), each level run as a
// run of its own, with its own RunCoordinator and whole lifecycle, one after another.
//
// Responsibilities: the experiment lifecycle (experiment-machine.ts), choosing the next
// level (a sweep's list, or the search in contract/experiment-search.ts), creating,
// stopping and reading each level's run (experiment-levels.ts) with the experiment's read
// and agent token hashes as the run's own, keeping each level's final figures
// (experiment-views.ts) so the run can be wiped on its own schedule, and the one alarm.
//
// Stored (SQLite, experiment-store.ts): the id, the plan (the base spec as sent, the
// levels or the search), the token hashes and origin, and the state: phase, every level's
// record, which level is current and whether its run was told to stop. A level's run id
// is stored before its run is created, so a creation repeated after a fault or an
// eviction creates that same run (start-run.ts), never a second one. Every change is one
// write of the state row.
// In memory only: a parsed copy of the stored rows; the clock and the long-poll length
// (tests replace both); long-poll and stream waiters, which die with their connections;
// the count of failed alarms in a row (after an eviction the next retry simply comes
// sooner); the final summary for the waiters connected at the wipe.
// The alarm: while a level runs, it long-polls that run's results (`pollWaitMs`, 20 s);
// when the run is complete it records the level, creates the next level's run and
// long-polls that one in the same invocation (up to a minute of wall time), so levels
// follow each other within milliseconds; otherwise it sets itself POLL_MS later. Once
// complete, it is set for the wipe. It may fire early or twice: it applies what is due
// and sets the next, and a level is recorded only while it is still the current one, so
// running it again changes nothing. A failed alarm never throws: it sets itself again,
// 1 s doubling to 30 s (a level's run serves its results for at least
// LEVEL_MIN_GRACE_SECONDS, 60 s). Calls and the alarm take turns through one lock, except
// the long-poll, which waits outside it so a stop is never held up by it.
// After eviction: the state reloads lazily; a level left `starting` is created again with
// its stored run id; nothing is lost.

import { DurableObject } from "cloudflare:workers";
import { StatusError, asResult } from "../contract/errors";
import type { RpcResult } from "../contract/errors";
import type { ExperimentPlan, ExperimentResults, ExperimentSummary } from "../contract/experiment";
import { hashesEqual } from "../contract/tokens";
import type { Auth } from "../contract/tokens";
import { abandonLevelRun, createLevelRun, pollLevelRun, stopLevelRun } from "./experiment-levels";
import type { Refusal } from "./experiment-levels";
import * as m from "./experiment-machine";
import type { ExperimentState } from "./experiment-machine";
import { ExperimentStore } from "./experiment-store";
import { summaryOf } from "./experiment-views";
import { Waiters } from "./waiters";

export interface ExperimentInit {
  id: string;
  /** From parseExperiment (contract/experiment.ts): validated at the door. */
  plan: ExperimentPlan;
  readTokenHash: string;
  agentTokenHash: string;
  /** The service's origin as the creating request reached it: passed on to every level's run. */
  origin?: string;
}

/** What an event stream gets each time: the summary (final or not) and the state's version. */
export interface Watched {
  summary: ExperimentResults;
  version: number;
}

/** The alarm polls the current level this often when a long-poll ended without completion. */
export const POLL_MS = 1_000;
/** How long one alarm long-polls the current level's run. */
export const LONG_POLL_MS = 20_000;
/** An alarm that saw a level end goes on to the next level's long-poll while it has run less than this (wall time). */
const MAX_ALARM_LOOP_MS = 60_000;
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 30_000;

const notFound = () => new StatusError(404, "experiment_not_found", "No such experiment (it may have been wiped after its grace window).");

export class Experiment extends DurableObject<Env> {
  /** The clock every deadline is measured on; tests replace it to drive time. */
  now: () => number = () => Date.now();
  /** How long the alarm long-polls the current level's run; tests set 0 and drive the alarm by hand. */
  pollWaitMs = LONG_POLL_MS;

  private readonly store: ExperimentStore;
  /** Parsed copies of stored rows; `undefined` means not loaded yet, `null` means no experiment. */
  private state: ExperimentState | null | undefined;
  private plan: ExperimentPlan | null = null;
  private id = "";
  /** The alarm as last set by this instance (undefined: unknown, after a restart). */
  private alarmAt: number | null | undefined;
  private readonly waiters = new Waiters();
  /** Calls and the alarm take turns: each step reads the state, calls out, and writes the result. */
  private turn: Promise<unknown> = Promise.resolve();
  /** Failed alarms in a row (in memory: after an eviction the next retry comes sooner). */
  private failures = 0;
  /** The final summary, kept by the wipe for the waiters connected at that moment. */
  private lastWords: ExperimentResults | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new ExperimentStore(ctx.storage.sql);
  }

  // ── RPC ────────────────────────────────────────────────────────────────────

  /** Stores the experiment and creates its first level's run; a refusal of that run (service drain) refuses the experiment. */
  async create(init: ExperimentInit): Promise<RpcResult<ExperimentSummary>> {
    return asResult(() =>
      this.locked(async () => {
        if (this.load()) throw new StatusError(409, "experiment_exists", "This experiment already exists.");
        const state = m.createExperiment(init.plan, this.now());
        const secrets = { read: init.readTokenHash, agent: init.agentTokenHash, origin: init.origin ?? null };
        this.ctx.storage.transactionSync(() => this.store.create(init.id, init.plan, secrets, state));
        this.state = state;
        this.plan = init.plan;
        this.id = init.id;
        await this.setAlarm(this.now() + POLL_MS);
        let refused: Refusal | null = null;
        try {
          refused = await this.step();
        } catch (e) {
          // A fault (the Fleet or the new coordinator unreachable) leaves the first level
          // `starting`: the alarm creates it, and the caller gets its tokens either way.
          console.error(`Experiment:${init.id}: first level not started yet`, e instanceof Error ? e.message : e);
        }
        if (refused && this.state.levels.every((l) => l.runId === null)) {
          // Nothing was started: the experiment never existed (503 service_draining, a cap).
          await this.ctx.storage.deleteAll();
          await this.ctx.storage.deleteAlarm();
          this.alarmAt = null;
          this.state = null;
          this.plan = null;
          throw new StatusError(refused.status, refused.code, refused.message);
        }
        await this.schedule();
        return this.summary();
      }),
    );
  }

  /** The summary; with waitMs > 0, answers as soon as anything changes or the wait ends. */
  async status(auth: Auth, waitMs = 0): Promise<RpcResult<ExperimentSummary>> {
    return asResult(async () => {
      const { version } = await this.open(auth);
      if (waitMs > 0) await this.waitForChange(waitMs, () => this.state?.version !== version);
      return this.state || !this.lastWords ? this.summary() : this.lastWords;
    });
  }

  /** The final summary; with waitMs > 0, answers as soon as the experiment completes or the wait ends. */
  async results(auth: Auth, waitMs = 0): Promise<RpcResult<ExperimentResults>> {
    return asResult(async () => {
      await this.open(auth);
      if (waitMs > 0) await this.waitForChange(waitMs, () => this.state?.phase === "complete");
      return this.state || !this.lastWords ? this.resultsDoc() : this.lastWords;
    });
  }

  /** For an event stream: the summary once the version moved past `since` (or the wait ended). */
  async watch(auth: Auth, waitMs = 0, since: number | null = null): Promise<RpcResult<Watched>> {
    return asResult(async () => {
      const { version } = await this.open(auth);
      const seen = since ?? version;
      if (waitMs > 0 && this.state?.phase !== "complete") await this.waitForChange(waitMs, () => this.state?.version !== seen);
      if (!this.state && this.lastWords) return { summary: this.lastWords, version: Number.MAX_SAFE_INTEGER };
      return { summary: this.resultsDoc(), version: this.state?.version ?? seen };
    });
  }

  /** No new level starts; the current level's run is stopped in `mode` and the experiment completes when it has. */
  async stop(auth: Auth, mode: "graceful" | "force" = "graceful"): Promise<RpcResult<ExperimentSummary>> {
    return asResult(async () => {
      if (auth.role !== "api") throw new StatusError(401, "invalid_token", "Stopping an experiment needs the API token.");
      await this.open(auth);
      return this.locked(async () => {
        if (!this.state) throw notFound();
        this.commit(m.stop(this.state, mode, this.now()));
        await this.step();
        await this.schedule();
        return this.summary();
      });
    });
  }

  // ── Alarm ──────────────────────────────────────────────────────────────────

  override async alarm(): Promise<void> {
    this.alarmAt = null; // a fired alarm is gone
    if (!this.load()) return;
    try {
      await this.advance();
      this.failures = 0;
    } catch (e) {
      // Never thrown to the runtime, which would retry a few times and then drop the alarm.
      this.failures += 1;
      const wait = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (this.failures - 1));
      console.error(
        `Experiment:${this.id}: alarm failed (${this.failures} in a row), retrying in ${wait} ms`,
        e instanceof Error ? e.message : e,
      );
      if (this.state) await this.setAlarm(this.now() + wait);
    }
  }

  // ── Internals ──────────────────────────────────────────────────────────────

  /** Runs `fn` after every earlier call's turn has ended. */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn, fn);
    this.turn = run.catch(() => {});
    return run;
  }

  /**
   * The alarm's work: what is due, then a long-poll of the current level's run; when that
   * run completes, the level is recorded, the next level's run created, and that one
   * long-polled at once in the same invocation (within MAX_ALARM_LOOP_MS of wall time), so
   * one level follows another as soon as its run has drained.
   */
  private async advance(): Promise<void> {
    const began = Date.now();
    for (;;) {
      const polled = await this.locked(async () => {
        if (!this.state || (await this.wipeIfDue())) return null;
        await this.step();
        const cur = this.state && m.currentLevel(this.state);
        return cur?.status === "running" ? cur.runId : null;
      });
      if (!polled || !this.plan) break;
      // Outside the lock: a stop arriving meanwhile is applied at once, and ends this wait.
      const record = await pollLevelRun(this.env, polled, this.pollWaitMs, this.plan);
      const recorded = await this.locked(async () => {
        const cur = this.state && m.currentLevel(this.state);
        // Recorded only while it is still the current level: a second alarm changes nothing.
        if (!record || !this.state || cur?.runId !== polled || cur.status !== "running") return false;
        this.commit(m.levelEnded(this.state, record, this.now()));
        return true;
      });
      if (!recorded || Date.now() - began > MAX_ALARM_LOOP_MS) break;
    }
    await this.locked(() => this.schedule());
  }

  /**
   * Moves the experiment on as far as it can without waiting (under the lock): stops the
   * current level's run once the experiment drains, creates a level whose run id is
   * chosen, or chooses the next level, or finishes. Answers the refusal that ended it, if
   * a level's run could not be created.
   */
  private async step(): Promise<Refusal | null> {
    for (;;) {
      const s = this.state;
      const plan = this.plan;
      if (!s || !plan || s.phase === "complete") return null;
      const cur = m.currentLevel(s);
      if (cur?.status === "starting" && !m.isAccepting(s)) {
        this.commit(await abandonLevelRun(this.env, s, this.now()));
      } else if (cur?.status === "starting") {
        const { next, refused } = await createLevelRun(this.env, s, plan, this.store.secrets(), this.now());
        this.commit(next);
        if (refused) return refused;
      } else if (cur) {
        if (!m.isAccepting(s) && !s.stopSent) this.commit(await stopLevelRun(this.env, s));
        return null;
      } else if (!m.isAccepting(s)) {
        return null;
      } else {
        const next = m.nextStep(s, plan);
        if (next.done) {
          this.commit(m.finish(s, next, plan.search !== null, this.now()));
          return null;
        }
        this.commit(m.beginLevel(s, next, this.env.RUN_COORDINATOR.newUniqueId().toString()));
      }
    }
  }

  private load(): boolean {
    if (this.state === undefined) {
      const stored = this.store.load();
      this.state = stored?.state ?? null;
      this.plan = stored?.plan ?? null;
      this.id = stored?.id ?? "";
    }
    return this.state !== null && this.plan !== null;
  }

  /** Persists a new state and wakes waiters when it changed. */
  private commit(next: ExperimentState): void {
    if (next === this.state) return;
    this.ctx.storage.transactionSync(() => this.store.putState(next));
    const before = this.state;
    this.state = next;
    if (before?.version !== next.version || before?.phase !== next.phase) this.waiters.wake();
  }

  /** Loads the experiment, applies a due wipe, and checks the token (a token not its own is a 404). */
  private async open(auth: Auth): Promise<ExperimentState> {
    if (!this.load()) throw notFound();
    await this.locked(() => this.wipeIfDue());
    if (!this.state) throw notFound();
    if (auth.role === "token" && !hashesEqual(auth.hash, this.store.secrets().read)) throw notFound();
    return this.state;
  }

  private waitForChange(ms: number, finished: () => boolean): Promise<void> {
    // Nothing to apply on a wake: the wipe is the alarm's (or the next call's), so a
    // waiter woken by completion reads the final summary before any wipe.
    return this.waiters.until(
      ms,
      () => finished() || !this.state,
      async () => {},
    );
  }

  private async wipeIfDue(): Promise<boolean> {
    const s = this.state;
    const at = s ? m.wipeAt(s) : null;
    if (!s || s.phase !== "complete" || at === null || this.now() < at) return false;
    this.lastWords = this.resultsDoc();
    await this.ctx.storage.deleteAll();
    await this.ctx.storage.deleteAlarm();
    this.alarmAt = null;
    this.state = null;
    this.plan = null;
    this.waiters.wake();
    return true;
  }

  /** Sets the alarm: for the wipe once complete, else to poll the current level (or retry a start) POLL_MS from now. */
  private async schedule(): Promise<void> {
    const s = this.state;
    if (!s) return;
    const at = s.phase === "complete" ? m.wipeAt(s) : this.now() + POLL_MS;
    if (at === null) return;
    // An earlier alarm is kept (it fires, finds nothing due, and sets the next), so reads
    // never postpone a poll; the wipe replaces whatever was set.
    if (s.phase === "complete" || this.alarmAt === undefined || this.alarmAt === null || at < this.alarmAt) await this.setAlarm(at);
  }

  private async setAlarm(at: number): Promise<void> {
    await this.ctx.storage.setAlarm(at);
    this.alarmAt = at;
  }

  private summary(): ExperimentSummary {
    if (!this.state || !this.plan) throw notFound();
    return summaryOf(this.id, this.state, this.plan, this.now());
  }

  private resultsDoc(): ExperimentResults {
    const summary = this.summary();
    return { ...summary, final: summary.phase === "complete" };
  }
}
