// Capacity under an SLO end to end: each level the search chooses is a run of its own,
// driven by an external agent that reports latencies growing with the level, and the SLO
// verdicts on each level's final metrics steer the next level.
import { describe, expect, it } from "vitest";
import { POLL_MS } from "../durable/Experiment";
import { call, mockSpec } from "./helpers";
import { advanceAndAlarm, createExperiment, currentRun, driveLevel, summary } from "./experiment-helpers";

/** The target's latency at a level of concurrency: 40 ms per request in flight. */
const latencyAt = (level: number) => 40 * level;

describe("capacity under an SLO", () => {
  it("tries min, doubles to the first failure, bisects, and names the highest level at which every SLO held", async () => {
    const exp = await createExperiment({
      base: mockSpec({ stop: { requests: 4 } }),
      search: { over: "concurrency", slo: ["request_latency.p50<150", "request_error_rate<1"], min: 2, max: 8 },
    });
    expect(exp.created).toMatchObject({ kind: "search", over: "concurrency", phase: "running" });
    const order: number[] = [];
    for (;;) {
      const s = (await summary(exp)).body;
      if (s.phase === "complete") break;
      const run = await currentRun(exp);
      const level = s.current.level as number;
      order.push(level);
      const own = (await call("GET", `/v1/runs/${run.id}/results`, { token: exp.readToken })).body;
      expect(own.spec.load).toEqual({ concurrency: level });
      await driveLevel(run, latencyAt(level));
      await advanceAndAlarm(exp, POLL_MS);
      expect(order.length).toBeLessThan(10);
    }
    // 2 passes (80 ms), 4 fails (160 ms), then 3 between them passes (120 ms).
    expect(order).toEqual([2, 4, 3]);
    const done = (await call("GET", `/v1/experiments/${exp.id}/results`, { token: exp.readToken })).body;
    expect(done).toMatchObject({ final: true, phase: "complete", status: "complete", outcome: "completed" });
    expect(done.search).toMatchObject({ over: "concurrency", min: 2, max: 8, best: 3, end: "converged" });
    expect(done.search.slo).toEqual(["request_latency.p50<150", "request_error_rate<1"]);
    expect(done.search.tried.map((t: { level: number; ok: boolean }) => [t.level, t.ok])).toEqual([
      [2, true],
      [4, false],
      [3, true],
    ]);
    const four = done.search.tried[1];
    expect(four.verdicts[0]).toMatchObject({ expr: "request_latency.p50<150", ok: false });
    expect(four.verdicts[0].value).toBeCloseTo(160, -1);
    expect(four.verdicts[1]).toEqual({ expr: "request_error_rate<1", ok: true, value: 0 });
    expect(four.runId).toBe(done.levels[1].runId);
    expect(done.levels.map((l: { level: number; status: string }) => [l.level, l.status])).toEqual([
      [2, "complete"],
      [4, "complete"],
      [3, "complete"],
    ]);
    expect(done.levels[2].metrics.request_latency.p50).toBeCloseTo(120, -1);
  });

  it("answers best null after one level when even min fails", async () => {
    const exp = await createExperiment({
      base: mockSpec({ stop: { requests: 2 } }),
      search: { over: "concurrency", slo: ["time_to_first_token.p99<10"], min: 2, max: 64 },
    });
    await driveLevel(await currentRun(exp), 100, 50);
    await advanceAndAlarm(exp, POLL_MS);
    const done = (await summary(exp)).body;
    expect(done).toMatchObject({ phase: "complete", status: "complete" });
    expect(done.search).toMatchObject({ best: null, end: "min_failed" });
    expect(done.search.tried).toEqual([expect.objectContaining({ level: 2, ok: false })]);
    expect(done.search.tried[0].verdicts[0]).toMatchObject({ expr: "time_to_first_token.p99<10", ok: false });
  });

  it("stopped mid-search, keeps what it tried, names the best so far, and says it was stopped", async () => {
    const exp = await createExperiment({
      base: mockSpec({ stop: { requests: 2 } }),
      search: { over: "concurrency", slo: ["request_latency.p50<1000"], min: 1, max: 64 },
    });
    await driveLevel(await currentRun(exp), latencyAt(1));
    await advanceAndAlarm(exp, POLL_MS);
    expect((await summary(exp)).body.current.level).toBe(2);
    await call("POST", `/v1/experiments/${exp.id}/stop`, { body: { mode: "force" } });
    await advanceAndAlarm(exp, POLL_MS);
    const done = (await summary(exp)).body;
    expect(done).toMatchObject({ phase: "complete", status: "cancelled", outcome: "stopped" });
    expect(done.search).toMatchObject({ best: 1, end: "stopped" });
    // The level the stop cut short shows its verdicts but is no evidence either way.
    expect(done.levels.map((l: { level: number; status: string }) => [l.level, l.status])).toEqual([
      [1, "complete"],
      [2, "cancelled"],
    ]);
  });
});
