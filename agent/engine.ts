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

import { MAX_LEASE_WANT } from "../contract/protocol";
import type { LeaseAnswer, LeaseBody, ReportAnswer, ReportBody } from "../contract/protocol";
import type { RunSpec } from "../contract/spec";
import type { CallClock, Moment } from "./policy";
import { drainFirst, leaseDepth, leaseWant, lowWater, needsCredits, newCallClock, nextWake, plan } from "./policy";
import type { DatasetItem } from "../contract/dataset";
import { DEFAULT_TOKENIZER } from "../contract/spec";
import type { DatasetLoader } from "./datasets";
import { Deadlines } from "./deadlines";
import type { Job } from "./prompt";
import { jobFor, turnRequest } from "./prompt";
import { Sessions } from "./sessions";
import * as st from "./state";
import type { AgentState, Credit, StopMode } from "./state";
import { sendRequest, spreadOverTick } from "./target";
import type { TargetFetch } from "./target";
import { CoordinatorError, CoordinatorUnavailable } from "./transport";
import type { CoordinatorTransport } from "./transport";
import { Waker } from "./waker";

export type { AgentState, Credit, StopMode } from "./state";

export { REPORT_BATCH } from "./policy";
/** Results (and returns) per report: about 250 bytes each keeps a report far under 1 MiB. */
export const MAX_REPORT_ITEMS = 2_000;

export type AgentEvent =
  | { type: "send"; seq: number }
  | { type: "lease"; credits: number; share: number }
  | { type: "report"; results: number; returned: number; accepted: number; duplicates: number }
  | { type: "stop"; mode: StopMode }
  | { type: "offline"; message: string };

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
  private readonly transport: CoordinatorTransport;
  private readonly fetchTarget: TargetFetch;
  private readonly now: () => number;
  private readonly wallNow: () => number;
  private readonly clockTickMs: number;
  private readonly maxWant: number;
  private readonly maxOfflineMs: number;
  // Ids are unique per engine instance, so a slice replayed from older stored state
  // can never reuse an id the coordinator has already answered for other content.
  private readonly nonce = crypto.randomUUID().slice(0, 12);
  private counter = 0;
  private url: string | null = null;

  // In memory only: the moving parts of the current slice, rebuilt by every slice.
  private inflight = 0;
  private syncing: Promise<void> | null = null;
  private readonly calls: CallClock = newCallClock();
  private offlineSince: number | null = null;
  private fatal: { error: unknown } | null = null;
  /** The slice's request timeouts, on one shared timer, and its cancel (agent/deadlines.ts). */
  private deadlines = new Deadlines();
  private running = false;
  /** Pacing estimates for the lease depth (EWMAs): the coordinator's round trip and the target's latency. */
  private rttMs: number | null = null;
  private latencyMs: number | null = null;
  private readonly waker: Waker;
  /** The run's dataset items (workload.dataset), read before the first request of a slice. */
  private items: DatasetItem[] | null = null;
  /** multi_turn: the sessions under way (agent/sessions.ts). */
  private readonly sessions: Sessions;

  constructor(opts: EngineOptions, state?: AgentState) {
    this.opts = opts;
    this.s = state ?? null;
    this.transport = opts.transport;
    const f = opts.fetchTarget; // called bare: workerd refuses fetch with a foreign `this`
    this.fetchTarget = (input, init) => f(input, init);
    this.now = opts.now ?? (() => performance.now());
    this.wallNow = opts.wallNow ?? (() => Date.now());
    this.clockTickMs = opts.clockTickMs ?? 0;
    this.waker = new Waker(this.now, opts.sleep ?? ((ms) => new Promise<void>((r) => setTimeout(r, ms))));
    this.maxWant = Math.max(1, Math.min(MAX_LEASE_WANT, Math.floor(opts.want ?? MAX_LEASE_WANT)));
    this.maxOfflineMs = opts.maxOfflineMs ?? 60_000;
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
      this.rttMs = finite(state.pace.rttMs);
      this.latencyMs = finite(state.pace.latencyMs);
      this.updateDepth();
    }
  }

  /** The lease depth and low-water mark in use (agent/policy.ts); for tests and diagnostics. */
  get pacing(): { depth: number; low: number } {
    return { depth: this.calls.depth, low: this.calls.low };
  }

  get state(): AgentState {
    if (!this.s) throw new Error("AgentEngine: join() has not completed.");
    return this.s;
  }

  /** Joins the run (`colo`: the Cloudflare colo an edge agent runs in). Refusals (run_draining, run_complete…) are thrown as CoordinatorError. */
  async join(colo?: string): Promise<void> {
    if (this.s) return;
    const { name, region } = this.opts;
    const sentAt = this.wallNow();
    // The requestId makes a retried join (its answer lost) answer the same agent.
    const a = await this.transport.join({
      requestId: this.opts.joinRequestId ?? this.id("j"),
      ...(name !== undefined ? { name } : {}),
      ...(region !== undefined ? { region } : {}),
      ...(colo !== undefined ? { colo } : {}),
      clockTickMs: this.clockTickMs,
    });
    const s: AgentState = {
      version: 1,
      agentId: a.agentId,
      spec: a.spec,
      leaseTtlMs: a.leaseTtlMs,
      reportIntervalMs: a.reportIntervalMs,
      offsetMs: 0,
      offsetRttMs: null,
      runStartedAt: null,
      share: a.concurrency,
      held: [],
      results: [],
      returning: [],
      unacked: null,
      openLease: null,
      stop: a.stop ? "asking" : "running",
      sent: 0,
      ...(a.datasetType ? { datasetType: a.datasetType } : {}),
      ...(a.datasetType === "multi_turn" ? { sessions: [] } : {}),
    };
    st.observeClock(s, a.serverTime, sentAt, this.wallNow());
    this.s = s;
    this.calls.lastCallAt = this.now();
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
          const work = plan(s, this.moment(winding), this.calls);
          if (work)
            this.syncing = this.sync(work).finally(() => {
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
          } else if (winding && this.offlineSince !== null) return "continue";
        }
        if (limits.untilWallMs !== undefined && !winding) this.waker.arm(this.now() + limits.untilWallMs - this.wallNow());
        // While a call is under way its end wakes the loop.
        if (this.syncing === null && s.stop !== "gone") this.waker.arm(nextWake(s, this.moment(winding), this.calls));
        await this.waker.next();
      }
    } finally {
      this.running = false;
    }
  }

  private beginSlice(): void {
    this.fatal = null;
    this.offlineSince = null;
    this.calls.blockedUntil = 0;
    this.deadlines = new Deadlines();
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
          const lag = lagMs !== undefined ? { lagMs: Math.round(lagMs * 1000) / 1000 } : {};
          s.results.push({ seq, ...spreadOverTick(r, seq, this.clockTickMs), ...lag });
        }
        this.latencyMs = ewma(this.latencyMs, r.latencyMs);
        this.inflight--;
        onDone?.(r.ok, heard?.text ?? null);
        this.waker.wake();
      });
  }

  // ── Talking to the coordinator ─────────────────────────────────────────────

  private moment(winding: boolean): Moment {
    return { now: this.now(), wall: this.wallNow(), inflight: this.inflight, winding };
  }

  private async sync(work: { report: boolean; lease: boolean }): Promise<void> {
    try {
      const wantsLease = () =>
        work.lease &&
        this.state.stop === "running" &&
        needsCredits(this.state, this.moment(false), this.calls.depth, this.calls.drainFirst, this.calls.low);
      if (work.report && this.transport.reportThenLease && wantsLease()) {
        await this.reportThenLease(this.transport.reportThenLease.bind(this.transport));
      } else {
        if (work.report) await this.report();
        if (wantsLease()) await this.lease();
      }
      this.offlineSince = null;
    } catch (e) {
      this.failed(e);
    }
  }

  private reportBody(): ReportBody {
    const s = this.state;
    if (!s.unacked) {
      const sessions = st.takeSessionCounts(s);
      // multi_turn: a report asks for new sessions' items while there are credits to start them with.
      const newSessions = s.held.length > 0 ? st.sessionsWanted(s) : 0;
      s.unacked = {
        reportId: this.id("r"),
        results: s.results.splice(0, MAX_REPORT_ITEMS),
        returned: s.returning.splice(0, MAX_REPORT_ITEMS),
        ...(sessions ? { sessions } : {}),
        ...(newSessions > 0 ? { newSessions } : {}),
      };
    }
    const u = s.unacked;
    return {
      agentId: s.agentId,
      reportId: u.reportId,
      inflight: this.inflight,
      results: u.results,
      returned: u.returned,
      ...(u.sessions ? { sessions: u.sessions } : {}),
      ...(u.newSessions ? { newSessions: u.newSessions } : {}),
    };
  }

  private reported(a: ReportAnswer): void {
    const s = this.state;
    const u = s.unacked!;
    s.unacked = null;
    if (a.sessions && s.sessions) (s.sessionItems ??= []).push(...a.sessions);
    this.calls.lastReportAt = this.now();
    s.share = a.concurrency;
    if (u.results.length + u.returned.length > 0) this.calls.leaseRetryAt = 0; // the share-plus-depth cap has room again
    this.opts.onEvent?.({
      type: "report",
      results: u.results.length,
      returned: u.returned.length,
      accepted: a.accepted,
      duplicates: a.duplicates,
    });
    this.stopFlags(a.stop, a.finishLeased);
  }

  private leaseBody(): LeaseBody {
    const s = this.state;
    if (!s.openLease) {
      const sessions = st.sessionsWanted(s);
      s.openLease = {
        requestId: this.id("q"),
        want: leaseWant(s, this.inflight, this.maxWant, this.calls.depth),
        ...(sessions > 0 ? { sessions } : {}),
      };
    }
    const o = s.openLease;
    const depth = this.calls.depth > s.share ? { depth: this.calls.depth } : {};
    return {
      agentId: s.agentId,
      requestId: o.requestId,
      want: o.want,
      inflight: this.inflight,
      ...depth,
      ...(o.sessions ? { newSessions: o.sessions } : {}),
    };
  }

  private leased(a: LeaseAnswer): void {
    const s = this.state;
    s.openLease = null;
    if (a.runStartedAt !== null) s.runStartedAt = a.runStartedAt;
    s.share = a.concurrency;
    st.addCredits(s, a.credits);
    if (a.sessions && s.sessions) (s.sessionItems ??= []).push(...a.sessions);
    if (a.credits.length === 0) this.calls.leaseRetryAt = this.now() + s.reportIntervalMs / 4;
    this.opts.onEvent?.({ type: "lease", credits: a.credits.length, share: a.concurrency });
    this.stopFlags(a.stop, a.finishLeased);
  }

  private async report(): Promise<void> {
    const body = this.reportBody();
    this.reported(await this.call(() => this.transport.report(body)));
  }

  private async lease(): Promise<void> {
    const body = this.leaseBody();
    this.leased(await this.call(() => this.transport.lease(body)));
  }

  /**
   * A report and the lease after it in one round trip, where the transport offers it
   * (edge agents: one Durable Object RPC instead of two). The coordinator settles the
   * report first, exactly as two calls would; a refused lease comes back as a value, so
   * the report's answer is applied either way, and both keep their ids for a retry.
   */
  private async reportThenLease(both: NonNullable<CoordinatorTransport["reportThenLease"]>): Promise<void> {
    const reportBody = this.reportBody();
    const leaseBody = this.leaseBody();
    const a = await this.call(async () => {
      const r = await both(reportBody, leaseBody);
      return { ...r, serverTime: r.report.serverTime };
    });
    this.reported(a.report);
    if (a.lease instanceof Error) this.failed(a.lease);
    else this.leased(a.lease);
  }

  private async call<T extends { serverTime: number }>(fn: () => Promise<T>): Promise<T> {
    const sentAt = this.wallNow();
    const startedAt = this.now();
    const a = await fn();
    st.observeClock(this.state, a.serverTime, sentAt, this.wallNow());
    this.calls.lastCallAt = this.now();
    this.rttMs = ewma(this.rttMs, this.calls.lastCallAt - startedAt);
    this.updateDepth();
    return a;
  }

  /**
   * The lease depth for the share and what was measured: the share sends share/latency
   * requests a millisecond, and credits must last the coordinator's report-and-lease cycle.
   */
  private updateDepth(): void {
    const s = this.state;
    const sendsPerMs = this.latencyMs !== null && this.latencyMs > 0 ? s.share / this.latencyMs : 0;
    // A cycle is a report and a lease: one call where the transport combines them, else two.
    const cycleMs = this.rttMs === null ? null : this.rttMs * (this.transport.reportThenLease ? 1 : 2);
    this.calls.depth = leaseDepth(s.share, sendsPerMs, cycleMs);
    this.calls.drainFirst = drainFirst(s.share, sendsPerMs, cycleMs);
    this.calls.low = lowWater(s.share, sendsPerMs, cycleMs);
    s.pace = { rttMs: this.rttMs, latencyMs: this.latencyMs };
  }

  private stopFlags(stop: boolean, finishLeased: boolean): void {
    if (st.applyStop(this.state, stop, finishLeased)) this.opts.onEvent?.({ type: "stop", mode: this.state.stop });
  }

  private failed(e: unknown): void {
    const s = this.state;
    if (e instanceof CoordinatorError) {
      if (e.code === "run_draining") {
        // Only leases are refused this way; a refused lease granted nothing.
        s.openLease = null;
        if (s.stop === "running") {
          s.stop = "asking"; // sending pauses until a report's answer says how to stop
          this.opts.onEvent?.({ type: "stop", mode: "asking" });
        }
      } else if (e.code === "run_complete" || e.code === "run_not_found") {
        st.markGone(s);
        this.deadlines.cancelAll(); // nothing sent now could be counted
        this.opts.onEvent?.({ type: "stop", mode: "gone" });
      } else this.fatal = { error: e };
      return;
    }
    if (e instanceof CoordinatorUnavailable) {
      const now = this.now();
      this.offlineSince ??= now;
      this.calls.blockedUntil = now + s.reportIntervalMs;
      this.opts.onEvent?.({ type: "offline", message: e.message });
      if (now - this.offlineSince >= this.maxOfflineMs) this.fatal = { error: e };
      return;
    }
    this.fatal = { error: e };
  }

  private id(kind: string): string {
    return `${kind}-${this.nonce}-${++this.counter}`;
  }
}

/** An exponentially weighted moving average (weight 0.2 on the newest sample). */
function ewma(avg: number | null, x: number): number {
  return avg === null ? x : 0.8 * avg + 0.2 * x;
}
