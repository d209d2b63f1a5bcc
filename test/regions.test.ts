// Results per region (README, "Results per region"): each agent's results count under
// its region, the run reports every region's counts and metrics, and thresholds can name
// one region in k6's tag syntax.

import { describe, expect, it } from "vitest";
import { traceUrlFor } from "../durable/edge-agents";
import { MAX_REGIONS, OTHER_REGION } from "../durable/region-results";
import { advanceAndAlarm, call, createRun, lease, okResult, report, status } from "./helpers";
import type { TestRun } from "./helpers";

async function joinIn(run: TestRun, region: string | undefined, name = "agent"): Promise<string> {
  const res = await call("POST", `/v1/runs/${run.id}/agents`, {
    token: run.agentToken,
    body: { name, ...(region !== undefined ? { region } : {}) },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.agentId;
}

async function settle(run: TestRun, agentId: string, n: number, latencyMs: number, ttftMs: number): Promise<void> {
  const seqs = (await lease(run, agentId, n)).body.credits.map((c: { seq: number }) => c.seq);
  expect(seqs).toHaveLength(n);
  const r = await report(
    run,
    agentId,
    seqs.map((s: number) => okResult(s, { latencyMs, ttftMs })),
  );
  expect(r.status, JSON.stringify(r.body)).toBe(200);
}

const results = async (run: TestRun) => (await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken })).body;

describe("results per region", () => {
  it("keeps each region's percentiles apart, exactly, while the whole run pools them", async () => {
    const run = await createRun({ load: { concurrency: 8 }, stop: { requests: 8 } });
    const weur = await joinIn(run, "weur", "eu");
    const apac = await joinIn(run, "apac", "ap");
    await settle(run, weur, 4, 100, 20);
    await settle(run, apac, 4, 300, 90);
    const r = await results(run);
    expect(r.phase).toBe("complete");
    expect(Object.keys(r.regions).sort()).toEqual(["apac", "weur"]);
    expect(r.regions.weur.agents).toBe(1);
    expect(r.regions.weur.counts).toEqual({ completed: 4, failed: 0, abandoned: 0 });
    expect(r.regions.weur.metrics.request_latency.p50).toBe(100);
    expect(r.regions.weur.metrics.time_to_first_token.p99).toBe(20);
    expect(r.regions.apac.metrics.request_latency.p50).toBe(300);
    expect(r.regions.apac.metrics.request_count.avg).toBe(4);
    expect(r.metrics.request_latency.min).toBe(100);
    expect(r.metrics.request_latency.max).toBe(300);
    // The snapshot carries the same block.
    expect((await status(run)).body.regions.apac.counts.completed).toBe(4);
  });

  it("counts an agent with no region under its colo, else under unknown, and abandoned credits under the agent's region", async () => {
    const run = await createRun({ load: { concurrency: 4 }, stop: { requests: 100 } });
    const plain = await joinIn(run, undefined);
    const edge = await call("POST", `/v1/runs/${run.id}/agents`, {
      token: run.agentToken,
      body: { name: "edge-0", colo: "local", clockTickMs: 1 },
    });
    expect(edge.status).toBe(200);
    await settle(run, plain, 1, 50, 10);
    await lease(run, edge.body.agentId, 2);
    await advanceAndAlarm(run, 15_000); // both leases expire: the edge agent's 2 credits are abandoned
    const s = (await status(run)).body;
    expect(s.regions.unknown.counts).toEqual({ completed: 1, failed: 0, abandoned: 0 });
    expect(s.regions.local.counts).toEqual({ completed: 0, failed: 0, abandoned: 2 });
    expect(s.agents.find((a: { name: string }) => a.name === "edge-0").colo).toBe("local");
    // What else an agent said at join shows beside it: its clock's tick, null when not said.
    expect(s.agents.map((a: { name: string; clockTickMs: number | null }) => [a.name, a.clockTickMs])).toEqual([
      [s.agents[0].name, null],
      ["edge-0", 1],
    ]);
  });

  it("files regions past the cap under other, so storage stays bounded", async () => {
    const run = await createRun({ load: { concurrency: 64 }, stop: { requests: 1_000 } });
    // All join first, so the pool is split among them before anyone leases.
    const agents: string[] = [];
    for (let i = 0; i < MAX_REGIONS + 4; i++) agents.push(await joinIn(run, `r${i}`, `a${i}`));
    for (const [i, a] of agents.entries()) await settle(run, a, 1, 10 + i, 5);
    const s = (await status(run)).body;
    const keys = Object.keys(s.regions);
    expect(keys).toHaveLength(MAX_REGIONS);
    expect(keys).toContain(OTHER_REGION);
    expect(s.regions[OTHER_REGION].counts.completed).toBe(5);
    expect(s.regions[OTHER_REGION].agents).toBe(5);
  });

  it("takes a region named like an object's prototype as a plain name", async () => {
    const run = await createRun({ load: { concurrency: 2 }, stop: { requests: 1 } });
    const a = await joinIn(run, "__proto__");
    await settle(run, a, 1, 42, 7);
    const r = await results(run);
    expect(Object.keys(r.regions)).toEqual(["__proto__"]);
    expect(r.regions.__proto__.metrics.request_latency.p50).toBe(42);
  });
});

describe("thresholds on one region", () => {
  it("fail for the slow region while the same threshold on the whole run passes, keeping the expression as written", async () => {
    const run = await createRun({
      load: { concurrency: 8 },
      stop: { requests: 8 },
      thresholds: {
        "request_latency.p50": "<400",
        "request_latency.p50{region:apac}": "<200",
        "time_to_first_token.p99{region:weur}": "<50",
      },
    });
    const weur = await joinIn(run, "weur");
    const apac = await joinIn(run, "apac");
    await settle(run, weur, 4, 100, 20);
    await settle(run, apac, 4, 300, 90);
    const r = await results(run);
    const byExpr = Object.fromEntries(r.thresholds.map((t: { expr: string }) => [t.expr, t]));
    expect(byExpr["request_latency.p50<400"]).toMatchObject({ ok: true });
    expect(byExpr["request_latency.p50{region:apac}<200"]).toMatchObject({ ok: false, value: 300 });
    expect(byExpr["time_to_first_token.p99{region:weur}<50"]).toMatchObject({ ok: true, value: 20 });
  });

  it("abort the run with abortOnThresholdFail when one region fails, but not before that region has results", async () => {
    const run = await createRun({
      load: { concurrency: 8 },
      stop: { requests: 100 },
      abortOnThresholdFail: true,
      thresholds: { "request_latency.p99{region:apac}": "<200" },
    });
    const weur = await joinIn(run, "weur");
    const apac = await joinIn(run, "apac");
    await settle(run, weur, 4, 100, 20);
    expect((await status(run)).body.phase).toBe("running"); // apac has not reported: not failing yet
    await advanceAndAlarm(run, 1_000);
    await settle(run, apac, 2, 500, 90);
    const s = (await status(run)).body;
    expect(s.stopReason).toBe("threshold");
  });

  it("fail at the end for a region that never reported", async () => {
    const run = await createRun({ load: { concurrency: 4 }, stop: { requests: 2 }, thresholds: { "request_count{region:oc}": ">0" } });
    await settle(run, await joinIn(run, "weur"), 2, 100, 20);
    const r = await results(run);
    expect(r.thresholds).toEqual([{ expr: "request_count{region:oc}>0", ok: false, value: null }]);
  });

  it("refuse a tag that is not {region:NAME}, naming the syntax", async () => {
    const res = await call("POST", "/v1/runs", {
      body: { target: { url: "builtin:mock" }, stop: { requests: 1 }, thresholds: { "request_latency.p99{zone:weur}": "<5" } },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain("{region:NAME}");
  });
});

describe("where an edge agent asks for its colo", () => {
  it("is the service's own /cdn-cgi/trace when it is reached over https on a real host", () => {
    expect(traceUrlFor("https://edgeperf.acme.workers.dev")).toBe("https://edgeperf.acme.workers.dev/cdn-cgi/trace");
  });

  it.each([
    "http://127.0.0.1:8787",
    "https://localhost",
    "https://edgeperf.test",
    "https://api.example.org",
    "http://bench.acme.com",
    undefined,
  ])("is nowhere for %s: a local service's agents run in local, and nothing leaves the machine", (origin) => {
    expect(traceUrlFor(origin)).toBeNull();
  });
});

describe("the breakdown exports", () => {
  it("write each region's metrics as profile_export_aiperf_regions.csv", async () => {
    const run = await createRun({ load: { concurrency: 8 }, stop: { requests: 8 } });
    const weur = await joinIn(run, "weur");
    const apac = await joinIn(run, "apac");
    await settle(run, weur, 4, 100, 20);
    await settle(run, apac, 4, 300, 90);
    const res = await call("GET", `/v1/runs/${run.id}/results?format=regions-csv`, { token: run.readToken });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/csv");
    const lines = (res.body as string).trim().split("\n");
    expect(lines[0]).toBe("Region,Metric,avg,min,max,sum,p1,p5,p10,p25,p50,p75,p90,p95,p99,std");
    const latency = (region: string) => lines.find((l) => l.startsWith(`${region},Request Latency (ms),`))?.split(",");
    expect(latency("apac")?.[2]).toBe("300.00");
    expect(latency("weur")?.[2]).toBe("100.00");
    expect(lines.some((l) => l.startsWith("weur,Request Count,4"))).toBe(true);
  });

  it("write AIPerf's timeslices layouts from the per-second series, empty seconds included", async () => {
    const run = await createRun({ load: { concurrency: 4 }, stop: { requests: 4 } });
    const a = await joinIn(run, "weur");
    const seqs = (await lease(run, a, 4)).body.credits.map((c: { seq: number }) => c.seq);
    await advanceAndAlarm(run, 3_000);
    await report(
      run,
      a,
      seqs.map((s: number, i: number) => okResult(s, { latencyMs: 100, endMs: i < 2 ? 500 : 2_500 })),
    );
    const csv = (await call("GET", `/v1/runs/${run.id}/results?format=timeslices-csv`, { token: run.readToken })).body as string;
    const rows = csv.trim().split("\n");
    expect(rows[0]).toBe("Timeslice,Metric,Unit,Stat,Value");
    expect(rows).toContain("0,Request Count,requests,avg,2.00");
    expect(rows).toContain("1,Request Count,requests,avg,0.00");
    expect(rows).toContain("2,Request Count,requests,avg,2.00");
    expect(rows).toContain("2,Request Latency,ms,p50,100.00");
    const json = (await call("GET", `/v1/runs/${run.id}/results?format=timeslices`, { token: run.readToken })).body;
    expect(json.slice_duration_seconds).toBe(1);
    expect(json.timeslices.map((s: { timeslice_index: number }) => s.timeslice_index)).toEqual([0, 1, 2]);
    expect(json.timeslices[0].request_latency).toMatchObject({ unit: "ms", p50: 100, p99: 100 });
    expect(json.timeslices[1].request_latency).toBeUndefined();
  });

  it("cut slices as wide as timesliceSeconds asks, as AIPerf's --slice-duration does", async () => {
    const run = await createRun({ load: { concurrency: 4 }, stop: { requests: 3 }, timesliceSeconds: 2 });
    const a = await joinIn(run, "weur");
    const seqs = (await lease(run, a, 3)).body.credits.map((c: { seq: number }) => c.seq);
    await advanceAndAlarm(run, 3_000);
    const ends = [500, 1_500, 2_500];
    await report(
      run,
      a,
      seqs.map((s: number, i: number) => okResult(s, { latencyMs: 100 + i, endMs: ends[i] })),
    );
    const json = (await call("GET", `/v1/runs/${run.id}/results?format=timeslices`, { token: run.readToken })).body;
    expect(json.slice_duration_seconds).toBe(2);
    expect(json.timeslices.map((s: { request_count: { avg: number } }) => s.request_count.avg)).toEqual([2, 1]);
    expect(json.timeslices[1].request_throughput.avg).toBe(0.5);
    const bad = await call("POST", "/v1/runs", {
      body: { target: { url: "builtin:mock" }, stop: { requests: 1 }, timesliceSeconds: 0.01 },
    });
    expect(bad.status).toBe(422);
    expect(bad.body.error.message).toContain("timesliceSeconds");
  });

  it("refuse an unknown format, naming the ones there are", async () => {
    const run = await createRun();
    const res = await call("GET", `/v1/runs/${run.id}/results?format=xml`, { token: run.readToken });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain("timeslices-csv");
  });
});
