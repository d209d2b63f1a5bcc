// Capacity under an SLO as a pure function (contract/experiment-search.ts), against
// synthetic targets whose latency grows with the load: no runs, no clock.
import { describe, expect, it } from "vitest";
import { parseSlo } from "../contract/experiment";
import { MAX_SEARCH_LEVELS, searchStep } from "../contract/experiment-search";
import type { SearchBounds, SearchEnd, Trial } from "../contract/experiment-search";
import type { MetricsDocument } from "../contract/results";
import { evaluateThresholds } from "../durable/views";

/** Runs the search to its end against `passes`; the levels in the order tried, and the answer. */
function search(bounds: SearchBounds, passes: (level: number) => boolean): { tried: number[]; best: number | null; end: SearchEnd } {
  const trials: Trial[] = [];
  for (;;) {
    const step = searchStep(bounds, trials);
    if (step.done) return { tried: trials.map((t) => t.level), best: step.best, end: step.end };
    expect(
      trials.map((t) => t.level),
      "a level is never tried twice",
    ).not.toContain(step.next);
    expect(step.next).toBeGreaterThanOrEqual(bounds.min);
    expect(step.next).toBeLessThanOrEqual(bounds.max);
    trials.push({ level: step.next, ok: passes(step.next) });
    if (trials.length > 100) throw new Error("the search does not end");
  }
}

/** A target whose TTFT p95 is 10 ms per request in flight, judged by an SLO in the thresholds grammar. */
function latencyGrowsWithConcurrency(slo: string): (level: number) => boolean {
  const s = parseSlo(slo, "search.slo[0]");
  return (level) => {
    const doc = { time_to_first_token: { unit: "ms", p95: 10 * level } } as unknown as MetricsDocument;
    return evaluateThresholds(doc, { [s.key]: s.comparison }).every((v) => v.ok);
  };
}

describe("the capacity search", () => {
  it("expands 1, 2, 4, 8, 16, then bisects 12, 14, 13 to find that the SLO holds up to 12", () => {
    const r = search({ over: "concurrency", min: 1, max: 64 }, latencyGrowsWithConcurrency("time_to_first_token.p95<125"));
    expect(r).toEqual({ tried: [1, 2, 4, 8, 16, 12, 14, 13], best: 12, end: "converged" });
  });

  it("finds every capacity from none to max exactly over integer concurrency, in at most twice log2(max) + 2 levels", () => {
    for (let capacity = 0; capacity <= 100; capacity++) {
      const r = search({ over: "concurrency", min: 1, max: 100 }, (c) => c <= capacity);
      expect(r.best, `capacity ${capacity}`).toBe(capacity === 0 ? null : capacity);
      expect(r.tried.length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(100)) + 2);
    }
  });

  it("answers null when even min fails, after trying only min", () => {
    expect(search({ over: "concurrency", min: 4, max: 64 }, () => false)).toEqual({ tried: [4], best: null, end: "min_failed" });
  });

  it("tries max itself when doubling would overshoot it, and answers max when it passes", () => {
    expect(search({ over: "concurrency", min: 3, max: 20 }, () => true)).toEqual({ tried: [3, 6, 12, 20], best: 20, end: "reached_max" });
    expect(search({ over: "concurrency", min: 5, max: 5 }, () => true)).toEqual({ tried: [5], best: 5, end: "reached_max" });
  });

  it("bisects rate until the bracket is within 5% of the passing level", () => {
    const capacity = 33.3;
    const r = search({ over: "rate", min: 5, max: 200 }, (rate) => rate <= capacity);
    expect(r.tried).toEqual([5, 10, 20, 40, 30, 35, 32.5, 33.75]);
    expect(r).toMatchObject({ best: 32.5, end: "converged" });
    // The answer passes, and the first failure above it is within 5% of it.
    expect(r.best!).toBeLessThanOrEqual(capacity);
    expect((33.75 - r.best!) / r.best!).toBeLessThanOrEqual(0.05);
  });

  it("keeps rates to a thousandth and stops when the bracket cannot be split further", () => {
    const r = search({ over: "rate", min: 0.001, max: 0.004 }, (rate) => rate <= 0.0015);
    expect(r).toEqual({ tried: [0.001, 0.002], best: 0.001, end: "converged" });
    for (const level of search({ over: "rate", min: 1, max: 1000 }, (rate) => rate <= 123.4567).tried) {
      expect(Math.round(level * 1000) / 1000).toBe(level);
    }
  });

  it("reads a noisy target's trials as a bracket: a pass above a failure proposes nothing already bracketed out", () => {
    // 2 failed, then 4 passed (noise): the answer is bracketed between 1 and 2.
    const tried: Trial[] = [
      { level: 1, ok: true },
      { level: 2, ok: false },
      { level: 4, ok: true },
    ];
    expect(searchStep({ over: "concurrency", min: 1, max: 64 }, tried)).toEqual({ done: true, best: 1, end: "converged" });
    // The same trials in another order give the same step: the state is the trials.
    expect(searchStep({ over: "concurrency", min: 1, max: 64 }, [...tried].reverse())).toEqual({ done: true, best: 1, end: "converged" });
  });

  it(`stops after ${MAX_SEARCH_LEVELS} levels with the best level found so far`, () => {
    const r = search({ over: "concurrency", min: 1, max: 1_000_000 }, (c) => c <= 700_001);
    expect(r.tried).toHaveLength(MAX_SEARCH_LEVELS);
    expect(r.end).toBe("level_cap");
    expect(r.best!).toBeLessThanOrEqual(700_001);
    expect(r.best!).toBe(Math.max(...r.tried.filter((c) => c <= 700_001)));
  });
});

describe("SLO expressions", () => {
  it("split into a threshold key and a comparison, with or without a stat or a region tag", () => {
    expect(parseSlo("time_to_first_token.p95 < 200", "search.slo[0]")).toEqual({
      expr: "time_to_first_token.p95<200",
      key: "time_to_first_token.p95",
      comparison: "< 200",
    });
    expect(parseSlo("request_error_rate<=1", "search.slo[1]").key).toBe("request_error_rate");
    expect(parseSlo("time_to_first_token.p99{region:weur}<300", "search.slo[2]").key).toBe("time_to_first_token.p99{region:weur}");
  });

  it("refuse what the thresholds grammar refuses, naming the SLO's place in the body", () => {
    expect(() => parseSlo("time_to_frist_token.p95<200", "search.slo[3]")).toThrow(/^search\.slo\[3\]: unknown metric tag/);
    expect(() => parseSlo("time_to_first_token.p42<200", "search.slo[0]")).toThrow(/^search\.slo\[0\]: unknown stat/);
    expect(() => parseSlo("time_to_first_token.p95", "search.slo[1]")).toThrow(/^search\.slo\[1\]: expected METRIC\.STAT<N/);
    expect(() => parseSlo("time_to_first_token.p95<fast", "search.slo[0]")).toThrow(/^search\.slo\[0\]: expected "<N"/);
  });
});
