// Plumbing for experiment tests: create one over HTTP, drive its clock and alarm by hand,
// and drive each level's run as an external agent through the HTTP API.

import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { expect } from "vitest";
import type { Experiment } from "../durable/Experiment";
import { call, join, lease, mockSpec, okResult, report } from "./helpers";
import type { TestRun } from "./helpers";

export interface TestExperiment {
  id: string;
  readToken: string;
  agentToken: string;
  stub: DurableObjectStub<Experiment>;
  /** The experiment's fake clock, in ms since the epoch. */
  clock: number;
  /** The answer to the POST. */
  created: any;
}

/**
 * The experiment's clock starts a day ahead of real time, so the alarms it sets never fire
 * on their own during a test: only runDurableObjectAlarm moves it. The alarm that create
 * set on the real clock is run once here (it finds nothing to do but to set the next).
 */
const AHEAD_MS = 86_400_000;

export async function createExperiment(body: Record<string, unknown>): Promise<TestExperiment> {
  const res = await call("POST", "/v1/experiments", { body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  const stub = env.EXPERIMENT.get(env.EXPERIMENT.idFromString(res.body.id));
  const exp: TestExperiment = {
    id: res.body.id,
    readToken: res.body.readToken,
    agentToken: res.body.agentToken,
    stub,
    clock: 0,
    created: res.body,
  };
  await setClock(exp, Date.now() + AHEAD_MS);
  await runDurableObjectAlarm(stub);
  return exp;
}

/** A sweep body over the built-in mock, driven by external agents only. */
export function sweepBody(levels: Record<string, number[]>, base: Record<string, unknown> = {}): Record<string, unknown> {
  return { base: mockSpec({ stop: { requests: 6 }, ...base }), levels };
}

/** Sets the experiment's clock (again after an eviction, which resets it) and turns its long-poll off. */
export async function setClock(exp: TestExperiment, t: number): Promise<void> {
  exp.clock = t;
  await runInDurableObject(exp.stub, (instance: Experiment) => {
    instance.now = () => t;
    instance.pollWaitMs = 0;
  });
}

/** Advances the clock and runs the alarm, as the runtime would at that time. */
export async function advanceAndAlarm(exp: TestExperiment, ms: number): Promise<boolean> {
  await setClock(exp, exp.clock + ms);
  return runDurableObjectAlarm(exp.stub);
}

export async function summary(exp: TestExperiment, token = exp.readToken) {
  return call("GET", `/v1/experiments/${exp.id}`, { token });
}

/** A level's run as the run helpers know it: the experiment's tokens are the run's. */
export function levelRun(exp: TestExperiment, runId: string): TestRun {
  const stub = env.RUN_COORDINATOR.get(env.RUN_COORDINATOR.idFromString(runId));
  return { id: runId, readToken: exp.readToken, agentToken: exp.agentToken, stub, clock: Date.now() };
}

/** The run of the level under way, from the summary. */
export async function currentRun(exp: TestExperiment): Promise<TestRun> {
  const s = (await summary(exp)).body;
  expect(s.current?.runId, JSON.stringify(s)).toMatch(/^[0-9a-f]{64}$/);
  return levelRun(exp, s.current.runId);
}

/**
 * One external agent runs the level to its end: joins, leases, and reports every credit
 * as a success with the given latency and TTFT, until the run says stop. Returns the settled count.
 */
export async function driveLevel(run: TestRun, latencyMs = 100, ttftMs = 20): Promise<number> {
  const agentId = await join(run, "sweeper");
  let settled = 0;
  for (;;) {
    const l = await lease(run, agentId, 8);
    if (l.status !== 200) return settled;
    const credits = l.body.credits as Array<{ seq: number }>;
    if (credits.length === 0) return settled;
    const r = await report(
      run,
      agentId,
      credits.map((c) => okResult(c.seq, { latencyMs, ttftMs })),
    );
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    settled += r.body.accepted;
    if (r.body.stop) return settled;
  }
}
