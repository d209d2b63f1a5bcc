// Edge agents (LoadAgent Durable Objects) running real benchmarks against the built-in
// mock, driven by their own alarms on real time, with the real coordinator.
import { env } from "cloudflare:workers";
import { evictDurableObject, listDurableObjectIds, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { rpcTransport } from "../durable/edge-agents";
import { AgentEngine } from "../agent/engine";
import { CoordinatorError } from "../agent/transport";
import type { CoordinatorTransport } from "../agent/transport";
import { Ticker, handleMock } from "../mock/mock";
import { call } from "./helpers";

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
    const counts = { join: 0, lease: 0, report: 0, combined: 0, leaseRefusedBeside: 0 };
    const transport: CoordinatorTransport = {
      join: (b) => (counts.join++, rpc.join(b)),
      lease: (b) => (counts.lease++, rpc.lease(b)),
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
    // Every lease after the first went with a report, in one call. Reports alone remain
    // where no lease is due (the heartbeat, the last results after the budget's end).
    expect(counts.combined).toBeGreaterThan(3);
    expect(counts.lease).toBe(1);
    expect(counts.report).toBeLessThan(counts.combined);
  }, 60_000);

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
