// The results say what load was delivered (README, "Delivered load"): mean concurrency by
// Little's law over the measured period, the achieved rate, the schedule lag in rate
// mode, a generator_bound warning when the load asked for was not delivered, and a
// connection_bound warning when edge agents were asked for more requests than may wait
// for response headers at once.

import { afterEach, describe, expect, it, vi } from "vitest";
import { readConfig } from "../contract/config";
import { HEADER_WAIT_LIMIT, planRun } from "../contract/run-plan";
import { parseRunSpec } from "../contract/spec";
import { tailGrant } from "../durable/lease-sizing";
import { DeliveredLoad, connectionBound } from "../durable/delivered";
import { advance, call, createRun, join, lease, okResult, report, status } from "./helpers";
import type { TestRun } from "./helpers";

async function results(run: TestRun) {
  return (await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken })).body;
}

describe("delivered load in concurrency mode", () => {
  it("is the concurrency asked for when every slot was busy the whole measured period, with no warning", async () => {
    const run = await createRun({ load: { concurrency: 4 }, stop: { requests: 8 } });
    const agentId = await join(run);
    // Two rounds of 4 requests, each in flight for the whole 500 ms it lasted.
    for (let round = 0; round < 2; round++) {
      const seqs = (await lease(run, agentId, 4)).body.credits.map((c: { seq: number }) => c.seq);
      await advance(run, 500);
      await report(
        run,
        agentId,
        seqs.map((s: number) => okResult(s, { latencyMs: 500 })),
      );
    }
    const r = await results(run);
    expect(r.phase).toBe("complete");
    expect(r.delivered.concurrency).toEqual({ target: 4, mean: 4 });
    expect(r.delivered.rate).toEqual({ target: null, achieved: 8 });
    expect(r.delivered.scheduleLagMs).toBeNull();
    expect(r.warnings).toEqual([]);
    expect((await status(run)).body.delivered.concurrency.mean).toBe(4);
  });

  it("says generator_bound when only one of four slots was kept busy", async () => {
    const run = await createRun({ load: { concurrency: 4 }, stop: { requests: 4 } });
    const agentId = await join(run);
    const seqs = (await lease(run, agentId, 4)).body.credits.map((c: { seq: number }) => c.seq);
    // One at a time: each request takes 100 ms, one after the other, over 400 ms.
    for (const s of seqs) {
      await advance(run, 100);
      await report(run, agentId, [okResult(s, { latencyMs: 100 })]);
    }
    const r = await results(run);
    expect(r.delivered.concurrency.target).toBe(4);
    expect(r.delivered.concurrency.mean).toBeCloseTo(1, 5);
    expect(r.warnings.map((w: { code: string }) => w.code)).toEqual(["generator_bound"]);
    expect(r.warnings[0].message).toContain("of the 4 asked for");
  });

  it("counts failed requests as load delivered, and says nothing of a run still going", async () => {
    const run = await createRun({ load: { concurrency: 2 }, stop: { requests: 100 } });
    const agentId = await join(run);
    const seqs = (await lease(run, agentId, 2)).body.credits.map((c: { seq: number }) => c.seq);
    await advance(run, 200);
    await report(run, agentId, [
      okResult(seqs[0], { latencyMs: 200 }),
      { seq: seqs[1], ok: false, latencyMs: 200, error: { code: "http_500", type: "http" } },
    ]);
    const r = await results(run);
    expect(r.delivered.concurrency.mean).toBe(2);
    expect(r.warnings).toEqual([]);
  });
});

describe("delivered load in rate mode", () => {
  it("reports the achieved rate and the schedule lag the agents measured, and says generator_bound past 50 ms at p99", async () => {
    const run = await createRun({ load: { rate: 10 }, stop: { requests: 20 } });
    const agentId = await join(run);
    const seqs: number[] = [];
    for (let i = 0; i < 4 && seqs.length < 20; i++) {
      seqs.push(...(await lease(run, agentId, 20)).body.credits.map((c: { seq: number }) => c.seq));
      await advance(run, 500);
    }
    await advance(run, 2_000 - 4 * 500);
    // Most requests went out on time; one in ten went out 200 ms late.
    const r0 = await report(
      run,
      agentId,
      seqs.map((s: number, i: number) => okResult(s, { latencyMs: 50, lagMs: i % 10 === 9 ? 200 : 1 })),
    );
    expect(r0.status, JSON.stringify(r0.body)).toBe(200);
    const r = await results(run);
    expect(r.phase).toBe("complete");
    expect(r.delivered.rate.target).toBe(10);
    expect(r.delivered.concurrency.target).toBeNull();
    expect(r.delivered.scheduleLagMs.p50).toBeCloseTo(1, 1);
    expect(r.delivered.scheduleLagMs.p99).toBeGreaterThan(50);
    expect(r.warnings.map((w: { code: string }) => w.code)).toContain("generator_bound");
    expect(r.warnings.find((w: { code: string }) => w.code === "generator_bound").message).toContain("late");
  });
});

describe("lease depth", () => {
  async function outstandingAfter(depth: number | undefined): Promise<number> {
    const run = await createRun({ load: { concurrency: 4 }, stop: { requests: 1_000 } });
    const agentId = await join(run);
    const body = { agentId, requestId: `q-${depth}`, want: 1_000, ...(depth !== undefined ? { depth } : {}) };
    const r = await call("POST", `/v1/runs/${run.id}/leases`, { token: run.agentToken, body });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.credits.length;
  }

  it("lets an agent hold its share plus the depth it asks for: two shares without one, at most sixty-five shares", async () => {
    expect(await outstandingAfter(undefined)).toBe(8);
    expect(await outstandingAfter(0)).toBe(8); // never under one share of depth
    expect(await outstandingAfter(12)).toBe(16);
    expect(await outstandingAfter(1_000)).toBe(260);
  });

  it("hands a request budget's tail out in shrinking pieces by share instead of all to whichever asks first", async () => {
    const run = await createRun({ load: { concurrency: 8 }, stop: { requests: 200 } });
    const a = await join(run, "a");
    const b = await join(run, "b");
    const ask = async (agentId: string, requestId: string) => {
      const body = { agentId, requestId, want: 1_000, depth: 1_000 };
      const r = await call("POST", `/v1/runs/${run.id}/leases`, { token: run.agentToken, body });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body.credits.length as number;
    };
    // Each holds a share of 4 and may hold 65 shares (260): without the cap the first to ask
    // took all 200. With it, each gets its share of the pool (4 of 8) of what is left.
    expect(await ask(a, "a1")).toBe(100);
    expect(await ask(b, "b1")).toBe(50);
    expect(await ask(a, "a2")).toBe(25);
    // Halving on: at least a share while that much is left (6 → 4), then what is left.
    const tail: number[] = [];
    for (let i = 0; i < 4; i++) tail.push(await ask(b, `b${i + 2}`));
    expect(tail).toEqual([13, 6, 4, 2]);
    const s = (await status(run)).body;
    expect(s.counts.granted).toBe(200);
    expect(s.counts.outstanding).toBe(200);
  });

  it("caps tail grants only where the run has a request budget", () => {
    expect(tailGrant(Number.POSITIVE_INFINITY, 4, 8)).toBe(Number.POSITIVE_INFINITY);
    expect(tailGrant(200, 4, 8)).toBe(100);
    expect(tailGrant(3, 4, 8)).toBe(3); // never more than is left
    expect(tailGrant(6, 4, 8)).toBe(4); // at least a share, so in-flight room is never left idle
    expect(tailGrant(1_000, 32, 32)).toBe(1_000); // one agent: the whole budget, as before
  });
});

describe("connection_bound: edge agents asked for more than the runtime lets wait for headers", () => {
  const REMOTE = "https://api.example.org/v1/chat/completions";
  const cfg = readConfig({ ALLOWED_TARGETS: "api.example.org", MAX_AGENTS: "64" });
  const plan = (target: Record<string, unknown>, load: Record<string, unknown>, agents?: Record<string, unknown>) =>
    planRun("r", parseRunSpec({ target, load, stop: { requests: 100 }, ...(agents ? { agents } : {}) }, cfg), cfg).config;
  const plain = { url: REMOTE, model: "m" };
  /** What the run delivered: `n` requests of `latencyMs` each over `durationMs`. */
  const delivered = (config: ReturnType<typeof plan>, n: number, latencyMs: number, durationMs: number) => {
    const d = new DeliveredLoad();
    for (let i = 0; i < n; i++) d.add({ latencyMs });
    return d.view(config, durationMs);
  };

  it("warns when an explicit agents.edge gives a non-streaming target's agents shares over six, and says how many agents would do", () => {
    const config = plan(plain, { concurrency: 24 }, { edge: 2 });
    const w = connectionBound(config, delivered(config, 0, 0, 0), false);
    expect(w?.code).toBe("connection_bound");
    expect(w?.message).toContain("Each of the 2 edge agents was asked for up to 12 requests in flight");
    expect(w?.message).toContain(`${HEADER_WAIT_LIMIT} waiting for response headers`);
    expect(w?.message).toContain("Give the run 4 edge agents");
    // Known from the plan: said while the run goes on, too.
    expect(connectionBound(config, delivered(config, 0, 0, 0), true)).toEqual(w);
  });

  it("says nothing of the default count, of shares of six, of streams, of the in-isolate mock, of external agents only, or of runs stored before it existed", () => {
    const quiet = [
      plan(plain, { concurrency: 24 }),
      plan(plain, { concurrency: 24 }, { edge: 4 }),
      plan(plain, { concurrency: 24 }, { edge: 0 }),
      plan({ ...plain, stream: true }, { concurrency: 24 }, { edge: 1 }),
      plan({ url: "builtin:mock" }, { concurrency: 24 }, { edge: 1 }),
      { ...plan(plain, { concurrency: 24 }, { edge: 1 }), waitsForHeaders: undefined },
    ];
    for (const config of quiet) expect(connectionBound(config, delivered(config, 100, 100, 1_000), true)).toBeNull();
  });

  it("points at MAX_AGENTS when even the default count cannot keep shares at six", () => {
    const config = plan(plain, { concurrency: 1024 });
    expect(config.edgeAgents).toBe(64);
    const w = connectionBound(config, delivered(config, 0, 0, 0), false);
    expect(w?.message).toContain("up to 16 requests in flight");
    expect(w?.message).toContain(
      "This service allows 64 agents a run (MAX_AGENTS): ask for at most 384 in flight, or raise MAX_AGENTS to 171.",
    );
  });

  it("in rate mode, warns a finished run whose edge agents had close to six in flight each on average", () => {
    const config = plan(plain, { rate: 100 }, { edge: 2 });
    // 2 agents, 2,000 requests of 57 ms over 10 s: 11.4 in flight, 5.7 an agent (≥ 0.9 × 6).
    const busy = delivered(config, 2_000, 57, 10_000);
    expect(connectionBound(config, busy, true)?.message).toContain("Edge agents had 5.7 requests in flight each on average");
    expect(connectionBound(config, busy, false)).toBeNull(); // measured: only once finished
    // 5 an agent: under the limit, nothing was held back.
    expect(connectionBound(config, delivered(config, 2_000, 50, 10_000), true)).toBeNull();
  });
});

describe("connection_bound in a run's results", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("says so when 2 explicit edge agents at concurrency 24 were each asked for 12 of a non-streaming target, which got 6 at a time from each", async () => {
    // The network beyond the agents: every request to the target is answered after 30 ms.
    const TARGET = "https://api.example.org/v1/chat/completions";
    const seen = { inflight: 0, most: 0 };
    const real = globalThis.fetch;
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      const req = new Request(input, init);
      if (!req.url.startsWith(TARGET)) return real(input, init);
      seen.most = Math.max(seen.most, ++seen.inflight);
      await new Promise((r) => setTimeout(r, 30));
      seen.inflight--;
      return Response.json({ choices: [{ index: 0, message: { role: "assistant", content: "ok" } }] });
    });
    const created = await call("POST", "/v1/runs", {
      body: {
        target: { url: TARGET, model: "m" },
        load: { concurrency: 24 },
        stop: { requests: 96 },
        agents: { edge: 2 },
        graceSeconds: 30,
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { id, readToken } = created.body as { id: string; readToken: string };
    // Known from the plan: said while the run goes on.
    const early = (await call("GET", `/v1/runs/${id}/results`, { token: readToken })).body;
    expect(early.warnings.map((w: { code: string }) => w.code)).toEqual(["connection_bound"]);
    let res = await call("GET", `/v1/runs/${id}/results?wait=60`, { token: readToken });
    while (res.body.phase !== "complete") res = await call("GET", `/v1/runs/${id}/results?wait=60`, { token: readToken });
    expect(res.body.counts).toMatchObject({ granted: 96, completed: 96, failed: 0, outstanding: 0 });
    expect(seen.most).toBeLessThanOrEqual(12);
    const codes = res.body.warnings.map((w: { code: string }) => w.code);
    expect(codes).toContain("connection_bound");
    expect(codes).toContain("generator_bound"); // what the target got fell short, too
    expect(res.body.warnings.find((w: { code: string }) => w.code === "connection_bound").message).toContain("Give the run 4 edge agents");
  }, 60_000);
});
