// Issue 3's acceptance run in a real `wrangler dev`: edge agents against the built-in
// mock, measured as AIPerf defines it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_API_TOKEN, api, e2eServer } from "./dev-server.ts";

const server = e2eServer();
beforeAll(() => server.start());
afterAll(() => server.dispose());

async function waitComplete(id: string, token: string) {
  for (;;) {
    const res = await api(server.url, "GET", `/v1/runs/${id}/results?wait=30`, token);
    if (res.status !== 200) throw new Error(JSON.stringify(res.body));
    if (res.body.phase === "complete") return res.body;
  }
}

describe("edge agents in wrangler dev", () => {
  it("complete 300 streaming requests at concurrency 16 on two agents with TTFT and ITL as served", async () => {
    const created = await api(server.url, "POST", "/v1/runs", DEV_API_TOKEN, {
      target: { url: "builtin:mock", stream: true, mock: { ttftMs: 40, itlMs: 8 } },
      workload: { outputTokens: { mean: 32 } },
      load: { concurrency: 16 },
      stop: { requests: 300 },
      agents: { edge: 2 },
      graceSeconds: 30,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const res = await waitComplete(created.body.id, created.body.readToken);
    expect(res.counts).toEqual({ granted: 300, returned: 0, completed: 300, failed: 0, abandoned: 0, outstanding: 0 });
    const m = res.metrics;
    console.log(
      `wrangler dev, 2 edge agents, c=16, 300 req: TTFT p50 ${m.time_to_first_token.p50.toFixed(2)} ms, ITL avg ${m.inter_token_latency.avg.toFixed(3)} ms, ` +
        `throughput ${m.request_throughput.avg.toFixed(1)} req/s (ceiling ${(16 / 0.288).toFixed(1)})`,
    );
    expect(Math.abs(m.time_to_first_token.p50 - 40)).toBeLessThanOrEqual(3);
    expect(Math.abs(m.inter_token_latency.avg - 8)).toBeLessThanOrEqual(1);
    expect(m.request_throughput.avg).toBeGreaterThan(0.7 * (16 / 0.288));
  });

  it("place two edge agents in two regions, each reporting its colo as local, with results per region that add up to the run's", async () => {
    const created = await api(server.url, "POST", "/v1/runs", DEV_API_TOKEN, {
      target: { url: "builtin:mock", stream: true, mock: { ttftMs: 20, itlMs: 4 } },
      workload: { outputTokens: { mean: 8 } },
      load: { concurrency: 8 },
      stop: { requests: 80 },
      agents: { edge: 2, regions: ["weur", "apac"] },
      thresholds: { "time_to_first_token.p50{region:weur}": "<1000" },
      graceSeconds: 30,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const res = await waitComplete(created.body.id, created.body.readToken);
    expect(Object.keys(res.regions).sort()).toEqual(["apac", "weur"]);
    for (const region of ["weur", "apac"]) {
      expect(res.regions[region].agents).toBe(1);
      expect(res.regions[region].counts.completed).toBeGreaterThan(0);
    }
    expect(res.regions.weur.counts.completed + res.regions.apac.counts.completed).toBe(res.counts.completed);
    expect(res.agents.map((a: { colo: string }) => a.colo)).toEqual(["local", "local"]);
    expect(res.agents.map((a: { clockTickMs: number }) => a.clockTickMs)).toEqual([1, 1]); // workerd's whole milliseconds
    expect(res.thresholds).toEqual([expect.objectContaining({ expr: "time_to_first_token.p50{region:weur}<1000", ok: true })]);
    console.log(
      `FIGURE: regions weur ${res.regions.weur.counts.completed} / apac ${res.regions.apac.counts.completed} of ${res.counts.completed}; ` +
        `TTFT p50 weur ${res.regions.weur.metrics.time_to_first_token.p50} ms, apac ${res.regions.apac.metrics.time_to_first_token.p50} ms`,
    );
  });
});
