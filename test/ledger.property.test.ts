// The ledger invariant under random sequences of agent and operator actions, checked
// against the real RunCoordinator after every step (docs/ARCHITECTURE.md, "The run lifecycle"):
//   granted = returned + completed + failed + abandoned + outstanding, for both ledgers;
//   granted − returned ≤ stop.requests; no credit granted once draining began;
//   requests in flight across obedient agents never exceed load.concurrency;
//   complete ⇒ nothing outstanding; the stored leases (durable/lease-table.ts) hold exactly
//   the outstanding credits, per agent, through evictions.
// And the range arithmetic the leases use (durable/rows.ts) against a plain set model.
import fc from "fast-check";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Snapshot } from "../durable/views";
import type { RpcResult } from "../contract/errors";
import { advance, createRun, setClock } from "./helpers";
import type { RunCoordinator } from "../durable/RunCoordinator";
import { decodeRanges, encodeRanges, rangesOf, sizeOf, subtract } from "../durable/rows";
import type { TestRun } from "./helpers";
import { MAX_DEPTH_SHARES } from "../contract/protocol";
import type { JoinAnswer } from "../contract/protocol";

const API = { role: "api" } as const;

type Action =
  | { kind: "join" }
  | { kind: "lease"; agent: number; want: number; retry: boolean; depth?: number | undefined }
  | { kind: "report"; agent: number; settle: number; fail: number; give: number; dup: boolean; retry: boolean }
  | { kind: "stop"; force: boolean }
  | { kind: "time"; ms: number }
  | { kind: "evict" };

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({ kind: "join" as const }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("lease" as const),
      agent: fc.nat(3),
      want: fc.integer({ min: 1, max: 12 }),
      retry: fc.boolean(),
      // Adaptive lease depths, from none (one share) to past the cap.
      depth: fc.option(fc.integer({ min: 0, max: 60 }), { nil: undefined }),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("report" as const),
      agent: fc.nat(3),
      settle: fc.nat(6),
      fail: fc.nat(2),
      give: fc.nat(2),
      dup: fc.boolean(),
      retry: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("stop" as const), force: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("time" as const), ms: fc.integer({ min: 100, max: 20_000 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "evict" as const }) },
);

/** Outstanding credits per holder's ordinal as the leases table stores them. */
async function storedOutstanding(run: TestRun): Promise<number[]> {
  return runInDurableObject(run.stub, (_c: RunCoordinator, state) => {
    const held: number[] = [];
    for (const r of state.storage.sql.exec("SELECT agent, open FROM leases").toArray()) {
      const ord = Number(r.agent);
      while (held.length <= ord) held.push(0);
      held[ord]! += sizeOf(decodeRanges(String(r.open)));
    }
    return held;
  });
}

function value<T>(r: RpcResult<T>): T | null {
  return r.ok ? r.value : null;
}

function checkInvariants(s: Snapshot, budget: number, pool: number, grantedAtDrain: number | null): void {
  for (const l of [s.counts, s.warmup]) {
    expect(l.granted).toBe(l.returned + l.completed + l.failed + l.abandoned + l.outstanding);
    expect(l.outstanding).toBeGreaterThanOrEqual(0);
  }
  expect(s.counts.granted - s.counts.returned).toBeLessThanOrEqual(budget);
  const held = s.agents.reduce((n, a) => n + a.outstanding, 0);
  // Whatever depth is asked for, an agent holds at most its share plus MAX_DEPTH_SHARES shares.
  for (const a of s.agents) expect(a.outstanding).toBeLessThanOrEqual((1 + MAX_DEPTH_SHARES) * pool);
  expect(held).toBe(s.counts.outstanding + s.warmup.outstanding);
  expect(s.agents.filter((a) => a.alive).reduce((n, a) => n + a.concurrency, 0)).toBeLessThanOrEqual(pool);
  if (grantedAtDrain !== null) expect(s.counts.granted + s.warmup.granted).toBe(grantedAtDrain);
  if (s.phase === "complete") expect(s.counts.outstanding + s.warmup.outstanding).toBe(0);
}

async function play(actions: Action[], budget: number, pool: number, warmup: number): Promise<void> {
  const run: TestRun = await createRun({
    load: { concurrency: pool },
    stop: { requests: budget },
    warmup: { requests: warmup },
    drainTimeoutSeconds: 30,
  });
  // An obedient agent: `cap` is the most it may have in flight. It grows as soon as a
  // larger share arrives; after a smaller one, no new sends until in flight ≤ the share.
  const agents: Array<{
    id: string;
    held: number[];
    cap: number;
    lastLease?: string;
    lastReport?: { id: string; body: unknown };
    done: number[];
  }> = [];
  const inflight = (ag: { held: number[]; cap: number }) => Math.min(ag.held.length, ag.cap);
  const told = (ag: { held: number[]; cap: number }, share: number) => {
    ag.cap = share >= ag.cap ? share : Math.max(share, inflight(ag));
  };
  let grantedAtDrain: number | null = null;
  let n = 0;
  for (const a of actions) {
    n++;
    if (a.kind === "join") {
      // RPC's type mapping of the answer's deep spec type defeats inference; the value is plain data.
      const j = value((await run.stub.join(API, { name: `a${agents.length}` })) as RpcResult<JoinAnswer>);
      if (j) agents.push({ id: j.agentId, held: [], cap: 0, done: [] });
    } else if (a.kind === "lease" && agents.length > 0) {
      const ag = agents[a.agent % agents.length]!;
      const requestId = a.retry && ag.lastLease ? ag.lastLease : `l${n}`;
      const depth = a.depth !== undefined ? { depth: a.depth } : {};
      const l = value(await run.stub.lease(API, { agentId: ag.id, requestId, want: a.want, inflight: inflight(ag), ...depth }));
      ag.lastLease = requestId;
      if (l) {
        for (const c of l.credits) if (!ag.held.includes(c.seq)) ag.held.push(c.seq);
        told(ag, l.concurrency);
      }
    } else if (a.kind === "report" && agents.length > 0) {
      const ag = agents[a.agent % agents.length]!;
      if (a.retry && ag.lastReport) {
        const r = value(await run.stub.report(API, ag.lastReport.body as never));
        if (r) told(ag, r.concurrency);
      } else {
        const ok = ag.held.splice(0, a.settle);
        const failed = ag.held.splice(0, a.fail);
        const given = ag.held.splice(0, a.give);
        const results = [
          ...ok.map((seq) => ({ seq, ok: true, latencyMs: 50 + seq, ttftMs: 10, outputTokens: 8, inputTokens: 100 })),
          ...failed.map((seq) => ({ seq, ok: false, latencyMs: 5, error: { code: "http_500", type: "http" } })),
          ...(a.dup && ag.done.length > 0 ? [{ seq: ag.done[0]!, ok: true, latencyMs: 1 }] : []),
        ];
        const body = { agentId: ag.id, reportId: `r${n}`, inflight: inflight(ag), results, returned: given };
        const r = await run.stub.report(API, body);
        ag.lastReport = { id: body.reportId, body };
        if (r.ok) {
          ag.done.push(...ok, ...failed, ...given);
          told(ag, r.value.concurrency);
        }
      }
    } else if (a.kind === "stop") {
      await run.stub.stop(API, a.force ? "force" : "graceful");
    } else if (a.kind === "evict") {
      await evictDurableObject(run.stub);
      await setClock(run, run.clock);
    } else if (a.kind === "time") {
      await advance(run, a.ms);
      await runDurableObjectAlarm(run.stub);
    }
    const st = await run.stub.status(API);
    if (!st.ok) {
      expect(st.code).toBe("run_not_found"); // wiped after its grace window
      return;
    }
    const s = st.value;
    // An agent the coordinator declared dead is dead: its requests are gone.
    for (const ag of agents) if (s.agents.find((x) => x.agentId === ag.id)?.alive === false) Object.assign(ag, { held: [], cap: 0 });
    expect(agents.reduce((sum, ag) => sum + inflight(ag), 0)).toBeLessThanOrEqual(pool);
    if (s.phase !== "running" && s.phase !== "created" && grantedAtDrain === null) grantedAtDrain = s.counts.granted + s.warmup.granted;
    checkInvariants(s, budget, pool, grantedAtDrain);
    const stored = await storedOutstanding(run);
    expect(s.agents.map((_ag, ord) => stored[ord] ?? 0)).toEqual(s.agents.map((ag) => ag.outstanding));
  }
}

describe("a lease's outstanding offsets as ranges", () => {
  it("lose exactly the taken offsets that were outstanding, and survive their text encoding", () => {
    const offsets = fc.uniqueArray(fc.nat(80), { maxLength: 60 });
    fc.assert(
      fc.property(offsets, fc.array(fc.nat(90), { maxLength: 60 }), (open, take) => {
        const { left, taken } = subtract(rangesOf(open), rangesOf(take));
        const expand = (r: Array<[number, number]>) => r.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => a + i));
        const sorted = [...open].sort((x, y) => x - y);
        expect(expand(taken)).toEqual(sorted.filter((x) => take.includes(x)));
        expect(expand(left)).toEqual(sorted.filter((x) => !take.includes(x)));
        expect(sizeOf(left) + sizeOf(taken)).toBe(open.length);
        expect(decodeRanges(encodeRanges(left))).toEqual(left);
        // Canonical: sorted, disjoint, never two runs that touch.
        for (let i = 1; i < left.length; i++) expect(left[i]![0]).toBeGreaterThan(left[i - 1]![1] + 1);
      }),
      { numRuns: 500, seed: 20261122 },
    );
  });
});

describe("the credit ledger", () => {
  it("holds its invariants under random sequences of join, lease, report, return, stop, expiry, alarms and evictions", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(action, { minLength: 5, maxLength: 40 }),
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 3 }),
        (actions, budget, pool, warmup) => play(actions, budget, pool, warmup),
      ),
      {
        numRuns: 100,
        seed: 20261122,
        // Found by a longer search against a coordinator that handed capacity to a
        // newcomer before the old holder had shrunk: kept so that case always runs.
        examples: [
          [
            [
              { kind: "join" },
              { kind: "lease", agent: 0, want: 1, retry: false },
              { kind: "join" },
              { kind: "lease", agent: 0, want: 1, retry: false },
              { kind: "lease", agent: 3, want: 1, retry: false },
              { kind: "time", ms: 100 },
              { kind: "report", agent: 0, settle: 0, fail: 0, give: 0, dup: false, retry: false },
              { kind: "join" },
              { kind: "stop", force: false },
            ],
            3,
            2,
            0,
          ],
        ],
      },
    );
  }, 120_000);
});
