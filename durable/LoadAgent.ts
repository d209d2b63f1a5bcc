// LoadAgent: one edge agent of one run (README, "Agents and the wire protocol"). The run's coordinator creates
// `agents.edge` of them at run start, placed round-robin over `agents.regions` with
// locationHint; each runs the shared agent engine (agent/) against the target.
//
// Workers limits are met by working in slices: each alarm invocation runs the engine
// until SLICE_MS of wall time or SLICE_REQUESTS requests (subrequests per invocation),
// lets the requests in flight finish, reports, stores the engine's state and sets the
// next alarm at once. The engine keeps its in-flight requests within the coordinator's
// share, capped, for a target that answers only when done, at the six connections an
// invocation may have waiting for response headers (cappedShares, edge-agents.ts): a
// seventh would wait in the runtime with its latency clock running. An alarm invocation
// may run 15 minutes of wall time, so an edge agent caps a request's timeout at
// EDGE_REQUEST_TIMEOUT_S: a slice then lasts at most SLICE_MS plus that cap plus its last
// report, whatever target.timeoutSeconds says.
//
// Stored (SQLite): `agent` (which run, which slot, the engine state after the last
// completed slice, whether a slice is running, and how many alarms in a row have failed
// since when; its shape and the rules below are load-agent-state.ts). In memory: the
// mock's ticker.
// Alarm: one slice, then the next alarm at once. A failed slice (the coordinator
// unreachable or answering 5xx, a storage fault) never throws: the platform retries a
// throwing alarm only a handful of times and then drops it, which would strand the
// agent and its storage after a two-minute coordinator outage. It stores the failure
// count and sets its own alarm with capped exponential backoff (retryDelayMs), and gives
// up and wipes itself only when the coordinator has been unreachable for longer than the
// run could still be waiting for it (giveUpAfterMs).
// After eviction or a crash mid-slice the alarm runs again (alarms are at-least-once) and
// finds the slice open: whatever the agent held may have reached the target, so it sends
// a `restarted` report and the coordinator counts all of it failed (`agent_restarted`);
// nothing is sent twice, the ledger stays exact, and the drain can finish.
// When the run is over (it told the agent to stop, answered 404 run_not_found, or
// refused the agent for good), the agent deletes its storage, and with it its alarm
// (deleteAll does both on this compatibility date).

import { DurableObject } from "cloudflare:workers";
import { AgentEngine } from "../agent/engine";
import type { AgentEvent, AgentState } from "../agent/engine";
import { cachedLoader } from "../agent/datasets";
import type { DatasetLoader } from "../agent/datasets";
import { CoordinatorError, CoordinatorUnavailable } from "../agent/transport";
import type { CoordinatorTransport } from "../agent/transport";
import { edgeInflightCap } from "../contract/run-plan";
import { MOCK_URL } from "../contract/spec";
import type { RunSpec } from "../contract/spec";
import { Ticker, handleMock } from "../mock/mock";
import type { LoadAgentInit } from "./edge-agents";
import { loadDatasetItems } from "./dataset-store";
import { cappedShares, rpcTransport } from "./edge-agents";
import { SLICE_MS, SLICE_REQUESTS, edgeSpec, fitStored, giveUpAfterMs, retryDelayMs } from "./load-agent-state";
import type { Stored } from "./load-agent-state";
import { mockPath as mockPathFor } from "../agent/target";

/** How long asking for the colo may take before the agent joins without it ("unknown"). */
const COLO_TIMEOUT_MS = 2_000;
/** Requests to the built-in mock never leave the isolate: this host is never resolved. */
const MOCK_HOST = "https://builtin-mock.edgeperf.internal";

/** Where the built-in mock serves the spec's endpoint kind (agent/endpoints.ts). */
export function mockPath(spec: RunSpec): string {
  return mockPathFor(spec.target.api);
}

/** How a slice ended short of the run's end. */
type SliceEnd = { state: AgentState; unreachable: Error | null };

export class LoadAgent extends DurableObject<Env> {
  /** The clock the alarms and the give-up bound run on; tests replace it to drive time. */
  now: () => number = () => Date.now();
  /** The run's coordinator; tests replace it to cut the agent off. */
  coordinatorFor: (runId: string) => CoordinatorTransport = (runId) => rpcTransport(this.env, runId);
  /** One slice's limits; tests shorten them. */
  sliceLimits = { ms: SLICE_MS, requests: SLICE_REQUESTS };

  private readonly sql: SqlStorage;
  /** One timer for all of this agent's mock streams (see mock/mock.ts): in memory only. */
  private readonly ticker = new Ticker();
  /** The run's dataset, read from R2 once per instance (README, "Datasets and workloads"). */
  private readonly datasets: DatasetLoader = cachedLoader((id) => loadDatasetItems(this.env.DATASETS, id));

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS agent (k INTEGER PRIMARY KEY CHECK (k = 1), v TEXT NOT NULL);
    `);
  }

  /** Called once by the coordinator at run creation; a repeated call changes nothing. */
  async start(init: LoadAgentInit): Promise<void> {
    if (this.stored()) return;
    this.put({ init, state: null });
    await this.ctx.storage.setAlarm(this.now());
  }

  /**
   * The Cloudflare colo this agent runs in: the `colo=` line of the service's own
   * /cdn-cgi/trace, "local" for a local service, "unknown" when the trace does not say.
   * Asked once, before the join that reports it.
   */
  private async colo(init: LoadAgentInit): Promise<string> {
    if (!init.traceUrl) return "local";
    try {
      const res = await fetch(init.traceUrl, { signal: AbortSignal.timeout(COLO_TIMEOUT_MS) });
      const text = res.ok ? await res.text() : "";
      return /^colo=([A-Z]{3})$/m.exec(text)?.[1] ?? "unknown";
    } catch {
      return "unknown";
    }
  }

  override async alarm(): Promise<void> {
    const stored = this.stored();
    if (!stored) return;
    let end: SliceEnd | "done";
    try {
      end = await this.slice(stored);
    } catch (e) {
      if (e instanceof CoordinatorError) {
        // The run refused this agent for good (gone, complete, or never let it join).
        await this.wipe(stored, `the run refused it (${e.code})`);
        return;
      }
      await this.retryLater(e, null);
      return;
    }
    if (end === "done") {
      await this.wipe(stored, "the run is over");
      return;
    }
    if (end.unreachable) {
      await this.retryLater(end.unreachable, end.state);
      return;
    }
    this.put({ init: stored.init, state: end.state, sliceOpen: false });
    await this.ctx.storage.setAlarm(this.now());
  }

  /**
   * One slice: join or recover, then run the engine. Throws what went wrong before the
   * engine's state is consistent again; a coordinator lost during the slice comes back as
   * `unreachable` with the state as the slice left it (nothing in flight, every pending
   * report and lease kept with its id, so sending them again later counts nothing twice).
   */
  private async slice(stored: Stored): Promise<SliceEnd | "done"> {
    const coordinator = this.coordinatorFor(stored.init.runId);
    const recovered = stored.state ? await this.recover(stored, coordinator) : undefined;
    const transport = cappedShares(coordinator, recovered?.spec ?? null);
    // The coordinator's last word in this slice: an answer (true) or none (false).
    let reached: boolean | null = null;
    const onEvent = (e: AgentEvent) => {
      if (e.type === "offline") reached = false;
      else if (e.type !== "send") reached = true;
    };
    const engine = new AgentEngine(
      {
        transport,
        fetchTarget: (input, init) => this.fetchTarget(engine.state.spec, input, init),
        resolveUrl: (spec) => (spec.target.url === MOCK_URL ? MOCK_HOST + mockPath(spec) : spec.target.url),
        // workerd's clocks count whole milliseconds (docs/ARCHITECTURE.md, "Measuring on a millisecond clock").
        clockTickMs: 1,
        name: `edge-${stored.init.index}`,
        // The same id for every attempt of this agent's join: a join whose answer was lost
        // answers the agent it created instead of joining a second one.
        joinRequestId: `edge-${stored.init.runId.slice(0, 16)}-${stored.init.index}`,
        ...(stored.init.region ? { region: stored.init.region } : {}),
        onEvent,
        datasets: this.datasets,
      },
      // A share stored before its cap existed is capped too, before the first answer does.
      recovered
        ? { ...recovered, spec: edgeSpec(recovered.spec), share: Math.min(recovered.share, edgeInflightCap(recovered.spec.target)) }
        : undefined,
    );
    if (!recovered) {
      await engine.join(await this.colo(stored.init));
      engine.state.spec = edgeSpec(engine.state.spec);
    }
    // One write per slice (not per request, which would hold every request behind the
    // output gate): it tells the next alarm whether this slice finished.
    this.put({ ...this.stored()!, state: engine.state, sliceOpen: true });
    let outcome: "continue" | "done";
    try {
      outcome = await this.runSlice(engine);
    } catch (e) {
      // The engine gives up on an unreachable coordinator only with nothing in flight.
      if (e instanceof CoordinatorUnavailable) return { state: engine.state, unreachable: e };
      throw e;
    }
    if (outcome === "done") return "done";
    const unreachable = reached === false ? new CoordinatorUnavailable(null, "The coordinator did not answer by the slice's end.") : null;
    return { state: engine.state, unreachable };
  }

  private runSlice(engine: AgentEngine): Promise<"continue" | "done"> {
    return engine.runSlice({ untilWallMs: Date.now() + this.sliceLimits.ms, maxRequests: this.sliceLimits.requests });
  }

  /**
   * A failed alarm: stores how many failed in a row and since when, and sets the next
   * alarm after a capped backoff. `state` is the engine's consistent state to keep, or
   * null to keep what is stored (a slice left open is recovered by the next alarm).
   */
  private async retryLater(error: unknown, state: AgentState | null): Promise<void> {
    const current = this.stored();
    if (!current) return;
    const now = this.now();
    const failures = (current.failures ?? 0) + 1;
    const since = current.failingSince ?? now;
    const next: Stored = state ? { ...current, state, sliceOpen: false } : current;
    const why = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    const limit = giveUpAfterMs(next.state);
    if (now - since >= limit) {
      await this.wipe(
        current,
        `giving up after ${failures} failed attempts over ${Math.round((now - since) / 1000)} s (limit ${limit / 1000} s): ${why}`,
      );
      return;
    }
    const delay = retryDelayMs(failures);
    try {
      this.put({ ...next, failures, failingSince: since });
      await this.ctx.storage.setAlarm(now + delay);
    } catch (e) {
      // Storage itself failed: only the platform's own retries are left.
      console.error(`${this.who(current)}: could not schedule a retry after: ${why}`);
      throw e;
    }
    console.warn(`${this.who(current)}: attempt ${failures} failed (${why}); retrying in ${delay / 1000} s`);
  }

  private async wipe(stored: Stored, why: string): Promise<void> {
    console.warn(`${this.who(stored)}: stopping and deleting its storage: ${why}`);
    await this.ctx.storage.deleteAll();
  }

  private who(stored: Stored): string {
    return `LoadAgent:${stored.init.runId}/${stored.init.index}`;
  }

  /**
   * A slice that died mid-way (eviction, crash) may have sent requests this state does
   * not know of, and leased credits it does not list. The coordinator knows what this
   * agent holds: a `restarted` report settles all of it as failed (`agent_restarted`),
   * never to be sent again, and the agent continues with a clean slate.
   */
  private async recover(stored: Stored, transport: CoordinatorTransport): Promise<AgentState> {
    const state = stored.state!;
    if (!stored.sliceOpen) return state;
    await transport.report({
      agentId: state.agentId,
      reportId: `restart-${crypto.randomUUID()}`,
      inflight: 0,
      results: [],
      returned: [],
      restarted: true,
    });
    const clean: AgentState = { ...state, held: [], results: [], returning: [], unacked: null, openLease: null };
    this.put({ ...stored, state: clean, sliceOpen: false });
    return clean;
  }

  /** Requests to the built-in mock are served in this isolate, with the spec's knobs. */
  private fetchTarget(spec: RunSpec, input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    // The engine passes the URL as a string: a real target goes straight to fetch, with
    // no Request built first (one less object per request on the hot path).
    if (typeof input === "string" && !input.startsWith(MOCK_HOST)) return fetch(input, init);
    const request = new Request(input, init);
    if (!request.url.startsWith(MOCK_HOST)) return fetch(request);
    const headers = new Headers(request.headers);
    const knobs = spec.target.mock;
    if (knobs) {
      headers.set("x-mock-ttft-ms", String(knobs.ttftMs));
      headers.set("x-mock-itl-ms", String(knobs.itlMs));
      headers.set("x-mock-error-rate", String(knobs.errorRate));
    }
    return handleMock(new Request(request, { headers }), this.ticker);
  }

  private stored(): Stored | null {
    const row = this.sql.exec("SELECT v FROM agent WHERE k = 1").toArray()[0];
    return row ? (JSON.parse(String(row.v)) as Stored) : null;
  }

  private put(s: Stored): void {
    const json = fitStored(s);
    if (json === null) throw new Error(`${this.who(s)}: the agent's state does not fit in one stored row`);
    this.sql.exec("INSERT INTO agent (k, v) VALUES (1, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", json);
  }
}
