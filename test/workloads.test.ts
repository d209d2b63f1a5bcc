// Runs that use a dataset, seen from the coordinator (README, "Datasets and workloads"):
// credits carry the item each one sends, chosen by workload.dataset.sampling; a
// mooncake_trace is replayed on its own timestamps ÷ replaySpeedup through the same `at`
// path as rate mode, one request per item; bad references are refused with the field named.

import { describe, expect, it } from "vitest";
import { itemIndex } from "../contract/dataset-sampling";
import { advance, call, createRun, join, lease, mockSpec, okResult, report, status } from "./helpers";

const NDJSON = "application/x-ndjson";

async function upload(type: string, lines: unknown[]): Promise<string> {
  const res = await call("POST", `/v1/datasets?type=${type}`, {
    rawBody: lines.map((l) => JSON.stringify(l)).join("\n"),
    contentType: NDJSON,
  });
  expect([200, 201], JSON.stringify(res.body)).toContain(res.status);
  return res.body.id;
}

const TEXTS = ["alpha", "beta", "gamma", "delta", "epsilon"].map((text) => ({ text }));

describe("credits of a run with a dataset", () => {
  it.each(["sequential", "random", "shuffle"] as const)("carry the item %s sampling picks for their seq", async (sampling) => {
    const id = await upload("single_turn", TEXTS);
    const run = await createRun({ workload: { seed: 3, dataset: { id, sampling } }, load: { concurrency: 12 }, stop: { requests: 12 } });
    const agent = await join(run);
    const res = await lease(run, agent, 12);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const credits = res.body.credits as Array<{ seq: number; item: number }>;
    expect(credits).toHaveLength(12);
    for (const c of credits) expect(c.item).toBe(itemIndex(sampling, 3, c.seq, TEXTS.length));
    if (sampling !== "random") {
      // Every item once in each pass over the dataset (the first 10 seqs are two passes).
      const firstPass = credits.slice(0, 5).map((c) => c.item);
      expect([...firstPass].sort()).toEqual([0, 1, 2, 3, 4]);
    }
  });

  it("carry no item without a dataset", async () => {
    const run = await createRun();
    const agent = await join(run);
    const res = await lease(run, agent, 4);
    for (const c of res.body.credits) expect(c).not.toHaveProperty("item");
  });
});

describe("a mooncake_trace run", () => {
  // Timestamps 1000…9000 ms; replayed twice as fast: offsets 0, 250, 500, 1500, 1500, 4000.
  const TRACE = [1000, 1500, 2000, 4000, 4000, 9000].map((timestamp, i) => ({
    timestamp,
    input_length: 600 + i,
    output_length: 8,
    hash_ids: [1, 2 + (i % 2)],
  }));

  it("hands out the trace's items in order at their offsets ÷ replaySpeedup, one request per item", async () => {
    const id = await upload("mooncake_trace", TRACE);
    const run = await createRun({ workload: { dataset: { id }, replaySpeedup: 2 }, load: { concurrency: 4 }, stop: { requests: 100 } });
    const agent = await join(run);
    const got: Array<{ seq: number; at: number; item: number }> = [];
    const take = async () => {
      const res = await lease(run, agent, 10);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      got.push(...res.body.credits);
      return res.body.credits.length as number;
    };
    // leaseAheadMs is 1 s: the first lease holds what is due in the first second.
    expect(await take()).toBe(3);
    await advance(run, 1000);
    expect(await take()).toBe(2);
    await advance(run, 1000);
    expect(await take()).toBe(0); // the last item is due at 4 s
    await advance(run, 2000);
    expect(await take()).toBe(1);
    expect(got.map((c) => c.item)).toEqual([0, 1, 2, 3, 4, 5]);
    const offset = got[0]!.at; // the measured start, on the run's clock
    expect(got.map((c) => c.at - offset)).toEqual([0, 250, 500, 1500, 1500, 4000]);
    // The trace's six items are the budget, though stop.requests said 100.
    const s = (await status(run)).body;
    expect(s.counts.granted).toBe(6);
    const r = await report(
      run,
      agent,
      got.map((c) => okResult(c.seq, { lagMs: 1 })),
    );
    expect(r.status).toBe(200);
    const done = (await status(run)).body;
    expect(done.counts.completed).toBe(6);
    expect(["draining", "complete"]).toContain(done.phase);
    const results = (await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken })).body;
    expect(results.delivered.concurrency.target).toBeNull();
    expect(results.delivered.rate.target).toBeNull();
    expect(results.delivered.scheduleLagMs.p99).toBeCloseTo(1, 1);
  });

  it("re-sends a returned trace item with its own time when the run goes on", async () => {
    const id = await upload("mooncake_trace", TRACE);
    const run = await createRun({ workload: { dataset: { id } }, load: { concurrency: 4 }, stop: { requests: 100 } });
    const a = await join(run, "a");
    const first = (await lease(run, a, 10)).body.credits as Array<{ seq: number; at: number; item: number }>;
    expect(first.map((c) => c.item)).toEqual([0, 1, 2]); // offsets 0, 500, 1000 at speed 1
    const r = await report(run, a, [okResult(first[0]!.seq), okResult(first[2]!.seq)], { returned: [first[1]!.seq] });
    expect(r.status).toBe(200);
    const again = (await lease(run, a, 10)).body.credits as Array<{ seq: number; at: number; item: number }>;
    expect(again.map((c) => c.item)).toEqual([1]);
    expect(again[0]!.seq).toBeGreaterThan(first[2]!.seq);
    expect(again[0]!.at).toBe(first[1]!.at);
  });
});

describe("a dataset reference", () => {
  it("to a dataset that is not there is refused naming workload.dataset.id, and no run is made", async () => {
    const before = (await call("GET", "/v1/runs")).body.runs.length;
    const res = await call("POST", "/v1/runs", { body: mockSpec({ workload: { dataset: { id: `ds_${"0".repeat(64)}` } } }) });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain("workload.dataset.id");
    expect((await call("GET", "/v1/runs")).body.runs.length).toBe(before);
  });

  it("with replaySpeedup on a dataset that is not a trace is refused naming workload.replaySpeedup", async () => {
    const id = await upload("single_turn", TEXTS);
    const res = await call("POST", "/v1/runs", { body: mockSpec({ workload: { dataset: { id }, replaySpeedup: 2 } }) });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain("workload.replaySpeedup");
  });

  it("to a trace with load.rate is refused naming load.rate", async () => {
    const id = await upload("mooncake_trace", [{ timestamp: 0, input_length: 10, output_length: 2 }]);
    const res = await call("POST", "/v1/runs", { body: mockSpec({ workload: { dataset: { id } }, load: { rate: 5 } }) });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain("load.rate");
  });
});
