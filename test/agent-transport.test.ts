// The coordinator connection: the real Worker over HTTP, with faults injected on the wire.
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { CoordinatorError, CoordinatorUnavailable, httpTransport, withRetries } from "../agent/transport";
import { call, createRun, status } from "./helpers";

const BASE = "https://edgeperf.test";
const worker: typeof fetch = (input, init) => exports.default.fetch(new Request(input, init));
const noWait = { sleep: () => Promise.resolve(), random: () => 0.5 };

/** Records every call's path and body, then hands it to `inner`. */
function recording(inner: typeof fetch) {
  const calls: Array<{ path: string; body: Record<string, unknown> }> = [];
  const f: typeof fetch = (input, init) => {
    calls.push({ path: new URL(String(input)).pathname, body: JSON.parse(String(init?.body)) as Record<string, unknown> });
    return inner(input, init);
  };
  return { calls, fetch: f };
}

describe("httpTransport", () => {
  it("joins, leases and reports over HTTP with the agent token", async () => {
    const run = await createRun({ stop: { requests: 3 } });
    const t = httpTransport({ server: `${BASE}/`, runId: run.id, token: run.agentToken, fetch: worker });
    const joined = await t.join({ name: "x" });
    expect(joined.spec.stop.requests).toBe(3);
    const leased = await t.lease({ agentId: joined.agentId, requestId: "q1", want: 3, inflight: 0 });
    expect(leased.credits.map((c) => c.seq)).toEqual([0, 1, 2]);
    expect(leased).toMatchObject({ stop: true, finishLeased: true });
    const results = leased.credits.map((c) => ({ seq: c.seq, ok: true, latencyMs: 5 }));
    expect(await t.report({ agentId: joined.agentId, reportId: "r1", inflight: 0, results, returned: [] })).toMatchObject({ accepted: 3 });
    expect((await status(run)).body.phase).toBe("complete");
  });

  it("turns a refusal into a CoordinatorError with the API's code, and never retries it", async () => {
    const run = await createRun();
    const rec = recording(worker);
    const t = withRetries(httpTransport({ server: BASE, runId: run.id, token: run.agentToken, fetch: rec.fetch }), noWait);
    const { agentId } = await t.join({});
    await t.lease({ agentId, requestId: "q0", want: 1 }); // an outstanding credit keeps the run draining
    await call("POST", `/v1/runs/${run.id}/stop`, {});
    const refused = await t.lease({ agentId, requestId: "q1", want: 1 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CoordinatorError);
    expect(refused).toMatchObject({ status: 409, code: "run_draining" });
    const bad = withRetries(httpTransport({ server: BASE, runId: run.id, token: "epa_wrong", fetch: rec.fetch }), noWait);
    expect(await bad.report({ agentId, reportId: "r1", inflight: 0, results: [], returned: [] }).catch((e: unknown) => e)).toBeInstanceOf(
      CoordinatorError,
    );
    expect(rec.calls.map((c) => c.path.split("/").pop())).toEqual(["agents", "leases", "leases", "reports"]);
  });

  it("retries a network failure with the same requestId, and the coordinator answers the same credits", async () => {
    const run = await createRun({ stop: { requests: 100 } });
    let drop = 1;
    const rec = recording(async (input, init) => {
      const res = await worker(input, init);
      if (String(input).endsWith("/leases") && drop-- > 0) throw new TypeError("connection reset"); // applied, answer lost
      return res;
    });
    const t = withRetries(httpTransport({ server: BASE, runId: run.id, token: run.agentToken, fetch: rec.fetch }), noWait);
    const { agentId } = await t.join({});
    const leased = await t.lease({ agentId, requestId: "q-7", want: 3 });
    expect(leased.credits).toHaveLength(3);
    const leases = rec.calls.filter((c) => c.path.endsWith("/leases"));
    expect(leases.map((c) => c.body.requestId)).toEqual(["q-7", "q-7"]);
    expect((await status(run)).body.counts.granted).toBe(3);
  });

  it("gives up after a bounded number of attempts, sending the same body each time", async () => {
    const rec = recording(async () => Response.json({ error: { code: "overloaded", message: "busy" } }, { status: 503 }));
    const t = withRetries(httpTransport({ server: BASE, runId: "r", token: "t", fetch: rec.fetch }), { ...noWait, attempts: 4 });
    const e = await t.report({ agentId: "a", reportId: "r-9", inflight: 0, results: [], returned: [] }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CoordinatorUnavailable);
    expect(rec.calls.map((c) => c.body.reportId)).toEqual(["r-9", "r-9", "r-9", "r-9"]);
  });

  it("stops retrying when the time budget is spent, and honours Retry-After", async () => {
    let clock = 0;
    const waits: number[] = [];
    const rec = recording(async () => new Response("slow down", { status: 429, headers: { "retry-after": "2" } }));
    const t = withRetries(httpTransport({ server: BASE, runId: "r", token: "t", fetch: rec.fetch }), {
      now: () => clock,
      sleep: async (ms) => {
        waits.push(ms);
        clock += ms;
      },
      maxElapsedMs: 5_000,
    });
    await expect(t.lease({ agentId: "a", requestId: "q", want: 1 })).rejects.toBeInstanceOf(CoordinatorUnavailable);
    expect(waits).toEqual([2_000, 2_000]);
  });

  it("does not retry a 429 that is a cap (too many agents)", async () => {
    const rec = recording(async () => Response.json({ error: { code: "too_many_agents", message: "full" } }, { status: 429 }));
    const t = withRetries(httpTransport({ server: BASE, runId: "r", token: "t", fetch: rec.fetch }), noWait);
    await expect(t.join({})).rejects.toMatchObject({ status: 429, code: "too_many_agents" });
    expect(rec.calls).toHaveLength(1);
  });
});
