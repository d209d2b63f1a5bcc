// POST /v1/runs/:id/report-lease (README, "Agents and the wire protocol"): a report and
// then a lease in one round trip for external agents, as edge agents have over RPC. Each
// half keeps its own idempotency key; a refused report is the call's error and the lease
// is not tried; a refused lease comes back beside the report's answer.
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { httpTransport, withRetries } from "../agent/transport";
import { CoordinatorError } from "../agent/transport";
import { call, createRun, expectLedger, join, lease, okResult, status, uid } from "./helpers";

const BASE = "https://edgeperf.test";
const worker: typeof fetch = (input, init) => exports.default.fetch(new Request(input, init));

describe("POST /v1/runs/:id/report-lease", () => {
  it("settles the report and grants the lease in one call, and answers a repeat as the first time without counting twice", async () => {
    const run = await createRun({ load: { concurrency: 4 }, stop: { requests: 40 } });
    const agentId = await join(run);
    const first = (await lease(run, agentId, 4)).body.credits as Array<{ seq: number }>;
    const body = {
      report: { agentId, reportId: uid("rep"), inflight: 0, results: first.map((c) => okResult(c.seq)) },
      lease: { agentId, requestId: uid("req"), want: 4 },
    };
    const a = await call("POST", `/v1/runs/${run.id}/report-lease`, { token: run.agentToken, body });
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    expect(a.body.report).toMatchObject({ accepted: 4, duplicates: 0 });
    expect(a.body.lease.credits).toHaveLength(4);
    const again = await call("POST", `/v1/runs/${run.id}/report-lease`, { token: run.agentToken, body });
    expect(again.body.report).toMatchObject({ accepted: 4, duplicates: 0 });
    expect(again.body.lease.credits).toEqual(a.body.lease.credits);
    const s = (await status(run)).body;
    expect(s.counts).toMatchObject({ granted: 8, completed: 4, outstanding: 4 });
    expectLedger(s.counts);
  });

  it("answers a refused lease beside the accepted report, and a refused report as the call's error", async () => {
    const run = await createRun({ load: { concurrency: 2 }, stop: { requests: 2 } });
    const agentId = await join(run);
    const credits = (await lease(run, agentId, 2)).body.credits as Array<{ seq: number }>;
    // The budget is granted: the drain has begun and a lease is refused.
    const r = await call("POST", `/v1/runs/${run.id}/report-lease`, {
      token: run.agentToken,
      body: {
        report: { agentId, reportId: uid("rep"), inflight: 0, results: [okResult(credits[0]!.seq)] },
        lease: { agentId, requestId: uid("req"), want: 2 },
      },
    });
    expect(r.status).toBe(200);
    expect(r.body.report.accepted).toBe(1);
    expect(r.body.lease.error).toMatchObject({ status: 409, code: "run_draining" });

    const bad = await call("POST", `/v1/runs/${run.id}/report-lease`, {
      token: run.agentToken,
      body: {
        report: { agentId, reportId: uid("rep"), inflight: 0, results: [okResult(999)] },
        lease: { agentId, requestId: uid("req"), want: 2 },
      },
    });
    expect(bad.status).toBe(422);
    expect(bad.body.error.code).toBe("unknown_seq");
  });

  it("is what httpTransport.reportThenLease calls, and withRetries passes it on", async () => {
    const run = await createRun({ load: { concurrency: 2 }, stop: { requests: 2 } });
    const t = withRetries(httpTransport({ server: BASE, runId: run.id, token: run.agentToken, fetch: worker }));
    expect(t.reportThenLease).toBeTypeOf("function");
    const agentId = (await t.join({ name: "x" })).agentId;
    const credits = (await t.lease({ agentId, requestId: uid("req"), want: 2 })).credits;
    const both = await t.reportThenLease!(
      { agentId, reportId: uid("rep"), inflight: 0, results: credits.map((c) => okResult(c.seq)), returned: [] },
      { agentId, requestId: uid("req"), want: 2 },
    );
    expect(both.report.accepted).toBe(2);
    expect(both.lease).toBeInstanceOf(CoordinatorError);
    expect((both.lease as CoordinatorError).code).toBe("run_complete"); // the report settled the whole budget
  });
});
