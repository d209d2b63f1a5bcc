// Issue 3's acceptance checks against a real `wrangler dev`, with an independent
// OpenAI-compatible server (openai-server.ts) as the target: what it records — every
// request's arrival, first token, last token and end, and the requests in flight — is
// compared with what edgeperf counted and measured.
//
// Figures are printed as `FIGURE:` lines for docs/BENCHMARKS.md.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentEngine } from "../../agent/engine.ts";
import { httpTransport, withRetries } from "../../agent/transport.ts";
import { nodeHttpTransport } from "../../cli/node-http.ts";
import { DEV_API_TOKEN, api, createE2eRun, e2eServer } from "./dev-server.ts";
import type { E2eRun } from "./dev-server.ts";
import { OpenAIServer, mean, percentile, servedItl, servedTtft } from "./openai-server.ts";
import type { RequestRecord } from "./openai-server.ts";

const dev = e2eServer({ ALLOWED_TARGETS: "127.0.0.1:*" });
const targets: OpenAIServer[] = [];
beforeAll(() => dev.start());
afterAll(async () => {
  await Promise.all(targets.map((t) => t.stop()));
  await dev.dispose();
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function target(ttftMs: number, itlMs: number): Promise<OpenAIServer> {
  const t = new OpenAIServer({ ttftMs, itlMs });
  await t.start();
  targets.push(t);
  return t;
}

type Run = E2eRun;
const createRun = (spec: Record<string, unknown>): Promise<Run> => createE2eRun(dev, spec);

/** Long-polls the results until the run is complete; on a timeout, says where it stood. */
async function waitComplete(run: Run, srv?: OpenAIServer, deadlineMs = 60_000): Promise<any> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    const res = await api(dev.url, "GET", `/v1/runs/${run.id}/results?wait=10`, run.readToken);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    if (res.body.phase === "complete") return res.body;
  }
  const status = await api(dev.url, "GET", `/v1/runs/${run.id}`, run.readToken);
  const target = srv
    ? `target: ${srv.requests.length} requests, ${srv.inflight} in flight, ${srv.requests.filter((r) => r.endedAt === null).length} not ended`
    : "";
  throw new Error(
    `run ${run.id} did not complete within ${deadlineMs} ms: ${JSON.stringify(status.body)}\n${target}\n${dev.logs().slice(-3000)}`,
  );
}

const ledgerHolds = (c: Record<string, number>) => c.granted === c.returned! + c.completed! + c.failed! + c.abandoned! + c.outstanding!;

/** agent_restarted failures mean workerd reset the agents mid-run: say the usual reason. */
const RESTART_HINT = (errors: Array<{ code: string }>): string =>
  errors.some((e) => e.code === "agent_restarted")
    ? " (agent_restarted: workerd reset the Durable Objects mid-run; wrangler dev does that when a source file changes during the test, see test/README.md)"
    : "";

/** Largest gap between consecutive arrivals, ms. */
function maxGap(records: readonly RequestRecord[]): number {
  const t = records.map((r) => r.arrivedAt).sort((a, b) => a - b);
  let gap = 0;
  for (let i = 1; i < t.length; i++) gap = Math.max(gap, t[i]! - t[i - 1]!);
  return gap;
}

const figure = (text: string) => console.log(`FIGURE: ${text}`);

describe("the independent server", () => {
  it("streams max_tokens tokens at its ttft and itl, with a usage chunk only when asked; answers JSON without stream", async () => {
    const srv = await target(30, 5);
    const post = (body: unknown) =>
      fetch(srv.url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const messages = [{ role: "user", content: "one two three" }];
    const sse = await (await post({ model: "m", messages, max_tokens: 5, stream: true, stream_options: { include_usage: true } })).text();
    const events = sse
      .split("\n\n")
      .filter((e) => e.startsWith("data: "))
      .map((e) => e.slice(6));
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks.filter((c) => c.choices[0]?.delta?.content === "tok ")).toHaveLength(5);
    expect(chunks.at(-1).usage).toEqual({ prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 });
    const plain = await (await post({ model: "m", messages, max_tokens: 3, stream: true })).text();
    expect(plain).not.toContain("usage");
    const whole = await post({ model: "m", messages, max_tokens: 4 });
    expect(whole.headers.get("content-type")).toContain("application/json");
    expect(await whole.json()).toMatchObject({ choices: [{ message: { content: "tok tok tok tok " } }], usage: { completion_tokens: 4 } });

    expect(srv.requests.map((r) => [r.stream, r.includeUsage, r.maxTokens, r.tokens])).toEqual([
      [true, true, 5, 5],
      [true, false, 3, 3],
      [false, false, 4, 4],
    ]);
    const [first] = srv.requests;
    // Token i is due at arrival + ttft + i·itl, never earlier (a late one does not delay the rest).
    expect(first!.firstTokenAt! - first!.arrivedAt).toBeGreaterThanOrEqual(30);
    expect(first!.lastTokenAt! - first!.arrivedAt).toBeGreaterThanOrEqual(30 + 4 * 5);
    expect(srv.inflight).toBe(0);
    expect(srv.maxInflight).toBe(1);
  });
});

describe("edge agents against an independent OpenAI-compatible server", () => {
  it("concurrency 8, 120 streaming requests on 2 edge agents: exactly 120 arrive, never more than 8 at once, TTFT and ITL as served", async () => {
    const TTFT = 50;
    const ITL = 10;
    const TOKENS = 32;
    const srv = await target(TTFT, ITL);
    const run = await createRun({
      target: { url: srv.url, model: "m", stream: true },
      workload: { inputTokens: { mean: 32 }, outputTokens: { mean: TOKENS } },
      load: { concurrency: 8 },
      stop: { requests: 120 },
      agents: { edge: 2 },
    });
    const res = await waitComplete(run, srv);
    if (res.counts.failed > 0) console.log(`errors ${JSON.stringify(res.errors)}${RESTART_HINT(res.errors)}\n${dev.logs().slice(-3000)}`);
    await sleep(300); // anything sent late would arrive by now
    expect(res.counts).toEqual({ granted: 120, returned: 0, completed: 120, failed: 0, abandoned: 0, outstanding: 0 });
    expect(srv.requests).toHaveLength(120);
    expect(srv.maxInflight).toBeLessThanOrEqual(8);
    expect(srv.maxInflight).toBeGreaterThanOrEqual(4); // the load really was concurrent
    for (const r of srv.requests) {
      expect(r).toMatchObject({
        model: "m",
        stream: true,
        includeUsage: true,
        maxTokens: TOKENS,
        tokens: TOKENS,
        aborted: false,
        status: 200,
      });
    }
    const m = res.metrics;
    expect(m.request_count.avg).toBe(120);
    expect(m.output_sequence_length.avg).toBe(TOKENS);
    expect(m.input_sequence_length.avg).toBe(32);

    const ttftServed = percentile(servedTtft(srv.requests), 50);
    const itlServed = mean(servedItl(srv.requests));
    const ttftMeasured = m.time_to_first_token.p50 as number;
    const itlMeasured = m.inter_token_latency.avg as number;
    figure(
      `independent server (ttft ${TTFT} ms, itl ${ITL} ms, ${TOKENS} tokens), wrangler dev, 2 edge agents, c=8, 120 req: ` +
        `TTFT p50 served ${ttftServed.toFixed(2)} ms, measured ${ttftMeasured.toFixed(2)} ms (Δ ${(ttftMeasured - ttftServed).toFixed(2)}); ` +
        `ITL mean served ${itlServed.toFixed(3)} ms, measured ${itlMeasured.toFixed(3)} ms (Δ ${(itlMeasured - itlServed).toFixed(3)}); ` +
        `max in flight at the server ${srv.maxInflight}`,
    );
    // The agent's clock starts before the request leaves and stops after the token
    // arrives, so measured ≥ served, less the sketch's 0.5% relative error. Above it: two
    // loopback hops through workerd, ~2 ms from a plain Worker, plus waits behind the
    // coordinator, which shares the agents' thread in wrangler dev (3–8 ms in all on the
    // loaded 2-core machine, up to ~10 under a heavy load; 13–37 ms before the LoadAgent
    // let requests leave first).
    expect(ttftMeasured).toBeGreaterThanOrEqual(ttftServed * 0.99 - 0.5);
    expect(ttftMeasured - ttftServed).toBeLessThanOrEqual(12);
    expect(Math.abs(itlMeasured - itlServed)).toBeLessThanOrEqual(1);
  });

  it("rate 40/s constant for 5 s on 2 edge agents: 200 ± 4 requests arrive at 40 ± 5% req/s without stalls", async () => {
    const srv = await target(5, 2);
    const run = await createRun({
      target: { url: srv.url, model: "m", stream: true },
      workload: { inputTokens: { mean: 16 }, outputTokens: { mean: 4 } },
      load: { rate: 40, arrival: "constant" },
      stop: { durationSeconds: 5 },
      agents: { edge: 2 },
    });
    const res = await waitComplete(run, srv);
    await sleep(300);
    const n = srv.requests.length;
    const times = srv.requests.map((r) => r.arrivedAt).sort((a, b) => a - b);
    const spanMs = times[n - 1]! - times[0]!;
    const rate = ((n - 1) * 1000) / spanMs;
    const gap = maxGap(srv.requests);
    figure(
      `rate mode, constant 40/s for 5 s, 2 edge agents: ${n} requests at the server, ${rate.toFixed(2)} req/s ` +
        `(first→last ${spanMs.toFixed(0)} ms), largest gap between arrivals ${gap.toFixed(1)} ms (schedule: 25 ms); ` +
        `counts ${JSON.stringify(res.counts)}, errors ${JSON.stringify(res.errors)}${RESTART_HINT(res.errors)}`,
    );
    expect(n).toBeGreaterThanOrEqual(196);
    // 200 ± 4, and never more than the 200 slots the schedule has before the 5 s are
    // up: a credit due after the run's end is returned, not sent.
    expect(n).toBeLessThanOrEqual(200);
    expect(rate).toBeGreaterThanOrEqual(40 * 0.95);
    expect(rate).toBeLessThanOrEqual(40 * 1.05);
    // A late lease would leave the schedule uncovered for most of the half second an agent
    // leases ahead, an empty lease for its 250 ms retry pacing; machine jitter alone gave
    // up to ~155 ms on the loaded 2-core machine (30–60 ms typically).
    expect(gap).toBeLessThanOrEqual(250);
    expect(ledgerHolds(res.counts)).toBe(true);
    expect(res.counts.outstanding).toBe(0);
    expect(res.counts.abandoned).toBe(0);
    expect(res.counts.completed + res.counts.failed).toBe(n);
    expect(res.counts.granted - res.counts.returned).toBe(n);
    expect(res.counts.failed).toBe(0);
  });

  it("Poisson arrivals: the same seed issues the same `at` schedule, another seed another; mean gap ≈ 1000/rate", async () => {
    const rate = 500;
    async function firstLease(seed: number): Promise<number[]> {
      const run = await createRun({
        target: { url: "builtin:mock" },
        workload: { seed },
        load: { rate, arrival: "poisson" },
        stop: { durationSeconds: 60 },
        agents: { edge: 0 },
        graceSeconds: 0,
      });
      const path = `/v1/runs/${run.id}`;
      const joined = await api(dev.url, "POST", `${path}/agents`, run.agentToken, { name: "by-hand" });
      expect(joined.status).toBe(200);
      const lease = await api(dev.url, "POST", `${path}/leases`, run.agentToken, {
        agentId: joined.body.agentId,
        requestId: "q1",
        want: 1000,
      });
      expect(lease.status, JSON.stringify(lease.body)).toBe(200);
      const credits = lease.body.credits as Array<{ seq: number; at?: number }>;
      // The lease is idempotent by requestId: asked again, it answers the same credits.
      const again = await api(dev.url, "POST", `${path}/leases`, run.agentToken, {
        agentId: joined.body.agentId,
        requestId: "q1",
        want: 1000,
      });
      expect(again.body.credits).toEqual(credits);
      expect((await api(dev.url, "POST", `${path}/stop`, DEV_API_TOKEN, { mode: "force" })).status).toBe(202);
      return credits.map((c) => c.at as number);
    }
    const a = await firstLease(7);
    const b = await firstLease(7);
    const c = await firstLease(8);
    // The first lease hands out the schedule's first second (lease-ahead 1 s).
    expect(a.length).toBeGreaterThan(0.8 * rate);
    expect(a.every((t) => typeof t === "number" && t >= 0 && t <= 1000)).toBe(true);
    expect(a.every((t, i) => i === 0 || t >= a[i - 1]!)).toBe(true);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    const gaps = (xs: number[]) => xs.slice(1).map((t, i) => t - xs[i]!);
    const ga = gaps(a);
    const meanGap = mean(ga);
    const cv = Math.sqrt(mean(ga.map((g) => (g - meanGap) ** 2))) / meanGap;
    figure(
      `Poisson schedule, rate ${rate}/s, seed 7: ${a.length} slots in the first second, mean gap ${meanGap.toFixed(3)} ms ` +
        `(1000/rate = ${(1000 / rate).toFixed(3)}), coefficient of variation ${cv.toFixed(2)} (exponential: 1)`,
    );
    expect(Math.abs(meanGap - 1000 / rate)).toBeLessThanOrEqual(0.1 * (1000 / rate));
    expect(Math.abs(mean(gaps(c)) - 1000 / rate)).toBeLessThanOrEqual(0.1 * (1000 / rate));
    expect(cv).toBeGreaterThan(0.8); // exponential gaps, not evenly spaced ones
    expect(cv).toBeLessThan(1.2);
  });

  it("a graceful stop mid-run: nothing arrives later than one report interval after the stop, and every request is in the ledger", async () => {
    const srv = await target(20, 5);
    const run = await createRun({
      target: { url: srv.url, model: "m", stream: true },
      workload: { inputTokens: { mean: 16 }, outputTokens: { mean: 16 } },
      load: { concurrency: 8 },
      stop: { requests: 100_000 },
      agents: { edge: 2 },
    });
    const until = Date.now() + 30_000;
    while (srv.requests.length < 60 && Date.now() < until) await sleep(50);
    expect(srv.requests.length).toBeGreaterThanOrEqual(60);
    const stop = await api(dev.url, "POST", `/v1/runs/${run.id}/stop`, DEV_API_TOKEN, { mode: "graceful" });
    const stoppedAt = performance.now();
    expect(stop.status).toBe(202);
    expect(stop.body.phase).toBe("draining");
    const res = await waitComplete(run, srv);
    await sleep(1_500); // anything sent late would arrive by now
    const last = Math.max(...srv.requests.map((r) => r.arrivedAt));
    const afterStop = srv.requests.filter((r) => r.arrivedAt > stoppedAt).length;
    figure(
      `graceful stop, c=8 on 2 edge agents: last arrival ${(last - stoppedAt).toFixed(1)} ms after the stop was answered ` +
        `(${afterStop} requests arrived after it); ${srv.requests.length} requests at the server, counts ${JSON.stringify(res.counts)}`,
    );
    expect(last - stoppedAt).toBeLessThanOrEqual(1_000 + 250);
    expect(res).toMatchObject({ status: "cancelled", outcome: "stopped", partial: false });
    expect(ledgerHolds(res.counts)).toBe(true);
    expect(res.counts.abandoned).toBe(0);
    expect(res.counts.outstanding).toBe(0);
    expect(srv.requests.every((r) => !r.aborted && r.endedAt !== null)).toBe(true);
    expect(res.counts.completed + res.counts.failed).toBe(srv.requests.length);
    expect(res.counts.granted - res.counts.returned).toBe(srv.requests.length);
    expect(res.counts.failed).toBe(0);
  });
});

describe("agents that die, and agents of both kinds in one run", () => {
  it("an agent that vanishes holding credits: they are abandoned at lease expiry and the run still completes", async () => {
    const run = await createRun({
      target: { url: "builtin:mock" },
      load: { concurrency: 4 },
      stop: { requests: 40 },
      drainTimeoutSeconds: 120, // only the lease expiry can end this drain
      agents: { edge: 0 },
    });
    const path = `/v1/runs/${run.id}`;
    const call = (what: string, body: unknown) => api(dev.url, "POST", `${path}/${what}`, run.agentToken, body);
    const a = (await call("agents", { name: "A" })).body;
    const b = (await call("agents", { name: "B" })).body;
    expect(a.leaseTtlMs).toBe(15_000);

    const aLeaseSent = performance.now();
    const aLease = await call("leases", { agentId: a.agentId, requestId: "a1", want: 4 });
    expect(aLease.status).toBe(200);
    const aSeqs = (aLease.body.credits as Array<{ seq: number }>).map((c) => c.seq);
    expect(aSeqs.length).toBeGreaterThan(0);
    // A vanishes here: it never calls again.

    let n = 0;
    let bSettled = 0;
    for (;;) {
      const l = await call("leases", { agentId: b.agentId, requestId: `b${++n}`, want: 4 });
      if (l.status === 409) break;
      expect(l.status, JSON.stringify(l.body)).toBe(200);
      const results = (l.body.credits as Array<{ seq: number }>).map((c) => ({
        seq: c.seq,
        ok: true,
        latencyMs: 50,
        ttftMs: 10,
        outputTokens: 8,
      }));
      const r = await call("reports", { agentId: b.agentId, reportId: `r${n}`, inflight: 0, results });
      expect(r.status).toBe(200);
      bSettled += results.length;
      if (r.body.stop) break;
      if (results.length === 0) await sleep(50);
    }
    expect(bSettled).toBe(40 - aSeqs.length);

    // B keeps heartbeating; A's credits stay outstanding until A's lease expires.
    let sawDraining = false;
    let completedAt = 0;
    let lastBeat = 0;
    let snapshot: any = null;
    while (performance.now() - aLeaseSent < 30_000) {
      if (performance.now() - lastBeat >= 1_000) {
        lastBeat = performance.now();
        const hb = await call("reports", { agentId: b.agentId, reportId: `hb${Math.round(lastBeat)}`, inflight: 0, results: [] });
        if (hb.status === 409) expect(hb.body.error.code).toBe("run_complete");
        else expect(hb.status).toBe(200);
      }
      snapshot = (await api(dev.url, "GET", path, run.readToken)).body;
      if (snapshot.phase === "complete") {
        completedAt = performance.now();
        break;
      }
      expect(snapshot.phase).toBe("draining");
      expect(snapshot.counts.outstanding).toBe(aSeqs.length);
      sawDraining = true;
      await sleep(200);
    }
    expect(sawDraining).toBe(true);
    expect(completedAt).toBeGreaterThan(0);
    const expiredAfter = completedAt - aLeaseSent;
    figure(
      `agent killed holding ${aSeqs.length} credits: abandoned and run complete ${expiredAfter.toFixed(0)} ms after its last call (lease TTL 15000 ms)`,
    );
    expect(expiredAfter).toBeGreaterThanOrEqual(15_000);
    expect(expiredAfter).toBeLessThanOrEqual(15_000 + 2_500);
    expect(snapshot).toMatchObject({ status: "complete", outcome: "completed", partial: true });
    expect(snapshot.counts).toEqual({
      granted: 40,
      returned: 0,
      completed: 40 - aSeqs.length,
      failed: 0,
      abandoned: aSeqs.length,
      outstanding: 0,
    });
    // A coming back too late cannot settle anything any more.
    const late = await call("reports", {
      agentId: a.agentId,
      reportId: "a-late",
      inflight: 0,
      results: aSeqs.map((seq) => ({ seq, ok: true, latencyMs: 1 })),
    });
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe("run_complete");
  }, 60_000);

  it("the agent engine running in Node (over its HTTP/1.1 client, as `edgeperf agent`) and one edge agent share one budget exactly", async () => {
    const srv = await target(20, 5);
    const run = await createRun({
      target: { url: srv.url, model: "m", stream: true },
      workload: { inputTokens: { mean: 16 }, outputTokens: { mean: 8 } },
      load: { concurrency: 4 },
      stop: { requests: 120 },
      agents: { edge: 1 },
    });
    // Wired as `edgeperf agent` wires it (cli/agent.ts): its HTTP/1.1 client (cli/node-http.ts) to the target and the coordinator.
    const targetHttp = nodeHttpTransport({ maxSockets: 4 });
    const coordinatorHttp = nodeHttpTransport();
    const engine = new AgentEngine({
      transport: withRetries(httpTransport({ server: dev.url, runId: run.id, token: run.agentToken, fetch: coordinatorHttp.fetch })),
      fetchTarget: targetHttp.fetch,
      resolveUrl: (spec) => spec.target.url,
      name: "node-engine",
    });
    await engine.join();
    expect(await engine.runSlice()).toBe("done");
    targetHttp.close();
    coordinatorHttp.close();
    const res = await waitComplete(run, srv);
    await sleep(300);
    const external = engine.state.sent;
    const edge = srv.requests.length - external;
    figure(
      `one budget of 120 over an external engine (Node) and 1 edge agent, c=4: external sent ${external}, edge sent ${edge}; ` +
        `max in flight at the server ${srv.maxInflight}`,
    );
    expect(res.counts.granted - res.counts.returned).toBe(120);
    expect(res.counts).toMatchObject({ completed: 120, failed: 0, abandoned: 0, outstanding: 0 });
    expect(srv.requests).toHaveLength(120);
    expect(srv.maxInflight).toBeLessThanOrEqual(4);
    expect(external).toBeGreaterThan(0);
    expect(edge).toBeGreaterThan(0);
  });
});
