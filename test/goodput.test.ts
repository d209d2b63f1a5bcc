// Goodput (README, RunSpec `goodput`): a successful request is good when it meets every
// listed per-request limit; good_request_count and goodput come from them.

import { describe, expect, it } from "vitest";
import { isGood } from "../contract/goodput";
import { advance, call, createRun, join, lease, okResult, report } from "./helpers";

describe("a good request", () => {
  it("is at or under a limit where lower is better, and at or over one where higher is better", () => {
    expect(isGood({ time_to_first_token: 200 }, { time_to_first_token: 200 })).toBe(true);
    expect(isGood({ time_to_first_token: 200.1 }, { time_to_first_token: 200 })).toBe(false);
    expect(isGood({ output_token_throughput_per_user: 50 }, { output_token_throughput_per_user: 40 })).toBe(true);
    expect(isGood({ output_token_throughput_per_user: 30 }, { output_token_throughput_per_user: 40 })).toBe(false);
  });

  it("meets every listed limit, and misses one it has no value for", () => {
    const limits = { time_to_first_token: 100, inter_token_latency: 10 };
    expect(isGood({ time_to_first_token: 50, inter_token_latency: 5 }, limits)).toBe(true);
    expect(isGood({ time_to_first_token: 50, inter_token_latency: 11 }, limits)).toBe(false);
    expect(isGood({ time_to_first_token: 50 }, limits)).toBe(false);
  });
});

describe("goodput in the results", () => {
  it("counts the successful requests meeting every limit, per second of the measured period", async () => {
    const run = await createRun({
      load: { concurrency: 8 },
      stop: { requests: 5 },
      goodput: { time_to_first_token: 100, inter_token_latency: 10 },
      thresholds: { "goodput.avg": ">0", good_request_count: "==2" },
    });
    const agentId = await join(run);
    const seqs = (await lease(run, agentId, 5)).body.credits.map((c: { seq: number }) => c.seq);
    await advance(run, 1_000);
    // ITL = (latency − TTFT) / (OSL − 1): 11 tokens over 100 ms after the first token is 10 ms.
    const r = await report(run, agentId, [
      okResult(seqs[0], { ttftMs: 50, latencyMs: 100, outputTokens: 11 }), // good: ITL 5
      okResult(seqs[1], { ttftMs: 100, latencyMs: 200, outputTokens: 11 }), // good: TTFT and ITL at their limits
      okResult(seqs[2], { ttftMs: 150, latencyMs: 200, outputTokens: 11 }), // TTFT over
      okResult(seqs[3], { ttftMs: 50, latencyMs: 300, outputTokens: 11 }), // ITL 25 over
      { seq: seqs[4], ok: false, latencyMs: 10, error: { code: "http_500", type: "http" } }, // failed: never good
    ]);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const res = (await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken })).body;
    expect(res.phase).toBe("complete");
    expect(res.metrics.good_request_count).toEqual({ unit: "requests", avg: 2 });
    expect(res.metrics.goodput.unit).toBe("requests/sec");
    expect(res.metrics.goodput.avg).toBeCloseTo(2 / res.metrics.benchmark_duration.avg, 6);
    expect(res.thresholds.every((t: { ok: boolean }) => t.ok)).toBe(true);
  });

  it("is absent from a run without goodput limits", async () => {
    const run = await createRun({ stop: { requests: 1 } });
    const agentId = await join(run);
    const seqs = (await lease(run, agentId, 1)).body.credits.map((c: { seq: number }) => c.seq);
    await report(run, agentId, [okResult(seqs[0])]);
    const res = (await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken })).body;
    expect(res.metrics.good_request_count.avg).toBeNull();
    expect(res.metrics.goodput.avg).toBeNull();
  });

  it.each([
    [{ request_count: 5 }, "goodput.request_count"],
    [{ time_to_first_token: -1 }, "goodput.time_to_first_token"],
    [{}, "goodput"],
  ])("refuses goodput %j, naming the field", async (goodput, field) => {
    const res = await call("POST", "/v1/runs", { body: { target: { url: "builtin:mock" }, stop: { requests: 1 }, goodput } });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.body.error.message).toContain(field);
  });
});
