// The agent's calls to its run's coordinator (README, "Agents and the wire protocol"),
// for the agent loop (engine.ts): the join, then reports and leases. Each report and
// lease is kept in the state (unacked, openLease) until answered, so a retry sends the
// same ids and the coordinator counts nothing twice; an answer is applied to the ledger,
// a round trip paces the lease depth, and a failure is sorted into a refusal, an outage
// (retried until maxOfflineMs) or an error that ends the slice.
//
// Apart from the loop because it is a second concern on a second clock: it runs once a
// call (tens a second at most), never once a request, so going through the host costs
// the request path nothing. What runs per request stays in engine.ts.

import { MAX_LEASE_WANT } from "../contract/protocol";
import type { LeaseAnswer, LeaseBody, ReportAnswer, ReportBody } from "../contract/protocol";
import type { CallClock, Moment } from "./policy";
import { drainFirst, leaseDepth, leaseWant, lowWater, needsCredits, newCallClock } from "./policy";
import * as st from "./state";
import type { AgentState, StopMode } from "./state";
import { CoordinatorError, CoordinatorUnavailable } from "./transport";
import type { CoordinatorTransport } from "./transport";

/** Results (and returns) per report: about 250 bytes each keeps a report far under 1 MiB. */
export const MAX_REPORT_ITEMS = 2_000;

/** The events the calls emit: AgentEvent (engine.ts) but for "send". */
export type CallEvent =
  | { type: "lease"; credits: number; share: number }
  | { type: "report"; results: number; returned: number; accepted: number; duplicates: number }
  | { type: "stop"; mode: StopMode }
  | { type: "offline"; message: string };

/** The calls' part of EngineOptions (engine.ts), documented there. */
export interface CallOptions {
  transport: CoordinatorTransport;
  name?: string;
  region?: string;
  joinRequestId?: string;
  want?: number;
  maxOfflineMs?: number;
  onEvent?: (e: CallEvent) => void;
}

/** What the calls need of the agent loop. */
export interface CallHost {
  /** Monotonic ms and epoch ms, as the engine resolved them. */
  readonly now: () => number;
  readonly wallNow: () => number;
  /** How often `now` ticks (EngineOptions.clockTickMs), told to the coordinator at the join. */
  readonly clockTickMs: number;
  state(): AgentState;
  /** Requests in flight now. */
  inflight(): number;
  /** The target's latency (an EWMA), null until measured. */
  latencyMs(): number | null;
  moment(winding: boolean): Moment;
  /** Ends the slice with this error once nothing is in flight. */
  fail(error: unknown): void;
  /** Cancels every request in flight. */
  cancelRequests(): void;
}

export class CoordinatorCalls {
  /** When calls were made and how deep to lease; the loop plans the next call with it. */
  readonly calls: CallClock = newCallClock();
  private readonly opts: CallOptions;
  private readonly host: CallHost;
  private readonly transport: CoordinatorTransport;
  private readonly now: () => number;
  private readonly wallNow: () => number;
  private readonly maxWant: number;
  private readonly maxOfflineMs: number;
  // Ids are unique per engine instance, so a slice replayed from older stored state
  // can never reuse an id the coordinator has already answered for other content.
  private readonly nonce = crypto.randomUUID().slice(0, 12);
  private counter = 0;
  private offlineSince: number | null = null;
  /** Pacing estimate for the lease depth (an EWMA): the coordinator's round trip. */
  private rttMs: number | null = null;

  constructor(opts: CallOptions, host: CallHost) {
    this.opts = opts;
    this.host = host;
    this.transport = opts.transport;
    this.now = host.now;
    this.wallNow = host.wallNow;
    this.maxWant = Math.max(1, Math.min(MAX_LEASE_WANT, Math.floor(opts.want ?? MAX_LEASE_WANT)));
    this.maxOfflineMs = opts.maxOfflineMs ?? 60_000;
  }

  /** The coordinator could not be reached since the last call that went through. */
  get offline(): boolean {
    return this.offlineSince !== null;
  }

  /** Joins the run and returns the agent's first state. Refusals are thrown as CoordinatorError. */
  async join(colo?: string): Promise<AgentState> {
    const { name, region } = this.opts;
    const sentAt = this.wallNow();
    // The requestId makes a retried join (its answer lost) answer the same agent.
    const a = await this.transport.join({
      requestId: this.opts.joinRequestId ?? this.id("j"),
      ...(name !== undefined ? { name } : {}),
      ...(region !== undefined ? { region } : {}),
      ...(colo !== undefined ? { colo } : {}),
      clockTickMs: this.host.clockTickMs,
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
    this.calls.lastCallAt = this.now();
    return s;
  }

  /** A new slice starts online, free to call at once. */
  beginSlice(): void {
    this.offlineSince = null;
    this.calls.blockedUntil = 0;
  }

  /** Takes up the round trip measured by an earlier slice (null: not measured) and paces by it. */
  restorePace(rttMs: number | null): void {
    this.rttMs = rttMs;
    this.updateDepth();
  }

  /** The call(s) plan() asked for; never throws: a failure is applied (failed). */
  async sync(work: { report: boolean; lease: boolean }): Promise<void> {
    try {
      const wantsLease = () =>
        work.lease &&
        this.host.state().stop === "running" &&
        needsCredits(this.host.state(), this.host.moment(false), this.calls.depth, this.calls.drainFirst, this.calls.low);
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
    const s = this.host.state();
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
      inflight: this.host.inflight(),
      results: u.results,
      returned: u.returned,
      ...(u.sessions ? { sessions: u.sessions } : {}),
      ...(u.newSessions ? { newSessions: u.newSessions } : {}),
    };
  }

  private reported(a: ReportAnswer): void {
    const s = this.host.state();
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
    const s = this.host.state();
    if (!s.openLease) {
      const sessions = st.sessionsWanted(s);
      s.openLease = {
        requestId: this.id("q"),
        want: leaseWant(s, this.host.inflight(), this.maxWant, this.calls.depth),
        ...(sessions > 0 ? { sessions } : {}),
      };
    }
    const o = s.openLease;
    const depth = this.calls.depth > s.share ? { depth: this.calls.depth } : {};
    return {
      agentId: s.agentId,
      requestId: o.requestId,
      want: o.want,
      inflight: this.host.inflight(),
      ...depth,
      ...(o.sessions ? { newSessions: o.sessions } : {}),
    };
  }

  private leased(a: LeaseAnswer): void {
    const s = this.host.state();
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
    st.observeClock(this.host.state(), a.serverTime, sentAt, this.wallNow());
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
    const s = this.host.state();
    const latencyMs = this.host.latencyMs();
    const sendsPerMs = latencyMs !== null && latencyMs > 0 ? s.share / latencyMs : 0;
    // A cycle is a report and a lease: one call where the transport combines them, else two.
    const cycleMs = this.rttMs === null ? null : this.rttMs * (this.transport.reportThenLease ? 1 : 2);
    this.calls.depth = leaseDepth(s.share, sendsPerMs, cycleMs);
    this.calls.drainFirst = drainFirst(s.share, sendsPerMs, cycleMs);
    this.calls.low = lowWater(s.share, sendsPerMs, cycleMs);
    s.pace = { rttMs: this.rttMs, latencyMs };
  }

  private stopFlags(stop: boolean, finishLeased: boolean): void {
    const s = this.host.state();
    if (st.applyStop(s, stop, finishLeased)) this.opts.onEvent?.({ type: "stop", mode: s.stop });
  }

  private failed(e: unknown): void {
    const s = this.host.state();
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
        this.host.cancelRequests(); // nothing sent now could be counted
        this.opts.onEvent?.({ type: "stop", mode: "gone" });
      } else this.host.fail(e);
      return;
    }
    if (e instanceof CoordinatorUnavailable) {
      const now = this.now();
      this.offlineSince ??= now;
      this.calls.blockedUntil = now + s.reportIntervalMs;
      this.opts.onEvent?.({ type: "offline", message: e.message });
      if (now - this.offlineSince >= this.maxOfflineMs) this.host.fail(e);
      return;
    }
    this.host.fail(e);
  }

  private id(kind: string): string {
    return `${kind}-${this.nonce}-${++this.counter}`;
  }
}

/** An exponentially weighted moving average (weight 0.2 on the newest sample). */
export function ewma(avg: number | null, x: number): number {
  return avg === null ? x : 0.8 * avg + 0.2 * x;
}
