// The experiment lifecycle as pure functions (durable/experiment-machine.ts): no object, no runs.
import { describe, expect, it } from "vitest";
import type { ExperimentPlan } from "../contract/experiment";
import * as m from "../durable/experiment-machine";

const sweep = (levels: number[]): ExperimentPlan => ({
  kind: "sweep",
  over: "concurrency",
  levels,
  search: null,
  base: {},
  publicBase: {},
  graceMs: 5_000,
});

const search: ExperimentPlan = {
  kind: "search",
  over: "concurrency",
  levels: [],
  search: { over: "concurrency", slo: [], min: 1, max: 4 },
  base: {},
  publicBase: {},
  graceMs: 0,
};

/** Starts the next level with a made-up run id and has its run created at `t`. */
function start(s: m.ExperimentState, plan: ExperimentPlan, t: number): m.ExperimentState {
  const step = m.nextStep(s, plan);
  if (step.done) throw new Error("no level left");
  return m.levelStarted(m.beginLevel(s, step, `run-${step.next}`), new Date(t).toISOString(), t);
}

describe("the experiment machine", () => {
  it("goes created → running at its first level's run, runs the levels in order, and completes when the last one ends", () => {
    let s = m.createExperiment(sweep([1, 2]), 0);
    expect(s.phase).toBe("created");
    s = start(s, sweep([1, 2]), 10);
    expect(s).toMatchObject({ phase: "running", startedAt: 10, current: 0 });
    s = m.levelEnded(s, { status: "complete", outcome: "completed" }, 20);
    expect(s.current).toBeNull();
    s = start(s, sweep([1, 2]), 30);
    expect(s.current).toBe(1);
    s = m.levelEnded(s, { status: "complete", outcome: "completed" }, 40);
    const end = m.nextStep(s, sweep([1, 2]));
    expect(end.done).toBe(true);
    s = m.finish(s, end as { best: null; end: "converged" }, false, 40);
    expect(s).toMatchObject({ phase: "complete", outcome: "completed", stopReason: "done", completedAt: 40 });
    expect(m.status(s)).toBe("complete");
    expect(m.wipeAt(s)).toBe(5_040);
  });

  it("on stop skips the pending levels and drains the current one; a second graceful stop changes nothing, a force stop resends", () => {
    let s = start(m.createExperiment(sweep([1, 2, 4]), 0), sweep([1, 2, 4]), 5);
    s = m.stop(s, "graceful", 10);
    expect(s).toMatchObject({ phase: "draining", stopReason: "user", outcome: "stopped", stopMode: "graceful", drainStartedAt: 10 });
    expect(s.levels.map((l) => l.status)).toEqual(["running", "skipped", "skipped"]);
    s = m.stopSent(s);
    expect(m.stop(s, "graceful", 11)).toBe(s);
    const forced = m.stop(s, "force", 12);
    expect(forced).toMatchObject({ phase: "draining", stopMode: "force", stopSent: false });
    const done = m.levelEnded(forced, { status: "cancelled", outcome: "stopped" }, 13);
    expect(done).toMatchObject({ phase: "complete", completedAt: 13 });
    expect(m.status(done)).toBe("cancelled");
  });

  it("completes at once when stopped between levels", () => {
    const s = m.stop(m.createExperiment(sweep([1, 2]), 0), "graceful", 3);
    expect(s).toMatchObject({ phase: "complete", completedAt: 3 });
    expect(s.levels.map((l) => l.status)).toEqual(["skipped", "skipped"]);
  });

  it("ends failed when a level's run is refused, keeping the refusal on the level", () => {
    let s = m.beginLevel(m.createExperiment(sweep([1, 2]), 0), { next: 1, index: 0 }, "run-1");
    s = m.levelRefused(s, { code: "service_draining", message: "draining" }, 7);
    expect(s).toMatchObject({ phase: "complete", outcome: "failed", stopReason: "level_error" });
    expect(s.levels[0]).toMatchObject({ status: "error", runId: null, error: { code: "service_draining" } });
    expect(s.levels[1]!.status).toBe("skipped");
  });

  it("bumps its version on every change, and only then", () => {
    const s0 = m.createExperiment(sweep([1]), 0);
    const s1 = m.beginLevel(s0, { next: 1, index: 0 }, "run-1");
    const s2 = m.levelStarted(s1, new Date(0).toISOString(), 1);
    expect([s0.version, s1.version, s2.version]).toEqual([0, 1, 2]);
    expect(m.levelStarted(s2, new Date(0).toISOString(), 2)).toBe(s2);
  });

  it("asks the search for the next level, retrying a level whose results were lost, up to the level cap", () => {
    let s = start(m.createExperiment(search, 0), search, 1);
    expect(s.levels[0]!.level).toBe(1);
    s = m.levelEnded(s, { status: "complete", outcome: "completed", ok: true }, 2);
    expect(m.nextStep(s, search)).toEqual({ done: false, next: 2 });
    s = start(s, search, 3);
    s = m.levelEnded(s, { status: "error", error: { code: "results_lost", message: "" } }, 4);
    // Lost results are no verdict: the same level is tried again.
    expect(m.nextStep(s, search)).toEqual({ done: false, next: 2 });
    const full = { ...s, levels: Array.from({ length: 32 }, () => s.levels[0]!) };
    expect(m.nextStep(full, search)).toEqual({ done: true, best: 1, end: "level_cap" });
  });
});
