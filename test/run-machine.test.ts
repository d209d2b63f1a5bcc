import { describe, expect, it } from "vitest";
import * as m from "../durable/run-machine";
import type { RunLimits, RunState } from "../durable/run-machine";
import { StatusError } from "../contract/errors";

const T0 = 1_000_000;
const limits = (over: Partial<RunLimits> = {}): RunLimits => ({
  requests: 10,
  warmupRequests: 0,
  agentTimeoutMs: 300_000,
  durationMs: null,
  drainTimeoutMs: 30_000,
  graceMs: 5_000,
  ...over,
});

function refusal(fn: () => unknown): { status: number; code: string } {
  try {
    fn();
  } catch (e) {
    if (e instanceof StatusError) return { status: e.status, code: e.code };
    throw e;
  }
  throw new Error("expected a refusal");
}

const settleN = (s: RunState, completed: number, now = T0) => m.settle(s, { ...m.noSettlement(), completed }, now);

describe("run machine: created and running", () => {
  it("starts in created, reported as running, with an empty ledger", () => {
    const s = m.createRun(limits(), T0);
    expect(s.phase).toBe("created");
    expect(m.status(s)).toBe("running");
    expect(s.counts).toEqual(m.emptyLedger());
    expect(s.startedAt).toBeNull();
  });

  it("moves to running and starts the clock at the first credit granted, not at creation", () => {
    const g = m.grant(m.createRun(limits(), T0), 3, T0 + 500);
    expect(g.state.phase).toBe("running");
    expect(g.state.startedAt).toBe(T0 + 500);
    expect(g.measured).toBe(3);
    expect(g.firstSeq).toBe(0);
    expect(g.state.nextSeq).toBe(3);
  });

  it("grants nothing and stays created when asked for zero credits", () => {
    const g = m.grant(m.createRun(limits(), T0), 0, T0);
    expect(g.state.phase).toBe("created");
    expect(g.measured + g.warmup).toBe(0);
  });

  it("never grants beyond the request budget and begins draining when the budget is fully granted", () => {
    let s = m.grant(m.createRun(limits({ requests: 5 }), T0), 3, T0).state;
    const g = m.grant(s, 100, T0 + 1);
    expect(g.measured).toBe(2);
    s = g.state;
    expect(s.counts.granted).toBe(5);
    expect(s.phase).toBe("draining");
    expect(s.stopReason).toBe("budget");
    expect(s.drainStartedAt).toBe(T0 + 1);
  });

  it("grants a returned credit again while running, under a new seq", () => {
    let s = m.grant(m.createRun(limits({ requests: 4 }), T0), 3, T0).state;
    s = m.settle(s, { ...m.noSettlement(), returned: 2 }, T0);
    expect(m.budgetRemaining(s)).toBe(3);
    const g = m.grant(s, 10, T0);
    expect(g.firstSeq).toBe(3);
    expect(g.measured).toBe(3);
    expect(g.state.counts.granted - g.state.counts.returned).toBe(4);
    expect(m.ledgerHolds(g.state.counts)).toBe(true);
  });

  it("grants warmup credits first and no measured credit until every warmup credit is settled", () => {
    let g = m.grant(m.createRun(limits({ warmupRequests: 2, requests: 3 }), T0), 5, T0);
    expect(g.warmup).toBe(2);
    expect(g.measured).toBe(0);
    g = m.grant(g.state, 5, T0 + 1);
    expect(g.warmup + g.measured).toBe(0);
    const s = m.settle(g.state, { ...m.noSettlement(), warmupCompleted: 2 }, T0 + 2);
    g = m.grant(s, 5, T0 + 3);
    expect(g.measured).toBe(3);
    expect(g.firstSeq).toBe(2);
    expect(g.state.measuredStartedAt).toBe(T0 + 3);
    expect(g.state.counts.granted).toBe(3);
    expect(g.state.warmup.completed).toBe(2);
  });

  it("counts abandoned credits while running without ending the run, and marks it partial", () => {
    let s = m.grant(m.createRun(limits(), T0), 4, T0).state;
    s = m.abandon(s, 4, 0, T0 + 1);
    expect(s.phase).toBe("running");
    expect(s.partial).toBe(true);
    expect(s.counts.abandoned).toBe(4);
    expect(m.ledgerHolds(s.counts)).toBe(true);
  });
});

describe("run machine: draining and completion", () => {
  it("completes in the same step as the last outstanding credit settles", () => {
    let s = m.grant(m.createRun(limits({ requests: 3 }), T0), 3, T0).state;
    expect(s.phase).toBe("draining");
    s = settleN(s, 2, T0 + 10);
    expect(s.phase).toBe("draining");
    s = settleN(s, 1, T0 + 20);
    expect(s.phase).toBe("complete");
    expect(s.completedAt).toBe(T0 + 20);
    expect(s.outcome).toBe("completed");
    expect(m.status(s)).toBe("complete");
    expect(m.wipeAt(s)).toBe(T0 + 20 + 5_000);
  });

  it("refuses to grant once draining began, with run_draining", () => {
    const s = m.grant(m.createRun(limits({ requests: 1 }), T0), 1, T0).state;
    expect(refusal(() => m.grant(s, 1, T0))).toEqual({ status: 409, code: "run_draining" });
  });

  it("refuses to grant or settle once complete, with run_complete", () => {
    const s = m.stop(m.createRun(limits(), T0), "graceful", T0).state;
    expect(refusal(() => m.grant(s, 1, T0))).toEqual({ status: 409, code: "run_complete" });
    expect(refusal(() => settleN(s, 1))).toEqual({ status: 409, code: "run_complete" });
  });

  it("refuses to settle more credits than are outstanding", () => {
    const s = m.grant(m.createRun(limits(), T0), 2, T0).state;
    expect(refusal(() => settleN(s, 3))).toEqual({ status: 500, code: "ledger_violation" });
  });

  it("does not grant returned credits again while draining", () => {
    let s = m.grant(m.createRun(limits({ requests: 10 }), T0), 4, T0).state;
    s = m.stop(s, "graceful", T0 + 1).state;
    s = m.settle(s, { ...m.noSettlement(), returned: 2, completed: 1 }, T0 + 2);
    expect(s.phase).toBe("draining");
    expect(refusal(() => m.grant(s, 1, T0 + 2)).code).toBe("run_draining");
    s = settleN(s, 1, T0 + 3);
    expect(s.phase).toBe("complete");
    expect(s.counts).toMatchObject({ granted: 4, returned: 2, completed: 2, outstanding: 0 });
  });

  it("completes at once when a stop finds nothing outstanding", () => {
    const s = m.stop(m.createRun(limits(), T0), "graceful", T0 + 7).state;
    expect(s.phase).toBe("complete");
    expect(s.completedAt).toBe(T0 + 7);
    expect(s.outcome).toBe("stopped");
    expect(m.status(s)).toBe("cancelled");
  });

  it("treats a second graceful stop, and any stop of a complete run, as no change", () => {
    const running = m.grant(m.createRun(limits(), T0), 2, T0).state;
    const once = m.stop(running, "graceful", T0 + 1).state;
    expect(m.stop(once, "graceful", T0 + 2).state).toEqual(once);
    const done = settleN(once, 2, T0 + 3);
    expect(m.stop(done, "force", T0 + 4)).toEqual({ state: done, abandonAll: false });
  });

  it("force stop abandons every outstanding credit at once and ends the run partial", () => {
    const running = m.grant(m.createRun(limits(), T0), 3, T0).state;
    const r = m.stop(running, "force", T0 + 1);
    expect(r.abandonAll).toBe(true);
    expect(r.state.phase).toBe("complete");
    expect(r.state.partial).toBe(true);
    expect(r.state.counts).toMatchObject({ abandoned: 3, outstanding: 0 });
    expect(r.state.outcome).toBe("stopped");
  });

  it("force stop during a budget drain cuts the wait short and reports the run stopped", () => {
    const draining = m.grant(m.createRun(limits({ requests: 2 }), T0), 2, T0).state;
    const r = m.stop(draining, "force", T0 + 1);
    expect(r.state.phase).toBe("complete");
    expect(r.state.outcome).toBe("stopped");
  });
});

describe("run machine: deadlines", () => {
  it("begins draining at the duration deadline, counted from the first credit", () => {
    const s = m.grant(m.createRun(limits({ requests: null, durationMs: 1_000 }), T0), 2, T0 + 100).state;
    expect(m.nextDeadline(s)).toBe(T0 + 1_100);
    expect(m.tick(s, T0 + 1_099).state).toBe(s);
    const t = m.tick(s, T0 + 1_500);
    expect(t.state.phase).toBe("draining");
    expect(t.state.stopReason).toBe("duration");
    expect(t.state.drainStartedAt).toBe(T0 + 1_100);
  });

  it("abandons what is still outstanding at the drain deadline and completes partial", () => {
    let s = m.grant(m.createRun(limits({ requests: 5, drainTimeoutMs: 2_000 }), T0), 5, T0).state;
    s = settleN(s, 3, T0 + 10);
    expect(m.nextDeadline(s)).toBe(T0 + 2_000);
    const t = m.tick(s, T0 + 2_000);
    expect(t.abandonAll).toBe(true);
    expect(t.state.phase).toBe("complete");
    expect(t.state.partial).toBe(true);
    expect(t.state.counts).toMatchObject({ completed: 3, abandoned: 2, outstanding: 0 });
    expect(t.state.outcome).toBe("completed");
  });

  it("applies deadlines idempotently: a second tick at the same time changes nothing", () => {
    const s = m.grant(m.createRun(limits({ requests: null, durationMs: 1_000, drainTimeoutMs: 0 }), T0), 1, T0).state;
    const once = m.tick(s, T0 + 5_000).state;
    expect(m.tick(once, T0 + 5_000)).toEqual({ state: once, abandonAll: false });
  });

  it("has only the wipe as its deadline once complete, and none before anything starts", () => {
    expect(m.nextDeadline(m.createRun(limits(), T0))).toBeNull();
    const done = m.stop(m.createRun(limits({ graceMs: 0 }), T0), "graceful", T0 + 3).state;
    expect(m.nextDeadline(done)).toBe(T0 + 3);
  });
});
