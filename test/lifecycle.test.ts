// The run lifecycle end to end over HTTP, with an external agent speaking wire protocol v1.
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { advance, advanceAndAlarm, call, createRun, expectLedger, join, lease, okResult, report, status, uid } from "./helpers";
import type { TestRun } from "./helpers";

/** Runs an agent to exhaustion: lease, settle everything, repeat while credits come. */
async function drive(run: TestRun, agentId: string, want: number): Promise<number> {
  let settled = 0;
  for (;;) {
    const l = await lease(run, agentId, want);
    if (l.status !== 200) return settled;
    const credits = l.body.credits as Array<{ seq: number }>;
    if (credits.length === 0) return settled;
    const r = await report(
      run,
      agentId,
      credits.map((c) => okResult(c.seq)),
    );
    expect(r.status).toBe(200);
    settled += r.body.accepted;
    if (r.body.stop) return settled;
  }
}

describe("a run driven by one external agent", () => {
  it("grants exactly the budget, counts every request, serves complete for the grace window, then answers 404", async () => {
    const run = await createRun({ load: { concurrency: 4 }, stop: { requests: 40 }, graceSeconds: 5 });
    const agentId = await join(run);
    expect(await drive(run, agentId, 8)).toBe(40);

    const res = await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ phase: "complete", status: "complete", outcome: "completed", final: true, partial: false });
    expect(res.body.counts).toEqual({ granted: 40, returned: 0, completed: 40, failed: 0, abandoned: 0, outstanding: 0 });
    expect(res.body.metrics.request_count.avg).toBe(40);
    expect(res.body.metrics.request_latency.count).toBe(40);
    expect(res.body.metrics.request_latency.min).toBeCloseTo(100, 0);
    expect(res.body.metrics.time_to_first_token.p50).toBeCloseTo(20, 0);
    const wipeAt = Date.parse(res.body.wipeAt);
    expect(wipeAt - Date.parse(res.body.completedAt)).toBe(5_000);

    await advanceAndAlarm(run, 4_999);
    expect((await status(run)).status).toBe(200);
    await advanceAndAlarm(run, 1);
    for (const path of ["", "/results"]) {
      const gone = await call("GET", `/v1/runs/${run.id}${path}`, { token: run.readToken });
      expect(gone.status).toBe(404);
      expect(gone.body.error.code).toBe("run_not_found");
    }
    expect((await lease(run, agentId, 1)).body.error.code).toBe("run_not_found");
  });

  it("gives one agent the whole concurrency and never more than two shares of credits outstanding", async () => {
    const run = await createRun({ load: { concurrency: 4 }, stop: { requests: 100 } });
    const agentId = await join(run);
    const first = await lease(run, agentId, 100);
    expect(first.body.concurrency).toBe(4);
    expect(first.body.credits).toHaveLength(8);
    const more = await lease(run, agentId, 100);
    expect(more.body.credits).toHaveLength(0);
    expect(more.body.stop).toBe(false);
  });

  it("splits the concurrency between agents so that the shares never sum above it", async () => {
    const run = await createRun({ load: { concurrency: 5 }, stop: { requests: 100 } });
    const a = await join(run, "a");
    const b = await join(run, "b");
    const la = await lease(run, a, 1);
    const lb = await lease(run, b, 1);
    expect(la.body.concurrency + lb.body.concurrency).toBeLessThanOrEqual(5);
    const sa = await report(run, a, [], { inflight: 0 });
    const sb = await report(run, b, [], { inflight: 0 });
    expect(sa.body.concurrency + sb.body.concurrency).toBeLessThanOrEqual(5);
    expect(sa.body.concurrency + sb.body.concurrency).toBe(5);
  });

  it("moves capacity to a newcomer only after the old holder shows it applied its smaller share", async () => {
    const run = await createRun({ load: { concurrency: 4 }, stop: { requests: 1000 } });
    const a = await join(run, "a");
    expect((await lease(run, a, 1)).body.concurrency).toBe(4);
    const b = await join(run, "b");
    expect((await lease(run, b, 1)).body.concurrency).toBe(0); // a may still have 4 in flight
    const shrink = await report(run, a, [], { inflight: 4 });
    expect(shrink.body.concurrency).toBe(2);
    expect((await lease(run, b, 1)).body.concurrency).toBe(0); // a has not shown it applied 2
    await report(run, a, [], { inflight: 2 });
    expect((await lease(run, b, 1)).body.concurrency).toBe(2);
  });
});

describe("stopping a run", () => {
  it("never grants a credit after POST /stop and completes the moment the last outstanding credit settles", async () => {
    const run = await createRun({ stop: { requests: 100 } });
    const agentId = await join(run);
    const l = await lease(run, agentId, 8);
    const seqs = (l.body.credits as Array<{ seq: number }>).map((c) => c.seq);
    const stopped = await call("POST", `/v1/runs/${run.id}/stop`, { body: { mode: "graceful" } });
    expect(stopped.status).toBe(202);
    expect(stopped.body.phase).toBe("draining");

    const refused = await lease(run, agentId, 8);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("run_draining");
    const joinRefused = await call("POST", `/v1/runs/${run.id}/agents`, { token: run.agentToken, body: {} });
    expect(joinRefused.body.error.code).toBe("run_draining");

    const partial = await report(
      run,
      agentId,
      seqs.slice(0, 5).map((s) => okResult(s)),
    );
    expect(partial.body).toMatchObject({ accepted: 5, stop: true, finishLeased: false });
    expect((await status(run)).body.phase).toBe("draining");
    const last = await report(run, agentId, [], { returned: seqs.slice(5) });
    expect(last.body.accepted).toBe(3);
    const s = (await status(run)).body;
    expect(s).toMatchObject({ phase: "complete", status: "cancelled", outcome: "stopped", partial: false });
    expect(s.counts).toEqual({ granted: 8, returned: 3, completed: 5, failed: 0, abandoned: 0, outstanding: 0 });
  });

  it("answers a repeated stop with 202 and changes nothing", async () => {
    const run = await createRun();
    const agentId = await join(run);
    await lease(run, agentId, 2);
    const a = await call("POST", `/v1/runs/${run.id}/stop`, {});
    const b = await call("POST", `/v1/runs/${run.id}/stop`, { body: { mode: "graceful" } });
    expect(b.status).toBe(202);
    expect(b.body.counts).toEqual(a.body.counts);
    expect(b.body.drainStartedAt).toBe(a.body.drainStartedAt);
  });

  it("force stop abandons outstanding credits at once", async () => {
    const run = await createRun();
    const agentId = await join(run);
    await lease(run, agentId, 6);
    const res = await call("POST", `/v1/runs/${run.id}/stop`, { body: { mode: "force" } });
    expect(res.body).toMatchObject({ phase: "complete", status: "cancelled", partial: true });
    expect(res.body.counts).toMatchObject({ granted: 6, abandoned: 6, outstanding: 0 });
    const late = await report(run, agentId, [okResult(0)]);
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe("run_complete");
  });

  it("cuts a stuck agent off at the drain deadline, counting its credits abandoned", async () => {
    const run = await createRun({ drainTimeoutSeconds: 10, stop: { requests: 100 } });
    const agentId = await join(run);
    const seqs = ((await lease(run, agentId, 4)).body.credits as Array<{ seq: number }>).map((c) => c.seq);
    await call("POST", `/v1/runs/${run.id}/stop`, {});
    await report(run, agentId, [okResult(seqs[0]!)]);
    // The agent keeps heartbeating (so its lease never expires) but never finishes.
    await advance(run, 9_000);
    await report(run, agentId, []);
    await advanceAndAlarm(run, 999);
    expect((await status(run)).body.phase).toBe("draining");
    await advanceAndAlarm(run, 1);
    const s = (await status(run)).body;
    expect(s).toMatchObject({ phase: "complete", partial: true });
    expect(s.counts).toMatchObject({ completed: 1, abandoned: 3, outstanding: 0 });
    expectLedger(s.counts);
  });
});

describe("the duration stop condition", () => {
  it("begins the drain when the duration has elapsed since the first credit", async () => {
    const run = await createRun({ stop: { durationSeconds: 2 } });
    const agentId = await join(run);
    await advance(run, 500); // time before the first credit does not count
    const seqs = ((await lease(run, agentId, 2)).body.credits as Array<{ seq: number }>).map((c) => c.seq);
    await report(run, agentId, []); // heartbeat keeps the lease alive
    await advanceAndAlarm(run, 1_999);
    expect((await status(run)).body.phase).toBe("running");
    await advanceAndAlarm(run, 1);
    expect((await status(run)).body.phase).toBe("draining");
    const last = await report(
      run,
      agentId,
      seqs.map((s) => okResult(s)),
    );
    expect(last.body.stop).toBe(true);
    expect((await status(run)).body).toMatchObject({ phase: "complete", status: "complete", outcome: "completed" });
  });
});

describe("agents that die", () => {
  it("counts an expired agent's credits abandoned at lease expiry, and the run still completes with another agent", async () => {
    const run = await createRun({ load: { concurrency: 4 }, stop: { requests: 20 } });
    const dead = await join(run, "dead");
    const live = await join(run, "live");
    const held = (await lease(run, dead, 4)).body.credits.length;
    expect(held).toBeGreaterThan(0);
    await advanceAndAlarm(run, 15_000); // both leases expire: the live one revives when it calls
    const s1 = (await status(run)).body;
    expect(s1.counts.abandoned).toBe(held);
    expect(s1.partial).toBe(true);
    expect(s1.phase).toBe("running");
    await drive(run, live, 4);
    const s2 = (await status(run)).body;
    expect(s2.phase).toBe("complete");
    expect(s2.counts.granted - s2.counts.returned).toBe(20);
    expect(s2.counts.completed).toBe(20 - held);
    expectLedger(s2.counts);
  });
});

describe("idempotent agent calls", () => {
  it("answers a repeated join requestId with the agent it created instead of a second one", async () => {
    const run = await createRun({ stop: { requests: 100 } });
    const joinWith = (requestId: string) =>
      call("POST", `/v1/runs/${run.id}/agents`, { token: run.agentToken, body: { name: "a", requestId } });
    const first = await joinWith("j-1");
    const again = await joinWith("j-1");
    const other = await joinWith("j-2");
    expect([first.status, again.status, other.status]).toEqual([200, 200, 200]);
    expect(again.body.agentId).toBe(first.body.agentId);
    expect(other.body.agentId).not.toBe(first.body.agentId);
    expect((await status(run)).body.agents).toHaveLength(2);
  });

  it("answers a repeated lease requestId with the same credits instead of granting new ones", async () => {
    const run = await createRun({ stop: { requests: 100 } });
    const agentId = await join(run);
    const requestId = uid("lease");
    const first = await lease(run, agentId, 3, requestId);
    const again = await lease(run, agentId, 3, requestId);
    expect(again.body.credits).toEqual(first.body.credits);
    expect(again.body.leaseId).toBe(first.body.leaseId);
    expect((await status(run)).body.counts.granted).toBe(3);
  });

  it("returns the credits of a lease whose answer was lost when the retry arrives after the drain began", async () => {
    const run = await createRun({ stop: { requests: 100 } });
    const agentId = await join(run);
    const requestId = uid("lease");
    await lease(run, agentId, 3, requestId);
    await call("POST", `/v1/runs/${run.id}/stop`, {});
    const retry = await lease(run, agentId, 3, requestId);
    expect(retry.status).toBe(409);
    const s = (await status(run)).body;
    expect(s).toMatchObject({ phase: "complete", partial: false });
    expect(s.counts).toMatchObject({ granted: 3, returned: 3, outstanding: 0 });
  });

  it("answers a repeated lease with its own credits still held, not those settled since or granted by later leases", async () => {
    const run = await createRun({ stop: { requests: 100 } });
    const agentId = await join(run);
    const requestId = uid("lease");
    const first = ((await lease(run, agentId, 3, requestId)).body.credits as Array<{ seq: number }>).map((c) => c.seq);
    const later = ((await lease(run, agentId, 2)).body.credits as Array<{ seq: number }>).map((c) => c.seq);
    await report(run, agentId, [okResult(first[1]!)]);
    const again = await lease(run, agentId, 3, requestId);
    expect(again.status).toBe(200);
    expect((again.body.credits as Array<{ seq: number }>).map((c) => c.seq)).toEqual([first[0], first[2]]);
    expect(later.every((s) => !first.includes(s))).toBe(true);
    expect((await status(run)).body.counts).toMatchObject({ granted: 5, completed: 1, outstanding: 4 });
  });

  it("keeps no idempotency record once the run is complete: a retried report is refused and changes nothing", async () => {
    const run = await createRun({ stop: { requests: 3 } });
    const agentId = await join(run);
    const seqs = ((await lease(run, agentId, 3)).body.credits as Array<{ seq: number }>).map((c) => c.seq);
    const results = seqs.map((s) => okResult(s));
    const first = await report(run, agentId, results, { reportId: "r-last" });
    expect(first.body).toMatchObject({ accepted: 3, stop: true });
    const calls = await runInDurableObject(run.stub, (_i, state) =>
      Number(state.storage.sql.exec("SELECT COUNT(*) AS n FROM calls").one().n),
    );
    expect(calls).toBe(0);
    const again = await report(run, agentId, results, { reportId: "r-last" });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("run_complete");
    const s = (await status(run)).body;
    expect(s.phase).toBe("complete");
    expect(s.counts).toMatchObject({ granted: 3, completed: 3, outstanding: 0 });
  });

  it("counts a repeated reportId once and answers it the same way", async () => {
    const run = await createRun({ stop: { requests: 100 } });
    const agentId = await join(run);
    const seqs = ((await lease(run, agentId, 3)).body.credits as Array<{ seq: number }>).map((c) => c.seq);
    const results = seqs.map((s) => okResult(s));
    const first = await report(run, agentId, results, { reportId: "r-1" });
    const again = await report(run, agentId, results, { reportId: "r-1" });
    expect(again.body.accepted).toBe(first.body.accepted);
    expect(again.body.duplicates).toBe(first.body.duplicates);
    const s = (await status(run)).body;
    expect(s.counts.completed).toBe(3);
  });

  it("acknowledges a seq settled before, or repeated within a report, as a duplicate", async () => {
    const run = await createRun({ stop: { requests: 100 } });
    const agentId = await join(run);
    const [a, b] = ((await lease(run, agentId, 2)).body.credits as Array<{ seq: number }>).map((c) => c.seq);
    await report(run, agentId, [okResult(a!)]);
    const r = await report(run, agentId, [okResult(b!), okResult(a!), okResult(b!)]);
    expect(r.body).toMatchObject({ accepted: 1, duplicates: 2 });
    expect((await status(run)).body.counts.completed).toBe(2);
  });

  it("settles credits reported out of order", async () => {
    const run = await createRun({ stop: { requests: 6 } });
    const agentId = await join(run);
    const seqs = ((await lease(run, agentId, 6)).body.credits as Array<{ seq: number }>).map((c) => c.seq);
    await report(
      run,
      agentId,
      [...seqs]
        .reverse()
        .slice(0, 3)
        .map((s) => okResult(s)),
    );
    await report(
      run,
      agentId,
      [...seqs]
        .reverse()
        .slice(3)
        .map((s) => okResult(s, { ok: false, error: { code: "http_500", type: "http" } })),
    );
    const res = (await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken })).body;
    expect(res.counts).toMatchObject({ completed: 3, failed: 3, outstanding: 0 });
    expect(res.phase).toBe("complete");
    expect(res.errors).toEqual([{ code: "http_500", type: "http", count: 3 }]);
    expect(res.metrics.request_latency.count).toBe(3);
  });

  it("refuses a report naming a never-granted seq, and changes nothing", async () => {
    const run = await createRun({ stop: { requests: 100 } });
    const agentId = await join(run);
    const [a] = ((await lease(run, agentId, 1)).body.credits as Array<{ seq: number }>).map((c) => c.seq);
    const before = (await status(run)).body.counts;
    const r = await report(run, agentId, [okResult(a!), okResult(999)]);
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe("unknown_seq");
    expect((await status(run)).body.counts).toEqual(before);
  });

  it("refuses a report settling another agent's credit, and changes nothing", async () => {
    const run = await createRun({ stop: { requests: 100 } });
    const a = await join(run, "a");
    const b = await join(run, "b");
    await report(run, a, [], { inflight: 0 });
    const [seq] = ((await lease(run, b, 1)).body.credits as Array<{ seq: number }>).map((c) => c.seq);
    expect(seq).toBeDefined();
    const r = await report(run, a, [okResult(seq!)]);
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe("foreign_seq");
    expect((await status(run)).body.counts.outstanding).toBe(1);
  });
});

describe("rate mode", () => {
  it("hands out the schedule's slots ahead of time but never one at or after the end of the duration", async () => {
    const run = await createRun({ load: { rate: 10, arrival: "constant" }, stop: { durationSeconds: 1.5 } });
    const agentId = await join(run);
    const all: number[] = [];
    for (let i = 0; i < 5; i++) {
      const l = await lease(run, agentId, 100);
      if (l.status === 409) break; // the duration has passed: draining
      all.push(...(l.body.credits as Array<{ at: number }>).map((c) => c.at));
      await report(run, agentId, []);
      await advance(run, 400);
    }
    expect(all.length).toBeGreaterThan(0);
    expect(Math.max(...all)).toBeLessThan(1_500);
    expect(all).toEqual([...all].sort((a, b) => a - b));
    expect(all.slice(0, 3)).toEqual([0, 100, 200]);
  });
});
