// Active runs and the service drain (refuse new runs → wait for active ones → drained).
import { describe, expect, it } from "vitest";
import { call, createRun, join, lease, mockSpec, okResult, report } from "./helpers";

describe("the service drain", () => {
  it("refuses new runs, lets active ones finish, reports drained, and resumes on request", async () => {
    const run = await createRun({ stop: { requests: 3 } });
    const listed = await call("GET", "/v1/runs");
    expect(listed.body.runs.map((r: { id: string }) => r.id)).toContain(run.id);

    const started = await call("POST", "/v1/admin/drain");
    expect(started.status).toBe(202);
    expect(started.body).toEqual({
      phase: "draining",
      activeRuns: listed.body.runs.length,
      deadline: null,
      activeRunIds: listed.body.runs.map((r: { id: string }) => r.id),
    });
    const refused = await call("POST", "/v1/runs", { body: mockSpec() });
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe("service_draining");

    // Every other active run of this file is stopped; ours runs to completion.
    for (const r of listed.body.runs as Array<{ id: string }>) {
      if (r.id !== run.id) await call("POST", `/v1/runs/${r.id}/stop`, { body: { mode: "force" } });
    }
    expect((await call("GET", "/v1/admin/drain")).body).toEqual({
      phase: "draining",
      activeRuns: 1,
      deadline: null,
      activeRunIds: [run.id],
    });
    const agentId = await join(run);
    const seqs = (await lease(run, agentId, 3)).body.credits.map((c: { seq: number }) => c.seq);
    await report(
      run,
      agentId,
      seqs.map((s: number) => okResult(s)),
    );
    expect((await call("GET", "/v1/admin/drain")).body).toEqual({ phase: "drained", activeRuns: 0, deadline: null, activeRunIds: [] });
    expect((await call("GET", "/v1/runs")).body.runs).toEqual([]);

    const resumed = await call("DELETE", "/v1/admin/drain");
    expect(resumed.body).toEqual({ phase: "accepting", activeRuns: 0, deadline: null, activeRunIds: [] });
    expect((await call("POST", "/v1/runs", { body: mockSpec() })).status).toBe(201);
  });

  it("needs the API token for every operator route", async () => {
    const run = await createRun();
    for (const [method, path] of [
      ["GET", "/v1/runs"],
      ["GET", "/v1/admin/drain"],
      ["POST", "/v1/admin/drain"],
      ["DELETE", "/v1/admin/drain"],
    ] as const) {
      expect((await call(method, path, { token: null })).status).toBe(401);
      expect((await call(method, path, { token: run.readToken })).status).toBe(401);
    }
  });
});
