// Benchmarks of one RunCoordinator, inside workerd (docs/BENCHMARKS.md):
//
//   coordinator  requests settled per second with 16 simulated agents reporting in
//                batches of 256 (the agent engine's REPORT_BATCH), against the same run
//                shape settled one report per request, measured alternately in one run;
//                plus a profile: one agent, per-call time of lease(B) and report(B) for
//                a sweep of batch sizes, fitted as fixed + per-request cost; and the
//                Durable Object rows written per settled request in each phase (what
//                Cloudflare bills for storage writes: docs/ARCHITECTURE.md, "Cost").
//   scale        the results document and the Durable Object's SQLite size after runs
//                of 1k and 1M requests settled by 16 simulated agents.
//
// Agents here are plain loops calling the coordinator's RPC methods (lease/report with
// the API role, bodies as in contract/protocol.ts), as LoadAgent does. They run in the
// same isolate as the coordinator (that is how vitest-pool-workers hosts Durable
// Objects), so their own work (building result arrays, RPC serialisation) is counted
// against the coordinator: the figures are a lower bound for a coordinator on its own
// thread. Nothing here asserts a speed: the figures are printed as one line,
// `BENCH_RESULT {json}`, for bench/run.ts.
import { env, exports } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { prng } from "../../agent/prompt.ts";
import type { RpcResult as Rpc } from "../../contract/errors.ts";
import type { ResultItem as Result } from "../../contract/protocol.ts";

const QUICK = env.BENCH_QUICK === "1";
const ONLY = (env.BENCH_ONLY ?? "").split(",").filter((s) => s !== "");
const wants = (section: string) => ONLY.length === 0 || ONLY.includes(section);
const API_TOKEN = "bench-api-token";
const AUTH = { role: "api" } as const;
const AGENTS = 16;

interface Coordinator {
  join(auth: typeof AUTH, body: { name?: string; region?: string }): Promise<Rpc<{ agentId: string }>>;
  lease(
    auth: typeof AUTH,
    body: { agentId: string; requestId: string; want: number; inflight?: number },
  ): Promise<Rpc<{ credits: Array<{ seq: number }>; stop: boolean }>>;
  report(
    auth: typeof AUTH,
    body: { agentId: string; reportId: string; inflight: number; results: Result[]; returned: number[] },
  ): Promise<Rpc<{ accepted: number; duplicates: number; stop: boolean }>>;
  stop(auth: typeof AUTH, mode: "graceful" | "force"): Promise<Rpc<unknown>>;
}

function value<T>(r: Rpc<T>): T {
  if (!r.ok) throw new Error(`coordinator refused: ${r.status} ${r.code}: ${r.message}`);
  return r.value;
}

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = { authorization: `Bearer ${API_TOKEN}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await exports.default.fetch(
    new Request(`https://edgeperf.bench${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) }),
  );
  return { status: res.status, text: await res.text() };
}

async function createRun(concurrency: number, requests: number): Promise<{ id: string; stub: Coordinator }> {
  const res = await call("POST", "/v1/runs", {
    target: { url: "builtin:mock", stream: true },
    load: { concurrency },
    stop: { requests },
    agents: { edge: 0 },
    graceSeconds: 300,
  });
  expect(res.status, res.text).toBe(201);
  const id = (JSON.parse(res.text) as { id: string }).id;
  const ns = env.RUN_COORDINATOR;
  return { id, stub: ns.get(ns.idFromString(id)) as Coordinator };
}

/** Joins every agent before the first lease, so each gets its even share at once. */
async function joinAll(stub: Coordinator, n: number, regions = 1): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push(value(await stub.join(AUTH, { name: `sim-${i}`, region: `region-${i % regions}` })).agentId);
  return ids;
}

// Seeded results, so 1k and 1M runs draw from the same distributions.
function normal(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** A plausible LLM request: TTFT ~ lognormal around 120 ms, 128 ± 32 output tokens at ~8 ms each. */
function simulated(r: () => number, seq: number, endMs: number): Result {
  const ttftMs = Math.round(120 * Math.exp(0.35 * normal(r)) * 1000) / 1000;
  const outputTokens = Math.max(1, Math.round(128 + 32 * normal(r)));
  const itl = 8 * Math.exp(0.15 * normal(r));
  const latencyMs = Math.round((ttftMs + (outputTokens - 1) * itl) * 1000) / 1000;
  const inputTokens = Math.max(1, Math.round(550 + 50 * normal(r)));
  return { seq, ok: true, latencyMs, ttftMs, inputTokens, outputTokens, endMs: Math.round(endMs * 1000) / 1000 };
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

// ── coordinator ──────────────────────────────────────────────────────────────

interface Phase {
  settled: number;
  seconds: number;
  perSecond: number;
  leaseCalls: number;
  reportCalls: number;
  /** Rows the coordinator wrote from its run's creation to the force stop, per settled request. */
  rowsWrittenPerRequest: number;
}

/** Rows written by the coordinator instance (SQLite rows and alarms; durable/run-store.ts). */
async function rowsWritten(stub: Coordinator): Promise<number> {
  return runInDurableObject(stub, (instance) => (instance as unknown as { rowsWritten: number }).rowsWritten);
}

/**
 * 16 agents lease `leaseBatch` credits and settle them in reports of `reportBatch`
 * results, until `seconds` have passed; each finishes the round it is in.
 */
async function settlePhase(leaseBatch: number, reportBatch: number, seconds: number, regions = 1): Promise<Phase> {
  const { stub } = await createRun(AGENTS * leaseBatch, 100_000_000);
  const agents = await joinAll(stub, AGENTS, regions);
  const r = prng(1);
  const template = Array.from({ length: leaseBatch }, (_, i) => simulated(r, i, 0));
  let settled = 0;
  let leaseCalls = 0;
  let reportCalls = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  await Promise.all(
    agents.map(async (agentId, a) => {
      let n = 0;
      while (performance.now() < deadline) {
        const lease = value(await stub.lease(AUTH, { agentId, requestId: `q${a}-${n}`, want: leaseBatch, inflight: 0 }));
        leaseCalls++;
        const seqs = lease.credits.map((c) => c.seq);
        for (let i = 0; i < seqs.length; i += reportBatch) {
          if (performance.now() >= deadline) {
            // Time is up mid-lease (one report per request is slow): give the rest back.
            value(await stub.report(AUTH, { agentId, reportId: `r${a}-${n}-end`, inflight: 0, results: [], returned: seqs.slice(i) }));
            reportCalls++;
            break;
          }
          const results = seqs.slice(i, i + reportBatch).map((seq, j) => ({ ...template[(i + j) % leaseBatch]!, seq }));
          const rep = value(await stub.report(AUTH, { agentId, reportId: `r${a}-${n}-${i}`, inflight: 0, results, returned: [] }));
          reportCalls++;
          settled += rep.accepted;
        }
        n++;
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  value(await stub.stop(AUTH, "force"));
  const rows = await rowsWritten(stub);
  return { settled, seconds: elapsed, perSecond: settled / elapsed, leaseCalls, reportCalls, rowsWrittenPerRequest: rows / settled };
}

interface ProfileRow {
  batch: number;
  leaseMs: number;
  reportMs: number;
  perRequestUs: number;
}

/** One agent, no queueing: the time of one lease(B) and one report(B) call, by batch size. */
async function profileBatch(batch: number, rounds: number): Promise<ProfileRow> {
  const { stub } = await createRun(batch, 100_000_000);
  const [agentId] = await joinAll(stub, 1);
  const r = prng(2);
  const template = Array.from({ length: batch }, (_, i) => simulated(r, i, 0));
  const leaseMs: number[] = [];
  const reportMs: number[] = [];
  for (let n = 0; n < rounds; n++) {
    const t0 = performance.now();
    const lease = value(await stub.lease(AUTH, { agentId: agentId!, requestId: `q${n}`, want: batch, inflight: 0 }));
    const t1 = performance.now();
    const results = lease.credits.map((c, j) => ({ ...template[j]!, seq: c.seq }));
    const t2 = performance.now();
    value(await stub.report(AUTH, { agentId: agentId!, reportId: `r${n}`, inflight: 0, results, returned: [] }));
    const t3 = performance.now();
    if (lease.credits.length !== batch) throw new Error(`lease gave ${lease.credits.length} of ${batch}`);
    leaseMs.push(t1 - t0);
    reportMs.push(t3 - t2);
  }
  value(await stub.stop(AUTH, "force"));
  // Means: workerd's clock moves only across I/O and in coarse steps, so one call's
  // time is coarse, but the mean over many calls is not.
  const l = mean(leaseMs);
  const p = mean(reportMs);
  return { batch, leaseMs: l, reportMs: p, perRequestUs: ((l + p) / batch) * 1000 };
}

/** Least squares y = a + b·x. */
function fit(xs: number[], ys: number[]): { a: number; b: number } {
  const n = xs.length;
  const mx = xs.reduce((s, x) => s + x, 0) / n;
  const my = ys.reduce((s, y) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
  }
  const b = sxx === 0 ? 0 : sxy / sxx;
  return { a: my - b * mx, b };
}

// ── scale ────────────────────────────────────────────────────────────────────

interface ScaleRow {
  requests: number;
  batch: number;
  resultsBytes: number;
  aiperfBytes: number;
  storageBytes: number;
  storagePeakBytes: number;
  breakdown: Record<string, number>;
  seconds: number;
}

// The simulated run's length: the coordinator's clock follows it (scaleRun), and it stays
// under the 15 s lease TTL so no simulated agent, however far behind, is declared dead.
const SIMULATED_RUN_MS = 14_000;

async function databaseSize(stub: Coordinator): Promise<number> {
  return runInDurableObject(stub, (_instance, state) => state.storage.sql.databaseSize);
}

/** Where the bytes are: the stored JSON documents by key, and the rows of each table. */
async function storageBreakdown(stub: Coordinator): Promise<Record<string, number>> {
  return runInDurableObject(stub, (_instance, state) => {
    const sql = state.storage.sql;
    const out: Record<string, number> = {};
    for (const row of sql.exec("SELECT k, length(v) AS n FROM meta").toArray()) out[`meta.${String(row.k)}`] = Number(row.n);
    for (const t of ["agents", "leases", "calls", "slots"]) out[`rows.${t}`] = Number(sql.exec(`SELECT COUNT(*) AS n FROM ${t}`).one().n);
    for (const p of ["page_size", "page_count", "freelist_count"]) {
      try {
        out[`pragma.${p}`] = Number(Object.values(sql.exec(`PRAGMA ${p}`).one())[0]);
      } catch {
        /* not allowed in Durable Object SQL */
      }
    }
    return out;
  });
}

/**
 * `total` requests settled by 16 agents, each leasing up to `batch` credits (in calls of
 * at most 1,000, the wire limit) and settling them in one report. Results end evenly over
 * the same simulated minute whatever `total` is, so both runs have the same time series.
 */
async function scaleRun(total: number, batch: number): Promise<ScaleRow> {
  // Two shares outstanding per agent: a share of batch/2 lets each agent hold `batch`.
  const { id, stub } = await createRun(AGENTS * Math.ceil(batch / 2), total);
  // The coordinator's clock follows the simulated run, so results end within its clock
  // window (it clamps end times to it) and fill the time series as a real run would.
  const t0 = Date.now();
  let simulatedNow = t0;
  await runInDurableObject(stub, (instance) => {
    (instance as { now: () => number }).now = () => simulatedNow;
  });
  const agents = await joinAll(stub, AGENTS);
  const r = prng(3);
  let peak = 0;
  let settled = 0;
  let nextProbe = total / 2;
  const start = performance.now();
  await Promise.all(
    agents.map(async (agentId, a) => {
      for (let n = 0; ; n++) {
        const seqs: number[] = [];
        let stop = false;
        for (let k = 0; seqs.length < batch; k++) {
          const want = Math.min(1_000, batch - seqs.length);
          const answer = await stub.lease(AUTH, { agentId, requestId: `q${a}-${n}-${k}`, want, inflight: 0 });
          // The budget fully granted: the run drains, and leases are refused from then on.
          if (!answer.ok && answer.code === "run_draining") {
            stop = true;
            break;
          }
          const lease = value(answer);
          seqs.push(...lease.credits.map((c) => c.seq));
          if (lease.credits.length < want) {
            stop = lease.stop || lease.credits.length === 0;
            break;
          }
        }
        if (seqs.length === 0) return;
        const results = seqs.map((seq) => simulated(r, seq, (seq / total) * SIMULATED_RUN_MS));
        simulatedNow = Math.max(simulatedNow, t0 + (Math.max(...seqs) / total) * SIMULATED_RUN_MS + 1);
        const rep = value(await stub.report(AUTH, { agentId, reportId: `r${a}-${n}`, inflight: 0, results, returned: [] }));
        settled += rep.accepted;
        if (settled >= nextProbe) {
          nextProbe = Number.POSITIVE_INFINITY;
          peak = Math.max(peak, await databaseSize(stub));
        }
        if (stop || rep.stop) return;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const results = await call("GET", `/v1/runs/${id}/results`);
  expect(results.status, results.text.slice(0, 300)).toBe(200);
  const doc = JSON.parse(results.text) as { phase: string; counts: { completed: number } };
  expect(doc.phase).toBe("complete");
  expect(doc.counts.completed).toBe(total);
  const aiperf = await call("GET", `/v1/runs/${id}/results?format=aiperf`);
  const storageBytes = await databaseSize(stub);
  const bytes = (s: string) => new TextEncoder().encode(s).length;
  return {
    requests: total,
    batch,
    resultsBytes: bytes(results.text),
    aiperfBytes: bytes(aiperf.text),
    storageBytes,
    storagePeakBytes: Math.max(peak, storageBytes),
    breakdown: await storageBreakdown(stub),
    seconds,
  };
}

describe("bench", () => {
  it.runIf(wants("coordinator"))("coordinator: settled per second, batched vs one report per request", async () => {
    const seconds = QUICK ? 3 : 8;
    const reps = QUICK ? 2 : 3;
    const batched: Phase[] = [];
    const baseline: Phase[] = [];
    const regional: Phase[] = [];
    // Alternating, so a burst of load from elsewhere on the machine hits all alike.
    for (let i = 0; i < reps; i++) {
      batched.push(await settlePhase(256, 256, seconds));
      baseline.push(await settlePhase(256, 1, seconds));
      regional.push(await settlePhase(256, 256, seconds, 8)); // the 16 agents in 8 regions
    }
    const sizes = QUICK ? [1, 16, 64, 256, 1000] : [1, 4, 16, 64, 256, 1000, 2000];
    const profile: ProfileRow[] = [];
    for (const b of sizes)
      profile.push(
        await profileBatch(b, QUICK ? Math.max(8, Math.min(60, Math.round(4000 / b))) : Math.max(20, Math.min(200, Math.round(20000 / b)))),
      );
    const leaseFit = fit(
      profile.map((p) => p.batch),
      profile.map((p) => p.leaseMs),
    );
    const reportFit = fit(
      profile.map((p) => p.batch),
      profile.map((p) => p.reportMs),
    );
    const settledPerSecond = median(batched.map((p) => p.perSecond));
    const baselinePerSecond = median(baseline.map((p) => p.perSecond));
    const settledPerSecond8Regions = median(regional.map((p) => p.perSecond));
    const out = {
      section: "coordinator",
      settledPerSecond,
      baselinePerSecond,
      settledPerSecond8Regions,
      ratio: settledPerSecond / baselinePerSecond,
      // Rows written per settled request (median over the phases): with batches of 256,
      // and with one report per request.
      rowsWrittenPerRequest: median(batched.map((p) => p.rowsWrittenPerRequest)),
      baselineRowsWrittenPerRequest: median(baseline.map((p) => p.rowsWrittenPerRequest)),
      agents: AGENTS,
      batch: 256,
      secondsPerPhase: seconds,
      batched,
      baseline,
      profile,
      fit: {
        leaseFixedMs: leaseFit.a,
        leasePerCreditUs: leaseFit.b * 1000,
        reportFixedMs: reportFit.a,
        reportPerResultUs: reportFit.b * 1000,
      },
    };
    console.log(`BENCH_RESULT ${JSON.stringify(out)}`);
  });

  it.runIf(wants("scale"))("scale: results and storage size for 1k and 1M requests", async () => {
    const small = await scaleRun(1_000, 64);
    // The 1M run with agent-engine-sized reports (MAX_REPORT_ITEMS) or, quick, larger ones.
    const large = await scaleRun(1_000_000, QUICK ? 10_000 : 2_000);
    // Between them, with the 1k run's batch: where the size stops growing.
    const between = [await scaleRun(10_000, 64), await scaleRun(100_000, 64)];
    console.log(`BENCH_RESULT ${JSON.stringify({ section: "scale", small, large, between })}`);
  });
});
