// Edge agents (LoadAgent Durable Objects) running real benchmarks against the built-in
// mock, driven by their own alarms on real time, with the real coordinator.
import { env } from "cloudflare:workers";
import { evictDurableObject, listDurableObjectIds, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { cappedShares, rpcTransport } from "../durable/edge-agents";
import {
  ALARM_WALL_LIMIT_MS,
  EDGE_REQUEST_TIMEOUT_S,
  GIVE_UP_FLOOR_MS,
  MAX_STORED_BYTES,
  SLICE_MS,
  edgeSpec,
  fitStored,
  giveUpAfterMs,
} from "../durable/load-agent-state";
import type { Stored } from "../durable/load-agent-state";
import type { LoadAgent } from "../durable/LoadAgent";
import { AgentEngine } from "../agent/engine";
import type { AgentState } from "../agent/engine";
import { COORDINATOR_CALL_TIMEOUT_MS, CoordinatorError, CoordinatorUnavailable } from "../agent/transport";
import type { CoordinatorTransport } from "../agent/transport";
import type { RunSpec } from "../contract/spec";
import { Ticker, handleMock } from "../mock/mock";
import { call, createRun, uid } from "./helpers";

async function runToCompletion(spec: Record<string, unknown>) {
  const created = await call("POST", "/v1/runs", { body: spec });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const { id, readToken } = created.body as { id: string; readToken: string };
  let res = await call("GET", `/v1/runs/${id}/results?wait=60`, { token: readToken });
  while (res.body.phase !== "complete") res = await call("GET", `/v1/runs/${id}/results?wait=60`, { token: readToken });
  return { id, res: res.body };
}

describe("edge agents", () => {
  it("run 300 streaming requests at concurrency 16 over two agents: exact count, TTFT and ITL as the mock serves them", async () => {
    const { res } = await runToCompletion({
      target: { url: "builtin:mock", stream: true, mock: { ttftMs: 40, itlMs: 8 } },
      workload: { outputTokens: { mean: 32 } },
      load: { concurrency: 16 },
      stop: { requests: 300 },
      agents: { edge: 2 },
      graceSeconds: 30,
    });
    expect(res).toMatchObject({ status: "complete", outcome: "completed", partial: false });
    expect(res.counts).toEqual({ granted: 300, returned: 0, completed: 300, failed: 0, abandoned: 0, outstanding: 0 });
    expect(res.agents).toHaveLength(2);
    const m = res.metrics;
    expect(m.output_sequence_length.avg).toBe(32);
    expect(Math.abs(m.time_to_first_token.p50 - 40)).toBeLessThanOrEqual(3);
    expect(Math.abs(m.inter_token_latency.avg - 8)).toBeLessThanOrEqual(1);
    // workerd's clock reads whole milliseconds; the agents spread each reading over its
    // millisecond (clockTickMs), so the fastest TTFT is not a whole number.
    expect(Number.isInteger(m.time_to_first_token.min)).toBe(false);
    expect(res.agents.map((a: { clockTickMs: number | null }) => a.clockTickMs)).toEqual([1, 1]);
    // Closed loop: throughput approaches concurrency / latency.
    const ceiling = 16 / ((40 + 31 * 8) / 1000);
    expect(m.request_throughput.avg).toBeGreaterThan(0.7 * ceiling);
    expect(m.request_throughput.avg).toBeLessThanOrEqual(ceiling * 1.05);
  }, 90_000);

  it("share one budget exactly with an external agent, and end themselves when the run stops", async () => {
    const created = await call("POST", "/v1/runs", {
      body: {
        target: { url: "builtin:mock", mock: { ttftMs: 5, itlMs: 1 } },
        load: { concurrency: 6 },
        stop: { requests: 120 },
        agents: { edge: 1 },
        graceSeconds: 30,
      },
    });
    const { id, readToken, agentToken } = created.body;
    const joined = await call("POST", `/v1/runs/${id}/agents`, { token: agentToken, body: { name: "external" } });
    const agentId = joined.body.agentId;
    let mine = 0;
    for (let i = 0; i < 1000; i++) {
      const l = await call("POST", `/v1/runs/${id}/leases`, { token: agentToken, body: { agentId, requestId: `l${i}`, want: 2 } });
      if (l.status !== 200) break;
      const credits = l.body.credits as Array<{ seq: number }>;
      const r = await call("POST", `/v1/runs/${id}/reports`, {
        token: agentToken,
        body: {
          agentId,
          reportId: `r${i}`,
          inflight: 0,
          results: credits.map((c) => ({ seq: c.seq, ok: true, latencyMs: 7, ttftMs: 5, outputTokens: 4 })),
        },
      });
      mine += credits.length;
      if (r.body.stop) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    let res = await call("GET", `/v1/runs/${id}/results?wait=60`, { token: readToken });
    while (res.body.phase !== "complete") res = await call("GET", `/v1/runs/${id}/results?wait=60`, { token: readToken });
    expect(res.body.counts).toMatchObject({ granted: 120, completed: 120, outstanding: 0 });
    expect(mine).toBeGreaterThan(0);
    expect(mine).toBeLessThan(120);
    // The edge agent deleted its storage once the run told it to stop.
    const ids = await listDurableObjectIds(env.LOAD_AGENT);
    const stub = env.LOAD_AGENT.get(env.LOAD_AGENT.idFromName(`${id}/0`));
    expect(ids.some((x) => x.equals(stub.id))).toBe(true);
    const left = await runInDurableObject(
      stub,
      (_i, state) => state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'agent'").toArray().length,
    );
    expect(left).toBe(0);
  }, 90_000);

  it("resume after eviction between slices and the run still completes exactly", async () => {
    const created = await call("POST", "/v1/runs", {
      body: {
        target: { url: "builtin:mock", mock: { ttftMs: 20, itlMs: 2 } },
        load: { concurrency: 4 },
        stop: { requests: 60 },
        agents: { edge: 1 },
        graceSeconds: 30,
      },
    });
    const { id, readToken } = created.body;
    const stub = env.LOAD_AGENT.get(env.LOAD_AGENT.idFromName(`${id}/0`));
    await new Promise((resolve) => setTimeout(resolve, 300));
    await evictDurableObject(stub).catch(() => {}); // not running at that instant is fine too
    let res = await call("GET", `/v1/runs/${id}/results?wait=60`, { token: readToken });
    while (res.body.phase !== "complete") res = await call("GET", `/v1/runs/${id}/results?wait=60`, { token: readToken });
    const c = res.body.counts;
    expect(c.granted - c.returned).toBe(60);
    expect(c.completed + c.failed + c.abandoned).toBe(60);
    expect(c.outstanding).toBe(0);
  }, 90_000);
});

describe("the edge agents' RPC transport", () => {
  it("report and lease in one call whenever both are due, and the run completes exactly", async () => {
    const created = await call("POST", "/v1/runs", {
      body: {
        target: { url: "builtin:mock", stream: true, mock: { ttftMs: 2, itlMs: 1 } },
        load: { concurrency: 4 },
        stop: { requests: 60 },
        agents: { edge: 0 },
        graceSeconds: 30,
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { id, readToken } = created.body as { id: string; readToken: string };
    const rpc = rpcTransport(env, id);
    const counts = { join: 0, lease: 0, leaseBesideResults: 0, report: 0, combined: 0, leaseRefusedBeside: 0 };
    const transport: CoordinatorTransport = {
      join: (b) => (counts.join++, rpc.join(b)),
      lease: (b) => {
        counts.lease++;
        if (engine.state.results.length > 0) counts.leaseBesideResults++;
        return rpc.lease(b);
      },
      report: (b) => (counts.report++, rpc.report(b)),
      reportThenLease: async (r, l) => {
        counts.combined++;
        const both = await rpc.reportThenLease!(r, l);
        if (both.lease instanceof Error) counts.leaseRefusedBeside++;
        return both;
      },
    };
    const mock = new Ticker();
    const engine = new AgentEngine({
      transport,
      fetchTarget: (input, init) => handleMock(new Request(input, init), mock),
      resolveUrl: () => "https://builtin-mock.edgeperf.internal/mock/v1/chat/completions",
    });
    await engine.join();
    expect(await engine.runSlice()).toBe("done");
    const res = (await call("GET", `/v1/runs/${id}/results`, { token: readToken })).body;
    expect(res.counts).toMatchObject({ granted: 60, returned: 0, completed: 60, failed: 0, outstanding: 0 });
    // A lease goes alone only when there is nothing to report (the first one, or one the
    // deeper depth asks for right after a report); with results in hand it rides with the
    // report, in one call. Reports alone remain where no lease is due (the heartbeat, the
    // last results after the budget's end).
    expect(counts.combined).toBeGreaterThan(3);
    expect(counts.lease).toBeGreaterThanOrEqual(1);
    expect(counts.leaseBesideResults).toBe(0);
    expect(counts.report).toBeLessThan(counts.combined);
  }, 60_000);

  it("counts a call the coordinator never answers as unreachable after the timeout, so a hung coordinator cannot hold a slice", async () => {
    const hung = () => new Promise<never>(() => {});
    const fakeEnv = {
      RUN_COORDINATOR: { idFromString: (id: string) => id, get: () => ({ join: hung, lease: hung, report: hung, reportThenLease: hung }) },
    } as unknown as Env;
    const transport = rpcTransport(fakeEnv, "run", { timeoutMs: 50 });
    const started = Date.now();
    const error = await transport.join({ name: "x" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CoordinatorUnavailable);
    expect((error as Error).message).toBe("The coordinator did not answer within 0.05 s.");
    expect(Date.now() - started).toBeGreaterThanOrEqual(50);
    expect(COORDINATOR_CALL_TIMEOUT_MS).toBe(30_000);
  });

  it("answers the report of a combined call even when its lease is refused because the drain began", async () => {
    const created = await call("POST", "/v1/runs", {
      body: { target: { url: "builtin:mock" }, load: { concurrency: 4 }, stop: { requests: 60 }, agents: { edge: 0 } },
    });
    const { id, readToken } = created.body as { id: string; readToken: string };
    const rpc = rpcTransport(env, id);
    const { agentId } = await rpc.join({ name: "x" });
    const lease = await rpc.lease({ agentId, requestId: "q-1", want: 3, inflight: 0 });
    const [a, b] = lease.credits.map((c) => c.seq); // the third is still held: the drain goes on
    expect((await call("POST", `/v1/runs/${id}/stop`, { body: { mode: "graceful" } })).status).toBe(202);
    const both = await rpc.reportThenLease!(
      { agentId, reportId: "r-1", inflight: 0, results: [{ seq: a!, ok: true, latencyMs: 5 }], returned: [b!] },
      { agentId, requestId: "q-2", want: 2, inflight: 0 },
    );
    expect(both.report).toMatchObject({ accepted: 2, duplicates: 0, stop: true });
    expect(both.lease).toBeInstanceOf(CoordinatorError);
    expect((both.lease as CoordinatorError).code).toBe("run_draining");
    const res = (await call("GET", `/v1/runs/${id}/results`, { token: readToken })).body;
    expect(res.counts).toMatchObject({ granted: 3, completed: 1, returned: 1, outstanding: 1 });
    expect(res.phase).toBe("draining");
  });
});

// ── Agents cut off from their coordinator ────────────────────────────────────

/** The line between a test's agent and its coordinator: every call fails while it is down. */
interface Line {
  down: boolean;
}

function overLine(transport: CoordinatorTransport, line: Line): CoordinatorTransport {
  const check = () => {
    if (line.down) throw new CoordinatorUnavailable(null, "The coordinator could not be reached (test).");
  };
  return {
    join: async (b) => (check(), transport.join(b)),
    lease: async (b) => (check(), transport.lease(b)),
    report: async (b) => (check(), transport.report(b)),
    reportThenLease: async (r, l) => (check(), transport.reportThenLease!(r, l)),
  };
}

/**
 * An edge agent for `runId` that the test drives: its clock starts a day ahead, so its
 * alarms never fire on their own and run only through runDurableObjectAlarm.
 */
async function testAgent(runId: string, line: Line, slice = { ms: SLICE_MS, requests: 500 }) {
  const clock = { t: Date.now() + 86_400_000 };
  const stub = env.LOAD_AGENT.get(env.LOAD_AGENT.idFromName(uid("test-agent")));
  await runInDurableObject(stub, (agent: LoadAgent) => {
    agent.now = () => clock.t;
    agent.coordinatorFor = (id) => overLine(rpcTransport(env, id), line);
    agent.sliceLimits = slice;
  });
  await stub.start({ runId, index: 0, region: null });
  return { stub, clock };
}

/** What the agent has stored (null once it deleted its storage) and its alarm. */
function inspect(stub: DurableObjectStub<LoadAgent>): Promise<{ stored: Stored | null; alarm: number | null }> {
  return runInDurableObject(stub, async (_agent, state) => {
    const table = state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'agent'").toArray();
    const row = table.length > 0 ? state.storage.sql.exec("SELECT v FROM agent WHERE k = 1").toArray()[0] : undefined;
    return { stored: row ? (JSON.parse(String(row.v)) as Stored) : null, alarm: await state.storage.getAlarm() };
  });
}

async function resultsWhenComplete(id: string, readToken: string) {
  let res = await call("GET", `/v1/runs/${id}/results?wait=60`, { token: readToken });
  while (res.body.phase !== "complete") res = await call("GET", `/v1/runs/${id}/results?wait=60`, { token: readToken });
  return res.body;
}

describe("an edge agent cut off from its coordinator", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("never throws from its alarm: it retries after 1, 2, 4 … 60 s for longer than the platform would, then finishes the run exactly", async () => {
    const run = await createRun({ target: { url: "builtin:mock", mock: { ttftMs: 1, itlMs: 1 } }, stop: { requests: 12 } });
    const warn = vi.spyOn(console, "warn");
    const line = { down: true };
    const { stub, clock } = await testAgent(run.id, line);
    const delays: number[] = [];
    // Eight failed alarms over three minutes: the platform drops an alarm after about six.
    for (let i = 1; i <= 8; i++) {
      expect(await runDurableObjectAlarm(stub)).toBe(true);
      const { stored, alarm } = await inspect(stub);
      expect(stored?.failures).toBe(i);
      delays.push(alarm! - clock.t);
      clock.t = alarm!;
    }
    expect(delays).toEqual([1, 2, 4, 8, 16, 32, 60, 60].map((s) => s * 1000));
    expect(warn).toHaveBeenCalledWith(
      expect.stringMatching(new RegExp(`^LoadAgent:${run.id}/0: attempt 8 failed \\(CoordinatorUnavailable: .*\\); retrying in 60 s$`)),
    );

    line.down = false;
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const res = await resultsWhenComplete(run.id, run.readToken);
    expect(res.counts).toMatchObject({ granted: 12, returned: 0, completed: 12, failed: 0, abandoned: 0, outstanding: 0 });
    // The run told it to stop: its storage and its alarm are gone.
    expect(await inspect(stub)).toEqual({ stored: null, alarm: null });
  });

  it("keeps what it settled while the coordinator was away and reports it when it is back", async () => {
    const run = await createRun({ target: { url: "builtin:mock", mock: { ttftMs: 1, itlMs: 1 } }, stop: { requests: 6 } });
    const line = { down: false };
    const { stub, clock } = await testAgent(run.id, line, { ms: 300, requests: 2 });
    expect(await runDurableObjectAlarm(stub)).toBe(true); // joins, sends 2, reports them
    line.down = true;
    expect(await runDurableObjectAlarm(stub)).toBe(true); // sends 2 more, cannot report them
    const { stored, alarm } = await inspect(stub);
    expect(stored).toMatchObject({ failures: 1, sliceOpen: false });
    const unreported = (stored!.state!.results.length ?? 0) + (stored!.state!.unacked?.results.length ?? 0);
    expect(unreported).toBe(2);
    line.down = false;
    clock.t = alarm!;
    for (let i = 0; i < 10 && (await runDurableObjectAlarm(stub)); i++) clock.t = (await inspect(stub)).alarm ?? clock.t;
    const res = await resultsWhenComplete(run.id, run.readToken);
    // Nothing counted as agent_restarted: the results sent during the outage were kept.
    expect(res.counts).toMatchObject({ granted: 6, completed: 6, failed: 0, abandoned: 0, outstanding: 0 });
    expect(await inspect(stub)).toEqual({ stored: null, alarm: null });
  });

  it("deletes its storage and its alarm when, back in touch, its run answers that it is gone", async () => {
    const run = await createRun({ stop: { requests: 1000 }, graceSeconds: 0 });
    const warn = vi.spyOn(console, "warn");
    const line = { down: false };
    const { stub, clock } = await testAgent(run.id, line, { ms: 300, requests: 2 });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    line.down = true;
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await inspect(stub)).stored?.failures).toBe(1);
    // Meanwhile the run is stopped, completes, and is wiped (graceSeconds 0).
    expect((await call("POST", `/v1/runs/${run.id}/stop`, { body: { mode: "force" } })).status).toBe(202);
    expect((await call("GET", `/v1/runs/${run.id}`, { token: run.readToken })).status).toBe(404);
    line.down = false;
    clock.t = (await inspect(stub)).alarm!;
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await inspect(stub)).toEqual({ stored: null, alarm: null });
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(new RegExp(`^LoadAgent:${run.id}/0: stopping and deleting its storage: `)));
  });

  it("deletes its storage and its alarm when its first call finds no such run", async () => {
    const warn = vi.spyOn(console, "warn");
    const runId = env.RUN_COORDINATOR.newUniqueId().toString();
    const { stub } = await testAgent(runId, { down: false });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await inspect(stub)).toEqual({ stored: null, alarm: null });
    expect(warn).toHaveBeenCalledWith(`LoadAgent:${runId}/0: stopping and deleting its storage: the run refused it (run_not_found)`);
  });

  it("gives up and deletes its storage and alarm once the coordinator has been unreachable longer than the run could wait for it", async () => {
    const run = await createRun({ stop: { requests: 1000 }, agentTimeoutSeconds: 7200, drainTimeoutSeconds: 30, graceSeconds: 30 });
    const line = { down: false };
    const { stub, clock } = await testAgent(run.id, line, { ms: 300, requests: 2 });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    line.down = true;
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const { stored } = await inspect(stub);
    const since = stored!.failingSince!;
    const limit = giveUpAfterMs(stored!.state);
    // The lease TTL, then the run's agent timeout, drain timeout and grace window.
    expect(limit).toBe(15_000 + (7200 + 30 + 30) * 1000);
    clock.t = since + limit - 1;
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await inspect(stub)).stored?.failures).toBe(2);
    clock.t = since + limit;
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await inspect(stub)).toEqual({ stored: null, alarm: null });
    await call("POST", `/v1/runs/${run.id}/stop`, { body: { mode: "force" } });
  });

  it("never gives up sooner than an hour, even for a run with short timeouts or before it joined", () => {
    expect(GIVE_UP_FLOOR_MS).toBe(3_600_000);
    expect(giveUpAfterMs(null)).toBe(3_600_000);
    const spec = { agentTimeoutSeconds: 300, drainTimeoutSeconds: 30, graceSeconds: 5 } as RunSpec;
    expect(giveUpAfterMs({ spec, leaseTtlMs: 15_000 } as AgentState)).toBe(3_600_000);
  });
});

describe("an edge agent's slice", () => {
  it("stays under half of the 15-minute alarm limit even when its last request runs to the timeout", () => {
    expect(ALARM_WALL_LIMIT_MS).toBe(900_000);
    expect(SLICE_MS + EDGE_REQUEST_TIMEOUT_S * 1000).toBeLessThanOrEqual(ALARM_WALL_LIMIT_MS / 2);
  });

  it("caps its requests' timeout at 300 s when the spec allows 3,600 s, and leaves shorter timeouts alone", async () => {
    const run = await createRun({ target: { url: "builtin:mock", timeoutSeconds: 3600 }, stop: { requests: 1000 } });
    const { stub } = await testAgent(run.id, { down: false }, { ms: 300, requests: 2 });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const { stored } = await inspect(stub);
    expect(stored?.state?.sent).toBe(2);
    expect(stored?.state?.spec.target.timeoutSeconds).toBe(300);
    // The run itself keeps the spec as asked: external agents honour the full timeout.
    expect((await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken })).body.spec.target.timeoutSeconds).toBe(3600);
    const short = { target: { timeoutSeconds: 30 } } as RunSpec;
    expect(edgeSpec(short)).toBe(short);
    await call("POST", `/v1/runs/${run.id}/stop`, { body: { mode: "force" } });
  });
});

// ── Connections waiting for response headers ─────────────────────────────────

describe("an edge agent against a target that answers only when done", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  const TARGET = "https://api.example.org/v1/chat/completions";

  /**
   * The network beyond the agent: every fetch to the target is answered after `ms`, as
   * one JSON body or, when the request asked to stream, as SSE; it counts what is in
   * flight at once. The coordinator is reached over RPC, not fetch, so it is not counted.
   */
  function fakeTarget(ms: number) {
    const seen = { requests: 0, inflight: 0, most: 0 };
    const real = globalThis.fetch;
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      const req = new Request(input, init);
      if (!req.url.startsWith(TARGET)) return real(input, init);
      const body = (await req.json()) as { stream?: boolean };
      seen.requests++;
      seen.most = Math.max(seen.most, ++seen.inflight);
      await new Promise((r) => setTimeout(r, ms));
      seen.inflight--;
      if (body.stream) {
        const chunk = JSON.stringify({ choices: [{ index: 0, delta: { content: "ok" } }] });
        return new Response(`data: ${chunk}\n\ndata: [DONE]\n\n`, { headers: { "content-type": "text/event-stream" } });
      }
      const whole = {
        choices: [{ index: 0, message: { role: "assistant", content: "ok" } }],
        usage: { prompt_tokens: 4, completion_tokens: 1 },
      };
      return Response.json(whole);
    });
    return seen;
  }

  it.each([
    { kind: "non-streaming", stream: false, most: 6 },
    { kind: "streaming (its headers come at once)", stream: true, most: 12 },
  ])(
    "with a share of 12 has $most requests in flight at once at a $kind target, and the run completes exactly",
    async ({ stream, most }) => {
      const seen = fakeTarget(30);
      const run = await createRun({ target: { url: TARGET, model: "m", stream }, load: { concurrency: 12 }, stop: { requests: 48 } });
      const { stub } = await testAgent(run.id, { down: false });
      expect(await runDurableObjectAlarm(stub)).toBe(true);
      const res = await resultsWhenComplete(run.id, run.readToken);
      expect(res.counts).toMatchObject({ granted: 48, returned: 0, completed: 48, failed: 0, abandoned: 0, outstanding: 0 });
      expect(seen.requests).toBe(48);
      expect(seen.most).toBe(most);
      // The coordinator's share was 12 all along; the agent applied less of it.
      expect(res.agents.map((a: { concurrency: number }) => a.concurrency)).toEqual([12]);
    },
  );
});

describe("the shares an edge agent's engine sees", () => {
  const answer = {
    leaseId: "l",
    credits: [],
    concurrency: 12,
    expiresInMs: 1,
    stop: false,
    finishLeased: false,
    serverTime: 0,
    runStartedAt: null,
  };
  const reportAnswer = { accepted: 0, duplicates: 0, stop: false, finishLeased: false, concurrency: 12, serverTime: 0 };
  const spec = (target: Partial<RunSpec["target"]>) =>
    ({ target: { url: "https://api.example.org/v", api: "openai-chat", stream: false, ...target } }) as RunSpec;
  const coordinator = (s: RunSpec, lease: CoordinatorError | null = null): CoordinatorTransport => ({
    join: async () => ({ agentId: "a", leaseTtlMs: 1, reportIntervalMs: 1, serverTime: 0, spec: s, concurrency: 12, stop: false }),
    lease: async () => answer,
    report: async () => reportAnswer,
    reportThenLease: async () => ({ report: reportAnswer, lease: lease ?? answer }),
  });
  const body = { agentId: "a", reportId: "r", inflight: 0, results: [], returned: [] };
  const leaseBody = { agentId: "a", requestId: "q", want: 1 };

  it("are capped at six in every answer once the join says the target answers only when done", async () => {
    const t = cappedShares(coordinator(spec({})), null);
    expect((await t.join({})).concurrency).toBe(6);
    expect((await t.lease(leaseBody)).concurrency).toBe(6);
    expect((await t.report(body)).concurrency).toBe(6);
    const both = await t.reportThenLease!(body, leaseBody);
    expect([both.report.concurrency, (both.lease as typeof answer).concurrency]).toEqual([6, 6]);
  });

  it("are capped from the stored spec in a later slice, before any join", async () => {
    const t = cappedShares(coordinator(spec({ api: "http" })), spec({ api: "http" }));
    expect((await t.lease(leaseBody)).concurrency).toBe(6);
  });

  it("are the coordinator's for a stream and for the built-in mock, and a refused lease beside a report stays a refusal", async () => {
    for (const s of [spec({ stream: true }), spec({ url: "builtin:mock" })]) {
      const t = cappedShares(coordinator(s), null);
      expect((await t.join({})).concurrency).toBe(12);
      expect((await t.lease(leaseBody)).concurrency).toBe(12);
    }
    const refused = new CoordinatorError(409, "run_draining", "draining");
    const both = await cappedShares(coordinator(spec({}), refused), spec({})).reportThenLease!(body, leaseBody);
    expect(both.report.concurrency).toBe(6);
    expect(both.lease).toBe(refused);
  });
});

describe("an edge agent's stored row stays under Cloudflare's 2 MB row limit", () => {
  const history = (chars: number, ch = "x") => [
    { role: "user" as const, content: "q" },
    { role: "assistant" as const, content: ch.repeat(chars) },
  ];
  const stored = (sizes: number[], ch = "x"): Stored =>
    ({
      init: { runId: "r", index: 0 },
      state: {
        sessions: sizes.map((n, item) => ({ item, turn: 1, history: history(n, ch), readyAt: 0 })),
        sessionCounts: { started: 0, completed: 0, cut: 0 },
      },
    }) as unknown as Stored;

  it("keeps a state that fits as it is", () => {
    const s = stored([1_000, 2_000]);
    expect(fitStored(s)).toBe(JSON.stringify(s));
    expect(s.state!.sessions).toHaveLength(2);
    expect(s.state!.sessionCounts!.cut).toBe(0);
  });

  it("cuts the sessions with the longest histories until the row fits, and counts them cut", () => {
    const s = stored([700_000, 800_000, 600_000]);
    const json = fitStored(s)!;
    expect(new TextEncoder().encode(json).length).toBeLessThanOrEqual(MAX_STORED_BYTES);
    expect(s.state!.sessions!.map((x) => x.item)).toEqual([0, 2]); // the 800,000-character one went
    expect(s.state!.sessionCounts!.cut).toBe(1);
  });

  it("counts bytes, not characters: two-byte characters fill the row twice as fast", () => {
    const s = stored([600_000, 600_000], "é"); // 2.4 MB of UTF-8 in 1.2 million characters
    const json = fitStored(s)!;
    expect(new TextEncoder().encode(json).length).toBeLessThanOrEqual(MAX_STORED_BYTES);
    expect(s.state!.sessions).toHaveLength(1);
    expect(s.state!.sessionCounts!.cut).toBe(1);
  });

  it("leaves the state as it was when even no session would make it fit", () => {
    const s = stored([1_000, 2_000]);
    (s.init as unknown as { pad: string }).pad = "x".repeat(2_000_000);
    expect(fitStored(s)).toBeNull();
    expect(s.state!.sessions!.map((x) => x.item)).toEqual([0, 1]);
    expect(s.state!.sessionCounts!.cut).toBe(0);
  });

  it("a real LoadAgent writes and reads back the fitted row", async () => {
    const stub = env.LOAD_AGENT.get(env.LOAD_AGENT.idFromName(uid("fit")));
    const back = await runInDurableObject(stub, (agent: LoadAgent) => {
      const a = agent as unknown as { put(s: Stored): void; stored(): Stored | null };
      a.put(stored([900_000, 900_000, 900_000]));
      return a.stored();
    });
    expect(back!.state!.sessions).toHaveLength(2);
    expect(back!.state!.sessionCounts!.cut).toBe(1);
    await runInDurableObject(stub, (_: LoadAgent, state) => state.storage.deleteAll());
  });
});
