// What the CLI prints from server and agent text: control characters come out as visible
// escapes, never raw, in the results table and summary, the status and drain views, the
// progress line, error lines and JSON. And the results' warnings, with their verdict.
// Pure functions: no server.
import { describe, expect, it } from "vitest";
import { describeDrain, describeRun } from "../../cli/admin.ts";
import { suggest } from "../../cli/args.ts";
import { oneLine } from "../../cli/errors.ts";
import { terminalJson, visible, visibleLines } from "../../cli/escape.ts";
import { resultsJUnit, resultsMarkdown } from "../../cli/ci.ts";
import { progressLine } from "../../cli/progress.ts";
import { dashboardLifetime, renderResults, verdict } from "../../cli/table.ts";
import type { Results, Snapshot } from "../../cli/types.ts";

const ESC = "\x1b";
const BEL = "\x07";
const CLEAR = `${ESC}[2J`;
const TITLE = `${ESC}]0;title${BEL}`;
const RLO = "\u202e"; // right-to-left override
/** A newline, then a green PASS line that is not one. */
const FAKE_PASS = `\n${ESC}[32m  PASS  request_latency.p99<1${ESC}[0m`;

/** Anything a terminal would act on, or that reorders or breaks a line. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

function snapshot(overrides: Partial<Snapshot> = {}): Snapshot {
  return {
    id: `run${TITLE}`,
    phase: "complete",
    status: "cancelled",
    outcome: "stopped",
    stopReason: "service_drain",
    partial: true,
    counts: { granted: 3, returned: 0, completed: 0, failed: 0, abandoned: 3, outstanding: 0 },
    agents: [
      { agentId: "a1", name: `evil${CLEAR}`, region: `weur${RLO}rab`, alive: true, outstanding: 0, inflight: 0, concurrency: 4 },
      { agentId: `id${FAKE_PASS}`, name: null, region: null, alive: false, outstanding: 0, inflight: 0, concurrency: 0 },
    ],
    startedAt: "2026-01-01T00:00:00.000Z",
    completedAt: `2026-01-01T00:00:01.000Z${CLEAR}`,
    wipeAt: null,
    ...overrides,
  };
}

function results(overrides: Partial<Results> = {}): Results {
  return {
    ...snapshot(),
    final: true,
    spec: { target: { url: "builtin:mock" } },
    metrics: { request_latency: { unit: `ms${CLEAR}`, avg: 1, min: 1, max: 1, std: 0, count: 1, p50: 1, p90: 1, p99: 1 } },
    errors: [{ code: `http_500${TITLE}`, type: `server${FAKE_PASS}`, count: 2 }],
    thresholds: [{ expr: `request_latency.p99<1${FAKE_PASS}`, ok: false, value: 5 }],
    warnings: [{ code: `odd${RLO}`, message: `hello${CLEAR}` }],
    ...overrides,
  };
}

describe("visible()", () => {
  it("escapes ESC [2J, ESC ]0;title BEL, a bidi override, newlines, DEL, C1, U+2028 and isolates, and leaves other text alone", () => {
    expect(visible(CLEAR)).toBe("\\x1b[2J");
    expect(visible(TITLE)).toBe("\\x1b]0;title\\x07");
    expect(visible(`abc${RLO}def`)).toBe("abc\\u202edef");
    expect(visible("a\nb\tc\rd\u007f\u009b\u2028\u2066")).toBe("a\\x0ab\\x09c\\x0dd\\x7f\\x9b\\u2028\\u2066");
    expect(visible("naïve café → 東京 ✓ │")).toBe("naïve café → 東京 ✓ │");
    expect(visible(42)).toBe("42");
  });

  it("keeps the CLI's own newlines in visibleLines(), and nothing else", () => {
    expect(visibleLines(`line one\nline ${CLEAR}two`)).toBe("line one\nline \\x1b[2Jtwo");
  });

  it("leaves JSON meaning the same: terminalJson() escapes inside strings what JSON.stringify leaves raw", () => {
    const value = { name: `x${CLEAR}${RLO}\u0085\u2028` };
    const json = terminalJson(JSON.stringify(value));
    expect(json).not.toMatch(RAW_CONTROL);
    expect(JSON.parse(json)).toEqual(value);
  });
});

describe("the rendered output", () => {
  it("the results table and summary show every server string escaped, so nothing fakes a PASS line", () => {
    const text = renderResults(results(), `https://x.test/runs/1#token=${TITLE}`);
    expect(text.split("\n").every((line) => !RAW_CONTROL.test(line))).toBe(true);
    expect(text).toContain("Run run\\x1b]0;title\\x07: cancelled (stopped), partial");
    expect(text).toContain("Request Latency (ms\\x1b[2J)");
    expect(text).toContain("Errors: http_500\\x1b]0;title\\x07 (server\\x0a\\x1b[32m  PASS  request_latency.p99<1\\x1b[0m) × 2");
    expect(text).toContain("  FAIL  request_latency.p99<1\\x0a\\x1b[32m  PASS");
    expect(text).toContain("Warning: hello\\x1b[2J (odd\\u202e)");
    expect(text).toContain("Dashboard: https://x.test/runs/1#token=\\x1b]0;title\\x07");
    // The only PASS/FAIL lines are the CLI's own: one FAIL, no PASS line at all.
    expect(text.split("\n").filter((l) => /^\s*(PASS|FAIL)\b/.test(l))).toHaveLength(1);
  });

  it("edgeperf status shows agent names, regions, ids and times escaped", () => {
    const text = describeRun(snapshot());
    expect(text).not.toMatch(RAW_CONTROL);
    expect(text).toContain("Run run\\x1b]0;title\\x07: cancelled (phase complete, outcome stopped, stopped by service_drain, partial)");
    expect(text).toContain("evil\\x1b[2J@weur\\u202erab 0/4");
    expect(text).toContain("id\\x0a\\x1b[32m  PASS");
    expect(text).toContain("completed 2026-01-01T00:00:01.000Z\\x1b[2J");
  });

  it("the drain view and the progress line show run ids and phases escaped", () => {
    const drain = describeDrain({ phase: "draining", activeRuns: 1, deadline: null, activeRunIds: [`r${CLEAR}`] });
    expect(drain).not.toMatch(RAW_CONTROL);
    expect(drain).toContain("  r\\x1b[2J");
    const line = progressLine({
      snapshot: snapshot({ phase: `running${CLEAR}` as Snapshot["phase"] }),
      spec: null,
      rate: null,
      bar: false,
    });
    expect(line).not.toMatch(RAW_CONTROL);
    expect(line).toMatch(/^running\\x1b\[2J/);
  });

  it("an error line quoting the server shows its control characters escaped, on one line", () => {
    expect(oneLine(`HTTP 500 oops: ${TITLE}${RLO}\nnext`)).toBe("HTTP 500 oops: \\x1b]0;title\\x07\\u202e next");
  });
});

describe("warnings in the results", () => {
  it("are printed under the table, and all_requests_failed makes the verdict exit 1", () => {
    const failed = results({
      status: "complete",
      outcome: "completed",
      partial: false,
      thresholds: [],
      warnings: [{ code: "all_requests_failed", message: "No measured request succeeded: 6 failed, 0 abandoned." }],
    });
    expect(renderResults(failed)).toContain("Warning: No measured request succeeded: 6 failed, 0 abandoned. (all_requests_failed)");
    expect(verdict(failed)).toEqual({
      exitCode: 1,
      reasons: ["No measured request succeeded: 6 failed, 0 abandoned. (all_requests_failed)"],
    });
  });

  it("other warnings are printed but do not fail the run, and a server without warnings is fine", () => {
    const fine = results({
      status: "complete",
      outcome: "completed",
      partial: false,
      thresholds: [],
      warnings: [{ code: "generator_bound", message: "m" }],
    });
    expect(renderResults(fine)).toContain("Warning: m (generator_bound)");
    expect(verdict(fine).exitCode).toBe(0);
    const { warnings: _none, ...old } = fine;
    expect(verdict(old as Results).exitCode).toBe(0);
    expect(renderResults(old as Results)).not.toContain("Warning");
  });
});

describe("the files for CI", () => {
  it("JUnit XML and the Markdown summary show server strings with controls escaped, and cannot be broken out of", () => {
    const r = results({ thresholds: [{ expr: `a<1</testcase>${FAKE_PASS}|x`, ok: false, value: 5 }] });
    const xml = resultsJUnit(r);
    expect(xml).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e]/);
    expect(xml).toContain('name="a&lt;1&lt;/testcase&gt;\\x0a\\x1b[32m  PASS');
    expect(xml.match(/<testcase /g)).toHaveLength(2);
    const md = resultsMarkdown(r);
    expect(md).not.toMatch(RAW_CONTROL);
    // A "|" from the server cannot add a table column; the expression stays one code span.
    expect(md).toContain("- ❌ FAIL `a<1</testcase>\\x0a\\x1b[32m  PASS  request_latency.p99<1\\x1b[0m|x` (value 5.00)");
    // Escaped for Markdown too: "\\x1b\\[2J" shows as \x1b[2J.
    expect(md).toContain("- ⚠️ hello\\\\x1b\\[2J (`odd\\u202e`)");
  });
});

describe("what the CLI says about a run", () => {
  const clean = { status: "complete" as const, outcome: "completed" as const, partial: false, errors: [], thresholds: [], warnings: [] };

  it("the progress line tells failed requests from abandoned credits, as the summary does (a force stop abandons; nothing failed)", () => {
    const forced = snapshot({
      phase: "draining",
      counts: { granted: 40, returned: 0, completed: 30, failed: 0, abandoned: 4, outstanding: 6 },
    });
    const line = progressLine({ snapshot: forced, spec: { stop: { requests: 100 } }, rate: null, bar: false });
    expect(line).toContain("failed 0  abandoned 4");
    expect(line).not.toContain("errors");
    const text = renderResults(results({ ...clean, counts: forced.counts }));
    expect(text).toContain("Requests: 30 completed, 0 failed, 4 abandoned");
    // Nothing abandoned: not mentioned.
    const running = snapshot({ phase: "running", counts: { ...forced.counts, abandoned: 0 } });
    expect(progressLine({ snapshot: running, spec: null, rate: null, bar: false })).not.toContain("abandoned");
  });

  it("prints the delivered load under the table in one line: mean concurrency of its target, achieved rate, schedule lag", () => {
    const closed = results({
      ...clean,
      delivered: { concurrency: { target: 8, mean: 7.96 }, rate: { target: null, achieved: 52.1 }, scheduleLagMs: null },
    });
    expect(renderResults(closed)).toMatch(
      /^Delivered: concurrency 7\.96 of 8 \(mean in flight\) · rate 52\.10 req\/s achieved · no schedule lag \(closed loop\)$/m,
    );
    const open = results({
      ...clean,
      delivered: { concurrency: { target: null, mean: 3.2 }, rate: { target: 50, achieved: 49.8 }, scheduleLagMs: { p50: 0.8, p99: 4.1 } },
    });
    expect(renderResults(open)).toContain(
      "Delivered: concurrency 3.20 (mean in flight) · rate 49.80 of 50 req/s achieved · schedule lag p50 0.80 ms, p99 4.10 ms",
    );
  });

  it("leaves out of the table the rows that do not apply: an HTTP run has no token throughput", () => {
    const http = results({
      ...clean,
      spec: { target: { url: "https://api.example.com/x", api: "http" } },
      metrics: {
        request_latency: { unit: "ms", avg: 12, min: 10, max: 30, std: 2, count: 10, p50: 11, p90: 14, p99: 29 },
        time_to_first_token: { unit: "ms", avg: null, min: null, max: null, std: null, count: 0, p50: null, p90: null, p99: null },
        output_token_throughput: { unit: "tokens/sec", avg: null },
        request_throughput: { unit: "requests/sec", avg: 80 },
      },
    });
    const text = renderResults(http);
    expect(text).toContain("edgeperf | HTTP Metrics");
    expect(text).toContain("Request Latency (ms)");
    expect(text).toContain("Request Throughput (requests/sec)");
    expect(text).not.toContain("Output Token Throughput");
    expect(text).not.toContain("Time to First Token");
  });

  it("says how long the dashboard link works: until the wipe at the end of the grace window", () => {
    const at = (s: string) => new Date(s).toLocaleTimeString("en-GB", { hour12: false });
    const done = results({ ...clean, serverTime: "2026-01-01T00:00:10.000Z", wipeAt: "2026-01-01T00:00:40.000Z" });
    const text = renderResults(done, "https://x.test/runs/1#token=epr_x");
    expect(text).toContain(
      `Dashboard: https://x.test/runs/1#token=epr_x\n  (works until ${at("2026-01-01T00:00:40.000Z")}, in 30 s: then the run's grace window ends and the server wipes it)`,
    );
    expect(dashboardLifetime({ ...done, serverTime: "2026-01-01T00:00:41.000Z" })).toBe(
      `(no longer works: the run was wiped at ${at("2026-01-01T00:00:40.000Z")}, when its grace window ended)`,
    );
    const live = results({ ...clean, final: false, phase: "running", wipeAt: null, spec: { graceSeconds: 30 } });
    expect(dashboardLifetime(live)).toBe(
      "(works while the run goes on and for its grace window (30 s) after it ends; then the run is wiped and the link stops working)",
    );
  });
});

describe("suggestions for mistyped flags and commands", () => {
  it("names the flag or command meant, and nothing when nothing is close", () => {
    const flags = ["concurrency", "request-count", "request-rate", "timeout", "json", "url"];
    expect(suggest("concurency", flags)).toBe("concurrency");
    expect(suggest("timout", flags)).toBe("timeout");
    expect(suggest("jsno", flags)).toBe("json");
    expect(suggest("request-c", flags)).toBe("request-count");
    expect(suggest("request", flags)).toBeNull(); // it begins two of them
    expect(suggest("nope", flags)).toBeNull();
    expect(suggest("rnu", ["run", "status", "drain"])).toBe("run");
  });
});

describe("the per-region table", () => {
  const region = (p50: number, p99: number, completed: number) => ({
    agents: 1,
    counts: { completed, failed: 0, abandoned: 0 },
    metrics: {
      time_to_first_token: { unit: "ms", avg: p50, p50, p99, count: completed },
      request_latency: { unit: "ms", avg: p50 * 3, p50: p50 * 3, p99: p99 * 3, count: completed },
      request_error_rate: { unit: "%", avg: 0 },
    },
  });

  it("prints a row a region, escaped, after the main table, and nothing for a run in one region", async () => {
    const { regionsTable } = await import("../../cli/table.ts");
    const base = { metrics: {}, counts: {}, thresholds: [], errors: [] } as never as Parameters<typeof regionsTable>[0];
    const two = regionsTable({ ...base, regions: { weur: region(40, 60, 10), "ap\u001b[2J": region(140, 220, 12) } });
    expect(two).not.toBeNull();
    const lines = two!.split("\n");
    expect(
      lines.some((l) => /│\s+weur\s+│\s+1\s+│\s+10\s+│\s+40\.00\s+│\s+60\.00\s+│\s+120\.00\s+│\s+180\.00\s+│\s+0\.00\s+│/.test(l)),
    ).toBe(true);
    expect(two).toContain("ap\\x1b[2J");
    expect(two).not.toContain("\u001b");
    expect(regionsTable({ ...base, regions: { local: region(40, 60, 10) } })).toBeNull();
  });
});
