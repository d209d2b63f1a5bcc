// What a run costs in Durable Object rows written (docs/ARCHITECTURE.md, "Cost"): the
// coordinator keeps outstanding credits as one row per lease, so a request costs a
// fraction of a row, and durability holds all the same (a settled seq settles once, an
// eviction loses nothing, a run stored by the layout before leases carries on).
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { RunCoordinator } from "../durable/RunCoordinator";
import { call, createRun, join, lease, okResult, report, setClock, status, uid } from "./helpers";
import type { TestRun } from "./helpers";

const rowsWritten = (run: TestRun) => runInDurableObject(run.stub, (c: RunCoordinator) => c.rowsWritten);
const leaseRows = (run: TestRun) =>
  runInDurableObject(run.stub, (_c: RunCoordinator, state) => Number(state.storage.sql.exec("SELECT COUNT(*) AS n FROM leases").one().n));

async function restart(run: TestRun): Promise<void> {
  await evictDurableObject(run.stub);
  await setClock(run, run.clock);
}

const seqsOf = (res: { body: { credits: Array<{ seq: number }> } }) => res.body.credits.map((c) => c.seq);

interface Driven {
  requests: number;
  calls: number;
  rows: number;
}

/**
 * `agents` external agents, each keeping `hold` credits in hand (leasing what it lacks)
 * and reporting `batch` results at a time, until the budget is settled and the run is
 * complete. Rows are counted from just after the run's creation to its completion.
 */
async function drive(budget: number, agents: number, hold: number, batch: number): Promise<Driven> {
  // A share of hold/2 lets each agent hold `hold` credits (a share plus a share of depth).
  const run = await createRun({ load: { concurrency: (agents * hold) / 2 }, stop: { requests: budget } });
  const before = await rowsWritten(run);
  const ids: string[] = [];
  for (let i = 0; i < agents; i++) ids.push(await join(run, `a${i}`));
  const held: number[][] = ids.map(() => []);
  const done = ids.map(() => false);
  let calls = ids.length;
  let settled = 0;
  while (done.includes(false)) {
    for (const [i, agentId] of ids.entries()) {
      if (done[i]) continue;
      const mine = held[i]!;
      let stop = false;
      if (mine.length < hold) {
        const l = await lease(run, agentId, hold - mine.length);
        calls++;
        if (l.status === 200) {
          mine.push(...seqsOf(l));
          stop = l.body.stop;
        } else stop = true; // draining: the budget is granted
      }
      const r = await report(
        run,
        agentId,
        mine.splice(0, batch).map((s) => okResult(s)),
      );
      calls++;
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      settled += r.body.accepted;
      if ((stop || r.body.stop) && mine.length === 0) done[i] = true;
    }
  }
  const res = await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken });
  expect(res.body.phase).toBe("complete");
  expect(res.body.counts).toEqual({ granted: budget, returned: 0, completed: budget, failed: 0, abandoned: 0, outstanding: 0 });
  expect(settled).toBe(budget);
  expect(await leaseRows(run)).toBe(0);
  return { requests: budget, calls, rows: (await rowsWritten(run)) - before };
}

describe("rows written per request", () => {
  it("stay at or under 0.5 for agents leasing 128 credits ahead and reporting 64 results at a time", async () => {
    const d = await drive(4_096, 2, 128, 64);
    const perRequest = d.rows / d.requests;
    console.log(`cost: ${d.rows} rows written for ${d.requests} requests (${perRequest.toFixed(3)}/request), ${d.calls} calls`);
    expect(perRequest).toBeLessThanOrEqual(0.5);
  }, 60_000);

  it("are a few per call whatever the batch, so small batches cost more per request and nothing grows per credit", async () => {
    const small = await drive(512, 1, 16, 8);
    const large = await drive(4_096, 1, 256, 128);
    const perCall = (d: Driven) => d.rows / d.calls;
    console.log(
      `cost: batches of 8: ${(small.rows / small.requests).toFixed(3)} rows/request, ${perCall(small).toFixed(2)}/call; ` +
        `batches of 128: ${(large.rows / large.requests).toFixed(3)} rows/request, ${perCall(large).toFixed(2)}/call`,
    );
    // A call writes its agent row, its idempotency slot, the run's state, and for a report
    // the results documents and each lease it touched: a handful, not one per credit.
    expect(perCall(small)).toBeLessThanOrEqual(7);
    expect(perCall(large)).toBeLessThanOrEqual(7);
    expect(Math.abs(perCall(large) - perCall(small))).toBeLessThan(1.5);
    expect(large.rows / large.requests).toBeLessThan(small.rows / small.requests / 8);
  }, 60_000);
});

describe("credits stored as leases", () => {
  it("keep one row per lease, rewritten once per report, settle each seq once in any order, and survive eviction", async () => {
    const run = await createRun({ load: { concurrency: 64 }, stop: { requests: 128 } });
    const agentId = await join(run);
    const seqs = seqsOf(await lease(run, agentId, 128));
    expect(seqs).toHaveLength(128);
    expect(await leaseRows(run)).toBe(1);

    const odd = seqs.filter((s) => s % 2 === 1);
    const even = seqs.filter((s) => s % 2 === 0);
    // What a report writes does not depend on how many credits it settles: one settling
    // one credit and one settling 62 write the same rows (the lease row, the agent row, the
    // idempotency slot, the state and the results documents).
    const reportCost = async (settle: number[]) => {
      const w0 = await rowsWritten(run);
      const r = await report(
        run,
        agentId,
        settle.map((s) => okResult(s)),
      );
      expect(r.body).toMatchObject({ accepted: settle.length, duplicates: 0 });
      return (await rowsWritten(run)) - w0;
    };
    await reportCost(odd.slice(0, 1)); // stores the results documents for the first time
    const one = await reportCost(odd.slice(1, 2));
    const many = await reportCost(odd.slice(2));
    expect(many).toBe(one);
    expect(one).toBeLessThanOrEqual(8);
    expect(await leaseRows(run)).toBe(1);

    await restart(run);
    expect((await status(run)).body.counts).toMatchObject({ completed: 64, outstanding: 64 });
    const second = await report(
      run,
      agentId,
      [...odd.slice(0, 3), ...even].map((s) => okResult(s)),
    );
    expect(second.body).toMatchObject({ accepted: 64, duplicates: 3 });
    expect(await leaseRows(run)).toBe(0);
    const res = (await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken })).body;
    expect(res.counts).toEqual({ granted: 128, returned: 0, completed: 128, failed: 0, abandoned: 0, outstanding: 0 });
  });

  it("answer a repeated lease with exactly its still-outstanding credits, intended times included, after eviction", async () => {
    const run = await createRun({ load: { rate: 100, arrival: "constant" }, stop: { requests: 1000 } });
    const agentId = await join(run);
    const requestId = uid("q");
    const l = await lease(run, agentId, 100, requestId);
    const credits = l.body.credits as Array<{ seq: number; at: number }>;
    expect(credits.length).toBeGreaterThan(2);
    await report(run, agentId, [okResult(credits[0]!.seq)], { returned: [credits[1]!.seq] });
    await restart(run);
    const repeat = await lease(run, agentId, 100, requestId);
    expect(repeat.status).toBe(200);
    expect(repeat.body.credits).toEqual(credits.slice(2));
  });

  it("of a run stored by the layout before leases (a row per credit, calls by number) carry on after a deploy", async () => {
    const run = await createRun({ load: { concurrency: 4 }, stop: { requests: 12 }, warmup: { requests: 2 } });
    const agentId = await join(run);
    const warm = seqsOf(await lease(run, agentId, 8));
    expect(warm).toHaveLength(2);
    await report(
      run,
      agentId,
      warm.map((s) => okResult(s)),
    );
    const requestId = uid("q");
    const granted = (await lease(run, agentId, 8, requestId)).body.credits as Array<{ seq: number }>;
    expect(granted).toHaveLength(8);
    await report(
      run,
      agentId,
      granted.slice(0, 3).map((c) => okResult(c.seq)),
    );
    // Rewrite the stored run as the previous version left it: a row per outstanding credit,
    // and the idempotency answers keyed by the agent's call number.
    await runInDurableObject(run.stub, (_c: RunCoordinator, state) => {
      const sql = state.storage.sql;
      sql.exec("DROP TABLE leases");
      sql.exec("CREATE TABLE credits (seq INTEGER PRIMARY KEY, agent INTEGER NOT NULL, at REAL, warmup INTEGER NOT NULL)");
      for (const c of granted.slice(3)) sql.exec("INSERT INTO credits (seq, agent, at, warmup) VALUES (?, 0, NULL, 0)", c.seq);
      const answers = sql.exec("SELECT agent, slot, kind, key, answer FROM calls").toArray();
      sql.exec("DROP TABLE calls");
      sql.exec(
        "CREATE TABLE calls (agent INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, n INTEGER NOT NULL, answer TEXT NOT NULL, PRIMARY KEY (agent, kind, key)) WITHOUT ROWID",
      );
      for (const a of answers)
        sql.exec("INSERT INTO calls (agent, kind, key, n, answer) VALUES (?, ?, ?, ?, ?)", a.agent, a.kind, a.key, a.slot, a.answer);
    });
    await restart(run);
    const repeat = await lease(run, agentId, 8, requestId);
    expect(repeat.body.credits).toEqual(granted.slice(3));
    expect(await leaseRows(run)).toBe(1);
    const settled = await report(
      run,
      agentId,
      granted.slice(2).map((c) => okResult(c.seq)),
    );
    expect(settled.body).toMatchObject({ accepted: 5, duplicates: 1 });
    const tables = await runInDurableObject(run.stub, (_c: RunCoordinator, state) =>
      state.storage.sql
        .exec("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .toArray()
        .map((r) => String(r.name)),
    );
    expect(tables).toEqual(expect.arrayContaining(["leases", "calls"]));
    expect(tables).not.toContain("credits");
    const rest = seqsOf(await lease(run, agentId, 8));
    expect(rest).toHaveLength(4);
    await report(
      run,
      agentId,
      rest.map((s) => okResult(s)),
    );
    const res = (await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken })).body;
    expect(res.phase).toBe("complete");
    expect(res.counts).toEqual({ granted: 12, returned: 0, completed: 12, failed: 0, abandoned: 0, outstanding: 0 });
  });
});
