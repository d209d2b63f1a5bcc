import { describe, expect, it } from "vitest";
import { RunMetrics } from "../durable/metrics";
import type { DistributionMetric, MetricsDocument, ReportedResult, ScalarMetric } from "../durable/metrics";
import { prng } from "../agent/prompt";

const ok = (seq: number, latencyMs: number, ttftMs?: number, outputTokens?: number, inputTokens?: number): ReportedResult => ({
  seq,
  ok: true,
  latencyMs,
  ttftMs,
  outputTokens,
  inputTokens,
});

const fail = (seq: number, code = "http_500", type = "HTTPError"): ReportedResult => ({
  seq,
  ok: false,
  latencyMs: 50,
  error: { code, type, message: "boom" },
});

// Hand-checkable run: ITL of A = (1000 - 200) / (5 - 1) = 200 ms, of B = (2000 - 400) /
// (17 - 1) = 100 ms; C has OSL 1, so no ITL. Output tokens 5 + 17 + 1 = 23.
const handRun = (): RunMetrics => {
  const m = RunMetrics.empty();
  m.add(ok(1, 1000, 200, 5, 100));
  m.add(ok(2, 2000, 400, 17, 200));
  m.add(ok(3, 1500, 300, 1, 150));
  m.add(fail(4));
  return m;
};

const dist = (doc: MetricsDocument, tag: keyof MetricsDocument) => doc[tag] as DistributionMetric;
const scalar = (doc: MetricsDocument, tag: keyof MetricsDocument) => doc[tag] as ScalarMetric;

function expectWithinPercent(actual: number | null, expected: number): void {
  expect(actual).not.toBeNull();
  expect(Math.abs((actual ?? NaN) - expected)).toBeLessThanOrEqual(0.005 * expected + 1e-9);
}

function randomResults(n: number, seed: number): ReportedResult[] {
  const rand = prng(seed);
  return Array.from({ length: n }, (_, seq) => {
    if (rand() < 0.1) return fail(seq, `code_${Math.floor(rand() * 5)}`, "HTTPError");
    const ttft = 20 + 200 * rand();
    const osl = Math.floor(300 * rand());
    return ok(seq, ttft + osl * (5 + 20 * rand()), ttft, osl, 1 + Math.floor(2000 * rand()));
  });
}

// Merging sums in a different order than one pass, so sums may differ in the last bits.
function expectSameDocuments(a: MetricsDocument, b: MetricsDocument): void {
  for (const tag of Object.keys(b) as (keyof MetricsDocument)[]) {
    for (const [field, expected] of Object.entries(b[tag])) {
      const actual: unknown = (a[tag] as unknown as Record<string, unknown>)[field];
      if (typeof expected === "number" && !Number.isInteger(expected)) {
        expect(Math.abs((actual as number) - expected), `${tag}.${field}`).toBeLessThanOrEqual(1e-9 * Math.abs(expected));
      } else {
        expect(actual, `${tag}.${field}`).toEqual(expected);
      }
    }
  }
}

describe("RunMetrics definitions", () => {
  it("counts successes and failures and reports the error rate as a percentage", () => {
    const doc = handRun().document(10_000);
    expect(scalar(doc, "request_count")).toEqual({ unit: "requests", avg: 3 });
    expect(scalar(doc, "error_request_count")).toEqual({ unit: "requests", avg: 1 });
    expect(scalar(doc, "request_error_rate")).toEqual({ unit: "%", avg: 25 });
  });

  it("divides successes and output tokens by the duration in seconds", () => {
    const doc = handRun().document(10_000);
    expect(scalar(doc, "benchmark_duration")).toEqual({ unit: "sec", avg: 10 });
    expect(scalar(doc, "request_throughput")).toEqual({ unit: "requests/sec", avg: 0.3 });
    expect(scalar(doc, "output_token_throughput").unit).toBe("tokens/sec");
    expect(scalar(doc, "output_token_throughput").avg).toBeCloseTo(2.3, 12);
  });

  it("derives ITL as (latency - TTFT) / (OSL - 1) and tokens/sec/user as 1000 / ITL", () => {
    const doc = handRun().document(10_000);
    const itl = dist(doc, "inter_token_latency");
    expect([itl.unit, itl.count, itl.min, itl.max, itl.avg, itl.sum]).toEqual(["ms", 2, 100, 200, 150, 300]);
    const perUser = dist(doc, "output_token_throughput_per_user");
    expect([perUser.unit, perUser.count, perUser.min, perUser.max, perUser.avg]).toEqual(["tokens/sec/user", 2, 5, 10, 7.5]);
  });

  it("summarizes latency, TTFT and sequence lengths exactly, with percentiles within 0.5%", () => {
    const doc = handRun().document(10_000);
    const latency = dist(doc, "request_latency");
    expect([latency.unit, latency.count, latency.min, latency.max, latency.avg, latency.sum]).toEqual(["ms", 3, 1000, 2000, 1500, 4500]);
    expect(latency.std).toBeCloseTo(Math.sqrt(500_000 / 3), 9);
    expectWithinPercent(latency.p50, 1500);
    expectWithinPercent(latency.p999, 1999); // numpy: 1500 + 0.998 * (2000 - 1500)
    expect(dist(doc, "time_to_first_token")).toMatchObject({ unit: "ms", count: 3, avg: 300 });
    expect(dist(doc, "output_sequence_length")).toMatchObject({ unit: "tokens", count: 3, sum: 23 });
    expect(dist(doc, "input_sequence_length")).toMatchObject({ unit: "tokens", count: 3, sum: 450 });
    expect(handRun().outputTokens()).toBe(23);
  });

  it("excludes failed requests from every latency and token distribution", () => {
    const withFailures = handRun();
    withFailures.add({ ...fail(5), latencyMs: 99_999, ttftMs: 1, outputTokens: 1000, inputTokens: 1000 });
    const a = withFailures.document(10_000);
    const b = handRun().document(10_000);
    for (const tag of [
      "request_latency",
      "time_to_first_token",
      "inter_token_latency",
      "output_sequence_length",
      "input_sequence_length",
      "output_token_throughput_per_user",
    ] as const) {
      expect(dist(a, tag), tag).toEqual(dist(b, tag));
    }
    expect(withFailures.outputTokens()).toBe(23);
    expect(withFailures.failed).toBe(2);
  });

  it("skips ITL and tokens/sec/user when OSL is below 2 or TTFT is unknown", () => {
    const m = RunMetrics.empty();
    m.add(ok(1, 1000, 100, 1));
    m.add(ok(2, 1000, 100, 0));
    m.add(ok(3, 1000, undefined, 50));
    const doc = m.document(1_000);
    expect(dist(doc, "inter_token_latency").count).toBe(0);
    expect(dist(doc, "output_token_throughput_per_user").count).toBe(0);
    expect(dist(doc, "time_to_first_token").count).toBe(2);
  });

  it("returns nulls, never NaN, for an empty run, and the document survives JSON", () => {
    const doc = RunMetrics.empty().document(0);
    const latency = dist(doc, "request_latency");
    expect(latency.count).toBe(0);
    for (const [field, value] of Object.entries(latency)) {
      if (field !== "unit" && field !== "count") expect(value, field).toBeNull();
    }
    for (const tag of ["request_throughput", "output_token_throughput", "request_error_rate", "benchmark_duration"] as const) {
      expect(scalar(doc, tag).avg, tag).toBeNull();
    }
    expect(scalar(doc, "request_count").avg).toBe(0);
    expect(JSON.parse(JSON.stringify(doc))).toEqual(doc);
  });

  it("reports null throughputs and duration when the duration is zero", () => {
    const doc = handRun().document(0);
    expect(scalar(doc, "request_throughput").avg).toBeNull();
    expect(scalar(doc, "output_token_throughput").avg).toBeNull();
    expect(scalar(doc, "benchmark_duration").avg).toBeNull();
    expect(scalar(doc, "request_error_rate").avg).toBe(25);
  });

  it("rejects an invalid measurement with a RangeError and records nothing", () => {
    const m = RunMetrics.empty();
    expect(() => m.add(ok(1, Number.NaN))).toThrow(RangeError);
    expect(() => m.add(ok(2, 100, -1))).toThrow(RangeError);
    expect(() => m.add(ok(3, 100, 10, 1.5))).toThrow(RangeError);
    expect(m.completed).toBe(0);
    expect(m.toJSON()).toEqual(RunMetrics.empty().toJSON());
  });
});

describe("RunMetrics errors", () => {
  it("counts errors by code and type, most frequent first", () => {
    const m = RunMetrics.empty();
    m.add(fail(1, "timeout", "TimeoutError"));
    m.add(fail(2, "http_500", "HTTPError"));
    m.add(fail(3, "http_500", "HTTPError"));
    m.add(fail(4, "http_500", "OtherError"));
    m.add({ seq: 5, ok: false, latencyMs: 0 });
    expect(m.errors()).toEqual([
      { code: "http_500", type: "HTTPError", count: 2 },
      { code: "http_500", type: "OtherError", count: 1 },
      { code: "timeout", type: "TimeoutError", count: 1 },
      { code: "unknown", type: "unknown", count: 1 },
    ]);
  });

  it("folds error kinds beyond 64 into other/other so storage stays bounded", () => {
    const m = RunMetrics.empty();
    for (let i = 0; i < 1000; i++) m.add(fail(i, `code_${i}`));
    const errors = m.errors();
    expect(errors).toHaveLength(65);
    expect(errors[0]).toEqual({ code: "other", type: "other", count: 936 });
    expect(errors.reduce((n, e) => n + e.count, 0)).toBe(1000);
  });

  it("truncates long error codes and types to 64 characters", () => {
    const m = RunMetrics.empty();
    m.add(fail(1, "c".repeat(10_000), "t".repeat(10_000)));
    expect(m.errors()).toEqual([{ code: "c".repeat(64), type: "t".repeat(64), count: 1 }]);
  });
});

describe("RunMetrics serialization and merge", () => {
  it("round-trips through JSON text with an identical document", () => {
    const m = RunMetrics.empty();
    for (const r of randomResults(5_000, 1)) m.add(r);
    const back = RunMetrics.fromJSON(JSON.parse(JSON.stringify(m.toJSON())));
    expect(back.toJSON()).toEqual(m.toJSON());
    expect(back.document(60_000)).toEqual(m.document(60_000));
  });

  it("round-trips a run whose errors were folded into other/other", () => {
    const m = RunMetrics.empty();
    for (let i = 0; i < 200; i++) m.add(fail(i, `code_${i}`));
    expect(RunMetrics.fromJSON(JSON.parse(JSON.stringify(m.toJSON()))).errors()).toEqual(m.errors());
  });

  it("stores a size independent of the request count", () => {
    const m = RunMetrics.empty();
    for (const r of randomResults(200_000, 2)) m.add(r);
    expect(JSON.stringify(m.toJSON()).length).toBeLessThan(16_384);
  });
});

describe("final metrics", () => {
  const frozenRun = (n: number, seed: number): RunMetrics => {
    const m = RunMetrics.empty();
    for (const r of randomResults(n, seed)) m.add(r);
    return m;
  };

  it("keep the document computed at completion, survive a round trip, and refuse more results", () => {
    const m = frozenRun(2_000, 21);
    const doc = m.document(60_000);
    const tokens = m.outputTokens();
    m.freeze(60_000);
    expect(m.frozen).toBe(true);
    expect(m.document(1)).toEqual(doc); // the duration is the one frozen with
    expect(m.outputTokens()).toBe(tokens);
    const stored = JSON.parse(JSON.stringify(m.toJSON()));
    expect(stored.distributions).toBeNull();
    const back = RunMetrics.fromJSON(stored);
    expect(back.document(0)).toEqual(doc);
    expect([back.completed, back.failed, back.outputTokens()]).toEqual([m.completed, m.failed, tokens]);
    expect(back.errors()).toEqual(m.errors());
    expect(() => back.add(ok(99_999, 10))).toThrow(/final/);
  });

  it("store about the same bytes for 1,000 and 200,000 results, where the sketches grow", () => {
    const small = frozenRun(1_000, 22);
    const large = frozenRun(200_000, 23);
    const live = [JSON.stringify(small.toJSON()).length, JSON.stringify(large.toJSON()).length];
    expect(live[1]! / live[0]!).toBeGreaterThan(1.3); // the sketches of the larger run hold more bins
    small.freeze(60_000);
    large.freeze(60_000);
    const final = [JSON.stringify(small.toJSON()).length, JSON.stringify(large.toJSON()).length];
    expect(final[1]! / final[0]!).toBeLessThan(1.1);
    expect(final[1]!).toBeLessThan(live[1]! / 2);
  });
});

describe("RunMetrics for reasoning models (AIPerf's definitions)", () => {
  // The stream: first token (reasoning) at 100 ms, one every 10 ms, 20 reasoning
  // tokens then 10 answer tokens, usage 30: the last token at 100 + 29 · 10 = 390 ms.
  const reasoningStream: ReportedResult = {
    seq: 1,
    ok: true,
    latencyMs: 390,
    ttftMs: 100,
    ttfoMs: 300,
    ttstMs: 10,
    outputTokens: 30,
    reasoningTokens: 20,
    inputTokens: 50,
  };

  it("paces every token, reasoning included: ITL 10 ms and 100 tokens/s per user for the issue's stream", () => {
    const m = RunMetrics.empty();
    m.add(reasoningStream);
    const doc = m.document(1_000);
    expect(dist(doc, "time_to_first_token").avg).toBe(100);
    expect(dist(doc, "inter_token_latency").avg).toBeCloseTo(10, 12);
    expect(dist(doc, "output_token_throughput_per_user").avg).toBeCloseTo(100, 10);
    expect(dist(doc, "output_sequence_length").avg).toBe(30);
  });

  it("reports TTFO, TTST and reasoning tokens with their units, each from the requests that had one", () => {
    const m = RunMetrics.empty();
    m.add(reasoningStream);
    m.add({ seq: 2, ok: true, latencyMs: 200, ttftMs: 50, ttfoMs: 50, ttstMs: 4, outputTokens: 16, inputTokens: 50 });
    m.add({ seq: 3, ok: true, latencyMs: 90 }); // not streamed: none of them
    m.add({ seq: 4, ok: false, latencyMs: 5, ttfoMs: 1, reasoningTokens: 9, error: { code: "timeout", type: "timeout" } });
    const doc = m.document(1_000);
    expect(dist(doc, "time_to_first_output_token")).toMatchObject({ unit: "ms", count: 2, min: 50, max: 300, sum: 350 });
    expect(dist(doc, "time_to_second_token")).toMatchObject({ unit: "ms", count: 2, min: 4, max: 10 });
    expect(dist(doc, "reasoning_token_count")).toMatchObject({ unit: "tokens", count: 1, min: 20, max: 20, sum: 20 });
  });

  it("computes total token throughput as the input and output tokens of successes over the duration", () => {
    const m = handRun();
    expect(scalar(m.document(10_000), "total_token_throughput")).toEqual({ unit: "tokens/sec", avg: (450 + 23) / 10 });
    expect(scalar(m.document(0), "total_token_throughput").avg).toBeNull();
    const tokenless = RunMetrics.empty();
    tokenless.add(ok(1, 100));
    expect(scalar(tokenless.document(1_000), "total_token_throughput").avg).toBeNull();
  });

  it("refuses a negative TTFO or TTST and a fractional reasoning count, recording nothing", () => {
    const m = RunMetrics.empty();
    expect(() => m.add({ ...reasoningStream, ttfoMs: -1 })).toThrow(RangeError);
    expect(() => m.add({ ...reasoningStream, ttstMs: Number.POSITIVE_INFINITY })).toThrow(RangeError);
    expect(() => m.add({ ...reasoningStream, reasoningTokens: 2.5 })).toThrow(RangeError);
    expect(m.completed).toBe(0);
  });

  it("rebuilds a run stored before these metrics existed, with them empty", () => {
    const m = handRun();
    const stored = JSON.parse(JSON.stringify(m.toJSON()));
    for (const tag of ["time_to_first_output_token", "time_to_second_token", "reasoning_token_count"]) delete stored.distributions[tag];
    const back = RunMetrics.fromJSON(stored);
    back.add(reasoningStream);
    const doc = back.document(10_000);
    expect(dist(doc, "reasoning_token_count").count).toBe(1);
    expect(dist(doc, "request_latency").count).toBe(4);
  });
});
