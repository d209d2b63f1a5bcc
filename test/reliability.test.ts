// The run's reliability guarantees, each one a defect found by attacking a local server
// (docs/SECURITY.md lists them): one webhook at a time and nobody waits on it, 404 only
// for unknown or wiped runs, no run waits forever for agents, bounded credits in rate
// mode, retried joins after the drain began, and a time series that stays per-second.

import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { RpcResult } from "../contract/errors";
import type { Results, Snapshot } from "../contract/results";
import { sha256Hex } from "../contract/tokens";
import type { RunCoordinator } from "../durable/RunCoordinator";
import { advance, advanceAndAlarm, call, createRun, expectLedger, join, lease, okResult, report, setClock, status, uid } from "./helpers";
import type { TestRun } from "./helpers";

/**
 * A receiver at the edge of the system that records each POST and answers only when
 * told to. It waits on its own timers inside the object: a promise resolved from the
 * test's context would be I/O shared across contexts, which workerd refuses.
 */
async function slowReceiver(run: TestRun) {
  const posts: string[] = [];
  const gate = { open: false };
  await runInDurableObject(run.stub, (instance: RunCoordinator) => {
    instance.fetchOut = async (input, init) => {
      posts.push(await new Request(input, init).text());
      while (!gate.open) await new Promise((r) => setTimeout(r, 5));
      return new Response("ok");
    };
  });
  return {
    posts,
    answerAll: () => {
      gate.open = true;
    },
  };
}

async function finish(run: TestRun, agentId: string, n: number): Promise<void> {
  const seqs = (await lease(run, agentId, n)).body.credits.map((c: { seq: number }) => c.seq);
  const r = await report(
    run,
    agentId,
    seqs.map((s: number) => okResult(s)),
  );
  expect(r.status, JSON.stringify(r.body)).toBe(200);
}

describe("the completion webhook", () => {
  it("is POSTed once by the alarm while the receiver hangs, and reads made meanwhile neither wait for it nor POST again", async () => {
    const run = await createRun({ stop: { requests: 2 }, graceSeconds: 60, notify: { url: "https://hooks.example.com/slow" } });
    const receiver = await slowReceiver(run);
    const agentId = await join(run);
    await finish(run, agentId, 2);
    // Reads right after completion: the webhook is due, and none of them may deliver it.
    const reads = await Promise.all(Array.from({ length: 5 }, () => status(run)));
    for (const r of reads) expect(r.body.phase).toBe("complete");
    expect(receiver.posts).toHaveLength(0);

    const alarm = runDurableObjectAlarm(run.stub);
    while (receiver.posts.length === 0) await new Promise((r) => setTimeout(r, 5));
    // The alarm's POST is hanging: more readers come and go, and stream events too.
    const during = await Promise.all([
      ...Array.from({ length: 5 }, () => status(run)),
      call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken }),
    ]);
    for (const r of during) expect(r.status).toBe(200);
    expect(receiver.posts).toHaveLength(1);
    receiver.answerAll();
    await alarm;
    await advanceAndAlarm(run, 10_000);
    expect(receiver.posts).toHaveLength(1);
    expect(JSON.parse(receiver.posts[0]!)).toMatchObject({ id: run.id, final: true });
  });

  it("holds a graceSeconds 0 run until its first attempt, then the run is wiped", async () => {
    const run = await createRun({ stop: { requests: 1 }, graceSeconds: 0, notify: { url: "https://hooks.example.com/zero" } });
    const posts: number[] = [];
    await runInDurableObject(run.stub, (instance: RunCoordinator) => {
      instance.fetchOut = async () => {
        posts.push(1);
        return new Response("ok");
      };
    });
    const agentId = await join(run);
    await finish(run, agentId, 1);
    // A read right after completion does not wipe the run before its webhook was tried.
    expect((await status(run)).body.phase).toBe("complete");
    await runDurableObjectAlarm(run.stub);
    expect(posts).toHaveLength(1);
    expect((await status(run)).status).toBe(404);
  });
});

describe("404 means unknown or wiped, and nothing else", () => {
  it("a force stop raced by 150 empty reports: every report gets 200 or 409, never 404", async () => {
    const run = await createRun({ stop: { requests: 40 } });
    const agentId = await join(run);
    await lease(run, agentId, 4);
    const stop = call("POST", `/v1/runs/${run.id}/stop`, { body: { mode: "force" } });
    const reports = Array.from({ length: 150 }, () => report(run, agentId, []));
    const answers = await Promise.all([stop, ...reports]);
    expect(answers[0]!.status).toBe(202);
    const codes = new Set(answers.slice(1).map((r) => r.status));
    expect(
      [...codes].every((c) => c === 200 || c === 409),
      JSON.stringify([...codes]),
    ).toBe(true);
    expect((await status(run)).status).toBe(200);
  });

  it("a late report (409) while the webhook is pending leaves the run readable", async () => {
    const run = await createRun({ stop: { requests: 2 }, graceSeconds: 120, notify: { url: "https://hooks.example.com/pending" } });
    const receiver = await slowReceiver(run);
    const agentId = await join(run);
    await finish(run, agentId, 2);
    const alarm = runDurableObjectAlarm(run.stub);
    while (receiver.posts.length === 0) await new Promise((r) => setTimeout(r, 5));
    const late = await report(run, agentId, [okResult(0)]);
    expect(late.status).toBe(409);
    for (let i = 0; i < 4; i++) {
      const r = await status(run);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.phase).toBe("complete");
    }
    receiver.answerAll();
    await alarm;
  });

  it("a refused call inside a transaction does not make the next call of a live run answer 404", async () => {
    const run = await createRun({ stop: { requests: 40 } });
    const agentId = await join(run);
    const bad = await report(run, agentId, [okResult(999)]); // a seq never leased: refused in the transaction
    expect(bad.status).toBeGreaterThanOrEqual(400);
    expect(bad.status).not.toBe(404);
    expect((await lease(run, agentId, 2)).status).toBe(200);
    expect((await status(run)).status).toBe(200);
  });
});

describe("runs whose agents never came, or all died", () => {
  it("a run no agent joined completes at its agent timeout as cancelled (start_timeout), also across an eviction, and is wiped after its grace", async () => {
    const run = await createRun({ agentTimeoutSeconds: 10, graceSeconds: 5 });
    await advanceAndAlarm(run, 9_000);
    expect((await status(run)).body.phase).toBe("created");
    await evictDurableObject(run.stub);
    await setClock(run, run.clock + 1_000);
    await runDurableObjectAlarm(run.stub);
    const s = (await status(run)).body;
    expect(s).toMatchObject({ phase: "complete", status: "cancelled", outcome: "stopped", stopReason: "start_timeout" });
    expect(s.counts.granted).toBe(0);
    await advanceAndAlarm(run, 5_000);
    expect((await status(run)).status).toBe(404);
  });

  it("a run whose only agent died drains with no_agents once the agent timeout has passed since its lease expired", async () => {
    const run = await createRun({ agentTimeoutSeconds: 30, stop: { requests: 100 } });
    const agentId = await join(run);
    await lease(run, agentId, 4);
    await advanceAndAlarm(run, 15_000); // lease TTL: the agent is dead, its credits abandoned
    let s = (await status(run)).body;
    expect(s.phase).toBe("running");
    expect(s.counts.abandoned).toBe(4);
    await advanceAndAlarm(run, 29_999);
    expect((await status(run)).body.phase).toBe("running");
    await advanceAndAlarm(run, 1);
    s = (await status(run)).body;
    expect(s).toMatchObject({ phase: "complete", status: "cancelled", outcome: "stopped", stopReason: "no_agents" });
    expectLedger(s.counts);
  });

  it("an agent that keeps calling keeps the run alive past the agent timeout", async () => {
    const run = await createRun({ agentTimeoutSeconds: 5, stop: { requests: 1_000 } });
    const agentId = await join(run);
    for (let i = 0; i < 6; i++) {
      await advance(run, 2_000);
      expect((await report(run, agentId, [])).status).toBe(200);
    }
    await runDurableObjectAlarm(run.stub);
    expect((await status(run)).body.phase).not.toBe("complete");
  });

  it("refuses an agentTimeoutSeconds outside 1–86,400, naming the field", async () => {
    for (const v of [0, 86_401, 1.5]) {
      const r = await call("POST", "/v1/runs", {
        body: { target: { url: "builtin:mock" }, stop: { requests: 1 }, agentTimeoutSeconds: v },
      });
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.body.error.message).toContain("agentTimeoutSeconds");
    }
  });
});

describe("rate mode", () => {
  it("bounds what an agent that leases and never reports can hold, however long the run", async () => {
    // rate 100/s, in-flight cap 2: the share (2) plus one lease-ahead window (100 × 1 s).
    const run = await createRun({ load: { rate: 100, maxConcurrency: 2 }, stop: { durationSeconds: 600 } });
    const agentId = await join(run);
    const held: number[] = [];
    for (let i = 0; i < 60; i++) {
      const r = await lease(run, agentId, 1_000);
      expect(r.status).toBe(200);
      held.push((await status(run)).body.counts.outstanding);
      await advance(run, 1_000);
    }
    expect(Math.max(...held)).toBeLessThanOrEqual(102);
    // Not growing: the last ten leases hold no more than the first ten.
    expect(Math.max(...held.slice(-10))).toBeLessThanOrEqual(Math.max(...held.slice(0, 10)));
  });
});

describe("joins", () => {
  it("a join retried with the same requestId after the drain began answers the agent it created", async () => {
    const run = await createRun();
    const requestId = uid("join");
    const first = await call("POST", `/v1/runs/${run.id}/agents`, { token: run.agentToken, body: { name: "a", requestId } });
    expect(first.status).toBe(200);
    await lease(run, first.body.agentId, 2);
    expect((await call("POST", `/v1/runs/${run.id}/stop`, { body: { mode: "graceful" } })).status).toBe(202);
    const again = await call("POST", `/v1/runs/${run.id}/agents`, { token: run.agentToken, body: { name: "a", requestId } });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(again.body.agentId).toBe(first.body.agentId);
    const other = await call("POST", `/v1/runs/${run.id}/agents`, { token: run.agentToken, body: { name: "b", requestId: uid("join") } });
    expect(other.status).toBe(409);
  });
});

describe("the time series", () => {
  it("stays per-second when one report carries end times far outside the run's clock window", async () => {
    const run = await createRun({ stop: { requests: 4 } });
    const agentId = await join(run);
    const seqs = (await lease(run, agentId, 4)).body.credits.map((c: { seq: number }) => c.seq);
    await advance(run, 2_000);
    const ends = [0, 500, 1e9, 1e10];
    const r = await report(
      run,
      agentId,
      seqs.map((s: number, i: number) => okResult(s, { endMs: ends[i] })),
    );
    expect(r.status).toBe(200);
    const results = (await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken })).body;
    expect(results.timeseries.bucketSeconds).toBe(1);
    const total = results.timeseries.buckets.reduce((n: number, b: { completed: number }) => n + b.completed, 0);
    expect(total).toBe(4);
    expect(Math.max(...results.timeseries.buckets.map((b: { t: number }) => b.t))).toBeLessThanOrEqual(2);
  });
});

describe("the final documents of a graceSeconds 0 run", () => {
  it("go to an event stream whose own call wiped the run, and never to a caller without the run's read token", async () => {
    const run = await createRun({ stop: { requests: 1 }, graceSeconds: 0 });
    const agentId = await join(run);
    const seqs = (await lease(run, agentId, 1)).body.credits.map((c: { seq: number }) => c.seq);
    // The report completes the run without advancing deadlines: the wipe is due, not done.
    expect((await report(run, agentId, [okResult(seqs[0])])).status).toBe(200);
    const stranger = await run.stub.watch({ role: "token", hash: "0".repeat(64) }, 0);
    expect(stranger.ok).toBe(false);
    const again = await run.stub.watch({ role: "token", hash: await sha256Hex(run.readToken) }, 0);
    expect(again.ok).toBe(false); // wiped by the stranger's call; this call did not wipe it
    expect((await status(run)).status).toBe(404);
  });

  it("go to the reader whose call wiped the run", async () => {
    const run = await createRun({ stop: { requests: 1 }, graceSeconds: 0 });
    const agentId = await join(run);
    const seqs = (await lease(run, agentId, 1)).body.credits.map((c: { seq: number }) => c.seq);
    expect((await report(run, agentId, [okResult(seqs[0])])).status).toBe(200);
    // RPC's type mapping of the deep Results type defeats narrowing; the value is plain data.
    const w = (await run.stub.watch({ role: "token", hash: await sha256Hex(run.readToken) }, 0)) as unknown as RpcResult<{
      snapshot: Snapshot;
      results: Results | null;
    }>;
    expect(w.ok).toBe(true);
    if (w.ok) {
      expect(w.value.snapshot.phase).toBe("complete");
      expect(w.value.results?.counts.completed).toBe(1);
    }
    expect((await status(run)).status).toBe(404);
  });
});
