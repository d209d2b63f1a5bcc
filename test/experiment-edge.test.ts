// An experiment as it runs in production: nothing driven by hand. Edge agents (LoadAgent
// objects on their own alarms) send each level's requests to the built-in mock, and the
// experiment's own alarm, on real time, long-polls each level's run and starts the next
// the moment it completes.
import { describe, expect, it } from "vitest";
import { call } from "./helpers";

describe("an experiment on real time with edge agents", () => {
  it("runs every level on its own, each level's run created only after the previous one completed", async () => {
    const created = await call("POST", "/v1/experiments", {
      body: {
        base: {
          target: { url: "builtin:mock", stream: true, mock: { ttftMs: 5, itlMs: 1 } },
          workload: { outputTokens: { mean: 4 } },
          stop: { requests: 30 },
          agents: { edge: 1 },
        },
        levels: { concurrency: [2, 6, 4] },
        graceSeconds: 30,
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { id, readToken } = created.body as { id: string; readToken: string };
    let res = await call("GET", `/v1/experiments/${id}/results?wait=60`, { token: readToken });
    for (let i = 0; i < 3 && res.body.phase !== "complete"; i++) {
      res = await call("GET", `/v1/experiments/${id}/results?wait=60`, { token: readToken });
    }
    expect(res.body).toMatchObject({ final: true, phase: "complete", status: "complete", outcome: "completed" });
    const levels = res.body.levels as Array<Record<string, any>>;
    expect(levels.map((l) => l.level)).toEqual([2, 6, 4]);
    for (const l of levels) {
      expect(l).toMatchObject({ status: "complete", outcome: "completed" });
      expect(l.counts).toEqual({ granted: 30, returned: 0, completed: 30, failed: 0, abandoned: 0, outstanding: 0 });
      // The mock never answers sooner than asked; a loaded machine may answer later.
      expect(l.metrics.time_to_first_token.p50).toBeGreaterThanOrEqual(4);
      expect(l.metrics.time_to_first_token.p50).toBeLessThan(100);
    }
    const gaps = levels.slice(1).map((l, i) => Date.parse(l.createdAt) - Date.parse(levels[i]!.completedAt));
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(0);
    // The first level may end before the alarm's first long-poll begins (POLL_MS after
    // creation); from then on the alarm is waiting on each run when it completes and
    // creates the next one at once, not on a later poll.
    expect(gaps[1]).toBeLessThan(POLL_BOUND_MS);
  }, 120_000);
});

/** Well under the periodic poll's second, with room for a loaded machine. */
const POLL_BOUND_MS = 500;
