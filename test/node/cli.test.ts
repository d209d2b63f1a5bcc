// The `edgeperf` command as a user runs it: the bundled CLI (bin/edgeperf.mjs →
// dist/edgeperf.mjs, built by `pretest`) as a subprocess, against a real `wrangler dev`.
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildSpec, parseFlags, SPEC_FLAGS } from "../../cli/args.ts";
import { edgeperf, lines } from "./cli-process.ts";
import { DEV_API_TOKEN, api, e2eServer, tempDir } from "./dev-server.ts";

const server = e2eServer();
beforeAll(() => server.start());
afterAll(() => server.dispose());

const mockRun = (...extra: string[]) => [
  "run",
  "--server",
  server.url,
  "--token",
  DEV_API_TOKEN,
  "--url",
  "builtin:mock",
  "--streaming",
  "--osl",
  "16",
  ...extra,
];

describe("edgeperf run", () => {
  it("benchmarks the mock, prints the AIPerf-style table, the delivered load and the dashboard URL with how long it works, writes the four files, and exits 0", async () => {
    const out = tempDir("edgeperf-cli-");
    const r = await edgeperf([...mockRun("--concurrency", "4", "--request-count", "50", "--out", out)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("Request Latency (ms)");
    expect(r.stdout).toContain("Time to First Token (ms)");
    expect(r.stdout).toMatch(
      /Dashboard: http:\/\/127\.0\.0\.1:\d+\/runs\/[0-9a-f]{64}#token=epr_\S+\n {2}\(works until \d\d:\d\d:\d\d, in \d+ s: then the run's grace window ends and the server wipes it\)/,
    );
    expect(r.stdout).toMatch(
      /^Delivered: concurrency [\d.]+ of 4 \(mean in flight\) · rate [\d.]+ req\/s achieved · no schedule lag \(closed loop\)$/m,
    );
    expect(r.stderr).toMatch(/complete\s+50\/50 \(100%\)/);

    const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
    expect(results.final).toBe(true);
    expect(results.counts.completed).toBe(50);
    const aiperf = JSON.parse(readFileSync(join(out, "profile_export_aiperf.json"), "utf8"));
    expect(aiperf.request_latency).toBeDefined();
    expect(readFileSync(join(out, "profile_export_aiperf.csv"), "utf8").startsWith("Metric,")).toBe(true);
    // The breakdowns: per region (edge agents with no region count under their colo) and per time slice.
    expect(readFileSync(join(out, "profile_export_aiperf_regions.csv"), "utf8")).toMatch(/^Region,Metric,avg,[^\n]*\nlocal,/);
    expect(readFileSync(join(out, "profile_export_aiperf_timeslices.csv"), "utf8").startsWith("Timeslice,Metric,Unit,Stat,Value\n0,")).toBe(
      true,
    );
    expect(JSON.parse(readFileSync(join(out, "profile_export_aiperf_timeslices.json"), "utf8")).timeslices.length).toBeGreaterThan(0);
    // The dashboard as one file, with the same results inside (report.test.ts opens it in a browser).
    const report = readFileSync(join(out, "report.html"), "utf8");
    expect(report).toMatch(/^<!doctype html>/);
    expect(report).toContain(`"id":"${results.id}"`);
  });

  it("exits 1 and prints a FAIL line when a threshold fails", async () => {
    const r = await edgeperf([
      ...mockRun(
        "--concurrency",
        "4",
        "--request-count",
        "12",
        "--threshold",
        "request_latency.p50<0.001",
        "--threshold",
        "request_count>=12",
      ),
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL\s+request_latency\.p50<0\.001/);
    expect(r.stdout).toMatch(/PASS\s+request_count>=12/);
    expect(r.stderr).toContain("edgeperf: exit 1: 1 threshold failed");
  });

  it("prints machine-readable JSON on stdout with --json", async () => {
    const r = await edgeperf([...mockRun("--concurrency", "2", "--request-count", "6", "--json")]);
    expect(r.code, r.stderr).toBe(0);
    const results = JSON.parse(r.stdout);
    expect(results).toMatchObject({ final: true, status: "complete", counts: { completed: 6 } });
    expect(results.metrics.request_latency.count).toBe(6);

    const status = await edgeperf(["status", results.id, "--server", server.url, "--token", DEV_API_TOKEN, "--json"]);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ id: results.id, phase: "complete" });
  });

  it("stops the run gracefully on SIGINT without a terminal, prints the results, and exits 1 (cancelled)", async () => {
    let sent = false;
    const r = await edgeperf([...mockRun("--concurrency", "4", "--benchmark-duration", "60")], {
      onStderr: (text, signal) => {
        if (!sent && /running\s+\d+ done/.test(text)) {
          sent = true;
          signal("SIGINT");
        }
      },
    });
    expect(sent).toBe(true);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("Stopping gracefully");
    expect(r.stderr).toContain("the run was cancelled");
    expect(r.stdout).toContain("Request Latency (ms)");
    expect(r.stdout).toMatch(/complete \(stopped\)|cancelled \(stopped\)/);
  });

  it("exits 1 and prints the warning when no measured request succeeded (every mock request fails)", async () => {
    const r = await edgeperf([...mockRun("--concurrency", "2", "--request-count", "6", "--mock-error-rate", "1")]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/Requests: 0 completed, 6 failed/);
    expect(r.stdout).toMatch(/^Warning: No measured request succeeded.*\(all_requests_failed\)$/m);
    expect(r.stderr).toMatch(/edgeperf: exit 1: No measured request succeeded.*\(all_requests_failed\)/);

    const json = await edgeperf([...mockRun("--concurrency", "2", "--request-count", "2", "--mock-error-rate", "1", "--json")]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout).warnings.map((w: { code: string }) => w.code)).toContain("all_requests_failed");
  });

  it("prints the server's validation message as one line and exits 1", async () => {
    const r = await edgeperf([...mockRun("--concurrency", "0", "--request-count", "10")]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual(["edgeperf: HTTP 422 out_of_range: --concurrency (load.concurrency) must be an integer >= 1."]);
    expect(r.stdout).toBe("");
  });
});

describe("flags map to the RunSpec", () => {
  const spec = (argv: string[], base?: Record<string, unknown>) =>
    buildSpec(parseFlags(argv, SPEC_FLAGS, { min: 0, max: 0, names: "" }).values, base);

  it("maps every AIPerf-named and own flag to its RunSpec field", () => {
    const argv = [
      "--url",
      "https://llm.example.com/v1/completions",
      "-m",
      "llama",
      "--endpoint-type",
      "completions",
      "--streaming",
      "--request-rate",
      "20",
      "--concurrency",
      "64",
      "--arrival-pattern",
      "poisson",
      "--request-count",
      "1000",
      "--benchmark-duration",
      "60",
      "--warmup-request-count",
      "10",
      "--isl",
      "512",
      "--isl-stddev",
      "16",
      "--osl",
      "128",
      "--osl-stddev",
      "8",
      "--random-seed",
      "7",
      "--api-key",
      "sk-x",
      "-H",
      "x-a: 1",
      "--request-timeout-seconds",
      "30",
      "--edge-agents",
      "3",
      "--regions",
      "wnam, weur",
      "--grace",
      "10",
      "--drain-timeout",
      "5",
      "--threshold",
      "time_to_first_token.p99<500",
      "--threshold",
      "request_error_rate < 1",
      "--abort-on-threshold-fail",
    ];
    expect(spec(argv)).toEqual({
      target: {
        url: "https://llm.example.com/v1/completions",
        api: "openai-completions",
        model: "llama",
        stream: true,
        apiKey: "sk-x",
        headers: { "x-a": "1" },
        timeoutSeconds: 30,
      },
      workload: { inputTokens: { mean: 512, stddev: 16 }, outputTokens: { mean: 128, stddev: 8 }, seed: 7 },
      load: { rate: 20, arrival: "poisson", maxConcurrency: 64 },
      stop: { requests: 1000, durationSeconds: 60 },
      warmup: { requests: 10 },
      agents: { edge: 3, regions: ["wnam", "weur"] },
      thresholds: { "time_to_first_token.p99": "<500", request_error_rate: "<1" },
      abortOnThresholdFail: true,
      graceSeconds: 10,
      drainTimeoutSeconds: 5,
    });
  });

  it("lays flags over a --spec file: fields merge, a load flag replaces the load, --arrival-pattern alone adjusts it", () => {
    const base = { target: { url: "builtin:mock", mock: { ttftMs: 40 } }, load: { rate: 5, arrival: "constant" }, stop: { requests: 10 } };
    expect(spec(["--mock-itl-ms", "8", "--benchmark-duration", "30"], base)).toEqual({
      target: { url: "builtin:mock", mock: { ttftMs: 40, itlMs: 8 } },
      load: { rate: 5, arrival: "constant" },
      stop: { requests: 10, durationSeconds: 30 },
    });
    expect(spec(["--concurrency", "4"], base).load).toEqual({ concurrency: 4 });
    expect(spec(["--arrival-pattern", "poisson"], base).load).toEqual({ rate: 5, arrival: "poisson" });
  });
});

describe("commands on an existing run", () => {
  it("status, stop, watch and results work by run id, and a stopped run exits 1", async () => {
    const created = await api(server.url, "POST", "/v1/runs", DEV_API_TOKEN, {
      target: { url: "builtin:mock" },
      stop: { durationSeconds: 60 },
      agents: { edge: 0 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { id, readToken } = created.body as { id: string; readToken: string };
    const conn = ["--server", server.url];
    try {
      const status = await edgeperf(["status", id, ...conn, "--token", readToken]);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toContain(`Run ${id}: running (phase created)`);

      const denied = await edgeperf(["stop", id, ...conn, "--token", readToken]);
      expect(denied.code).toBe(1);
      expect(lines(denied.stderr)).toEqual([
        "edgeperf: HTTP 401 invalid_token: stop needs the service's API token (--token or EDGEPERF_TOKEN); this is the run's read token, which can only read the run",
      ]);

      const stop = await edgeperf(["stop", id, ...conn, "--token", DEV_API_TOKEN]);
      expect(stop.code, stop.stderr).toBe(0);
      expect(stop.stdout).toMatch(/Stopping gracefully|already complete/);

      const watch = await edgeperf(["watch", id, ...conn, "--token", readToken, "--json"]);
      expect(watch.code).toBe(1);
      expect(JSON.parse(watch.stdout)).toMatchObject({ id, final: true, status: "cancelled", outcome: "stopped" });

      const out = tempDir("edgeperf-cli-");
      const results = await edgeperf(["results", id, ...conn, "--token", readToken, "--out", out]);
      expect(results.code).toBe(1);
      expect(results.stdout).toContain(`Run ${id}: cancelled (stopped)`);
      expect(results.stdout).toContain(`#token=${readToken}`);
      expect(results.stderr).toContain("the run was cancelled (stopped by a user)");
      expect(JSON.parse(readFileSync(join(out, "results.json"), "utf8")).id).toBe(id);
    } finally {
      // A run left active would keep the service drain below waiting.
      await api(server.url, "POST", `/v1/runs/${id}/stop`, DEV_API_TOKEN, { mode: "force" });
    }
  });
});

describe("edgeperf agent", () => {
  it("completes a run that has no edge agents, sending the requests from this machine", async () => {
    const created = await api(server.url, "POST", "/v1/runs", DEV_API_TOKEN, {
      target: { url: "builtin:mock", stream: true, mock: { ttftMs: 5, itlMs: 1 } },
      workload: { outputTokens: { mean: 8 } },
      load: { concurrency: 4 },
      stop: { requests: 40 },
      agents: { edge: 0 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { id, agentToken, readToken } = created.body as { id: string; agentToken: string; readToken: string };
    const r = await edgeperf(["agent", id, "--server", server.url, "--token", agentToken, "--name", "test-agent"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("Agent done: sent 40 requests");
    const res = await api(server.url, "GET", `/v1/runs/${id}/results`, readToken);
    expect(res.body).toMatchObject({ phase: "complete", status: "complete" });
    expect(res.body.counts).toEqual({ granted: 40, returned: 0, completed: 40, failed: 0, abandoned: 0, outstanding: 0 });
    expect(res.body.agents.map((a: { name: string }) => a.name)).toEqual(["test-agent"]);
  });

  it("piped, prints a progress line every few seconds rather than a line per report", async () => {
    const created = await api(server.url, "POST", "/v1/runs", DEV_API_TOKEN, {
      target: { url: "builtin:mock", mock: { ttftMs: 250, itlMs: 2 } },
      workload: { outputTokens: { mean: 8 } },
      load: { concurrency: 2 },
      stop: { requests: 48 },
      agents: { edge: 0 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { id, agentToken } = created.body as { id: string; agentToken: string };
    const started = Date.now();
    const r = await edgeperf(["agent", id, "--server", server.url, "--token", agentToken, "--name", "piped-agent"]);
    const seconds = (Date.now() - started) / 1000;
    expect(r.code, r.stderr).toBe(0);
    expect(seconds).toBeGreaterThan(5); // about 24 rounds of ~260 ms: a report about every second
    expect(r.stderr).not.toMatch(/^report:/m);
    const progress = lines(r.stderr).filter((l) => l.startsWith("agent piped-agent: sent"));
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress.length).toBeLessThanOrEqual(Math.ceil(seconds / 5) + 1);
    expect(lines(r.stderr).length).toBeLessThanOrEqual(progress.length + 3); // "Joined …", "run says stop", "done"
  });
});

describe("errors", () => {
  it("an unreachable server is one line on stderr and exit 1", async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, "127.0.0.1", () => {
        const addr = srv.address();
        srv.close(() => resolve(typeof addr === "object" && addr ? addr.port : 0));
      });
    });
    const refused = await edgeperf(["status", "abc", "--server", `http://127.0.0.1:${port}`, "--token", "t"]);
    expect(refused.code).toBe(1);
    expect(lines(refused.stderr)).toEqual([`edgeperf: cannot reach http://127.0.0.1:${port}: connection refused`]);

    const blocked = await edgeperf([
      "run",
      "--server",
      "http://127.0.0.1:1",
      "--token",
      "t",
      "--url",
      "builtin:mock",
      "--request-count",
      "1",
    ]);
    expect(blocked.code).toBe(1);
    expect(lines(blocked.stderr)).toHaveLength(1);
    expect(blocked.stderr).toMatch(/^edgeperf: cannot reach http:\/\/127\.0\.0\.1:1: /);
  });

  it("usage errors are one line and exit 2", async () => {
    for (const args of [["run", "--nope"], ["status"], ["bogus"], ["run", "--concurrency", "many"], ["run", "--threshold", "fast"]]) {
      const r = await edgeperf(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(lines(r.stderr), args.join(" ")).toHaveLength(1);
      expect(r.stderr).toMatch(/^edgeperf: /);
    }
  });

  it("run without --url is a usage error naming --url, before anything is sent", async () => {
    const r = await edgeperf(["run", "--server", server.url, "--token", DEV_API_TOKEN, "--request-count", "1"]);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual([
      "edgeperf: run needs --url (an endpoint URL, or builtin:mock), or a --spec file that sets target.url",
    ]);
  });

  it("a mistyped flag or command gets a suggestion", async () => {
    const flag = await edgeperf(["run", "--concurency", "4"]);
    expect(flag.code).toBe(2);
    expect(lines(flag.stderr)).toEqual(["edgeperf: Unknown option '--concurency'; did you mean --concurrency?"]);
    const drainFlag = await edgeperf(["drain", "--timout", "5"]);
    expect(lines(drainFlag.stderr)).toEqual(["edgeperf: Unknown option '--timout'; did you mean --timeout?"]);
    const command = await edgeperf(["rnu"]);
    expect(command.code).toBe(2);
    expect(lines(command.stderr)).toEqual(['edgeperf: unknown command "rnu"; did you mean `edgeperf run`?']);
    const far = await edgeperf(["run", "--nope"]);
    expect(lines(far.stderr)).toEqual(["edgeperf: Unknown option '--nope'."]);
  });

  it("a wrong token is the server's 401 in one line", async () => {
    const r = await edgeperf(["run", "--server", server.url, "--token", "wrong-token", "--url", "builtin:mock", "--request-count", "1"]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual(["edgeperf: HTTP 401 invalid_token: The token is not valid for this call."]);
  });

  it("--help prints usage for the CLI and for each command", async () => {
    const main = await edgeperf(["--help"]);
    expect(main.code).toBe(0);
    expect(main.stdout).toContain("Usage: edgeperf <command>");
    const run = await edgeperf(["run", "--help"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("--request-rate");
    expect(run.stdout).toContain("Exit codes:");
  });
});

describe("edgeperf drain", () => {
  it("reports the phase, drains with --wait, refuses new runs while drained, and resumes", async () => {
    const base = ["--server", server.url, "--token", DEV_API_TOKEN];
    const status = await edgeperf(["drain", "--status", ...base, "--json"]);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toEqual({
      phase: "accepting",
      activeRuns: expect.any(Number),
      deadline: null,
      activeRunIds: expect.any(Array),
    });
    try {
      const drained = await edgeperf(["drain", "--wait", ...base]);
      expect(drained.code, drained.stderr).toBe(0);
      expect(drained.stdout).toContain("Service is drained");
      const refused = await edgeperf([...mockRun("--request-count", "1")]);
      expect(refused.code).toBe(1);
      expect(lines(refused.stderr)).toHaveLength(1);
      expect(refused.stderr).toContain("HTTP 503 service_draining");
    } finally {
      const resumed = await edgeperf(["drain", "--resume", ...base]);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stdout).toContain("accepting new runs");
    }
  });

  it("--wait --timeout S force-stops the runs still active at the deadline, showing them while it waits", async () => {
    const base = ["--server", server.url, "--token", DEV_API_TOKEN];
    const created = await api(server.url, "POST", "/v1/runs", DEV_API_TOKEN, {
      target: { url: "builtin:mock" },
      stop: { durationSeconds: 600 },
      agents: { edge: 0 },
      graceSeconds: 60,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { id, readToken } = created.body as { id: string; readToken: string };
    try {
      const started = Date.now();
      const drained = await edgeperf(["drain", "--wait", "--timeout", "2", ...base]);
      expect(drained.code, drained.stderr).toBe(0);
      expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
      expect(drained.stderr).toMatch(new RegExp(`draining: waiting for 1 active run \\(${id.slice(0, 12)}…\\); force-stopped at `));
      expect(drained.stdout).toContain("Service is drained");

      const results = await api(server.url, "GET", `/v1/runs/${id}/results`, readToken);
      expect(results.body).toMatchObject({ final: true, status: "cancelled", outcome: "stopped", stopReason: "service_drain" });
      const out = await edgeperf(["results", id, "--server", server.url, "--token", readToken]);
      expect(out.code).toBe(1);
      expect(out.stderr).toContain("the run was cancelled (force-stopped by the service drain's deadline)");

      const status = await edgeperf(["drain", "--status", ...base]);
      expect(status.stdout).toMatch(/^Service is drained/);
      const misplaced = await edgeperf(["drain", "--status", "--timeout", "5", ...base]);
      expect(misplaced.code).toBe(2);
      expect(misplaced.stderr).toContain("--timeout goes with drain or drain --wait");
    } finally {
      const resumed = await edgeperf(["drain", "--resume", ...base]);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(JSON.parse((await edgeperf(["drain", "--status", "--json", ...base])).stdout)).toMatchObject({ deadline: null });
      await api(server.url, "POST", `/v1/runs/${id}/stop`, DEV_API_TOKEN, { mode: "force" });
    }
  });
});
