// Results surfaces: thresholds (and aborting on them), the time series, the completion
// webhook, the export formats, and a results document whose size does not grow with
// the number of requests.
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { RunCoordinator } from "../durable/RunCoordinator";
import { sign } from "../durable/webhook";
import { advance, advanceAndAlarm, call, createRun, join, lease, okResult, report, status } from "./helpers";
import type { TestRun } from "./helpers";

async function settleAll(run: TestRun, agentId: string, want: number, result: (seq: number) => Record<string, unknown>) {
  for (;;) {
    const l = await lease(run, agentId, want);
    if (l.status !== 200 || l.body.credits.length === 0) return;
    const r = await report(
      run,
      agentId,
      l.body.credits.map((c: { seq: number }) => result(c.seq)),
    );
    if (r.body.stop) return;
  }
}

describe("thresholds", () => {
  it("report each expression with its value and whether it passed, on the merged distribution", async () => {
    const run = await createRun({
      load: { concurrency: 4 },
      stop: { requests: 8 },
      thresholds: { "request_latency.p99": "<105", "time_to_first_token.avg": "<= 20", request_error_rate: "<1" },
    });
    const a = await join(run, "a");
    await settleAll(run, a, 8, (seq) => okResult(seq, { latencyMs: 100 + seq }));
    const res = (await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken })).body;
    const byExpr = Object.fromEntries(res.thresholds.map((t: { expr: string }) => [t.expr, t]));
    expect(byExpr["request_latency.p99<105"]).toMatchObject({ ok: false });
    expect(byExpr["request_latency.p99<105"].value).toBeCloseTo(106.93, 0);
    expect(byExpr["time_to_first_token.avg<=20"]).toMatchObject({ ok: true, value: 20 });
    expect(byExpr["request_error_rate<1"]).toMatchObject({ ok: true, value: 0 });
    expect(res).toMatchObject({ status: "complete", outcome: "completed" });
  });

  it("with abortOnThresholdFail, a failing threshold drains the run and it ends failed and cancelled", async () => {
    const run = await createRun({ stop: { requests: 100 }, thresholds: { request_error_rate: "<10" }, abortOnThresholdFail: true });
    const agentId = await join(run);
    const seqs = (await lease(run, agentId, 8)).body.credits.map((c: { seq: number }) => c.seq);
    const r = await report(
      run,
      agentId,
      seqs.slice(0, 4).map((s: number) => okResult(s, { ok: false, error: { code: "http_500", type: "http" } })),
    );
    expect(r.body.stop).toBe(true);
    expect((await lease(run, agentId, 1)).body.error.code).toBe("run_draining");
    await report(run, agentId, [], { returned: seqs.slice(4) });
    const s = (await status(run)).body;
    expect(s).toMatchObject({ phase: "complete", status: "cancelled", outcome: "failed", stopReason: "threshold" });
  });
});

describe("the time series", () => {
  it("buckets results by the second they ended, with counts, tokens and quantiles", async () => {
    const run = await createRun({ load: { concurrency: 8 }, stop: { requests: 6 } });
    const agentId = await join(run);
    const seqs = (await lease(run, agentId, 6)).body.credits.map((c: { seq: number }) => c.seq);
    await advance(run, 3_000); // end times are clamped to the run's clock: this is when they are reported
    await report(
      run,
      agentId,
      seqs.slice(0, 3).map((s: number) => okResult(s, { endMs: 500, outputTokens: 10 })),
    );
    await report(
      run,
      agentId,
      seqs.slice(3).map((s: number) => okResult(s, { endMs: 2_500, ok: s % 2 === 0, outputTokens: 10 })),
    );
    const ts = (await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken })).body.timeseries;
    expect(ts.bucketSeconds).toBe(1);
    expect(ts.buckets.map((b: { t: number }) => b.t)).toEqual([0, 2]);
    expect(ts.buckets[0]).toMatchObject({ completed: 3, failed: 0, outputTokens: 30 });
    expect(Math.abs(ts.buckets[0].latency.p50 - 101) / 101).toBeLessThanOrEqual(0.005); // DDSketch: 0.5%
    expect(ts.buckets[1].completed + ts.buckets[1].failed).toBe(3);
  });

  it("ranks a result reported a second late in its slice's quantiles, however narrow the slices", async () => {
    const run = await createRun({ load: { concurrency: 16 }, stop: { requests: 12 }, timesliceSeconds: 0.1 });
    const agentId = await join(run);
    const seqs = (await lease(run, agentId, 12)).body.credits.map((c: { seq: number }) => c.seq);
    await advance(run, 3_000);
    // One result ending in each tenth up to 1.0 s, then one more for the 0.1 s slice, late.
    await report(
      run,
      agentId,
      seqs.slice(0, 10).map((s: number, i: number) => okResult(s, { endMs: 100 * (i + 1) + 10, latencyMs: 100 })),
    );
    await report(run, agentId, [okResult(seqs[10], { endMs: 150, latencyMs: 300 })]);
    const ts = (await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken })).body.timeseries;
    const slice = ts.buckets.find((b: { t: number }) => b.t === 0.1);
    expect(slice.completed).toBe(2);
    expect(Math.abs(slice.latency.max - 300) / 300).toBeLessThanOrEqual(0.005); // DDSketch: 0.5%
  });
});

describe("the results document's size", () => {
  it("for 20,000 requests stays within 15% of the size for 1,000", async () => {
    async function sizeFor(n: number): Promise<number> {
      const run = await createRun({ load: { concurrency: 1000 }, stop: { requests: n } });
      const agentId = await join(run);
      let i = 0;
      for (;;) {
        const l = await lease(run, agentId, 1000);
        if (l.body.credits.length === 0) break;
        // End times are clamped to the run's clock: let 10 s pass once the run has started.
        if (i === 0) await advance(run, 10_000);
        // Same spread of latencies for both sizes; results end within the first 10 s.
        const results = l.body.credits.map((c: { seq: number }) =>
          okResult(c.seq, { latencyMs: 50 + ((i++ * 7919) % 1000) / 10, ttftMs: 10 + (c.seq % 50) / 10, endMs: (c.seq % 10) * 1000 }),
        );
        const r = await report(run, agentId, results);
        if (r.body.stop) break;
      }
      const res = await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken });
      expect(res.body.counts.completed).toBe(n);
      const {
        serverTime: _a,
        id: _b,
        createdAt: _c,
        startedAt: _d,
        completedAt: _e,
        wipeAt: _f,
        drainStartedAt: _g,
        agents: _h,
        ...rest
      } = res.body;
      return JSON.stringify(rest).length;
    }
    const small = await sizeFor(1_000);
    const large = await sizeFor(20_000);
    expect(large / small).toBeLessThanOrEqual(1.15);
  }, 60_000);
});

describe("export formats", () => {
  it("serves AIPerf's JSON and CSV layouts from the results route", async () => {
    const run = await createRun({ stop: { requests: 2 } });
    const agentId = await join(run);
    await settleAll(run, agentId, 2, (seq) => okResult(seq));
    const aiperf = await call("GET", `/v1/runs/${run.id}/results?format=aiperf`, { token: run.readToken });
    expect(aiperf.body).toMatchObject({ benchmark_id: run.id, was_cancelled: false });
    expect(aiperf.body.request_latency.unit).toBe("ms");
    const csv = await call("GET", `/v1/runs/${run.id}/results?format=csv`, { token: run.readToken });
    expect(csv.headers.get("content-type")).toContain("text/csv");
    expect(String(csv.body)).toMatch(/^Metric,avg,min,max/);
    expect(String(csv.body)).toContain("Request Latency (ms)");
  });
});

describe("the completion webhook", () => {
  it("posts the final results once, signed, retrying with backoff after a receiver fails twice", async () => {
    const created = await call("POST", "/v1/runs", {
      body: {
        target: { url: "builtin:mock" },
        stop: { requests: 2 },
        agents: { edge: 0 },
        graceSeconds: 60,
        notify: { url: "https://hooks.example.com/edgeperf" },
      },
    });
    expect(created.status).toBe(201);
    const secret = created.body.notifySecret as string;
    expect(secret).toMatch(/^whsec_/);
    const { env } = await import("cloudflare:workers");
    const stub = env.RUN_COORDINATOR.get(env.RUN_COORDINATOR.idFromString(created.body.id));
    const run: TestRun = {
      id: created.body.id,
      readToken: created.body.readToken,
      agentToken: created.body.agentToken,
      stub,
      clock: Date.now(),
    };
    const received: Array<{ url: string; headers: Headers; body: string }> = [];
    let answers = [500, 503, 200];
    await runInDurableObject(stub, (instance: RunCoordinator) => {
      instance.now = () => run.clock;
      instance.fetchOut = async (input, init) => {
        const req = new Request(input, init);
        received.push({ url: req.url, headers: req.headers, body: await req.text() });
        const code = answers.shift() ?? 200;
        return new Response(null, { status: code });
      };
    });
    const agentId = await join(run);
    const seqs = (await lease(run, agentId, 2)).body.credits.map((c: { seq: number }) => c.seq);
    await report(
      run,
      agentId,
      seqs.map((s: number) => okResult(s)),
    );
    await advanceAndAlarm(run, 0); // first attempt: 500
    await advanceAndAlarm(run, 999); // not yet due
    expect(received).toHaveLength(1);
    await advanceAndAlarm(run, 1); // second attempt after 1 s: 503
    await advanceAndAlarm(run, 2_000); // third attempt after 2 s more: 200
    await advanceAndAlarm(run, 10_000);
    expect(received).toHaveLength(3);
    const last = received[2]!;
    expect(last.url).toBe("https://hooks.example.com/edgeperf");
    const body = JSON.parse(last.body);
    expect(body).toMatchObject({ id: run.id, final: true, phase: "complete" });
    expect(body.counts.completed).toBe(2);
    const sig = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(last.headers.get("edgeperf-signature") ?? "");
    expect(sig).not.toBeNull();
    expect(sig![2]).toBe(await sign(secret, Number(sig![1]), last.body));
    expect(last.body).not.toContain("whsec_");
    answers = [];
  });
});
