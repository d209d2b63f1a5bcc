// The agent engine against the real coordinator (the Worker in this isolate, over HTTP
// through exports.default.fetch) and a fake target at the edge that counts what it sees.
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { AgentEngine } from "../agent/engine";
import type { AgentEvent, AgentState } from "../agent/engine";
import { httpTransport, withRetries } from "../agent/transport";
import { call, createRun, expectLedger, status } from "./helpers";
import type { TestRun } from "./helpers";

const BASE = "https://edgeperf.test";
const enc = new TextEncoder();
const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The Worker itself as the coordinator's network. */
const worker: typeof fetch = (input, init) => exports.default.fetch(new Request(input, init));

/** A fake OpenAI target: streams `tokens` chunks after `delayMs`, and counts concurrency until each body ends. */
class FakeTarget {
  inflight = 0;
  maxInflight = 0;
  calls = 0;
  seen: string[] = [];
  onCall: ((n: number) => Promise<void>) | null = null;
  constructor(
    private readonly delayMs = 3,
    private readonly tokens = 3,
  ) {}

  fetch: typeof fetch = async (_input, init) => {
    const n = ++this.calls;
    this.inflight++;
    this.maxInflight = Math.max(this.maxInflight, this.inflight);
    this.seen.push(String(init?.body ?? ""));
    if (this.onCall) await this.onCall(n);
    await pause(this.delayMs);
    let i = 0;
    let open = true;
    const end = () => {
      if (open) this.inflight--;
      open = false;
    };
    const chunks = [
      ...Array.from({ length: this.tokens }, () => `data: {"choices":[{"delta":{"content":"tok "}}]}\n\n`),
      `data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":${this.tokens}}}\n\ndata: [DONE]\n\n`,
    ];
    const body = new ReadableStream<Uint8Array>({
      pull(ctrl) {
        const c = chunks[i++];
        if (c === undefined) {
          end();
          return ctrl.close();
        }
        ctrl.enqueue(enc.encode(c));
      },
      cancel: end,
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  };
}

function engine(
  run: TestRun,
  target: FakeTarget,
  opts: { events?: AgentEvent[]; coordinator?: typeof fetch; name?: string } = {},
  state?: AgentState,
) {
  const transport = withRetries(httpTransport({ server: BASE, runId: run.id, token: run.agentToken, fetch: opts.coordinator ?? worker }), {
    sleep: () => pause(1),
  });
  return new AgentEngine(
    {
      transport,
      fetchTarget: target.fetch,
      resolveUrl: () => "https://llm.example.com/v1/chat/completions",
      name: opts.name ?? "test",
      onEvent: (e) => opts.events?.push(e),
    },
    state,
  );
}

/** The Worker as the coordinator's network, with each lease body handed to `onLease` on the way (either route). */
function watchLeases(onLease: (body: { want: number; depth?: number }) => void): typeof fetch {
  return async (input, init) => {
    const path = new URL(String(input)).pathname;
    if (path.endsWith("/leases")) onLease(JSON.parse(String(init?.body)));
    if (path.endsWith("/report-lease")) onLease(JSON.parse(String(init?.body)).lease);
    return worker(input, init);
  };
}

const spec = (over: Record<string, unknown> = {}) => ({
  target: { url: "https://api.example.org/v1/chat/completions", model: "m", stream: true },
  load: { concurrency: 4 },
  stop: { requests: 40 },
  ...over,
});

describe("one engine", () => {
  it("runs a 40-request run at concurrency 4 to completion, never above 4 in flight at the target", async () => {
    const run = await createRun(spec());
    const target = new FakeTarget();
    const a = engine(run, target);
    await a.join();
    expect(await a.runSlice({})).toBe("done");
    const s = (await status(run)).body;
    expect(s).toMatchObject({ phase: "complete", status: "complete" });
    expect(s.counts).toEqual({ granted: 40, returned: 0, completed: 40, failed: 0, abandoned: 0, outstanding: 0 });
    expect(target.calls).toBe(40);
    expect(target.maxInflight).toBe(4);
    expect(s.agents.map((x: { clockTickMs: number | null }) => x.clockTickMs)).toEqual([0]); // a fine clock (performance.now)
    const results = (await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken })).body;
    expect(results.metrics.output_sequence_length.avg).toBe(3);
    expect(results.metrics.input_sequence_length.avg).toBe(7);
  });

  it("reports many results per report instead of one call per request", async () => {
    const run = await createRun(spec({ load: { concurrency: 16 }, stop: { requests: 200 } }));
    const events: AgentEvent[] = [];
    const a = engine(run, new FakeTarget(1, 1), { events });
    await a.join();
    expect(await a.runSlice({})).toBe("done");
    const reports = events.filter((e) => e.type === "report");
    const settled = reports.reduce((n, e) => n + (e.type === "report" ? e.results : 0), 0);
    expect(settled).toBe(200);
    expect(reports.length).toBeLessThan(200 / 4);
  });

  it("sends warmup credits like the others, and the coordinator keeps them out of the counts", async () => {
    const run = await createRun(spec({ stop: { requests: 12 }, warmup: { requests: 5 } }));
    const target = new FakeTarget();
    const a = engine(run, target);
    await a.join();
    expect(await a.runSlice({})).toBe("done");
    expect(target.calls).toBe(17);
    expect((await status(run)).body.counts).toMatchObject({ granted: 12, completed: 12, outstanding: 0 });
  });

  it("works in slices: a slice ends with nothing in flight, its state survives JSON, and the next engine continues", async () => {
    const run = await createRun(spec({ stop: { requests: 30 } }));
    const target = new FakeTarget();
    let a = engine(run, target);
    await a.join();
    let slices = 0;
    for (;;) {
      const outcome = await a.runSlice({ maxRequests: 7 });
      slices++;
      expect(target.inflight).toBe(0);
      if (outcome === "done") break;
      const stored = JSON.parse(JSON.stringify(a.state)) as AgentState;
      expect(stored.results).toEqual([]); // everything settled was reported
      a = engine(run, target, {}, stored);
    }
    expect(slices).toBeGreaterThanOrEqual(5);
    expect(target.calls).toBe(30);
    expect((await status(run)).body.counts).toEqual({ granted: 30, returned: 0, completed: 30, failed: 0, abandoned: 0, outstanding: 0 });
  });
});

describe("pacing across slices", () => {
  /**
   * Runs 400 requests at a share of 4: a first slice of 60, its state through JSON (less
   * `pace` when `forget`), then a second engine to the end. Returns the first lease body
   * the second engine sent (either route), the stored state, and the run's counts.
   */
  async function twoSlices(forget: boolean) {
    const run = await createRun(spec({ stop: { requests: 400 } }));
    const target = new FakeTarget(1, 1);
    const leases: Array<{ second: boolean; body: { want: number; depth?: number } }> = [];
    let second = false;
    const coordinator = watchLeases((body) => leases.push({ second, body }));
    const a = engine(run, target, { coordinator });
    await a.join();
    expect(await a.runSlice({ maxRequests: 60 })).toBe("continue");
    const { pace, ...rest } = JSON.parse(JSON.stringify(a.state)) as AgentState;
    second = true;
    const b = engine(run, target, { coordinator }, forget ? rest : { ...rest, ...(pace ? { pace } : {}) });
    for (let outcome = await b.runSlice({}); outcome !== "done"; outcome = await b.runSlice({}));
    return { pace, firstLease: leases.find((l) => l.second)?.body, counts: (await status(run)).body.counts };
  }

  it("keeps its round-trip and latency estimates in its state, so the next slice's first lease asks for the measured depth", async () => {
    const { pace, firstLease, counts } = await twoSlices(false);
    // workerd's clock moves only at I/O, so an in-isolate round trip may read 0 ms.
    expect(pace?.rttMs).toBeGreaterThanOrEqual(0);
    expect(pace?.latencyMs).toBeGreaterThan(0);
    // With nothing measured a share of 4 asks for one share of depth (no depth field);
    // the carried estimates ask for more from the first lease on.
    expect(firstLease?.depth).toBeGreaterThan(4);
    expect(counts).toEqual({ granted: 400, returned: 0, completed: 400, failed: 0, abandoned: 0, outstanding: 0 });
  });

  it("without carried estimates, a new engine's first lease asks for one share of depth", async () => {
    const { firstLease, counts } = await twoSlices(true);
    expect(firstLease).toBeDefined();
    expect(firstLease?.depth).toBeUndefined();
    expect(counts).toMatchObject({ granted: 400, completed: 400, outstanding: 0 });
  });
});

describe("the low-water mark", () => {
  it("once its pace is measured, an engine leases only when what it holds is down to the mark", async () => {
    // Share 4 on a 20 ms target sends 0.2 a millisecond: a depth of two 250 ms gaps (100)
    // and a mark of half a gap (25), where leasing at half the depth's room would ask at 50.
    const run = await createRun(spec({ stop: { requests: 300 } }));
    const target = new FakeTarget(20, 1);
    const seen: Array<{ held: number; low: number; share: number }> = [];
    let a: AgentEngine | null = null;
    const coordinator = watchLeases(() => {
      if (a) seen.push({ held: a.state.held.length, low: a.pacing.low, share: a.state.share });
    });
    a = engine(run, target, { coordinator });
    await a.join();
    expect(await a.runSlice({})).toBe("done");
    const paced = seen.filter((x) => Number.isFinite(x.low));
    expect(paced.length).toBeGreaterThanOrEqual(2);
    for (const x of paced) expect(x.held).toBeLessThanOrEqual(Math.max(x.low, x.share));
    // The mark was below half the depth's room, so it, not the old rule, set the time.
    expect(Math.max(...paced.map((x) => x.low))).toBeLessThan(50);
    expect((await status(run)).body.counts).toEqual({ granted: 300, returned: 0, completed: 300, failed: 0, abandoned: 0, outstanding: 0 });
  });
});

describe("two engines", () => {
  it("share one run's budget exactly and never exceed the run's concurrency together", async () => {
    const run = await createRun(spec());
    const target = new FakeTarget(5);
    const a = engine(run, target, { name: "a" });
    const b = engine(run, target, { name: "b" });
    await a.join();
    await b.join();
    expect(await Promise.all([a.runSlice({}), b.runSlice({})])).toEqual(["done", "done"]);
    expect(target.calls).toBe(40);
    expect(a.state.sent + b.state.sent).toBe(40);
    expect(target.maxInflight).toBeLessThanOrEqual(4);
    const s = (await status(run)).body;
    expect(s.counts).toEqual({ granted: 40, returned: 0, completed: 40, failed: 0, abandoned: 0, outstanding: 0 });
    expectLedger(s.counts);
  });
});

describe("stopping", () => {
  it("sends nothing after the stop answer, returns the unused credits, and the run completes", async () => {
    const run = await createRun(spec({ stop: { requests: 1000 } }));
    const target = new FakeTarget();
    target.onCall = async (n) => {
      if (n === 10) expect((await call("POST", `/v1/runs/${run.id}/stop`, { body: { mode: "graceful" } })).status).toBe(202);
    };
    const events: AgentEvent[] = [];
    const a = engine(run, target, { events });
    await a.join();
    expect(await a.runSlice({})).toBe("done");
    const firstStop = events.findIndex((e) => e.type === "stop");
    expect(firstStop).toBeGreaterThan(0);
    expect(events.slice(firstStop).filter((e) => e.type === "send")).toEqual([]);
    const s = (await status(run)).body;
    expect(s).toMatchObject({ phase: "complete", status: "cancelled", outcome: "stopped", partial: false });
    expect(s.counts.returned).toBeGreaterThan(0);
    expect(s.counts.completed).toBe(target.calls);
    expect(s.counts.granted).toBe(s.counts.completed + s.counts.returned);
    expect(a.state.held).toEqual([]);
  });

  it("ends at once when the run is force-stopped, without reporting into the frozen results", async () => {
    const run = await createRun(spec({ stop: { requests: 1000 } }));
    const target = new FakeTarget(20);
    target.onCall = async (n) => {
      if (n === 6) await call("POST", `/v1/runs/${run.id}/stop`, { body: { mode: "force" } });
    };
    const a = engine(run, target);
    await a.join();
    expect(await a.runSlice({})).toBe("done");
    expect(a.state.stop).toBe("gone");
    const s = (await status(run)).body;
    expect(s).toMatchObject({ phase: "complete", partial: true });
    expect(s.counts.outstanding).toBe(0);
  });
});

describe("a flaky coordinator", () => {
  it("retries a report whose answer was lost as a 503 with the same reportId, and it is counted once", async () => {
    const run = await createRun(spec());
    const reportIds: string[] = [];
    let failed: string | null = null;
    const flaky: typeof fetch = async (input, init) => {
      const res = await worker(input, init);
      const url = String(input);
      if (!url.endsWith("/reports")) return res;
      const body = JSON.parse(String(init?.body)) as { reportId: string; results: unknown[] };
      reportIds.push(body.reportId);
      // The first report with results is applied by the coordinator, but its answer is lost.
      if (failed === null && body.results.length > 0) {
        failed = body.reportId;
        return Response.json({ error: { code: "unavailable", message: "try again" } }, { status: 503 });
      }
      return res;
    };
    const events: AgentEvent[] = [];
    const target = new FakeTarget();
    const a = engine(run, target, { coordinator: flaky, events });
    await a.join();
    expect(await a.runSlice({})).toBe("done");
    expect(failed).not.toBeNull();
    expect(reportIds.filter((id) => id === failed)).toHaveLength(2);
    const retried = events.filter((e) => e.type === "report");
    expect(retried.some((e) => e.type === "report" && e.results > 0 && e.accepted === e.results)).toBe(true);
    const s = (await status(run)).body;
    expect(s.counts).toEqual({ granted: 40, returned: 0, completed: 40, failed: 0, abandoned: 0, outstanding: 0 });
    expect(target.calls).toBe(40);
  });
});
