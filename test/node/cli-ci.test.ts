// The CLI in a CI job: `edgeperf compare` on two results.json files (no server), and
// `--junit` / `--summary` on a run's results; plus server messages that name the flag a
// user typed. The bundled CLI as a subprocess.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { edgeperf, lines } from "./cli-process.ts";
import { DEV_API_TOKEN, api, e2eServer, tempDir } from "./dev-server.ts";
import { createRun, drive } from "./drive.ts";

const tmp = () => tempDir("edgeperf-ci-");

const dist = (unit: string, p50: number, count = 100) => ({
  unit,
  avg: p50 * 1.1,
  min: p50 / 2,
  max: p50 * 3,
  sum: p50 * 1.1 * count,
  std: p50 / 5,
  count,
  p1: p50 / 2,
  p5: p50 / 2,
  p10: p50 * 0.6,
  p25: p50 * 0.8,
  p50,
  p75: p50 * 1.2,
  p90: p50 * 1.5,
  p95: p50 * 1.8,
  p99: p50 * 2,
  p999: p50 * 2.5,
});

/** A results.json as `--out DIR` writes it, with the numbers that matter here. */
function resultsJson(id: string, o: { ttft: number; latency: number; throughput: number; errors: number }) {
  return {
    id,
    final: true,
    phase: "complete",
    status: "complete",
    metrics: {
      time_to_first_token: dist("ms", o.ttft),
      request_latency: dist("ms", o.latency),
      inter_token_latency: { ...dist("ms", 0), count: 0, avg: null, p50: null, p90: null, p99: null },
      output_sequence_length: dist("tokens", 128),
      request_throughput: { unit: "requests/sec", avg: o.throughput },
      output_token_throughput: { unit: "tokens/sec", avg: null },
      error_request_count: { unit: "requests", avg: o.errors },
    },
  };
}

function files(base: object, next: object): { dir: string; base: string; next: string } {
  const dir = tmp();
  writeFileSync(join(dir, "base.json"), JSON.stringify(base));
  writeFileSync(join(dir, "new.json"), JSON.stringify(next));
  return { dir, base: join(dir, "base.json"), next: join(dir, "new.json") };
}

const BASE = resultsJson("a".repeat(64), { ttft: 40, latency: 200, throughput: 50, errors: 4 });
// TTFT 25 % slower, latency 5 % slower, throughput 10 % lower, fewer errors.
const NEW = resultsJson("b".repeat(64), { ttft: 50, latency: 210, throughput: 45, errors: 2 });

/** The table row of a metric and statistic, as cells. */
const row = (stdout: string, header: string, stat: string) =>
  stdout
    .split("\n")
    .find((l) => l.includes(header) && l.split("│")[2]?.trim() === stat)
    ?.split("│")
    .slice(1, -1)
    .map((c) => c.trim());

describe("edgeperf compare", () => {
  it("prints the change of every catalog metric present in either file, marked better or worse by the catalog, and exits 0 without --fail-on", async () => {
    const f = files(BASE, NEW);
    const r = await edgeperf(["compare", f.base, f.next]);
    expect(r.code, r.stderr).toBe(0);
    expect(row(r.stdout, "Time to First Token (ms)", "p99")).toEqual([
      "Time to First Token (ms)",
      "p99",
      "80.00",
      "100.00",
      "+20.00",
      "+25.0%",
      "worse",
    ]);
    expect(row(r.stdout, "Request Latency (ms)", "p50")).toEqual([
      "Request Latency (ms)",
      "p50",
      "200.00",
      "210.00",
      "+10.00",
      "+5.0%",
      "worse",
    ]);
    expect(row(r.stdout, "Request Throughput (requests/sec)", "avg")).toEqual([
      "Request Throughput (requests/sec)",
      "avg",
      "50.00",
      "45.00",
      "-5.00",
      "-10.0%",
      "worse",
    ]);
    expect(row(r.stdout, "Error Request Count (requests)", "avg")?.at(-1)).toBe("better");
    // Lengths are neither better nor worse, and what neither file has is left out.
    expect(row(r.stdout, "Output Sequence Length (tokens)", "p50")?.at(-1)).toBe("");
    expect(r.stdout).not.toContain("Inter Token Latency");
    expect(r.stdout).not.toContain("Output Token Throughput (");
  });

  it("exits 1 naming each --fail-on whose change is crossed, and passes the ones that are not", async () => {
    const f = files(BASE, NEW);
    const r = await edgeperf([
      "compare",
      f.base,
      f.next,
      "--fail-on",
      "time_to_first_token.p99>+10%",
      "--fail-on",
      "request_latency.p50>+20",
      "--fail-on",
      "request_throughput<-5%",
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL {2}time_to_first_token\.p99>\+10% {2}\(\+25\.0%: 80\.00 → 100\.00 ms\)/);
    expect(r.stdout).toMatch(/PASS {2}request_latency\.p50>\+20 {2}\(\+10\.00 ms: 200\.00 → 210\.00 ms\)/);
    expect(r.stdout).toMatch(/FAIL {2}request_throughput<-5% {2}\(-10\.0%/);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/^edgeperf: exit 1: time_to_first_token\.p99>\+10% \(.*\); request_throughput<-5% \(/);

    const pass = await edgeperf(["compare", f.base, f.next, "--fail-on", "time_to_first_token.p99>+30%", "--fail-on", "request_count>+1"]);
    // request_count is in neither file: a check that cannot be made fails rather than passing unseen.
    expect(pass.code).toBe(1);
    expect(pass.stdout).toMatch(/PASS {2}time_to_first_token\.p99>\+30%/);
    expect(pass.stdout).toContain("FAIL  request_count>+1  (cannot be checked: request_count.avg has no value in BASE and NEW)");
    expect((await edgeperf(["compare", f.base, f.next, "--fail-on", "time_to_first_token.p99>+30%"])).code).toBe(0);
  });

  it("refuses a malformed --fail-on as a usage error that names it (exit 2), before reading any file", async () => {
    for (const [expr, says] of [
      ["time_to_first_token.p99>10%", "is not <tag>[.<stat>]<op><sign><number>[%]"],
      ["time_to_first_token.p99>=+10%", "is not <tag>[.<stat>]<op><sign><number>[%]"],
      ["time_to_frist_token.p99>+10%", 'unknown metric "time_to_frist_token"; did you mean time_to_first_token?'],
      ["time_to_first_token.p42>+10%", 'unknown statistic "p42"'],
      ["request_throughput.p99<-5%", "request_throughput is a single value"],
    ] as const) {
      const r = await edgeperf(["compare", "/nonexistent/base.json", "/nonexistent/new.json", "--fail-on", expr]);
      expect(r.code, expr).toBe(2);
      expect(lines(r.stderr), expr).toHaveLength(1);
      expect(r.stderr, expr).toContain(`edgeperf: --fail-on "${expr}"`);
      expect(r.stderr, expr).toContain(says);
    }
    const missing = await edgeperf(["compare", "/nonexistent/base.json", "/nonexistent/new.json"]);
    expect(missing.code).toBe(2);
    expect(lines(missing.stderr)).toEqual(["edgeperf: cannot read BASE /nonexistent/base.json: no such file"]);
    const f = files(BASE, { hello: "world" });
    const notResults = await edgeperf(["compare", f.base, f.next]);
    expect(notResults.code).toBe(2);
    expect(notResults.stderr).toContain(`NEW ${f.next} is not a results.json`);
  });

  it("appends its table and verdict to --summary as Markdown, once per call, and writes each --fail-on as a JUnit test case", async () => {
    const f = files(BASE, NEW);
    const summary = join(f.dir, "step-summary.md");
    writeFileSync(summary, "# Earlier step\n\n");
    const junit = join(f.dir, "junit.xml");
    const args = ["compare", f.base, f.next, "--summary", summary, "--junit", junit];
    const r = await edgeperf([...args, "--fail-on", "time_to_first_token.p99>+10%", "--fail-on", "request_latency.p50>+20"]);
    expect(r.code).toBe(1);
    expect((await edgeperf([...args])).code).toBe(0);

    const md = readFileSync(summary, "utf8");
    expect(md.startsWith("# Earlier step\n\n### edgeperf compare: `aaaaaaaaaaaa` → `bbbbbbbbbbbb`: ❌ fail\n")).toBe(true);
    expect(md).toContain("| Time to First Token (ms) | p99 | 80.00 | 100.00 | +20.00 | +25.0% | 🔺 worse |");
    expect(md).toContain("- ❌ FAIL `time_to_first_token.p99>+10%` (+25.0%: 80.00 → 100.00 ms)");
    expect(md).toContain("**Verdict:** fail: time\\_to\\_first\\_token.p99>+10%");
    // The second call added its own section: pass.
    expect(md.match(/^### edgeperf compare/gm)).toHaveLength(2);
    expect(md.trimEnd().endsWith("**Verdict:** pass")).toBe(true);

    // The JUnit file is the last call's: no --fail-on, no cases.
    expect(readFileSync(junit, "utf8")).toContain('<testsuite name="edgeperf compare" tests="0" failures="0"');
    await edgeperf([...args, "--fail-on", "time_to_first_token.p99>+10%", "--fail-on", "request_latency.p50>+20"]);
    const xml = readFileSync(junit, "utf8");
    expect(xml).toContain('<testsuite name="edgeperf compare" tests="2" failures="1"');
    expect(xml).toContain('<testcase classname="edgeperf compare" name="time_to_first_token.p99&gt;+10%">');
    expect(xml).toContain('<failure message="time_to_first_token.p99&gt;+10%: +25.0%: 80.00 → 100.00 ms">');
    expect(xml).toContain('<testcase classname="edgeperf compare" name="request_latency.p50&gt;+20"/>');
  });
});

describe("a run's results for CI, and flags in server messages", () => {
  const server = e2eServer();
  beforeAll(() => server.start());
  afterAll(() => server.dispose());

  it("results --junit writes a test case per threshold (a failed one fails) and one for the run, with warnings as system-out; --summary appends the table, thresholds, warnings and verdict", async () => {
    const run = await createRun(server.url, {
      target: { url: "builtin:mock", stream: true },
      load: { concurrency: 4 },
      stop: { requests: 24 },
      graceSeconds: 60,
      thresholds: { "time_to_first_token.p99": "<500", "request_latency.p50": "<1" },
    });
    // Slowly: the run falls short of its concurrency, and gets the generator_bound warning.
    await drive(server.url, run, { concurrency: 4, pauseMs: 150 });
    const dir = tmp();
    const junit = join(dir, "reports", "edgeperf.xml");
    const summary = join(dir, "summary.md");
    const r = await edgeperf(["results", run.id, "--server", server.url, "--token", run.readToken, "--junit", junit, "--summary", summary]);
    expect(r.code).toBe(1);
    const results = (await api(server.url, "GET", `/v1/runs/${run.id}/results`, run.readToken)).body;

    const xml = readFileSync(junit, "utf8");
    expect(xml).toContain('<testsuite name="edgeperf run ' + run.id.slice(0, 12) + '" tests="3" failures="1" errors="0">');
    expect(xml).toMatch(/<testcase classname="[^"]+" name="time_to_first_token\.p99&lt;500"\/>/);
    expect(xml).toMatch(
      /<testcase classname="[^"]+" name="request_latency\.p50&lt;1">\n\s+<failure message="request_latency\.p50&lt;1 failed: value [\d.,]+">/,
    );
    expect(xml).toMatch(/<testcase classname="[^"]+" name="run completed"\/>/);
    // The warning is system-out.
    expect(results.warnings.map((w: { code: string }) => w.code)).toContain("generator_bound");
    expect(xml).toMatch(/<system-out>Warning: .*\(generator_bound\)\nDelivered: concurrency [\d.]+ of 4/);

    const md = readFileSync(summary, "utf8");
    expect(md).toContain(`### edgeperf run \`${run.id.slice(0, 12)}\`: complete (completed): ❌ fail`);
    expect(md).toMatch(/\| Request Latency \(ms\) \| [\d.,]+ \| [\d.,]+ \| [\d.,]+ \| [\d.,]+ \| [\d.,]+ \|/);
    expect(md).toContain("- ✅ PASS `time_to_first_token.p99<500`");
    expect(md).toContain("- ❌ FAIL `request_latency.p50<1`");
    expect(md).toMatch(/- ⚠️ .*\(`generator_bound`\)/);
    expect(md).toContain("**Verdict:** fail: 1 threshold failed");
  });

  it("names the flag where a flag set the field the server refuses, and the --spec file where the file did", async () => {
    const base = ["run", "--server", server.url, "--token", DEV_API_TOKEN, "--request-count", "1"];
    const model = await edgeperf([...base, "--url", "https://api.example.com/v1/chat/completions"]);
    expect(model.code).toBe(1);
    expect(lines(model.stderr)).toEqual(['edgeperf: HTTP 400 invalid_spec: -m/--model (target.model) is required for api "openai-chat".']);

    const flag = await edgeperf([...base, "--url", "builtin:mock", "--concurrency", "0"]);
    expect(lines(flag.stderr)).toEqual(["edgeperf: HTTP 422 out_of_range: --concurrency (load.concurrency) must be an integer >= 1."]);

    const spec = join(tmp(), "spec.json");
    writeFileSync(spec, JSON.stringify({ target: { url: "builtin:mock", mock: { ttftMs: -5 } } }));
    const file = await edgeperf([...base, "--spec", spec]);
    expect(file.code).toBe(1);
    expect(lines(file.stderr)).toHaveLength(1);
    expect(file.stderr).toContain(`target.mock.ttftMs (in --spec ${spec})`);
    // The same field set by a flag over the file: the flag is named.
    const over = await edgeperf([...base, "--spec", spec, "--mock-ttft-ms=-1"]);
    expect(over.stderr).toContain("--mock-ttft-ms (target.mock.ttftMs)");
  });
});
