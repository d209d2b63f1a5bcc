// Eviction (a restart of the object on the same storage) in every phase loses nothing.
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { advance, advanceAndAlarm, call, createRun, join, lease, okResult, report, setClock, status } from "./helpers";
import type { TestRun } from "./helpers";

async function restart(run: TestRun): Promise<void> {
  await evictDurableObject(run.stub);
  await setClock(run, run.clock); // the fresh instance has the real clock again
}

const seqsOf = (res: { body: { credits: Array<{ seq: number }> } }) => res.body.credits.map((c) => c.seq);

describe("eviction", () => {
  it("mid-run keeps the ledger, the agent, its credits and the metrics", async () => {
    const run = await createRun({ load: { concurrency: 4 }, stop: { requests: 12 } });
    const agentId = await join(run);
    const first = seqsOf(await lease(run, agentId, 8));
    await report(
      run,
      agentId,
      first.slice(0, 4).map((s) => okResult(s)),
    );
    const before = (await status(run)).body;
    await restart(run);
    const after = (await status(run)).body;
    expect(after.counts).toEqual(before.counts);
    expect(after.agents).toEqual(before.agents);
    await report(
      run,
      agentId,
      first.slice(4).map((s) => okResult(s)),
    );
    const rest = seqsOf(await lease(run, agentId, 8));
    expect(rest).toHaveLength(4);
    expect(Math.min(...rest)).toBe(8); // numbering continues where it stopped
    await report(
      run,
      agentId,
      rest.map((s) => okResult(s)),
    );
    const res = (await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken })).body;
    expect(res.phase).toBe("complete");
    expect(res.counts).toEqual({ granted: 12, returned: 0, completed: 12, failed: 0, abandoned: 0, outstanding: 0 });
    expect(res.metrics.request_latency.count).toBe(12);
  });

  it("mid-drain keeps the drain and its deadline, and the run completes when the last credit settles", async () => {
    const run = await createRun({ stop: { requests: 100 }, drainTimeoutSeconds: 30 });
    const agentId = await join(run);
    const seqs = seqsOf(await lease(run, agentId, 4));
    await call("POST", `/v1/runs/${run.id}/stop`, {});
    await report(run, agentId, [okResult(seqs[0]!)]);
    await restart(run);
    const mid = (await status(run)).body;
    expect(mid).toMatchObject({ phase: "draining", stopReason: "user" });
    expect(mid.counts).toMatchObject({ completed: 1, outstanding: 3 });
    expect((await lease(run, agentId, 1)).body.error.code).toBe("run_draining");
    await report(
      run,
      agentId,
      seqs.slice(1).map((s) => okResult(s)),
    );
    expect((await status(run)).body).toMatchObject({ phase: "complete", outcome: "stopped" });
  });

  it("mid-drain still cuts a stuck agent off at the stored drain deadline", async () => {
    const run = await createRun({ stop: { requests: 100 }, drainTimeoutSeconds: 5 });
    const agentId = await join(run);
    await lease(run, agentId, 2);
    await call("POST", `/v1/runs/${run.id}/stop`, {});
    await restart(run);
    await advanceAndAlarm(run, 5_000);
    const s = (await status(run)).body;
    expect(s).toMatchObject({ phase: "complete", partial: true });
    expect(s.counts).toMatchObject({ abandoned: 2, outstanding: 0 });
  });

  it("mid-grace keeps serving the final results, then the alarm still wipes on time", async () => {
    const run = await createRun({ stop: { requests: 2 }, graceSeconds: 10 });
    const agentId = await join(run);
    const seqs = seqsOf(await lease(run, agentId, 2));
    await report(
      run,
      agentId,
      seqs.map((s) => okResult(s)),
    );
    const final = (await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken })).body;
    await advance(run, 3_000);
    await restart(run);
    const again = (await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken })).body;
    expect(again.metrics).toEqual(final.metrics);
    expect(again.timeseries).toEqual(final.timeseries);
    expect(again.counts).toEqual(final.counts);
    expect(again.wipeAt).toBe(final.wipeAt);
    // What it serves from is final: the metrics document instead of sketches, no open buckets.
    const stored = await runInDurableObject(run.stub, (_i, state) =>
      Object.fromEntries(
        state.storage.sql
          .exec("SELECT k, v FROM meta WHERE k IN ('metrics', 'timeseries')")
          .toArray()
          .map((r) => [r.k, JSON.parse(String(r.v))]),
      ),
    );
    expect(stored.metrics.distributions).toBeNull();
    expect(stored.metrics.final.document).toEqual(final.metrics);
    expect(stored.timeseries.buckets.every((b: { latency: object | null }) => b.latency === null || !("k" in b.latency))).toBe(true);
    await advance(run, 7_000);
    expect(await runDurableObjectAlarm(run.stub)).toBe(true);
    expect((await status(run)).status).toBe(404);
  });
});
