// Experiments end to end over HTTP: a sweep runs each level as a run of its own, one after
// another, driven here by an external agent that joins each level's run as it starts. The
// experiment's clock and alarm are driven by hand (experiment-helpers.ts).
import { env } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { readConfig } from "../contract/config";
import { parseRunSpec } from "../contract/spec";
import { POLL_MS } from "../durable/Experiment";
import * as m from "../durable/experiment-machine";
import type { ExperimentState } from "../durable/experiment-machine";
import { startRun } from "../durable/start-run";
import { call, join, lease, mockSpec, okResult, report } from "./helpers";
import { advanceAndAlarm, createExperiment, currentRun, driveLevel, levelRun, setClock, summary, sweepBody } from "./experiment-helpers";
import type { TestExperiment } from "./experiment-helpers";

const results = (exp: TestExperiment, wait = 0) => call("GET", `/v1/experiments/${exp.id}/results?wait=${wait}`, { token: exp.readToken });

async function restart(exp: TestExperiment): Promise<void> {
  await evictDurableObject(exp.stub);
  await setClock(exp, exp.clock); // the fresh instance has the real clock again
}

describe("a sweep of concurrency levels", () => {
  it("runs each level as its own run, each created only after the previous one completed, and ends complete with every level in order", async () => {
    const exp = await createExperiment(sweepBody({ concurrency: [1, 2, 4] }));
    expect(exp.created).toMatchObject({ kind: "sweep", over: "concurrency", phase: "running", status: "running" });
    expect(exp.created.readToken).toMatch(/^epr_/);
    expect(exp.created.agentToken).toMatch(/^epa_/);
    expect(exp.created.urls.self).toBe(`https://edgeperf.test/v1/experiments/${exp.id}`);
    expect(exp.created.levels.map((l: { level: number; status: string }) => [l.level, l.status])).toEqual([
      [1, "running"],
      [2, "pending"],
      [4, "pending"],
    ]);

    const runIds: string[] = [];
    for (const [i, level] of [1, 2, 4].entries()) {
      const run = await currentRun(exp);
      runIds.push(run.id);
      const before = (await summary(exp)).body;
      expect(before.current).toEqual({ level, runId: run.id });
      // No later level has a run while this one has not completed.
      for (const later of before.levels.slice(i + 1)) expect(later).toMatchObject({ status: "pending", runId: null });
      // The level's run is an ordinary run of the base spec at this level, read with the experiment's read token.
      const own = await call("GET", `/v1/runs/${run.id}/results`, { token: exp.readToken });
      expect(own.status).toBe(200);
      expect(own.body.spec.load).toEqual({ concurrency: level });
      expect(own.body.spec.stop).toEqual({ requests: 6 });

      // The alarm polls a level still running: nothing is recorded and nothing new starts.
      expect(await advanceAndAlarm(exp, POLL_MS)).toBe(true);
      expect((await summary(exp)).body.current).toEqual({ level, runId: run.id });

      expect(await driveLevel(run, 100 + 10 * i)).toBe(6);
      const last = i === 2;
      const waiting = last ? results(exp, 30) : null;
      await advanceAndAlarm(exp, POLL_MS);
      if (waiting) expect((await waiting).body).toMatchObject({ final: true, phase: "complete" });
    }

    const done = (await results(exp)).body;
    expect(done).toMatchObject({
      final: true,
      phase: "complete",
      status: "complete",
      outcome: "completed",
      stopReason: "done",
      current: null,
    });
    expect(done.levels.map((l: { level: number }) => l.level)).toEqual([1, 2, 4]);
    expect(done.levels.map((l: { runId: string }) => l.runId)).toEqual(runIds);
    expect(new Set(runIds).size).toBe(3);
    for (const [i, l] of done.levels.entries()) {
      expect(l).toMatchObject({ status: "complete", outcome: "completed", stopReason: "budget", error: null });
      expect(l.counts).toEqual({ granted: 6, returned: 0, completed: 6, failed: 0, abandoned: 0, outstanding: 0 });
      expect(l.metrics.request_latency.p50).toBeCloseTo(100 + 10 * i, -1);
      expect(l.metrics.time_to_first_token).toMatchObject({ unit: "ms" });
      expect(l.metrics.time_to_first_token.p50).toBeCloseTo(20, 0);
      expect(Object.keys(l.metrics)).toEqual(
        expect.arrayContaining(["request_throughput", "output_token_throughput", "inter_token_latency", "request_error_rate"]),
      );
      expect(l.metrics.request_error_rate.avg).toBe(0);
      if (i > 0) expect(Date.parse(l.createdAt)).toBeGreaterThanOrEqual(Date.parse(done.levels[i - 1].completedAt));
    }
  });

  it("takes a rate sweep's levels as each run's load.rate, keeping the base's arrival", async () => {
    const exp = await createExperiment(sweepBody({ rate: [5, 10] }, { load: { arrival: "poisson" } }));
    const run = await currentRun(exp);
    const own = await call("GET", `/v1/runs/${run.id}`, { token: exp.readToken });
    expect(own.status).toBe(200);
    const spec = (await call("GET", `/v1/runs/${run.id}/results`, { token: exp.readToken })).body.spec;
    expect(spec.load).toEqual({ rate: 5, arrival: "poisson" });
    // The summary shows the base every level shares, without the field each level sets.
    expect(exp.created.base.load).toEqual({ arrival: "poisson" });
    await call("POST", `/v1/experiments/${exp.id}/stop`, { body: { mode: "force" } });
  });

  it("records a level once: an alarm that fires again after the level was recorded starts no second run", async () => {
    const exp = await createExperiment(sweepBody({ concurrency: [1, 2, 3] }));
    await driveLevel(await currentRun(exp));
    await advanceAndAlarm(exp, POLL_MS);
    const once = (await summary(exp)).body;
    expect(once.levels.map((l: { status: string }) => l.status)).toEqual(["complete", "running", "pending"]);
    // The alarm again, and again at the same instant (as when it fires early or twice).
    await runDurableObjectAlarm(exp.stub);
    await runInDurableObject(exp.stub, (instance) => instance.alarm());
    const twice = (await summary(exp)).body;
    expect(twice.levels).toEqual(once.levels);
    expect(twice.current).toEqual(once.current);
  });

  it("gives the level's run its minimum grace window whatever the base asks, so its results are read before it is wiped", async () => {
    const exp = await createExperiment(sweepBody({ concurrency: [1] }, { graceSeconds: 0 }));
    const run = await currentRun(exp);
    await driveLevel(run);
    const own = (await call("GET", `/v1/runs/${run.id}/results`, { token: exp.readToken })).body;
    expect(Date.parse(own.wipeAt) - Date.parse(own.completedAt)).toBe(60_000);
    await advanceAndAlarm(exp, POLL_MS);
    expect((await summary(exp)).body).toMatchObject({ phase: "complete", status: "complete" });
  });

  it("serves its final summary for its grace window, then is wiped and answers 404, while its levels' runs keep their own schedule", async () => {
    const exp = await createExperiment({ ...sweepBody({ concurrency: [2] }), graceSeconds: 10 });
    const run = await currentRun(exp);
    await driveLevel(run);
    await advanceAndAlarm(exp, POLL_MS);
    const done = (await summary(exp)).body;
    expect(Date.parse(done.wipeAt) - Date.parse(done.completedAt)).toBe(10_000);
    await advanceAndAlarm(exp, 9_999);
    expect((await summary(exp)).status).toBe(200);
    await advanceAndAlarm(exp, 1);
    for (const path of ["", "/results", "/events"]) {
      const gone = await call("GET", `/v1/experiments/${exp.id}${path}`, { token: exp.readToken });
      expect(gone.status).toBe(404);
      expect(gone.body.error.code).toBe("experiment_not_found");
    }
    expect((await call("GET", `/v1/runs/${run.id}`, { token: exp.readToken })).status).toBe(200);
  });
});

describe("stopping an experiment", () => {
  it("refuses further levels, stops the current level's run gracefully, and completes cancelled once that run has drained", async () => {
    const exp = await createExperiment(sweepBody({ concurrency: [1, 2, 4] }, { stop: { requests: 50 } }));
    const run = await currentRun(exp);
    const agentId = await join(run);
    const held = (await lease(run, agentId, 2)).body.credits.map((c: { seq: number }) => c.seq);
    expect(held.length).toBeGreaterThan(0);

    const stopped = await call("POST", `/v1/experiments/${exp.id}/stop`, {});
    expect(stopped.status).toBe(202);
    expect(stopped.body).toMatchObject({ phase: "draining", stopReason: "user", outcome: "stopped" });
    expect(stopped.body.levels.map((l: { status: string }) => l.status)).toEqual(["running", "skipped", "skipped"]);
    // The level's run drains: no new credit, what it holds may still be reported.
    expect((await call("GET", `/v1/runs/${run.id}`, { token: exp.readToken })).body).toMatchObject({
      phase: "draining",
      stopReason: "user",
    });
    expect((await lease(run, agentId, 1)).body.error.code).toBe("run_draining");

    // Until the run has drained the experiment waits, and starts nothing.
    await advanceAndAlarm(exp, POLL_MS);
    expect((await summary(exp)).body).toMatchObject({ phase: "draining", current: { level: 1, runId: run.id } });
    await report(
      run,
      agentId,
      held.map((s: number) => okResult(s)),
    );
    await advanceAndAlarm(exp, POLL_MS);

    const done = (await results(exp)).body;
    expect(done).toMatchObject({ phase: "complete", status: "cancelled", outcome: "stopped", stopReason: "user", current: null });
    expect(done.levels[0]).toMatchObject({ status: "cancelled", outcome: "stopped", stopReason: "user", runId: run.id });
    expect(done.levels[0].counts).toMatchObject({ completed: held.length, outstanding: 0 });
    expect(done.levels.slice(1)).toEqual([
      expect.objectContaining({ level: 2, status: "skipped", runId: null, metrics: null }),
      expect.objectContaining({ level: 4, status: "skipped", runId: null, metrics: null }),
    ]);
    // Stopping again changes nothing.
    const again = await call("POST", `/v1/experiments/${exp.id}/stop`, {});
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ phase: "complete", status: "cancelled" });
  });

  it("between levels completes at once, starting none", async () => {
    const exp = await createExperiment(sweepBody({ concurrency: [1, 2] }));
    await driveLevel(await currentRun(exp));
    // The level's run completed; before the alarm records it, the user stops the experiment.
    const stopped = await call("POST", `/v1/experiments/${exp.id}/stop`, {});
    expect(stopped.body.phase).toBe("draining");
    await advanceAndAlarm(exp, POLL_MS);
    const done = (await summary(exp)).body;
    expect(done).toMatchObject({ phase: "complete", status: "cancelled" });
    // The run ended on its own before the stop reached it: its figures stand.
    expect(done.levels.map((l: { status: string }) => l.status)).toEqual(["complete", "skipped"]);
  });

  it("needs the API token", async () => {
    const exp = await createExperiment(sweepBody({ concurrency: [1] }));
    const res = await call("POST", `/v1/experiments/${exp.id}/stop`, { token: exp.readToken });
    expect(res.status).toBe(401);
    expect((await summary(exp)).body.phase).toBe("running");
    await call("POST", `/v1/experiments/${exp.id}/stop`, { body: { mode: "force" } });
  });
});

describe("an evicted experiment", () => {
  it("loses nothing mid-experiment: recorded levels, the level under way, and the next level's start", async () => {
    const exp = await createExperiment(sweepBody({ concurrency: [1, 2, 3] }));
    await driveLevel(await currentRun(exp), 120);
    await advanceAndAlarm(exp, POLL_MS);
    const before = (await summary(exp)).body;
    await restart(exp);
    const after = (await summary(exp)).body;
    expect({ ...after, serverTime: null }).toEqual({ ...before, serverTime: null });

    // Evicted again after level 2's run completed, before the alarm noticed.
    await driveLevel(await currentRun(exp), 130);
    await restart(exp);
    await advanceAndAlarm(exp, POLL_MS);
    const mid = (await summary(exp)).body;
    expect(mid.levels.map((l: { status: string }) => l.status)).toEqual(["complete", "complete", "running"]);
    expect(mid.levels[0]).toEqual(before.levels[0]);

    await driveLevel(await currentRun(exp), 140);
    await advanceAndAlarm(exp, POLL_MS);
    const done = (await results(exp)).body;
    expect(done).toMatchObject({ phase: "complete", status: "complete" });
    expect(
      done.levels.map((l: { metrics: { request_latency: { p50: number } } }) => Math.round(l.metrics.request_latency.p50 / 10) * 10),
    ).toEqual([120, 130, 140]);
  });

  it("creates a level whose run was chosen but not yet created when it stopped, with that run's id, exactly once", async () => {
    const exp = await createExperiment(sweepBody({ concurrency: [1, 2] }));
    await driveLevel(await currentRun(exp));
    // As if the object stopped between storing level 2's run id and creating its run: the
    // level is `starting` with an id no coordinator has yet.
    const chosen = env.RUN_COORDINATOR.newUniqueId().toString();
    await runInDurableObject(exp.stub, (_instance, state) => {
      const row = state.storage.sql.exec("SELECT v FROM meta WHERE k = 'state'").one();
      let s = JSON.parse(String(row.v)) as ExperimentState;
      s = m.levelEnded(s, { status: "complete", outcome: "completed" }, exp.clock);
      s = m.beginLevel(s, { next: 2, index: 1 }, chosen);
      state.storage.sql.exec("UPDATE meta SET v = ? WHERE k = 'state'", JSON.stringify(s));
    });
    await restart(exp);
    expect((await summary(exp)).body.current).toEqual({ level: 2, runId: null });
    expect((await call("GET", `/v1/runs/${chosen}`, { token: exp.readToken })).status).toBe(404);

    await advanceAndAlarm(exp, POLL_MS);
    expect((await summary(exp)).body.current).toEqual({ level: 2, runId: chosen });
    const run = levelRun(exp, chosen);
    expect((await call("GET", `/v1/runs/${chosen}`, { token: exp.readToken })).body.phase).toBe("created");
    await advanceAndAlarm(exp, POLL_MS);
    expect((await summary(exp)).body.levels.map((l: { runId: string }) => l.runId)).toEqual([expect.any(String), chosen]);
    expect(await driveLevel(run)).toBe(6);
  });

  it("creates a run once when asked twice with the same id (the second answer is the run's status)", async () => {
    const cfg = readConfig(env);
    const spec = parseRunSpec(mockSpec(), cfg);
    const runId = env.RUN_COORDINATOR.newUniqueId().toString();
    const r = { runId, spec, cfg, readTokenHash: "a".repeat(64), agentTokenHash: "b".repeat(64) };
    const first = await startRun(env, r);
    const second = await startRun(env, r);
    expect(first.ok && second.ok).toBe(true);
    if (first.ok && second.ok) expect(second.value.createdAt).toBe(first.value.createdAt);
    await env.RUN_COORDINATOR.get(env.RUN_COORDINATOR.idFromString(runId)).stop({ role: "api" }, "force");
  });
});

describe("experiment tokens", () => {
  it("never echoes the base's secrets: the summary shows the base as a run's public spec does", async () => {
    const exp = await createExperiment(
      sweepBody({ concurrency: [1] }, { target: { url: "builtin:mock", apiKey: "sk-level-secret", headers: { "x-key": "hdr-secret" } } }),
    );
    const shown = (await summary(exp)).body;
    expect(shown.base.target).toMatchObject({ url: "builtin:mock", hasApiKey: true, headers: { "x-key": "REDACTED" } });
    for (const doc of [exp.created, shown, (await results(exp)).body]) {
      expect(JSON.stringify(doc)).not.toMatch(/sk-level-secret|hdr-secret/);
    }
    await call("POST", `/v1/experiments/${exp.id}/stop`, { body: { mode: "force" } });
  });

  it("the read token reads the experiment and every level's run; any other token is told 404", async () => {
    const exp = await createExperiment(sweepBody({ concurrency: [1, 2] }));
    const other = await createExperiment(sweepBody({ concurrency: [1] }));
    const run = await currentRun(exp);
    expect((await call("GET", `/v1/runs/${run.id}`, { token: exp.readToken })).status).toBe(200);
    expect((await call("GET", `/v1/runs/${run.id}`, { token: other.readToken })).status).toBe(404);
    for (const token of [other.readToken, exp.agentToken, "epr_nope"]) {
      for (const path of ["", "/results", "/events"]) {
        const res = await call("GET", `/v1/experiments/${exp.id}${path}`, { token });
        expect(res.status, `${path} ${token.slice(0, 4)}`).toBe(404);
        expect(res.body.error.code).toBe("experiment_not_found");
      }
    }
    expect((await call("GET", `/v1/experiments/${"0".repeat(64)}`, { token: exp.readToken })).status).toBe(404);
    expect((await call("GET", "/v1/experiments/not-an-id", { token: exp.readToken })).status).toBe(404);
    // The API token reads it too.
    expect((await call("GET", `/v1/experiments/${exp.id}`)).status).toBe(200);
    for (const e of [exp, other]) await call("POST", `/v1/experiments/${e.id}/stop`, { body: { mode: "force" } });
  });
});
