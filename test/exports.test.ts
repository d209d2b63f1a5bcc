import { describe, expect, it } from "vitest";
import { toAiperfCsv, toAiperfJson } from "../contract/exports";
import { RunMetrics } from "../durable/metrics";
import type { MetricTag } from "../contract/metric-catalog";
import type { DistributionMetric, MetricsDocument, ScalarMetric } from "../contract/results";
import type { Results } from "../durable/views";
import { readConfig } from "../contract/config";
import { parseRunSpec, publicSpec } from "../contract/spec";
import csvFixture from "./fixtures/aiperf-profile-export.csv?raw";
import jsonFixtureText from "./fixtures/aiperf-profile-export.json?raw";

type Json = Record<string, any>;
const jsonFixture = JSON.parse(jsonFixtureText) as Json;

const STARTED = Date.UTC(2026, 0, 5, 12, 0, 0);
const iso = (t: number) => new Date(t).toISOString();

// The run behind the fixtures: ITL of the first request = (1000 - 200) / (5 - 1) = 200 ms,
// of the second (2000 - 400) / (17 - 1) = 100 ms; the third has one output token, so no
// ITL and no second token. The first two reasoned (2 and 8 of their tokens). 23 output
// and 450 input tokens and 3 successes in 10 s; 2 of 5 requests failed.
function fixtureRun(): RunMetrics {
  const m = RunMetrics.empty();
  m.add({ seq: 1, ok: true, latencyMs: 1000, ttftMs: 200, ttfoMs: 400, ttstMs: 20, outputTokens: 5, reasoningTokens: 2, inputTokens: 100 });
  m.add({
    seq: 2,
    ok: true,
    latencyMs: 2000,
    ttftMs: 400,
    ttfoMs: 1200,
    ttstMs: 30,
    outputTokens: 17,
    reasoningTokens: 8,
    inputTokens: 200,
  });
  m.add({ seq: 3, ok: true, latencyMs: 1500, ttftMs: 300, ttfoMs: 300, outputTokens: 1, inputTokens: 150 });
  m.add({ seq: 4, ok: false, latencyMs: 50, error: { code: "http_500", type: "HTTPError", message: "boom" } });
  m.add({ seq: 5, ok: false, latencyMs: 50, error: { code: "timeout", type: "TimeoutError" } });
  return m;
}

// Secrets go in through the real spec parser and come out through publicSpec, the only
// form a results document ever holds.
const SECRET_SPEC = publicSpec(
  parseRunSpec(
    {
      target: {
        url: "https://api.example.org/v1/chat/completions?key=SECRET-IN-URL",
        model: "m",
        apiKey: "sk-SECRET-API-KEY",
        headers: { "x-api-token": "SECRET-HEADER" },
      },
      stop: { requests: 10 },
    },
    readConfig({ API_TOKEN: "t", ALLOWED_TARGETS: "api.example.org" }),
  ),
);

function results(overrides: Partial<Results> = {}, metrics = fixtureRun(), durationMs = 10_000): Results {
  const ledger = { granted: 5, returned: 0, completed: 3, failed: 2, abandoned: 0, outstanding: 0 };
  return {
    id: "0f3c2a9e5b7d4c1a8e6f0b2d4c6a8e0f",
    phase: "complete",
    status: "complete",
    outcome: "completed",
    stopReason: "budget",
    warnings: [],
    delivered: { concurrency: { target: 4, mean: 3.9 }, rate: { target: null, achieved: 0.5 }, scheduleLagMs: null },
    regions: {},
    sessions: null,
    partial: false,
    counts: ledger,
    warmup: { ...ledger, granted: 0, completed: 0, failed: 0 },
    agents: [],
    timeseries: { bucketSeconds: 1, buckets: [] },
    createdAt: iso(STARTED - 1000),
    startedAt: iso(STARTED),
    drainStartedAt: iso(STARTED + 9000),
    completedAt: iso(STARTED + 10_000),
    wipeAt: iso(STARTED + 15_000),
    serverTime: iso(STARTED + 10_000),
    live: { requestThroughput: null, latencyP50: null, latencyP99: null, ttftP50: null, errorRate: null },
    final: true,
    spec: SECRET_SPEC,
    metrics: metrics.document(durationMs),
    errors: metrics.errors(),
    thresholds: [],
    ...overrides,
  };
}

/** A metrics document built by hand: the empty run's, with some metrics replaced. */
function handDocument(replace: Partial<Record<MetricTag, Partial<DistributionMetric> | ScalarMetric>>): MetricsDocument {
  const doc = RunMetrics.empty().document(0);
  for (const [tag, fields] of Object.entries(replace) as [MetricTag, Json][]) {
    doc[tag] = { ...doc[tag], ...fields } as DistributionMetric | ScalarMetric;
  }
  return doc;
}

// An RFC 4180 reader (quoted fields, doubled quotes, CRLF or LF), as a consumer would use.
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (quoted) {
      if (c === '"' && text.charAt(i + 1) === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else if (c !== "\r") field += c;
  }
  if (field !== "" || row.length > 0) rows.push([...row, field]);
  return rows;
}

/** The CSV's sections: runs of rows separated by a blank line. */
function sections(text: string): string[][][] {
  const out: string[][][] = [[]];
  for (const row of parseCsv(text)) {
    if (row.length === 1 && row[0] === "") out.push([]);
    else out[out.length - 1]!.push(row);
  }
  return out;
}

const DISPLAY_NAMES: Record<MetricTag, string> = {
  input_sequence_length: "Input Sequence Length (tokens)",
  inter_token_latency: "Inter Token Latency (ms)",
  output_sequence_length: "Output Sequence Length (tokens)",
  output_token_throughput_per_user: "Output Token Throughput Per User (tokens/sec/user)",
  request_latency: "Request Latency (ms)",
  time_to_first_token: "Time to First Token (ms)",
  time_to_first_output_token: "Time to First Output Token (ms)",
  time_to_second_token: "Time to Second Token (ms)",
  reasoning_token_count: "Reasoning Token Count (tokens)",
  total_token_throughput: "Total Token Throughput (tokens/sec)",
  benchmark_duration: "Benchmark Duration (sec)",
  error_request_count: "Error Request Count",
  output_token_throughput: "Output Token Throughput (tokens/sec)",
  request_count: "Request Count",
  request_error_rate: "Request Error Rate (%)",
  request_throughput: "Request Throughput (requests/sec)",
  good_request_count: "Good Request Count",
  goodput: "Goodput (requests/sec)",
};
const TAG_BY_NAME = new Map(Object.entries(DISPLAY_NAMES).map(([tag, name]) => [name, tag as MetricTag]));

describe("the AIPerf JSON export", () => {
  it("has exactly the fixture's top-level keys, in AIPerf's order, for a finished run with every metric", () => {
    expect(Object.keys(toAiperfJson(results()))).toEqual(Object.keys(jsonFixture));
  });

  it("gives every metric and error entry exactly the fixture's fields, in AIPerf's order", () => {
    const out = toAiperfJson(results()) as Json;
    for (const [key, value] of Object.entries(jsonFixture)) {
      if (typeof value === "object" && value !== null && "unit" in value) {
        expect(Object.keys(out[key]), key).toEqual(Object.keys(value));
      }
    }
    expect(out.error_summary).toHaveLength(jsonFixture.error_summary.length);
    out.error_summary.forEach((entry: Json, i: number) => {
      expect(Object.keys(entry)).toEqual(Object.keys(jsonFixture.error_summary[i]));
      expect(Object.keys(entry.error_details)).toEqual(Object.keys(jsonFixture.error_summary[i].error_details));
    });
  });

  it("copies every statistic from the metrics document and leaves out p999, which AIPerf has no field for", () => {
    const r = results();
    const out = toAiperfJson(r) as Json;
    for (const [tag, metric] of Object.entries(r.metrics) as [MetricTag, Json][]) {
      const exported = out[tag] as Json;
      // A metric with no value (goodput without limits) is left out, as AIPerf leaves it out.
      if (metric.avg === null && !metric.count) {
        expect(exported, tag).toBeUndefined();
        continue;
      }
      expect(exported.unit).toBe(metric.unit);
      for (const [field, value] of Object.entries(exported)) expect(value, `${tag}.${field}`).toBe(metric[field]);
      expect(exported).not.toHaveProperty("p999");
    }
    expect(out.request_latency).toMatchObject({ min: 1000, max: 2000, count: 3, sum: 4500, avg: 1500 });
    expect(out.output_sequence_length).toMatchObject({ min: 1, max: 17, count: 3, sum: 23 });
    expect(out.inter_token_latency).toMatchObject({ min: 100, max: 200, count: 2 });
    expect(out.request_throughput).toEqual({ unit: "requests/sec", avg: 0.3 });
    expect(out.output_token_throughput).toEqual({ unit: "tokens/sec", avg: 2.3 });
    expect(out.total_token_throughput).toEqual({ unit: "tokens/sec", avg: 47.3 });
    expect(out.time_to_second_token).toMatchObject({ min: 20, max: 30, count: 2, sum: 50 });
    expect(out.reasoning_token_count).toMatchObject({ min: 2, max: 8, count: 2, sum: 10 });
    expect(out.request_error_rate).toEqual({ unit: "%", avg: 40 });
    expect(out.benchmark_duration).toEqual({ unit: "sec", avg: 10 });
  });

  it("takes input_config from the public spec only, so API keys, header values and URL secrets never appear", () => {
    // Fields a snapshot might carry beside the contract must not leak either.
    const r = Object.assign(results(), { readToken: "SECRET-READ-TOKEN", agentToken: "SECRET-AGENT-TOKEN" });
    const out = toAiperfJson(r);
    const text = JSON.stringify(out);
    expect(text).not.toContain("SECRET");
    expect(out.input_config).toEqual(r.spec);
    expect(out.input_config).toMatchObject({ target: { hasApiKey: true, headers: { "x-api-token": "REDACTED" } } });
    // A copy: whoever changes the export cannot change the results document.
    (out.input_config as Json).target.model = "changed";
    expect((r.spec as Json).target.model).toBe("m");
  });

  it("reports was_cancelled as true for a cancelled run and false for a running or complete one", () => {
    expect(toAiperfJson(results({ status: "cancelled", outcome: "stopped" })).was_cancelled).toBe(true);
    expect(toAiperfJson(results({ status: "complete" })).was_cancelled).toBe(false);
    expect(toAiperfJson(results({ status: "running", phase: "running", completedAt: null })).was_cancelled).toBe(false);
  });

  it("reads the way a script written for AIPerf's file reads it", () => {
    const r = results();
    const data = JSON.parse(JSON.stringify(toAiperfJson(r))) as Json;
    expect(data["request_latency"]["p99"]).toBe((r.metrics.request_latency as DistributionMetric).p99);
    expect(data["request_latency"]["p99"]).toBeGreaterThanOrEqual(data["request_latency"]["p50"]);
    expect(data["request_latency"]["unit"]).toBe("ms");
    expect(data["time_to_first_token"]["avg"]).toBe(300);
    expect(data["inter_token_latency"]["avg"]).toBe(150);
    expect(data["request_throughput"]["avg"]).toBeCloseTo(0.3, 12);
    expect(data["output_token_throughput_per_user"]["max"]).toBe(10);
    const errors = (data["error_summary"] as Json[]).reduce((n, e) => n + e["count"], 0);
    expect(errors).toBe(data["error_request_count"]["avg"]);
    // datetime.fromisoformat (every Python AIPerf supports) takes this form; "Z" it does not before 3.11.
    expect(data["start_time"]).toBe("2026-01-05T12:00:00.000+00:00");
    expect(data["end_time"]).toBe("2026-01-05T12:00:10.000+00:00");
    expect(data["schema_version"]).toBe("1.1");
    expect(data["benchmark_id"]).toBe("0f3c2a9e5b7d4c1a8e6f0b2d4c6a8e0f");
  });

  it("summarizes errors in AIPerf's shape, with an HTTP status as the numeric code and our code as the message", () => {
    expect(toAiperfJson(results()).error_summary).toEqual([
      { error_details: { code: 500, type: "HTTPError", message: "http_500" }, count: 1 },
      { error_details: { code: null, type: "TimeoutError", message: "timeout" }, count: 1 },
    ]);
  });

  it("ends a running run at the snapshot's time and leaves out a start that has not happened yet", () => {
    const running = toAiperfJson(results({ status: "running", phase: "running", completedAt: null, serverTime: iso(STARTED + 4000) }));
    expect(running.end_time).toBe("2026-01-05T12:00:04.000+00:00");
    const created = toAiperfJson(results({ status: "running", phase: "created", startedAt: null, completedAt: null }));
    expect(created).not.toHaveProperty("start_time");
  });

  it("still produces valid JSON for a run with no requests, leaving out the metrics that have no value", () => {
    const out = toAiperfJson(results({ errors: [] }, RunMetrics.empty(), 0));
    expect(Object.keys(out)).toEqual([
      "schema_version",
      "benchmark_id",
      "request_count",
      "error_request_count",
      "input_config",
      "was_cancelled",
      "error_summary",
      "start_time",
      "end_time",
    ]);
    expect(JSON.parse(JSON.stringify(out))).toEqual(out);
    expect(out.request_count).toEqual({ unit: "requests", avg: 0 });
    expect(out.error_summary).toEqual([]);
  });
});

describe("the AIPerf CSV export", () => {
  it("has AIPerf's two sections with the fixture's headers and metric names, sorted by tag", () => {
    const got = sections(toAiperfCsv(results()));
    const want = sections(csvFixture);
    expect(got).toHaveLength(2);
    expect(got.map((s) => s[0])).toEqual(want.map((s) => s[0]));
    expect(got.map((s) => s.slice(1).map((row) => row[0]))).toEqual(want.map((s) => s.slice(1).map((row) => row[0])));
    expect(got[0]![0]).toEqual(["Metric", "avg", "min", "max", "sum", "p1", "p5", "p10", "p25", "p50", "p75", "p90", "p95", "p99", "std"]);
    expect(got[1]![0]).toEqual(["Metric", "Value"]);
  });

  it("writes the metrics document's numbers with two decimals, and whole token counts without", () => {
    const r = results();
    const [distributions, singles] = sections(toAiperfCsv(r)) as [string[][], string[][]];
    const header = distributions[0]!;
    for (const row of distributions.slice(1)) {
      const tag = TAG_BY_NAME.get(row[0]!)!;
      const metric = r.metrics[tag] as Json;
      header.slice(1).forEach((stat, i) => {
        const cell = row[i + 1]!;
        const tokens = ["input_sequence_length", "output_sequence_length", "reasoning_token_count"].includes(tag);
        const whole = tokens && ["min", "max", "sum"].includes(stat);
        expect(cell, `${tag}.${stat}`).toMatch(whole ? /^\d+$/ : /^\d+\.\d\d$/);
        expect(Math.abs(Number(cell) - metric[stat]), `${tag}.${stat}`).toBeLessThanOrEqual(0.005 + 1e-9);
      });
    }
    for (const [name, value] of singles.slice(1)) {
      expect(value, name).toBe((r.metrics[TAG_BY_NAME.get(name!)!] as ScalarMetric).avg!.toFixed(2));
    }
    const byName = new Map([...distributions, ...singles].map((row) => [row[0], row]));
    expect(byName.get("Request Latency (ms)")!.slice(1, 5)).toEqual(["1500.00", "1000.00", "2000.00", "4500.00"]);
    expect(byName.get("Output Sequence Length (tokens)")!.slice(2, 5)).toEqual(["1", "17", "23"]);
    expect(byName.get("Request Count")![1]).toBe("3.00");
    expect(byName.get("Request Error Rate (%)")![1]).toBe("40.00");
    expect(byName.get("Request Throughput (requests/sec)")![1]).toBe("0.30");
  });

  it("rounds exact halves to even, as Python's two-decimal format does", () => {
    const doc = handDocument({
      request_latency: { count: 1, avg: 0.125, min: 0.375, max: 2.675, sum: 0.625, p50: 1.005, p99: -0.125, std: 1e21 },
      request_throughput: { unit: "requests/sec", avg: 12.5 },
    });
    const rows = parseCsv(toAiperfCsv(results({ metrics: doc, errors: [] })));
    const latency = rows.find((row) => row[0] === "Request Latency (ms)")!;
    const cell = (stat: string) => latency[rows[0]!.indexOf(stat)];
    expect([cell("avg"), cell("min"), cell("max"), cell("sum"), cell("p50"), cell("p99")]).toEqual([
      "0.12",
      "0.38",
      "2.67",
      "0.62",
      "1.00",
      "-0.12",
    ]);
    expect(cell("std")).toBe("1000000000000000000000.00");
    expect(cell("p1")).toBe("");
    expect(rows.find((row) => row[0] === "Request Throughput (requests/sec)")![1]).toBe("12.50");
  });

  it("quotes a field holding a comma or a quote, as Python's csv module does", () => {
    const doc = handDocument({ input_sequence_length: { unit: 'tokens, "raw"', count: 1, avg: 2, min: 2, max: 2, sum: 2, p50: 2 } });
    const text = toAiperfCsv(results({ metrics: doc, errors: [] }));
    expect(text).toContain('\n"Input Sequence Length (tokens, ""raw"")",2.00,2,2,2,');
    expect(parseCsv(text)[1]![0]).toBe('Input Sequence Length (tokens, "raw")');
  });

  it("ends every line with a line feed and never writes a carriage return", () => {
    const text = toAiperfCsv(results());
    expect(text.endsWith("\n")).toBe(true);
    expect(text).not.toContain("\r");
    expect(text).toContain("\n\nMetric,Value\n");
  });

  it("still produces a valid CSV for a run with no requests", () => {
    const text = toAiperfCsv(results({ errors: [] }, RunMetrics.empty(), 0));
    expect(text).toBe("Metric,Value\nError Request Count,0.00\nRequest Count,0.00\n");
    expect(sections(text)).toEqual([
      [
        ["Metric", "Value"],
        ["Error Request Count", "0.00"],
        ["Request Count", "0.00"],
      ],
    ]);
  });
});
