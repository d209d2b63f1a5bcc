// The foundation's acceptance checks against a real `wrangler dev`: an external agent
// that speaks wire protocol v1 with plain fetch (as curl would) runs a run end to end,
// and a restart on the same storage in the middle of a drain loses nothing.
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_API_TOKEN, DevServer, api, e2eServer } from "./dev-server.ts";

const server = e2eServer();
beforeAll(() => server.start());
afterAll(() => server.dispose());

async function createRun(spec: Record<string, unknown>) {
  const res = await api(server.url, "POST", "/v1/runs", DEV_API_TOKEN, spec);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; readToken: string; agentToken: string };
}

describe("an external agent speaking the wire protocol over HTTP", () => {
  it("runs a 40-request run at concurrency 4: exact counts, metrics as reported, complete for graceSeconds, then 404", async () => {
    const run = await createRun({
      target: { url: "builtin:mock" },
      load: { concurrency: 4 },
      stop: { requests: 40 },
      graceSeconds: 2,
      agents: { edge: 0 },
    });
    const path = `/v1/runs/${run.id}`;
    const joined = await api(server.url, "POST", `${path}/agents`, run.agentToken, { name: "script" });
    expect(joined.status).toBe(200);
    const agentId = joined.body.agentId as string;
    const latencies: number[] = [];
    let maxHeld = 0;
    let n = 0;
    for (;;) {
      const l = await api(server.url, "POST", `${path}/leases`, run.agentToken, { agentId, requestId: `l${n++}`, want: 4 });
      if (l.status !== 200) break;
      const credits = l.body.credits as Array<{ seq: number }>;
      maxHeld = Math.max(maxHeld, credits.length);
      if (credits.length === 0) break;
      const results = credits.map((c) => {
        const latencyMs = 50 + c.seq;
        latencies.push(latencyMs);
        return { seq: c.seq, ok: true, latencyMs, ttftMs: 10, inputTokens: 100, outputTokens: 8 };
      });
      const r = await api(server.url, "POST", `${path}/reports`, run.agentToken, { agentId, reportId: `r${n}`, inflight: 0, results });
      expect(r.status).toBe(200);
      if (r.body.stop) break;
    }
    expect(maxHeld).toBeLessThanOrEqual(4);
    const res = await api(server.url, "GET", `${path}/results`, run.readToken);
    expect(res.body).toMatchObject({ phase: "complete", status: "complete", final: true });
    expect(res.body.counts).toEqual({ granted: 40, returned: 0, completed: 40, failed: 0, abandoned: 0, outstanding: 0 });
    const m = res.body.metrics;
    expect(m.request_count.avg).toBe(40);
    expect(m.request_latency.min).toBeCloseTo(Math.min(...latencies), 0);
    expect(m.request_latency.max).toBeCloseTo(Math.max(...latencies), 0);
    expect(m.request_latency.avg).toBeCloseTo(latencies.reduce((a, b) => a + b, 0) / 40, 6);
    expect(m.inter_token_latency.avg).toBeCloseTo(latencies.reduce((a, b) => a + (b - 10) / 7, 0) / 40, 6);

    const completedAt = Date.parse(res.body.completedAt);
    // Served as complete until the grace window ends, then gone.
    let lastSeen = 0;
    let goneAt = 0;
    while (Date.now() < completedAt + 10_000) {
      const s = await api(server.url, "GET", path, run.readToken);
      if (s.status === 200) {
        expect(s.body.status).toBe("complete");
        lastSeen = Date.now();
      } else {
        expect(s.status).toBe(404);
        expect(s.body.error.code).toBe("run_not_found");
        goneAt = Date.now();
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(lastSeen - completedAt).toBeGreaterThanOrEqual(1_900);
    expect(goneAt).toBeGreaterThan(0);
    expect(goneAt - completedAt).toBeLessThanOrEqual(3_000);
  });
});

describe("a restart of the local server", () => {
  it("dispose() removes the server's temporary folder with what a killed wrangler left there", async () => {
    const dev = new DevServer({ apiToken: DEV_API_TOKEN });
    mkdirSync(join(dev.tmp, "miniflare-left-by-a-kill"));
    await dev.dispose();
    expect(existsSync(dev.tmp)).toBe(false);
    expect(existsSync(dev.persistTo)).toBe(false);
  });

  it("in the middle of a drain loses nothing, and the run completes with exact counts", async () => {
    const run = await createRun({
      target: { url: "builtin:mock" },
      load: { concurrency: 8 },
      stop: { requests: 100 },
      drainTimeoutSeconds: 60,
      agents: { edge: 0 },
    });
    const path = `/v1/runs/${run.id}`;
    const agentId = (await api(server.url, "POST", `${path}/agents`, run.agentToken, {})).body.agentId as string;
    const seqs = (
      (await api(server.url, "POST", `${path}/leases`, run.agentToken, { agentId, requestId: "l1", want: 16 })).body.credits as Array<{
        seq: number;
      }>
    ).map((c) => c.seq);
    expect(seqs).toHaveLength(16);
    const ok = (seq: number) => ({ seq, ok: true, latencyMs: 30, ttftMs: 5, outputTokens: 4 });
    await api(server.url, "POST", `${path}/reports`, run.agentToken, {
      agentId,
      reportId: "r1",
      inflight: 8,
      results: seqs.slice(0, 6).map(ok),
    });
    const stop = await api(server.url, "POST", `${path}/stop`, DEV_API_TOKEN, { mode: "graceful" });
    expect(stop.body.phase).toBe("draining");

    const miniflare = () => readdirSync(server.tmp).filter((d) => d.startsWith("miniflare-"));
    const before = miniflare();
    expect(before.length).toBeGreaterThan(0);
    await server.kill();
    await server.start();
    // The killed wrangler could not remove its miniflare folders: they are still in the
    // server's own temporary folder, beside the new one's, and dispose() removes it whole.
    const after = miniflare();
    for (const d of before) expect(after).toContain(d);
    expect(after.length).toBeGreaterThan(before.length);

    const mid = await api(server.url, "GET", path, run.readToken);
    expect(mid.body).toMatchObject({ phase: "draining" });
    expect(mid.body.counts).toEqual({ granted: 16, returned: 0, completed: 6, failed: 0, abandoned: 0, outstanding: 10 });
    expect((await api(server.url, "POST", `${path}/leases`, run.agentToken, { agentId, requestId: "l2", want: 1 })).body.error.code).toBe(
      "run_draining",
    );
    // A retry of the report sent before the crash is recognised, not counted again.
    const retry = await api(server.url, "POST", `${path}/reports`, run.agentToken, {
      agentId,
      reportId: "r1",
      inflight: 8,
      results: seqs.slice(0, 6).map(ok),
    });
    expect(retry.body.accepted).toBe(6);
    const last = await api(server.url, "POST", `${path}/reports`, run.agentToken, {
      agentId,
      reportId: "r2",
      inflight: 0,
      results: seqs.slice(6, 12).map(ok),
      returned: seqs.slice(12),
    });
    expect(last.body).toMatchObject({ accepted: 10, stop: true });
    const done = await api(server.url, "GET", `${path}/results`, run.readToken);
    expect(done.body).toMatchObject({ phase: "complete", status: "cancelled", outcome: "stopped", partial: false });
    expect(done.body.counts).toEqual({ granted: 16, returned: 4, completed: 12, failed: 0, abandoned: 0, outstanding: 0 });
    expect(done.body.metrics.request_latency.count).toBe(12);
  });
});
