// The one alarm: idempotent, recomputed from stored state, and the grace window.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { advance, advanceAndAlarm, call, createRun, join, lease, okResult, report, status } from "./helpers";
import type { TestRun } from "./helpers";

async function completeRun(run: TestRun): Promise<void> {
  const agentId = await join(run);
  const seqs = (await lease(run, agentId, 2)).body.credits.map((c: { seq: number }) => c.seq);
  const r = await report(
    run,
    agentId,
    seqs.map((s: number) => okResult(s)),
  );
  expect(r.status).toBe(200);
}

const alarmAt = (run: TestRun) => runInDurableObject(run.stub, (_i, state) => state.storage.getAlarm());

describe("the alarm", () => {
  it("run twice at the same moment changes nothing the second time", async () => {
    const run = await createRun({ stop: { requests: 100 }, drainTimeoutSeconds: 1 });
    const agentId = await join(run);
    await lease(run, agentId, 3);
    await call("POST", `/v1/runs/${run.id}/stop`, {});
    await advance(run, 1_000);
    await runInDurableObject(run.stub, (instance) => instance.alarm());
    const once = (await status(run)).body;
    await runInDurableObject(run.stub, (instance) => instance.alarm());
    const twice = (await status(run)).body;
    expect(twice.counts).toEqual(once.counts);
    expect(twice.completedAt).toBe(once.completedAt);
    expect(once.counts).toMatchObject({ abandoned: 3, outstanding: 0 });
  });

  it("fired early applies nothing and is set again for the real deadline", async () => {
    const run = await createRun({ stop: { requests: 100 } });
    const agentId = await join(run);
    await lease(run, agentId, 1);
    const expiry = await alarmAt(run);
    expect(expiry).toBe(run.clock + 15_000);
    await advanceAndAlarm(run, 10_000);
    expect((await status(run)).body.counts.abandoned).toBe(0);
    expect(await alarmAt(run)).toBe(expiry);
  });

  it("is set to the wipe time once the run is complete, and cleared by the wipe", async () => {
    const run = await createRun({ stop: { requests: 2 }, graceSeconds: 7 });
    await completeRun(run);
    expect(await alarmAt(run)).toBe(run.clock + 7_000);
    await advanceAndAlarm(run, 7_000);
    expect(await alarmAt(run)).toBeNull();
    expect(await runDurableObjectAlarm(run.stub)).toBe(false);
  });
});

describe("the grace window", () => {
  it("with graceSeconds 0 serves the completing response, then wipes", async () => {
    const run = await createRun({ stop: { requests: 2 }, graceSeconds: 0 });
    const agentId = await join(run);
    const seqs = (await lease(run, agentId, 2)).body.credits.map((c: { seq: number }) => c.seq);
    const completing = await report(
      run,
      agentId,
      seqs.map((s: number) => okResult(s)),
    );
    expect(completing.status).toBe(200);
    expect(completing.body).toMatchObject({ accepted: 2, stop: true });
    const after = await status(run);
    expect(after.status).toBe(404);
    expect(after.body.error.code).toBe("run_not_found");
  });

  it("with graceSeconds 300 serves complete for 300 s and is gone at 300 s", async () => {
    const run = await createRun({ stop: { requests: 2 }, graceSeconds: 300 });
    await completeRun(run);
    await advanceAndAlarm(run, 299_999);
    expect((await status(run)).body.status).toBe("complete");
    await advanceAndAlarm(run, 1);
    expect((await status(run)).status).toBe(404);
  });

  it("defaults to POST_COMPLETE_GRACE_SECONDS when the spec does not say", async () => {
    const res = await call("POST", "/v1/runs", { body: { target: { url: "builtin:mock" }, stop: { requests: 1 }, agents: { edge: 0 } } });
    expect(res.status).toBe(201);
    const stub = (await import("cloudflare:workers")).env.RUN_COORDINATOR;
    const spec = await runInDurableObject(
      stub.get(stub.idFromString(res.body.id)),
      (_i, state) => state.storage.sql.exec("SELECT v FROM meta WHERE k = 'spec'").one().v,
    );
    expect(JSON.parse(String(spec)).graceSeconds).toBe(5);
  });
});

describe("a long-poll waiter on a run with graceSeconds 0", () => {
  it("gets the final results of the completing report, not a 404", async () => {
    const run = await createRun({ stop: { requests: 2 }, graceSeconds: 0 });
    const agentId = await join(run);
    const seqs = (await lease(run, agentId, 2)).body.credits.map((c: { seq: number }) => c.seq);
    const waiting = call("GET", `/v1/runs/${run.id}/results?wait=30`, { token: run.readToken });
    await report(
      run,
      agentId,
      seqs.map((s: number) => okResult(s)),
    );
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ final: true, phase: "complete" });
    expect(res.body.counts.completed).toBe(2);
    expect((await status(run)).status).toBe(404);
  });
});
