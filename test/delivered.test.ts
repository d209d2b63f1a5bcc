// The results say what load was delivered (README, "Delivered load"): mean concurrency by
// Little's law over the measured period, the achieved rate, the schedule lag in rate
// mode, and a generator_bound warning when the load asked for was not delivered.

import { describe, expect, it } from "vitest";
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

  it("lets an agent hold its share plus the depth it asks for: two shares without one, at most nine shares", async () => {
    expect(await outstandingAfter(undefined)).toBe(8);
    expect(await outstandingAfter(0)).toBe(8); // never under one share of depth
    expect(await outstandingAfter(12)).toBe(16);
    expect(await outstandingAfter(1_000)).toBe(36);
  });
});
