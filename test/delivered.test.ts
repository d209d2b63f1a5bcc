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
