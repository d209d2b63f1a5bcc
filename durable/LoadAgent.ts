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
// since when). In memory: the mock's ticker.
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
import { countSession } from "../agent/state";
import type { Session } from "../agent/state";
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
import { mockPath as mockPathFor } from "../agent/target";

export interface Stored {
  init: LoadAgentInit;
  state: AgentState | null;
  /** Set while a slice runs: found set at the start of the next alarm, the slice died. */
  sliceOpen?: boolean;
  /** Alarms in a row that failed; absent or 0 once one works. */
  failures?: number;
  /** When the current streak of failures began (the agent's clock); absent while things work. */
  failingSince?: number;
}

export const SLICE_MS = 20_000;
/** How long asking for the colo may take before the agent joins without it ("unknown"). */
const COLO_TIMEOUT_MS = 2_000;
/**
 * Requests a slice sends (subrequests per invocation: 10,000 in wrangler.toml, with room
 * for the slice's coordinator calls). Each slice ends by letting what is in flight finish,
 * which dips the agent's concurrency, and costs a report, a stored state and a new
 * invocation: 2,000 rather than 500 cut six edge agents' local workerd CPU a request by
 * about a tenth and raised their delivered concurrency from 30.9 to 31.5 of 32; 5,000 was
 * no better than 2,000 (docs/BENCHMARKS.md).
 */
export const SLICE_REQUESTS = 2000;
/** Cloudflare's wall-time limit for one alarm invocation. */
export const ALARM_WALL_LIMIT_MS = 15 * 60_000;
/**
 * An edge agent's longest request. A slice stops sending at SLICE_MS and then waits for
 * what is in flight, so 20 s + 300 s (+ one report) is about a third of the alarm's 15
 * minutes; the spec's target.timeoutSeconds (up to 3,600) would let one slice run an hour.
 * External agents (`edgeperf agent`) are not invoked by alarms and honour the full timeout.
 */
export const EDGE_REQUEST_TIMEOUT_S = 300;
/** Backoff after a failed alarm: 1 s, doubling, at most 60 s. */
export const RETRY_FIRST_MS = 1_000;
export const RETRY_MAX_MS = 60_000;
/** Never give up on a coordinator sooner than this (a partition may cut off only this agent). */
export const GIVE_UP_FLOOR_MS = 60 * 60_000;
/**
 * The most the agent's one stored row may take, in UTF-8 bytes: Cloudflare caps a SQLite
 * row (and a string or blob in it) at 2 MB. Only multi_turn sessions make the state large
 * (their histories: the dataset's turns and the answers the target gave); see fitStored.
 */
export const MAX_STORED_BYTES = 1_900_000;
/** Requests to the built-in mock never leave the isolate: this host is never resolved. */
const MOCK_HOST = "https://builtin-mock.edgeperf.internal";

/** Where the built-in mock serves the spec's endpoint kind (agent/endpoints.ts). */
export function mockPath(spec: RunSpec): string {
  return mockPathFor(spec.target.api);
}

/** The spec as an edge agent runs it: the request timeout capped (see EDGE_REQUEST_TIMEOUT_S). */
export function edgeSpec(spec: RunSpec): RunSpec {
  if (spec.target.timeoutSeconds <= EDGE_REQUEST_TIMEOUT_S) return spec;
  return { ...spec, target: { ...spec.target, timeoutSeconds: EDGE_REQUEST_TIMEOUT_S } };
}

/** The wait before the next attempt after `failures` failed alarms in a row (1, 2, 4 … 60 s). */
export function retryDelayMs(failures: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.max(0, Math.min(failures - 1, 30)));
}

/**
 * How long an agent keeps retrying a coordinator it cannot reach. The coordinator ends a
 * run that has heard from no agent for agentTimeoutSeconds (after the last lease expired),
 * drains it for at most drainTimeoutSeconds and wipes it graceSeconds later, all on its
 * own alarm: past that sum, a run cut off from every agent is certainly over, and the
 * agent would only learn so (run_not_found) when it is reachable again. The floor covers
 * a partition that cuts off only this agent while others keep the run going, and an agent
 * that never joined (no spec yet).
 */
export function giveUpAfterMs(state: AgentState | null): number {
  if (!state) return GIVE_UP_FLOOR_MS;
  const spec = state.spec as Partial<RunSpec>;
  // Runs stored before agentTimeoutSeconds existed have the coordinator's default, 300 s.
  const seconds = (spec.agentTimeoutSeconds ?? 300) + (spec.drainTimeoutSeconds ?? 0) + (spec.graceSeconds ?? 0);
  return Math.max(GIVE_UP_FLOOR_MS, state.leaseTtlMs + seconds * 1000);
}

/**
 * The agent's row as stored: its JSON, within `limit` UTF-8 bytes. Where sessions' histories
 * would take it past that, the sessions with the longest histories are ended as `cut`
 * (counted in the next report, like any session a stop cuts) until it fits: the agent keeps
 * working and its storage writes keep succeeding, instead of failing every alarm at the
 * platform's row limit. Sessions are only ended between turns: the row is written at a
 * slice's start and end, with nothing in flight. Returns null, with the state as it was,
 * if the row cannot fit even without sessions (nothing else in it grows with the run, so
 * that is a bug).
 */
export function fitStored(s: Stored, limit = MAX_STORED_BYTES): string | null {
  let json = JSON.stringify(s);
  if (fits(json, limit)) return json;
  const state = s.state;
  const sessions = state?.sessions;
  if (!state || !sessions || sessions.length === 0) return null;
  const size = (x: Session) => x.history.reduce((n, m) => n + m.content.length, 0);
  const longestFirst = [...sessions].sort((a, b) => size(b) - size(a));
  const before = { sessions: [...sessions], counts: state.sessionCounts ? { ...state.sessionCounts } : undefined };
  for (const [i, x] of longestFirst.entries()) {
    sessions.splice(sessions.indexOf(x), 1);
    countSession(state, "cut");
    json = JSON.stringify(s);
    if (fits(json, limit)) {
      console.warn(
        `LoadAgent: sessions' histories took the agent's stored state past ${limit} bytes; cut the ${i + 1} longest (the longest ${size(longestFirst[0]!)} characters)`,
      );
      return json;
    }
  }
  sessions.splice(0, sessions.length, ...before.sessions);
  if (before.counts) state.sessionCounts = before.counts;
  else delete state.sessionCounts;
  return null;
}

/** Whether a string's UTF-8 takes at most `limit` bytes; encoded only where its length does not settle it. */
function fits(text: string, limit: number): boolean {
  if (text.length * 3 <= limit) return true; // a UTF-16 code unit is at most 3 UTF-8 bytes
  if (text.length > limit) return false;
  return new TextEncoder().encode(text).length <= limit;
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
