// `edgeperf run` making an experiment (a list in --concurrency or --request-rate, or
// --search-slo), as a user runs it: the bundled CLI as a subprocess against a real
// `wrangler dev`, each level's run worked by edge agents against builtin:mock. A search
// against the mock whose SLO fails above some level would depend on this machine's
// speed, so the searches here hold SLOs that always pass (the answer is --search-max)
// or always fail (no answer).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseFlags } from "../../cli/args.ts";
import { EXPERIMENT_FLAGS, experimentFlagNames, experimentOf } from "../../cli/experiment-args.ts";
import { experimentCsv, levelDirs } from "../../cli/experiment-files.ts";
import { SPEC_FLAGS } from "../../cli/args.ts";
import { edgeperf, lines } from "./cli-process.ts";
import { DEV_API_TOKEN, e2eServer, tempDir } from "./dev-server.ts";

const server = e2eServer();
beforeAll(() => server.start());
afterAll(() => server.dispose());

/** Streaming requests to a fast mock; mockRun's levels are 20 requests each. */
const mockBase = (...extra: string[]) => [
  "run",
  "--server",
  server.url,
  "--token",
  DEV_API_TOKEN,
  "--url",
  "builtin:mock",
  "--streaming",
  "--osl",
  "8",
  "--mock-ttft-ms",
  "5",
  "--mock-itl-ms",
  "1",
  ...extra,
];
const mockRun = (...extra: string[]) => mockBase("--request-count", "20", ...extra);

/** The body rows of the sweep table, cell by cell. */
function tableRows(stdout: string): string[][] {
  return stdout
    .split("\n")
    .filter((l) => l.startsWith("│"))
    .map((l) =>
      l
        .split("│")
        .slice(1, -1)
        .map((c) => c.trim()),
    );
}

describe("a sweep", () => {
  it("runs every level in order, prints a row per level, and with --out writes each level's run and experiment.json and experiment.csv", async () => {
    const out = tempDir("edgeperf-experiment-");
    const r = await edgeperf(mockRun("--concurrency", "1,3,2", "--out", out), { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);

    const rows = tableRows(r.stdout);
    expect(rows.map((row) => row.slice(0, 2))).toEqual([
      ["1", "complete"],
      ["3", "complete"],
      ["2", "complete"],
    ]);
    expect(r.stdout).toContain("edgeperf | Sweep over concurrency");
    expect(r.stdout).toMatch(/Experiment [0-9a-f]{64}: complete \(completed\) · sweep over concurrency · 3 of 3 levels ran/);
    expect(r.stdout).toMatch(/Dashboard: http:\/\/127\.0\.0\.1:\d+\/experiments\/[0-9a-f]{64}#token=epr_\S+/);
    // Progress: a line per level as it ends, in order.
    const ended = lines(r.stderr).filter((l) => /^Level \d of 3 · concurrency \d: /.test(l));
    expect(ended.map((l) => l.replace(/: complete · .*/, ""))).toEqual([
      "Level 1 of 3 · concurrency 1",
      "Level 2 of 3 · concurrency 3",
      "Level 3 of 3 · concurrency 2",
    ]);

    const experiment = JSON.parse(readFileSync(join(out, "experiment.json"), "utf8"));
    expect(experiment).toMatchObject({ final: true, kind: "sweep", over: "concurrency", phase: "complete", outcome: "completed" });
    expect(experiment.levels.map((l: { level: number }) => l.level)).toEqual([1, 3, 2]);
    // Each level's folder holds its own run: the run the experiment ran at that level.
    for (const [i, dir] of ["level-1", "level-3", "level-2"].entries()) {
      const level = experiment.levels[i];
      const results = JSON.parse(readFileSync(join(out, dir, "results.json"), "utf8"));
      expect(results.id, dir).toBe(level.runId);
      expect(results.spec.load.concurrency, dir).toBe(level.level);
      expect(results.counts.completed, dir).toBe(20);
      for (const file of ["report.html", "profile_export_aiperf.json", "profile_export_aiperf.csv"]) {
        expect(existsSync(join(out, dir, file)), `${dir}/${file}`).toBe(true);
      }
    }
    const csv = readFileSync(join(out, "experiment.csv"), "utf8").trim().split("\n");
    expect(csv[0]).toMatch(/^level,runId,status,outcome,ok,completed,failed,abandoned,request_throughput,output_token_throughput,/);
    expect(csv.slice(1).map((row) => row.split(",").slice(0, 6))).toEqual(
      experiment.levels.map((l: { level: number; runId: string }) => [String(l.level), l.runId, "complete", "completed", "true", "20"]),
    );
    expect(r.stdout).toContain(
      `Wrote ${join(out, "level-1")}, ${join(out, "level-3")}, ${join(out, "level-2")}, ${join(out, "experiment.json")}`,
    );
  }, 120_000);

  it("sweeps the request rate with --request-rate 20,40, --concurrency capping the requests in flight, and prints JSON with --json", async () => {
    const r = await edgeperf(mockRun("--request-rate", "20,40", "--concurrency", "4", "--json"), { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    const experiment = JSON.parse(r.stdout);
    expect(experiment).toMatchObject({ final: true, kind: "sweep", over: "rate", outcome: "completed" });
    expect(experiment.base.load).toEqual({ arrival: "constant", maxConcurrency: 4 });
    expect(experiment.levels.map((l: { level: number; status: string }) => [l.level, l.status])).toEqual([
      [20, "complete"],
      [40, "complete"],
    ]);
  }, 120_000);

  it("stops on SIGINT: the level under way drains, the others are skipped, and it exits 1", async () => {
    let sent = false;
    const r = await edgeperf(mockBase("--concurrency", "1,2,4", "--benchmark-duration", "60"), {
      timeoutMs: 90_000,
      onStderr: (text, signal) => {
        if (!sent && /Level 1 of 3 · concurrency 1 +running +\d+ done/.test(text)) {
          sent = true;
          signal("SIGINT");
        }
      },
    });
    expect(sent).toBe(true);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("Stopping gracefully");
    expect(tableRows(r.stdout).map((row) => row.slice(0, 2))).toEqual([
      ["1", "cancelled"],
      ["2", "skipped"],
      ["4", "skipped"],
    ]);
    expect(r.stdout).toMatch(/: cancelled \(stopped\) · sweep over concurrency · 1 of 3 levels ran/);
    expect(lines(r.stderr).at(-1)).toBe("edgeperf: exit 1: the experiment was stopped");
  }, 120_000);
});

describe("a capacity search", () => {
  it("answers --search-max when the SLO always holds: it doubles from --search-min, marks the best, and exits 0", async () => {
    const r = await edgeperf(mockRun("--search-slo", "time_to_first_token.p99<60000", "--search-max", "4"), { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("edgeperf | Capacity search over concurrency");
    const rows = tableRows(r.stdout);
    expect(rows.map((row) => [row[0], row[1], row.at(-1)])).toEqual([
      ["1", "complete", "PASS"],
      ["2", "complete", "PASS"],
      ["4", "complete", "PASS ◀ best"],
    ]);
    expect(r.stdout).toContain(
      "Search: highest concurrency meeting every SLO (time_to_first_token.p99<60000): 4; ended: reached_max (every level up to --search-max passed)",
    );
  }, 120_000);

  it("says no level met the SLO when even --search-min fails, and still exits 0: that is the search's answer", async () => {
    const r = await edgeperf(
      mockRun("--search-slo", "time_to_first_token.p99<0.001", "--search-slo", "request_error_rate<1", "--search-max", "8", "--json"),
      { timeoutMs: 90_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const experiment = JSON.parse(r.stdout);
    expect(experiment.search).toMatchObject({
      best: null,
      end: "min_failed",
      slo: ["time_to_first_token.p99<0.001", "request_error_rate<1"],
    });
    expect(experiment.search.tried.map((t: { level: number; ok: boolean }) => [t.level, t.ok])).toEqual([[1, false]]);

    const text = await edgeperf(mockRun("--search-slo", "time_to_first_token.p99<0.001", "--search-max", "8"), { timeoutMs: 90_000 });
    expect(text.code, text.stderr).toBe(0);
    expect(tableRows(text.stdout).map((row) => [row[0], row.at(-1)])).toEqual([["1", "FAIL"]]);
    expect(text.stdout).toContain(
      "Search: no level met every SLO (time_to_first_token.p99<0.001); ended: min_failed (even --search-min failed)",
    );
  }, 120_000);
});

describe("mistakes", () => {
  const usage: Array<[string[], string]> = [
    [["--concurrency", "1,x,4"], '--concurrency item 2 of "1,x,4" is "x": a list is numbers separated by commas'],
    [["--request-rate", "5,,20"], '--request-rate item 2 of "5,,20" is empty'],
    [["--concurrency", "1,2", "--request-rate", "3,4"], "--concurrency and --request-rate cannot both be lists"],
    [["--concurrency", "1,2", "--request-rate", "3"], "--concurrency takes a list only without --request-rate"],
    [["--search-over", "rate", "--search-max", "8"], "--search-over and --search-max need --search-slo"],
    [
      ["--search-slo", "time_to_first_token.p99<5", "--concurrency", "1,2"],
      "--search-slo makes a capacity search and a list in --concurrency a sweep",
    ],
    [["--search-slo", "ttft"], '--search-slo expects METRIC.STAT<N, e.g. "time_to_first_token.p95<200" (got "ttft")'],
    [["--search-slo", "time_to_first_token.p99<5", "--search-over", "load"], '--search-over must be concurrency or rate (got "load")'],
    [["--search-slo", "time_to_first_token.p99<5", "--concurrency", "4"], "--search-over concurrency sets the concurrency of every level"],
    [["--search-slo", "time_to_first_token.p99<5", "--search-min", "one"], '--search-min expects a number, got "one"'],
  ];

  it("a list with a bad item, --search-* without --search-slo, and flags that contradict each other are usage errors: one line naming the flag, exit 2, nothing sent", async () => {
    for (const [args, message] of usage) {
      // An unreachable server: a usage error is found before any call.
      const r = await edgeperf(["run", "--server", "http://127.0.0.1:9", "--token", "t", "--url", "builtin:mock", ...args]);
      expect(r.code, args.join(" ")).toBe(2);
      expect(lines(r.stderr), args.join(" ")).toHaveLength(1);
      expect(r.stderr, args.join(" ")).toContain(`edgeperf: ${message}`);
      expect(r.stdout).toBe("");
    }
  });

  it("run --help tells how to make a sweep and a search", async () => {
    const r = await edgeperf(["run", "--help"]);
    expect(r.code).toBe(0);
    for (const flag of [
      "--concurrency 1,2,4,8",
      "--request-rate 5,10,20",
      "--search-slo EXPR",
      "--search-over",
      "--search-min N, --search-max N",
    ]) {
      expect(r.stdout, flag).toContain(flag);
    }
  });

  it("the server's refusal names the flag and the item, and exits 1", async () => {
    const cases: Array<[string[], string]> = [
      [["--concurrency", "1,0,4"], 'edgeperf: HTTP 422 out_of_range: --concurrency item 2 ("0") must be an integer >= 1.'],
      [
        ["--search-slo", "time_to_frist_token.p99<5"],
        'edgeperf: HTTP 400 invalid_threshold: --search-slo "time_to_frist_token.p99<5": unknown metric tag',
      ],
      [
        ["--search-slo", "time_to_first_token.p99<5", "--search-min", "8", "--search-max", "4"],
        "--search-max (search.max) must be at least search.min.",
      ],
    ];
    for (const [args, message] of cases) {
      const r = await edgeperf(mockRun(...args));
      expect(r.code, args.join(" ")).toBe(1);
      expect(lines(r.stderr), args.join(" ")).toHaveLength(1);
      expect(r.stderr, args.join(" ")).toContain(message);
    }
  });
});

describe("the experiment's flags, without a server", () => {
  const parse = (argv: string[]) => parseFlags(argv, { ...SPEC_FLAGS, ...EXPERIMENT_FLAGS }, { min: 0, max: 0, names: "" }).values;

  it("builds the base as a run at the first level would have it, over a --spec file's fields, and the search's defaults", () => {
    const file = { target: { url: "builtin:mock" }, stop: { requests: 50 }, load: { concurrency: 9, rampSeconds: 5 } };
    const sweep = experimentOf(parse(["--concurrency", "2, 4,8", "--grace", "90", "--osl", "16"]), file)!;
    expect(sweep.body).toEqual({
      base: {
        target: { url: "builtin:mock" },
        stop: { requests: 50 },
        load: { concurrency: 2 },
        workload: { outputTokens: { mean: 16 } },
        graceSeconds: 90,
      },
      levels: { concurrency: [2, 4, 8] },
      graceSeconds: 90,
    });
    const search = experimentOf(
      parse(["--search-slo", "time_to_first_token.p95 < 200", "--search-over", "rate", "--concurrency", "16"]),
      file,
    )!;
    expect(search.body).toMatchObject({
      base: { load: { rate: 1, maxConcurrency: 16 } },
      search: { over: "rate", slo: ["time_to_first_token.p95<200"], min: 1, max: 256 },
    });
    expect(experimentOf(parse(["--concurrency", "8"]), file)).toBeNull();
  });

  it("names a base field by its flag, or by the --spec file that set it", () => {
    const values = parse(["--concurrency", "1,2"]);
    const req = experimentOf(values, {})!;
    expect(
      experimentFlagNames("base.workload.outputTokens.mean must be…", req, parse(["--concurrency", "1,2", "--osl", "0"]), {}, undefined),
    ).toBe("--osl (workload.outputTokens.mean) must be…");
    expect(experimentFlagNames("base.stop needs requests or durationSeconds.", req, values, {}, undefined)).toBe(
      "base.stop needs requests or durationSeconds.",
    );
    expect(experimentFlagNames("levels.concurrency must have at most 32 items.", req, values, {}, undefined)).toBe(
      "--concurrency must have at most 32 items.",
    );
  });

  it("gives a level that ran again a folder of its own, and leaves a CSV cell empty when the level has no figure", () => {
    expect(levelDirs([{ level: 2 }, { level: 4 }, { level: 2 }, { level: 2 }])).toEqual(["level-2", "level-4", "level-2-2", "level-2-3"]);
    const level = (n: number, status: string, metrics: unknown) => ({
      level: n,
      status,
      runId: status === "skipped" ? null : `r${n}`,
      outcome: status === "skipped" ? null : "completed",
      counts: status === "skipped" ? null : { completed: 5, failed: 0, abandoned: 0 },
      metrics,
      verdicts: [],
      warnings: [],
      error: null,
    });
    const csv = experimentCsv({
      kind: "sweep",
      levels: [level(1, "complete", { request_throughput: { unit: "requests/sec", avg: 12.5 } }), level(2, "skipped", null)],
    } as never);
    expect(csv.split("\n")[1]).toBe("1,r1,complete,completed,true,5,0,0,12.5,,,,,,,,");
    expect(csv.split("\n")[2]).toBe("2,,skipped,,,,,,,,,,,,,,");
  });
});
