// LoadAgent: one edge agent of one run (README, "Agents and the wire protocol"). The run's coordinator creates
// `agents.edge` of them at run start, placed round-robin over `agents.regions` with
// locationHint; each runs the shared agent engine (agent/) against the target.
//
// Workers limits are met by working in slices: each alarm invocation runs the engine
// until SLICE_MS of wall time or SLICE_REQUESTS requests (subrequests per invocation),
// lets the requests in flight finish, reports, stores the engine's state and sets the
// next alarm at once. The engine keeps its in-flight requests within the coordinator's
// share; outbound connections beyond the runtime's six waiting for headers queue in
// the runtime rather than fail.
//
// Stored (SQLite): `agent` (which run, which slot, the engine state after the last
// completed slice, and whether a slice is running). In memory: the mock's ticker. After
// eviction or a crash mid-slice the alarm runs again (alarms are at-least-once) and finds
// the slice open: whatever the agent held may have reached the target, so it sends a
// `restarted` report and the coordinator counts all of it failed (`agent_restarted`);
// nothing is sent twice, the ledger stays exact, and the drain can finish.
// When the run tells the agent it is done, the agent deletes its storage.

import { DurableObject } from "cloudflare:workers";
import { AgentEngine } from "../agent/engine";
import type { AgentState } from "../agent/engine";
import { CoordinatorError } from "../agent/transport";
import type { CoordinatorTransport } from "../agent/transport";
import { MOCK_URL } from "../contract/spec";
import type { RunSpec } from "../contract/spec";
import { Ticker, handleMock } from "../mock/mock";
import type { LoadAgentInit } from "./edge-agents";
import { rpcTransport } from "./edge-agents";

interface Stored {
  init: LoadAgentInit;
  state: AgentState | null;
  /** Set while a slice runs: found set at the start of the next alarm, the slice died. */
  sliceOpen?: boolean;
}

const SLICE_MS = 20_000;
const SLICE_REQUESTS = 500;
/** Requests to the built-in mock never leave the isolate: this host is never resolved. */
const MOCK_HOST = "https://builtin-mock.edgeperf.internal";

export function mockPath(spec: RunSpec): string {
  return spec.target.api === "openai-completions" ? "/mock/v1/completions" : "/mock/v1/chat/completions";
}

export class LoadAgent extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** One timer for all of this agent's mock streams (see mock/mock.ts): in memory only. */
  private readonly ticker = new Ticker();

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
    await this.ctx.storage.setAlarm(Date.now());
  }

  override async alarm(): Promise<void> {
    const stored = this.stored();
    if (!stored) return;
    const transport = rpcTransport(this.env, stored.init.runId);
    try {
      const engine = new AgentEngine(
        {
          transport,
          fetchTarget: (input, init) => this.fetchTarget(engine.state.spec, input, init),
          resolveUrl: (spec) => (spec.target.url === MOCK_URL ? MOCK_HOST + mockPath(spec) : spec.target.url),
          name: `edge-${stored.init.index}`,
          ...(stored.init.region ? { region: stored.init.region } : {}),
        },
        stored.state ? await this.recover(stored, transport) : undefined,
      );
      if (!stored.state) await engine.join();
      // One write per slice (not per request, which would hold every request behind the
      // output gate): it tells the next alarm whether this slice finished.
      this.put({ ...stored, state: engine.state, sliceOpen: true });
      const outcome = await engine.runSlice({ untilWallMs: Date.now() + SLICE_MS, maxRequests: SLICE_REQUESTS });
      if (outcome === "done") {
        await this.ctx.storage.deleteAll();
        return;
      }
      this.put({ ...stored, state: engine.state, sliceOpen: false });
      await this.ctx.storage.setAlarm(Date.now());
    } catch (e) {
      if (e instanceof CoordinatorError) {
        // The run refused this agent for good (gone, or never let it join): nothing to do.
        console.warn(`LoadAgent:${stored.init.runId}/${stored.init.index}: stopping: ${e.code}`);
        await this.ctx.storage.deleteAll();
        return;
      }
      console.error(
        `LoadAgent:${stored.init.runId}/${stored.init.index}: slice failed: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
      );
      throw e; // the alarm is retried with backoff, from the last stored state
    }
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
    this.sql.exec("INSERT INTO agent (k, v) VALUES (1, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", JSON.stringify(s));
  }
}
