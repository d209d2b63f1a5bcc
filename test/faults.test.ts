// Faults at every step (issue 6): dead agents, lost answers, duplicate/late/stale
// reports, alarms that fire twice, early or late, concurrent stops, eviction and abort
// in every phase, clock skew. Each ends with the ledger exact.
import { abortAllDurableObjects, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { RunCoordinator } from "../durable/RunCoordinator";
import { advance, advanceAndAlarm, call, createRun, expectLedger, join, lease, okResult, report, setClock, status, uid } from "./helpers";
import type { TestRun } from "./helpers";

const seqsOf = (res: { body: { credits: Array<{ seq: number }> } }) => res.body.credits.map((c) => c.seq);

async function restart(run: TestRun, how: "evict" | "abort"): Promise<void> {
  if (how === "evict") await evictDurableObject(run.stub);
  else {
    await abortAllDurableObjects();
    // An aborted object's old stubs are broken; callers get a fresh one, as the Worker does per request.
    run.stub = env.RUN_COORDINATOR.get(run.stub.id);
  }
  await setClock(run, run.clock);
}

describe("agents that die", () => {
  it("an agent that dies right after joining holds no share once its lease expires", async () => {
    const run = await createRun({ load: { concurrency: 4 }, stop: { requests: 8 } });
    await join(run, "dies");
    const live = await join(run, "lives");
    expect((await lease(run, live, 8)).body.concurrency).toBe(2); // the dead one still holds half
    await advance(run, 14_000);
    await report(run, live, [], { inflight: 0 }); // the live one heartbeats
    await advanceAndAlarm(run, 1_000);
    const r = await report(run, live, [], { inflight: 0 });
    expect(r.body.concurrency).toBe(4);
    const s = (await status(run)).body;
    expect(s.agents.find((a: { name: string }) => a.name === "dies").alive).toBe(false);
    expect(s.counts.abandoned).toBe(0); // it held nothing
  });

  it("an agent that dies after leasing has its credits abandoned at expiry, and the drain finishes", async () => {
    const run = await createRun({ stop: { requests: 6 } });
    const agentId = await join(run);
    const seqs = seqsOf(await lease(run, agentId, 6));
    expect(seqs).toHaveLength(6);
    expect((await status(run)).body.phase).toBe("draining"); // the budget is fully granted
    await advanceAndAlarm(run, 15_000);
    const s = (await status(run)).body;
    expect(s).toMatchObject({ phase: "complete", partial: true });
    expect(s.counts).toMatchObject({ granted: 6, abandoned: 6, outstanding: 0 });
  });

  it("a report whose answer was lost is retried with the same reportId and counted once, even after eviction", async () => {
    const run = await createRun({ stop: { requests: 10 } });
    const agentId = await join(run);
    const seqs = seqsOf(await lease(run, agentId, 4));
    const results = seqs.map((s) => okResult(s));
    await report(run, agentId, results, { reportId: "lost-answer" });
    await restart(run, "evict");
    const retry = await report(run, agentId, results, { reportId: "lost-answer" });
    expect(retry.body).toMatchObject({ accepted: 4, duplicates: 0 });
    expect((await status(run)).body.counts.completed).toBe(4);
  });

  it("a stale report for credits abandoned at expiry is acknowledged as duplicates and counts nothing", async () => {
    const run = await createRun({ stop: { requests: 100 } });
    const agentId = await join(run);
    const seqs = seqsOf(await lease(run, agentId, 3));
    await advanceAndAlarm(run, 15_000);
    const late = await report(
      run,
      agentId,
      seqs.map((s) => okResult(s)),
    );
    expect(late.body).toMatchObject({ accepted: 0, duplicates: 3 });
    const s = (await status(run)).body;
    expect(s.counts).toMatchObject({ completed: 0, abandoned: 3, outstanding: 0 });
    expect(s.agents[0].alive).toBe(true); // it came back: it may lease again
    expect((await lease(run, agentId, 1)).body.credits).toHaveLength(1);
  });
});

describe("alarms", () => {
  it("fired late, after several deadlines passed, applies them in order in one go", async () => {
    const run = await createRun({ stop: { durationSeconds: 2 }, drainTimeoutSeconds: 3, graceSeconds: 5 });
    const agentId = await join(run);
    await lease(run, agentId, 2);
    await report(run, agentId, []);
    // Duration (2 s), drain deadline (2 + 3 s) and wipe (… + 5 s) have all passed.
    await advance(run, 60_000);
    expect(await runDurableObjectAlarm(run.stub)).toBe(true);
    expect((await status(run)).status).toBe(404);
  });

  it("fired late within the grace window leaves the run complete and wipes it at the wipe time", async () => {
    const run = await createRun({ stop: { durationSeconds: 1 }, drainTimeoutSeconds: 1, graceSeconds: 30 });
    const agentId = await join(run);
    await lease(run, agentId, 1);
    await report(run, agentId, []);
    await advanceAndAlarm(run, 10_000);
    const s = (await status(run)).body;
    expect(s).toMatchObject({ phase: "complete", partial: true });
    expect(Date.parse(s.completedAt) - Date.parse(s.startedAt)).toBe(2_000); // drain began at the duration deadline
    expect(Date.parse(s.wipeAt) - Date.parse(s.completedAt)).toBe(30_000);
  });
});

describe("concurrent and repeated stops", () => {
  it("a graceful and a force stop racing leave one consistent outcome", async () => {
    const run = await createRun({ stop: { requests: 100 } });
    const agentId = await join(run);
    await lease(run, agentId, 5);
    const [a, b, c] = await Promise.all([
      call("POST", `/v1/runs/${run.id}/stop`, { body: { mode: "graceful" } }),
      call("POST", `/v1/runs/${run.id}/stop`, { body: { mode: "force" } }),
      call("POST", `/v1/runs/${run.id}/stop`, { body: { mode: "graceful" } }),
    ]);
    for (const r of [a, b, c]) expect(r.status).toBe(202);
    const s = (await status(run)).body;
    expect(s).toMatchObject({ phase: "complete", status: "cancelled", outcome: "stopped", partial: true });
    expect(s.counts).toMatchObject({ granted: 5, abandoned: 5, outstanding: 0 });
  });
});

describe("restarts in every phase", () => {
  for (const how of ["evict", "abort"] as const) {
    it(`(${how}) in created, running, draining and grace loses nothing`, async () => {
      const run = await createRun({ stop: { requests: 6 }, graceSeconds: 20 });
      await restart(run, how);
      expect((await status(run)).body.phase).toBe("created");
      const agentId = await join(run);
      const seqs = seqsOf(await lease(run, agentId, 4));
      await restart(run, how);
      expect((await status(run)).body).toMatchObject({ phase: "running", counts: { granted: 4, outstanding: 4 } });
      await report(
        run,
        agentId,
        seqs.map((s) => okResult(s)),
      );
      const rest = seqsOf(await lease(run, agentId, 4));
      expect(rest).toHaveLength(2);
      await restart(run, how);
      expect((await status(run)).body.phase).toBe("draining");
      await report(
        run,
        agentId,
        rest.map((s) => okResult(s)),
      );
      await restart(run, how);
      const s = (await status(run)).body;
      expect(s).toMatchObject({ phase: "complete", counts: { granted: 6, completed: 6, outstanding: 0 } });
      await advanceAndAlarm(run, 20_000);
      expect((await status(run)).status).toBe(404);
    });
  }
});

describe("clock skew", () => {
  it("a result ending before the run or far in the future lands in the first or a late bucket, never breaking the series", async () => {
    const run = await createRun({ stop: { requests: 3 } });
    const agentId = await join(run);
    const seqs = seqsOf(await lease(run, agentId, 3));
    await report(run, agentId, [
      okResult(seqs[0]!, { endMs: 0 }),
      okResult(seqs[1]!, { endMs: 3_600_000 }), // an agent clock an hour fast
      okResult(seqs[2]!),
    ]);
    const res = (await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken })).body;
    expect(res.counts.completed).toBe(3);
    const total = res.timeseries.buckets.reduce((n: number, b: { completed: number }) => n + b.completed, 0);
    expect(total).toBe(3);
    expect(JSON.stringify(res).length).toBeLessThan(200_000);
  });

  it("durations come from the coordinator's clock: an agent's own clock never moves deadlines", async () => {
    const run = await createRun({ stop: { durationSeconds: 5 } });
    const agentId = await join(run);
    await lease(run, agentId, 1);
    // Reports carry no agent timestamps the coordinator trusts for deadlines.
    await report(run, agentId, [], { reportId: uid("skewed") });
    await advanceAndAlarm(run, 4_999);
    expect((await status(run)).body.phase).toBe("running");
    await advanceAndAlarm(run, 1);
    expect((await status(run)).body.phase).toBe("draining");
  });
});

describe("the ledger after every fault above", () => {
  it("holds for a run that went through expiry, eviction, a lost answer and a stop", async () => {
    const run = await createRun({ load: { concurrency: 4 }, stop: { requests: 50 } });
    const a = await join(run, "a");
    const b = await join(run, "b");
    const la = seqsOf(await lease(run, a, 4));
    await report(run, b, [], { inflight: 0 });
    const lb = seqsOf(await lease(run, b, 4));
    await advance(run, 14_000);
    await report(
      run,
      b,
      lb.map((s) => okResult(s)),
      { reportId: "b1", inflight: 0 },
    );
    await advanceAndAlarm(run, 1_000); // a expires
    await restart(run, "evict");
    await report(
      run,
      b,
      lb.map((s) => okResult(s)),
      { reportId: "b1", inflight: 0 },
    ); // retry
    await report(
      run,
      a,
      la.map((s) => okResult(s)),
    ); // stale
    await call("POST", `/v1/runs/${run.id}/stop`, {});
    const s = (await status(run)).body;
    expectLedger(s.counts);
    expect(s.counts).toMatchObject({ completed: lb.length, abandoned: la.length, outstanding: 0 });
    expect(s.phase).toBe("complete");
    await runInDurableObject(run.stub, (instance: RunCoordinator) => instance.alarm());
    expect((await status(run)).body.counts).toEqual(s.counts);
  });
});

describe("an agent that restarted", () => {
  it("settles everything it still holds as failed (agent_restarted) with one report, never to be sent again", async () => {
    const run = await createRun({ stop: { requests: 10 } });
    const agentId = await join(run);
    const seqs = seqsOf(await lease(run, agentId, 6));
    await report(run, agentId, [okResult(seqs[0]!)]);
    const r = await call("POST", `/v1/runs/${run.id}/reports`, {
      token: run.agentToken,
      body: { agentId, reportId: uid("restart"), inflight: 0, results: [okResult(seqs[1]!)], returned: [], restarted: true },
    });
    expect(r.status).toBe(200);
    expect(r.body.accepted).toBe(5);
    const res = (await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken })).body;
    expect(res.counts).toMatchObject({ granted: 6, completed: 2, failed: 4, outstanding: 0 });
    expect(res.errors).toEqual([{ code: "agent_restarted", type: "agent", count: 4 }]);
    expect(res.agents[0].outstanding).toBe(0);
    // It goes on with fresh credits.
    expect(seqsOf(await lease(run, agentId, 2)).every((s) => s >= 6)).toBe(true);
  });
});
