// The agent loop (README, "Agents and the wire protocol"): join, lease credits ahead, send each one to the target
// (at its intended time in rate mode, within the share in every mode), settle the
// results locally and report them in batches, and stop the way the run says.
//
// Pure TypeScript over fetch and timers: the same engine runs in a LoadAgent Durable
// Object and in the CLI on Node. It works in slices: runSlice() returns with nothing in
// flight and everything settled reported, so a Durable Object can store `state` (JSON),
// end the invocation, and continue in the next one with a new engine.
//
// One loop decides everything; requests and coordinator calls run beside it and wake
// it when they finish. At most one coordinator call is under way at a time, so the
// ledger the agent keeps (held, in flight, settled, returned) is never raced, while
// requests to the target keep going during the round trip.

import type { ResultItem } from "../contract/protocol";
import type { RunSpec } from "../contract/spec";
import type { CallEvent } from "./calls";
import { CoordinatorCalls, ewma } from "./calls";
import type { Moment } from "./policy";
import { nextWake, plan } from "./policy";
import type { DatasetItem } from "../contract/dataset";
import { DEFAULT_TOKENIZER } from "../contract/spec";
import type { DatasetLoader } from "./datasets";
import { Deadlines } from "./deadlines";
import type { Job } from "./prompt";
import { jobFor, turnRequest } from "./prompt";
import { Sessions } from "./sessions";
import * as st from "./state";
import type { AgentState, Credit } from "./state";
import { sendRequest, spreadOverTick } from "./target";
import type { TargetFetch } from "./target";
import type { CoordinatorTransport } from "./transport";
import { Waker } from "./waker";

export type { AgentState, Credit, StopMode } from "./state";

export { REPORT_BATCH } from "./policy";

export type AgentEvent = { type: "send"; seq: number } | CallEvent;

export interface EngineOptions {
  transport: CoordinatorTransport;
  /** The runtime's fetch, or any function of its shape (agent/target.ts, TargetFetch). */
  fetchTarget: TargetFetch;
  /** The URL requests go to (e.g. builtin:mock resolved to the Worker's mock endpoint). */
  resolveUrl: (spec: RunSpec) => string;
  /** Monotonic ms, for measuring; default performance.now. */
  now?: () => number;
  /** Epoch ms, for the coordinator's clock and slice deadlines; default Date.now. */
  wallNow?: () => number;
  /**
   * How often `now` ticks, when it counts whole units (workerd's clocks: 1 ms); 0 (the
   * default) for a fine clock. Durations are then spread over a tick (spreadOverTick).
   */
  clockTickMs?: number;
  sleep?: (ms: number) => Promise<void>;
  name?: string;
  region?: string;
  /** The join's requestId; a stable one makes a join retried across slices answer the same agent. */
  joinRequestId?: string;
  /** Most credits asked for in one lease. */
  want?: number;
  /** A coordinator unreachable this long (after the transport's own retries) ends the slice with an error. */
  maxOfflineMs?: number;
  onEvent?: (e: AgentEvent) => void;
  /** Reads a run's dataset (agent/datasets.ts); needed for runs with workload.dataset. */
  datasets?: DatasetLoader;
}

export interface SliceLimits {
  /** Send nothing new from this wall-clock time (epoch ms). */
  untilWallMs?: number;
  /** Send at most this many requests to the target in this slice. */
  maxRequests?: number;
}

const HTTP_JOB: Job = { inputTokens: 0, outputTokens: 0, prompt: "" };
const NOT_SENT = { code: "agent_error", type: "agent", message: "The agent failed to send the request." };

export class AgentEngine {
  private s: AgentState | null;
  private readonly opts: EngineOptions;
  private readonly fetchTarget: TargetFetch;
  private readonly now: () => number;
  private readonly wallNow: () => number;
  private readonly clockTickMs: number;
  private url: string | null = null;
  /** The calls to the coordinator: the join, reports and leases (agent/calls.ts). */
  private readonly coord: CoordinatorCalls;

  // In memory only: the moving parts of the current slice, rebuilt by every slice.
  private inflight = 0;
  private syncing: Promise<void> | null = null;
  private fatal: { error: unknown } | null = null;
  /** The slice's request timeouts, on one shared timer, and its cancel (agent/deadlines.ts). */
  private deadlines = new Deadlines();
  private running = false;
  /** Pacing estimate for the lease depth (an EWMA): the target's latency (the round trip's is in agent/calls.ts). */
  private latencyMs: number | null = null;
  private readonly waker: Waker;
  /** The run's dataset items (workload.dataset), read before the first request of a slice. */
  private items: DatasetItem[] | null = null;
  /** multi_turn: the sessions under way (agent/sessions.ts). */
  private readonly sessions: Sessions;

  constructor(opts: EngineOptions, state?: AgentState) {
    this.opts = opts;
    this.s = state ?? null;
    const f = opts.fetchTarget; // called bare: workerd refuses fetch with a foreign `this`
    this.fetchTarget = (input, init) => f(input, init);
    this.now = opts.now ?? (() => performance.now());
    this.wallNow = opts.wallNow ?? (() => Date.now());
    this.clockTickMs = opts.clockTickMs ?? 0;
    this.waker = new Waker(this.now, opts.sleep ?? ((ms) => new Promise<void>((r) => setTimeout(r, ms))));
    this.coord = new CoordinatorCalls(opts, {
      now: this.now,
      wallNow: this.wallNow,
      clockTickMs: this.clockTickMs,
      state: () => this.state,
      inflight: () => this.inflight,
      latencyMs: () => this.latencyMs,
      moment: (winding) => this.moment(winding),
      fail: (error) => {
        this.fatal = { error };
      },
      cancelRequests: () => this.deadlines.cancelAll(),
    });
    this.sessions = new Sessions({
      state: () => this.state,
      items: () => this.items,
      inflight: () => this.inflight,
      launch: (seq, job, onDone) => this.launch(seq, job, undefined, onDone),
      jobOf: (c) => this.jobOf(c),
      wallNow: () => this.wallNow(),
      wakeIn: (ms) => this.waker.arm(this.now() + ms),
    });
    if (state?.pace) {
      // Stored JSON: anything but a finite number is "not measured".
      const finite = (x: unknown) => (typeof x === "number" && Number.isFinite(x) ? x : null);
      this.latencyMs = finite(state.pace.latencyMs);
      this.coord.restorePace(finite(state.pace.rttMs));
    }
  }

  /** The lease depth and low-water mark in use (agent/policy.ts); for tests and diagnostics. */
  get pacing(): { depth: number; low: number } {
    return { depth: this.coord.calls.depth, low: this.coord.calls.low };
  }

  get state(): AgentState {
    if (!this.s) throw new Error("AgentEngine: join() has not completed.");
    return this.s;
  }

  /** Joins the run (`colo`: the Cloudflare colo an edge agent runs in). Refusals (run_draining, run_complete…) are thrown as CoordinatorError. */
  async join(colo?: string): Promise<void> {
    if (this.s) return;
    this.s = await this.coord.join(colo);
  }

  /**
   * Works until a limit is hit or the run ends. Then sends nothing new, waits for the
   * requests in flight, and reports everything: "continue" keeps unsent credits in
   * state for the next slice; "done" means the run told the agent to stop and every
   * credit is settled or returned (or the run is gone).
   */
  async runSlice(limits: SliceLimits = {}): Promise<"continue" | "done"> {
    const s = this.state;
    if (this.running) throw new Error("AgentEngine: a slice is already running.");
    this.running = true;
    this.beginSlice();
    let sent = 0;
    try {
      await this.loadItems();
      for (;;) {
        this.sessions.tend();
        const winding =
          this.fatal !== null ||
          (limits.maxRequests !== undefined && sent >= limits.maxRequests) ||
          (limits.untilWallMs !== undefined && this.wallNow() >= limits.untilWallMs);
        if (!winding) sent += this.launchDue((limits.maxRequests ?? Number.POSITIVE_INFINITY) - sent);
        if (this.syncing === null && this.fatal === null) {
          const work = plan(s, this.moment(winding), this.coord.calls);
          if (work)
            this.syncing = this.coord.sync(work).finally(() => {
              this.syncing = null;
              this.waker.wake();
            });
        }
        if (this.inflight === 0 && this.syncing === null) {
          if (this.fatal) throw this.fatal.error;
          if (s.stop === "gone") return "done";
          if (st.flushed(s)) {
            if ((s.stop === "finish" || s.stop === "return") && s.held.length === 0) return "done";
            if (winding) return "continue";
          } else if (winding && this.coord.offline) return "continue";
        }
        if (limits.untilWallMs !== undefined && !winding) this.waker.arm(this.now() + limits.untilWallMs - this.wallNow());
        // While a call is under way its end wakes the loop.
        if (this.syncing === null && s.stop !== "gone") this.waker.arm(nextWake(s, this.moment(winding), this.coord.calls));
        await this.waker.next();
      }
    } finally {
      this.running = false;
    }
  }

  private beginSlice(): void {
    this.fatal = null;
    this.coord.beginSlice();
    this.deadlines = new Deadlines();
  }

  private moment(winding: boolean): Moment {
    return { now: this.now(), wall: this.wallNow(), inflight: this.inflight, winding };
  }

  // ── Sending ────────────────────────────────────────────────────────────────

  /**
   * With workload.dataset: reads its items once (agent/datasets.ts caches them across
   * engines). A dataset deleted since the run began ends the slice with an error.
   */
  private async loadItems(): Promise<void> {
    const ref = this.state.spec.workload.dataset;
    if (!ref || this.items !== null || this.state.stop === "gone") return;
    if (!this.opts.datasets) throw new Error("AgentEngine: this run uses a dataset and the engine has no dataset loader.");
    const items = await this.opts.datasets(ref.id);
    if (items === null) throw new Error(`AgentEngine: dataset ${ref.id} is gone (deleted after the run began).`);
    this.items = items;
  }

  /** The request for a credit: nothing for api http, the dataset's item, or the seeded synthetic prompt. */
  private jobOf(c: Credit): Job {
    const s = this.state;
    if (s.spec.target.api === "http") return HTTP_JOB;
    const item = c.item === undefined ? undefined : this.items?.[c.item];
    if (item === undefined) return jobFor(s.spec.workload, c.seq);
    return turnRequest(s.spec.workload, c.seq, item, 0, [], s.spec.target.tokenizer ?? DEFAULT_TOKENIZER);
  }

  /** Sends every held credit that is due, within the share; returns how many were sent. */
  private launchDue(budget: number): number {
    const s = this.state;
    if (s.sessions) return this.sessions.launchTurns(budget);
    let n = 0;
    while (n < budget && (s.stop === "running" || s.stop === "finish") && this.inflight < s.share) {
      const c = s.held[0];
      if (!c) break;
      if (st.pastDuration(s, c)) {
        // This one and all after it (held in `at` order) are due after the run's end: the
        // drain's stop answer returns them, or, if it let the agent finish, they go back now.
        if (s.stop === "finish") st.returnHeld(s);
        break;
      }
      const wait = st.dueWall(s, c) - this.wallNow();
      if (wait > 0) {
        this.waker.arm(this.now() + wait);
        break;
      }
      s.held.shift();
      // Rate mode: how late this credit goes out after its intended time (the schedule lag).
      this.launch(c.seq, this.jobOf(c), c.at !== undefined && wait !== Number.NEGATIVE_INFINITY ? Math.max(0, -wait) : undefined);
      n++;
    }
    return n;
  }

  private launch(seq: number, job: Job, lagMs?: number, onDone?: (ok: boolean, answer: string | null) => void): void {
    const s = this.state;
    s.sent++;
    this.inflight++;
    this.opts.onEvent?.({ type: "send", seq });
    this.url ??= this.opts.resolveUrl(s.spec);
    const heard = onDone ? { text: null as string | null } : undefined;
    const ctx = {
      target: s.spec.target,
      url: this.url,
      fetch: this.fetchTarget,
      now: this.now,
      deadlines: this.deadlines,
      ...(heard ? { answer: heard } : {}),
    };
    void sendRequest(ctx, job)
      .catch(() => ({ ok: false, latencyMs: 0, error: { ...NOT_SENT } }))
      .then((r) => {
        if (s.stop !== "gone") {
          const item: ResultItem = { seq, ...spreadOverTick(r, seq, this.clockTickMs) };
          if (lagMs !== undefined) item.lagMs = Math.round(lagMs * 1000) / 1000;
          // When it ended, in whole ms after the run's start on the coordinator's clock: the
          // time series places it there, not when its report arrived (reports go every
          // 250 ms or more; README, "Results per region").
          if (s.runStartedAt !== null) item.endMs = Math.max(0, Math.round(this.wallNow() + s.offsetMs - s.runStartedAt));
          s.results.push(item);
        }
        this.latencyMs = ewma(this.latencyMs, r.latencyMs);
        this.inflight--;
        onDone?.(r.ok, heard?.text ?? null);
        this.waker.wake();
      });
  }
}
