// The service drain's deadline: runs still active when it passes are force-stopped by the
// Fleet (stopReason service_drain), driven by the Fleet's injected clock and its alarm.
// Storage is per file, so the Fleet here is this file's alone; every test leaves the
// service accepting and no run of its own active.
import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { ADMIT_GRACE_MS } from "../durable/Fleet";
import type { Fleet } from "../durable/Fleet";
import { call, createRun, join, lease, status } from "./helpers";
import type { TestRun } from "./helpers";

const fleet = () => env.FLEET.get(env.FLEET.idFromName("fleet"));

/** Sets the Fleet's clock, which the drain's deadline is measured on. */
async function setFleetClock(t: number): Promise<void> {
  await runInDurableObject(fleet(), (instance: Fleet) => {
    instance.now = () => t;
  });
}

const fleetAlarm = () => runInDurableObject(fleet(), (_instance, state) => state.storage.getAlarm());
const drainView = async () => (await call("GET", "/v1/admin/drain")).body;
const iso = (t: number) => new Date(t).toISOString();

/** A run with an external agent holding `held` credits. */
async function runHolding(held: number): Promise<TestRun> {
  const run = await createRun({ stop: { requests: 100 } });
  const agentId = await join(run);
  expect((await lease(run, agentId, held)).body.credits).toHaveLength(held);
  return run;
}

afterEach(async () => {
  expect((await call("DELETE", "/v1/admin/drain")).status).toBe(200);
});

describe("a service drain with a deadline", () => {
  it("force-stops every run still active at the deadline as service_drain, abandoning its credits, and ends drained", async () => {
    const t0 = Date.now();
    await setFleetClock(t0);
    const run = await runHolding(3);

    const started = await call("POST", "/v1/admin/drain", { body: { timeoutSeconds: 60 } });
    expect(started.status).toBe(202);
    expect(started.body).toEqual({ phase: "draining", activeRuns: 1, deadline: iso(t0 + 60_000), activeRunIds: [run.id] });
    expect(await fleetAlarm()).toBe(t0 + 60_000);

    // Fired early: nothing is stopped, and the alarm is set again for the deadline.
    await setFleetClock(t0 + 59_999);
    expect(await runDurableObjectAlarm(fleet())).toBe(true);
    expect((await status(run)).body).toMatchObject({ phase: "running", counts: { outstanding: 3 } });
    expect(await fleetAlarm()).toBe(t0 + 60_000);

    await setFleetClock(t0 + 60_000);
    expect(await runDurableObjectAlarm(fleet())).toBe(true);
    const results = await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken });
    expect(results.status).toBe(200);
    expect(results.body).toMatchObject({
      final: true,
      phase: "complete",
      status: "cancelled",
      outcome: "stopped",
      stopReason: "service_drain",
      partial: true,
    });
    expect(results.body.counts).toEqual({ granted: 3, returned: 0, completed: 0, failed: 0, abandoned: 3, outstanding: 0 });
    expect(await drainView()).toEqual({ phase: "drained", activeRuns: 0, deadline: iso(t0 + 60_000), activeRunIds: [] });

    // Fired twice: nothing left to do, and nothing set again.
    expect(await fleetAlarm()).toBeNull();
    await runInDurableObject(fleet(), (instance: Fleet) => instance.alarm());
    expect(await drainView()).toMatchObject({ phase: "drained", activeRuns: 0 });
    expect(await fleetAlarm()).toBeNull();
  });

  it("without timeoutSeconds waits for ever: no alarm is set and no run is stopped", async () => {
    const run = await runHolding(2);
    const started = await call("POST", "/v1/admin/drain");
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({ phase: "draining", deadline: null, activeRunIds: [run.id] });
    expect(await fleetAlarm()).toBeNull();
    expect(await runDurableObjectAlarm(fleet())).toBe(false);
    // Even an alarm that fires anyway (left over, or early) has no deadline to apply.
    await setFleetClock(Date.now() + 86_400_000);
    await runInDurableObject(fleet(), (instance: Fleet) => instance.alarm());
    expect((await status(run)).body).toMatchObject({ phase: "running", counts: { outstanding: 2 } });
    expect(await drainView()).toMatchObject({ phase: "draining", activeRuns: 1, deadline: null });
    await call("POST", `/v1/runs/${run.id}/stop`, { body: { mode: "force" } });
  });

  it("is cleared by a resume, with its alarm; a later drain without timeoutSeconds has no deadline", async () => {
    const t0 = Date.now();
    await setFleetClock(t0);
    const run = await runHolding(1);
    expect((await call("POST", "/v1/admin/drain", { body: { timeoutSeconds: 10 } })).body.deadline).toBe(iso(t0 + 10_000));

    const resumed = await call("DELETE", "/v1/admin/drain");
    expect(resumed.body).toEqual({ phase: "accepting", activeRuns: 1, deadline: null, activeRunIds: [run.id] });
    expect(await fleetAlarm()).toBeNull();
    await setFleetClock(t0 + 10_000);
    await runInDurableObject(fleet(), (instance: Fleet) => instance.alarm());
    expect((await status(run)).body).toMatchObject({ phase: "running", counts: { outstanding: 1 } });

    expect((await call("POST", "/v1/admin/drain")).body).toMatchObject({ phase: "draining", deadline: null });
    expect(await fleetAlarm()).toBeNull();
    await call("POST", `/v1/runs/${run.id}/stop`, { body: { mode: "force" } });
  });

  it("takes the deadline of the latest POST that names one; a POST without timeoutSeconds keeps it", async () => {
    const t0 = Date.now();
    await setFleetClock(t0);
    expect((await call("POST", "/v1/admin/drain", { body: { timeoutSeconds: 600 } })).body.deadline).toBe(iso(t0 + 600_000));
    expect((await call("POST", "/v1/admin/drain")).body.deadline).toBe(iso(t0 + 600_000));
    expect(await fleetAlarm()).toBe(t0 + 600_000);
    expect((await call("POST", "/v1/admin/drain", { body: { timeoutSeconds: 5 } })).body.deadline).toBe(iso(t0 + 5_000));
    expect(await fleetAlarm()).toBe(t0 + 5_000);
  });

  it("does not wait on a run whose coordinator is gone (404: its row is removed), but retries one admitted moments ago", async () => {
    const t0 = Date.now();
    await setFleetClock(t0);
    const gone = env.RUN_COORDINATOR.newUniqueId().toString();
    const young = env.RUN_COORDINATOR.newUniqueId().toString();
    // `gone` was admitted an hour ago and its coordinator never answered; `young` a second
    // before the deadline, so its coordinator may still be being created.
    expect((await fleet().admit(gone, t0 - 3_600_000)).ok).toBe(true);
    expect((await fleet().admit(young, t0 + 9_000)).ok).toBe(true);
    expect((await call("POST", "/v1/admin/drain", { body: { timeoutSeconds: 10 } })).body.activeRunIds).toEqual([gone, young]);

    await setFleetClock(t0 + 10_000);
    await runDurableObjectAlarm(fleet());
    expect(await drainView()).toMatchObject({ phase: "draining", activeRuns: 1, activeRunIds: [young] });
    expect(await fleetAlarm()).toBe(t0 + 9_000 + ADMIT_GRACE_MS);

    await setFleetClock(t0 + 9_000 + ADMIT_GRACE_MS);
    await runDurableObjectAlarm(fleet());
    expect(await drainView()).toMatchObject({ phase: "drained", activeRuns: 0, activeRunIds: [] });
    expect(await fleetAlarm()).toBeNull();
  });

  it("refuses a bad timeoutSeconds naming it, and a refused POST begins no drain", async () => {
    for (const [body, statusCode, code] of [
      [{ timeoutSeconds: -1 }, 422, "out_of_range"],
      [{ timeoutSeconds: 3_601 }, 422, "out_of_range"],
      [{ timeoutSeconds: "60" }, 400, "invalid_spec"],
      [{ timeoutSeconds: null }, 400, "invalid_spec"],
    ] as const) {
      const r = await call("POST", "/v1/admin/drain", { body });
      expect(r.status, JSON.stringify(body)).toBe(statusCode);
      expect(r.body.error.code).toBe(code);
      expect(r.body.error.message).toBe("timeoutSeconds must be a number of seconds from 0 to 3600.");
    }
    const unknown = await call("POST", "/v1/admin/drain", { body: { timeout: 60 } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toEqual({ code: "unknown_field", message: "timeout is not a known field." });
    const notObject = await call("POST", "/v1/admin/drain", { body: [60] });
    expect(notObject.status).toBe(400);
    expect(notObject.body.error.message).toMatch(/^body must be a JSON object/);
    expect((await call("POST", "/v1/admin/drain", { rawBody: "{", contentType: "application/json" })).status).toBe(400);
    expect((await call("POST", "/v1/admin/drain", { rawBody: "timeoutSeconds=60", contentType: "text/plain" })).status).toBe(415);
    expect(await drainView()).toMatchObject({ phase: "accepting", deadline: null });

    // The bounds themselves are allowed.
    expect((await call("POST", "/v1/admin/drain", { body: { timeoutSeconds: 3_600 } })).status).toBe(202);
  });

  it("lists at most 100 active run ids, oldest first, with the total in activeRuns", async () => {
    const ids = Array.from({ length: 101 }, () => env.RUN_COORDINATOR.newUniqueId().toString());
    for (const [i, id] of ids.entries()) expect((await fleet().admit(id, 1_000 + i)).ok).toBe(true);
    try {
      const view = await drainView();
      expect(view.activeRuns).toBe(101);
      expect(view.activeRunIds).toEqual(ids.slice(0, 100));
    } finally {
      for (const id of ids) await fleet().ended(id);
    }
  });
});
