// RunCoordinator: the single source of truth for one benchmark run (docs/ARCHITECTURE.md: "The run lifecycle", "The credit protocol").
//
// Responsibilities: the run lifecycle (run-machine.ts), the credit ledger and the
// agents (agent-desk.ts), merged metrics and the time series (run-results.ts), threshold
// aborts, token checks for the run's own tokens, the completion webhook (webhook.ts),
// and the one alarm. This file is its RPC surface: who may make each call, what the call
// changes, and what it answers. The stored run under it, its transactions, deadlines,
// alarm and wipe, is run-core.ts.

import { DurableObject } from "cloudflare:workers";
import type { Auth } from "../contract/tokens";
import { hashesEqual } from "../contract/tokens";
import { StatusError, asResult } from "../contract/errors";
import type { RpcResult } from "../contract/errors";
import type { JoinAnswer, JoinBody, LeaseAnswer, LeaseBody, ReportAnswer, ReportBody } from "../contract/protocol";
import type { RunPlan } from "../contract/run-plan";
import type { RunSpec } from "../contract/spec";
import { startEdgeAgents } from "./edge-agents";
import * as m from "./run-machine";
import type { RunState } from "./run-machine";
import { startSchedule } from "./schedule";
import type { Results, Snapshot } from "./views";
import type { WebhookState } from "./webhook";
import { RunCore, notFound } from "./run-core";
import type { Secrets } from "./run-core";

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

export class RunCoordinator extends DurableObject<Env> {
  /** The clock every deadline is measured on; tests replace it to drive time. */
  now: () => number = () => Date.now();
  /** Outbound fetch for the webhook; tests replace it with a receiver at the edge. */
  fetchOut: typeof fetch = (input, init) => fetch(input, init);
  /** The stored run and its deadlines (run-core.ts). */
  private readonly run: RunCore;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.run = new RunCore(
      ctx,
      env,
      () => this.now(),
      (input, init) => this.fetchOut(input, init),
    );
  }

  /** Rows this instance has written to storage (SQLite rows and alarms), for tests and benchmarks: what Cloudflare bills. */
  get rowsWritten(): number {
    return this.run.store.rowsWritten;
  }

  // ── RPC: run owner and readers ─────────────────────────────────────────────

  async create(init: CreateInit): Promise<RpcResult<Snapshot>> {
    return asResult(async () => {
      if (this.run.load()) throw new StatusError(409, "run_exists", "This run already exists.");
      const { spec } = init;
      const { config, limits } = init.plan;
      const state = m.createRun(limits, this.now());
      this.run.transaction(() => {
        this.run.store.init();
        this.run.store.putMeta("run", config);
        this.run.store.putMeta("spec", spec);
        this.run.store.putMeta("publicSpec", init.publicSpec);
        const secrets: Secrets = {
          read: init.readTokenHash,
          agent: init.agentTokenHash,
          ...(init.notifySecret ? { notify: init.notifySecret } : {}),
        };
        this.run.store.putMeta("auth", secrets);
        this.run.measured.start(spec.timesliceSeconds);
        this.run.store.putMeta("schedule", startSchedule(config.seed));
        if (init.replayOffsets) this.run.store.putReplayOffsets(init.replayOffsets);
        if (spec.notify) {
          const hook: WebhookState = { url: spec.notify.url, attempts: 0, nextAt: null, delivered: false, lastError: null };
          this.run.webhook.put(hook);
        }
        this.run.store.putMeta("state", state);
      });
      this.run.runConfig = config;
      this.run.state = state;
      await this.run.schedule();
      await startEdgeAgents(this.env, config, init.origin);
      return this.run.snapshot();
    });
  }

  /** Status; with waitMs > 0, answers as soon as the phase changes or the wait ends. */
  async status(auth: Auth, waitMs = 0): Promise<RpcResult<Snapshot>> {
    return asResult(async () => {
      const { phase } = await this.run.open(auth, "read");
      if (waitMs > 0 && phase !== "complete") {
        await this.run.waitForChange(waitMs, () => this.run.state?.phase !== phase);
        if (!this.run.state && this.run.lastWords) return this.run.lastWords.snapshot;
      }
      return this.run.snapshot();
    });
  }

  /** Results; with waitMs > 0, answers as soon as the run completes or the wait ends. */
  async results(auth: Auth, waitMs = 0): Promise<RpcResult<Results>> {
    return asResult(async () => {
      await this.run.open(auth, "read");
      if (waitMs > 0 && this.run.state?.phase !== "complete") {
        await this.run.waitForChange(waitMs, () => this.run.state?.phase === "complete");
        if (!this.run.state && this.run.lastWords) return this.run.lastWords.results;
      }
      return this.run.resultsNow();
    });
  }

  /** The run's dataset id, for GET /v1/datasets/:id/items?run= (worker/datasets.ts): the agent token reads only that one. */
  async datasetOf(auth: Auth): Promise<RpcResult<string | null>> {
    return asResult(async () => {
      await this.run.open(auth, "agent");
      return this.run.specNow()?.workload.dataset?.id ?? null;
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
      const wipesBefore = this.run.wipes;
      let phase: RunState["phase"];
      try {
        ({ phase } = await this.run.open(auth, "read"));
      } catch (e) {
        const mayRead = auth.role === "api" || (this.run.lastReadHash !== null && hashesEqual(auth.hash, this.run.lastReadHash));
        if (this.run.wipes !== wipesBefore && this.run.lastWords && mayRead && e instanceof StatusError && e.status === 404)
          return this.run.lastWords;
        throw e;
      }
      if (waitMs > 0 && phase !== "complete") {
        await this.run.waitForChange(waitMs, () => this.run.state?.phase !== phase);
        if (!this.run.state && this.run.lastWords) return this.run.lastWords;
      }
      const snapshot = this.run.snapshot();
      return { snapshot, results: snapshot.phase === "complete" ? this.run.resultsNow() : null };
    });
  }

  /** A user's stop; the Fleet's service drain passes `by: "service_drain"` with a force stop at its deadline. */
  async stop(auth: Auth, mode: "graceful" | "force", by: "user" | "service_drain" = "user"): Promise<RpcResult<Snapshot>> {
    return asResult(async () => {
      if (auth.role !== "api") throw new StatusError(401, "invalid_token", "Stopping a run needs the API token.");
      const state = await this.run.open(auth, "read");
      const r = m.stop(state, mode, this.now(), by);
      this.run.transaction(() => {
        if (r.abandonAll) this.run.abandonAllCredits();
        this.run.commit(r.state);
      });
      await this.run.schedule();
      return this.run.snapshot();
    });
  }

  // ── RPC: agents (wire protocol v1) ─────────────────────────────────────────

  async join(auth: Auth, body: JoinBody): Promise<RpcResult<JoinAnswer>> {
    return asResult(async () => {
      const state = await this.run.open(auth, "agent");
      const cfg = this.run.config();
      const now = this.now();
      const desk = this.run.desk();
      // A join retried after its answer was lost gets the agent it created, even if the
      // drain began meanwhile (the agent then learns `stop` from its first lease).
      const known = desk.previousJoin(body.requestId);
      const agent = known ?? this.run.transaction(() => desk.join(state, body, now));
      await this.run.schedule();
      const spec = this.run.specNow();
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
      const state = await this.run.open(auth, "agent");
      const desk = this.run.desk();
      const agent = desk.agentOrThrow(body.agentId);
      const previous = desk.previousLease(agent, body.requestId);
      if (previous !== null) {
        let credits: LeaseAnswer["credits"] | null = null;
        this.run.transaction(() => {
          const r = desk.repeatLease(state, agent, previous, this.now());
          credits = r.credits;
          if (r.next !== state) this.run.commit(r.next);
        });
        await this.run.schedule();
        if (credits === null) m.assertAccepting(this.run.state ?? state);
        const sessions = credits !== null && previous.sessions ? desk.sessionItems(previous.sessions) : undefined;
        return this.run.leaseAnswer(previous.id, credits ?? [], agent.shareSent, sessions);
      }
      let answer: LeaseAnswer | null = null;
      this.run.transaction(() => {
        const r = desk.lease(state, agent, body, this.now());
        this.run.commit(r.next);
        answer = this.run.leaseAnswer(r.leaseId, r.credits, r.share, r.sessions);
      });
      await this.run.schedule();
      return answer!;
    });
  }

  async report(auth: Auth, body: ReportBody): Promise<RpcResult<ReportAnswer>> {
    return asResult(async () => {
      const state = await this.run.open(auth, "agent");
      const desk = this.run.desk();
      const agent = desk.agentOrThrow(body.agentId);
      const now = this.now();
      const previous = desk.previousReport(agent, body.reportId);
      if (previous !== null) return { ...previous, ...this.run.stopFlags(), concurrency: agent.shareSent, serverTime: now };
      let answer: ReportAnswer | null = null;
      this.run.transaction(() => {
        const r = desk.report(state, agent, body, now);
        this.run.measured.add(r.measured, r.next, now, this.run.regionKey(agent), this.run.specNow()?.goodput);
        if (body.sessions) this.run.addSessions(body.sessions);
        this.run.commit(r.measured.length > 0 ? this.run.abortOnThresholds(r.next, now) : r.next);
        answer = {
          accepted: r.accepted,
          duplicates: r.duplicates,
          ...(r.sessions ? { sessions: r.sessions } : {}),
          ...this.run.stopFlags(),
          concurrency: r.share,
          serverTime: now,
        };
      });
      await this.run.schedule();
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
    this.run.alarmClock.gone();
    if (!this.run.load()) return;
    await this.run.advance(this.now(), { fromAlarm: true });
  }
}
