// The agent engine's timing against the real coordinator: heartbeats while idle, rate-mode
// pacing at each credit's intended time, and the clock offset estimate.
import { runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { AgentEngine } from "../agent/engine";
import type { AgentEvent } from "../agent/engine";
import { httpTransport } from "../agent/transport";
import type { RunCoordinator } from "../durable/RunCoordinator";
import { call, createRun, status } from "./helpers";
import type { TestRun } from "./helpers";

const BASE = "https://edgeperf.test";
const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const chunk = 'data: {"choices":[{"delta":{"content":"tok "}}]}\n\ndata: [DONE]\n\n';
const sseResponse = () => new Response(chunk, { headers: { "content-type": "text/event-stream" } });

/**
 * Virtual time for the engine and the fake target. Whenever nothing real is pending
 * (no coordinator call on the wire), time jumps to the earliest timer.
 */
class VirtualTime {
  t = 0;
  pending = 0;
  private timers: Array<{ at: number; fire: () => void }> = [];
  readonly epoch = Date.now();
  now = () => this.t;
  wall = () => this.epoch + this.t;
  sleep = (ms: number) => new Promise<void>((fire) => this.timers.push({ at: this.t + ms, fire }));

  async drive<T>(p: Promise<T>): Promise<T> {
    let done = false;
    p.then(
      () => (done = true),
      () => (done = true),
    );
    while (!done) {
      await pause(2);
      if (done || this.pending > 0) continue;
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers.shift();
      if (next) {
        this.t = Math.max(this.t, next.at);
        next.fire();
      }
    }
    return p;
  }
}

/** Gives the coordinator a running clock (helpers freeze it) for tests about real time. */
async function realClock(run: TestRun): Promise<void> {
  await runInDurableObject(run.stub, (instance: RunCoordinator) => {
    instance.now = () => Date.now();
  });
}

function transportFor(run: TestRun, log: (path: string) => void, vt?: VirtualTime) {
  const f: typeof fetch = async (input, init) => {
    log(new URL(String(input)).pathname.split("/").pop() ?? "");
    if (vt) vt.pending++;
    try {
      return await exports.default.fetch(new Request(input, init));
    } finally {
      if (vt) vt.pending--;
    }
  };
  return httpTransport({ server: BASE, runId: run.id, token: run.agentToken, fetch: f });
}

describe("heartbeats", () => {
  it("calls the coordinator at least every reportIntervalMs while its requests are slow, so its lease never expires", async () => {
    const run = await createRun({
      target: { url: "https://api.example.org/v1/chat/completions", model: "m", stream: true },
      load: { concurrency: 1 },
      stop: { requests: 3 },
    });
    const vt = new VirtualTime();
    const callTimes: number[] = [];
    const events: AgentEvent[] = [];
    const a = new AgentEngine({
      transport: transportFor(run, () => callTimes.push(vt.t), vt),
      fetchTarget: async () => {
        await vt.sleep(3_500);
        return sseResponse();
      },
      resolveUrl: () => "https://api.example.org/v1/chat/completions",
      now: vt.now,
      wallNow: vt.wall,
      sleep: vt.sleep,
      onEvent: (e) => events.push(e),
    });
    await vt.drive(a.join());
    expect(await vt.drive(a.runSlice({}))).toBe("done");
    expect(vt.t).toBeGreaterThanOrEqual(3 * 3_500);
    const interval = a.state.reportIntervalMs;
    const gaps = callTimes.slice(1).map((t, i) => t - (callTimes[i] ?? 0));
    expect(Math.max(...gaps)).toBeLessThanOrEqual(interval);
    const heartbeats = events.filter((e) => e.type === "report" && e.results === 0 && e.returned === 0);
    expect(heartbeats.length).toBeGreaterThanOrEqual(6);
    expect((await status(run)).body.counts).toMatchObject({ completed: 3, outstanding: 0 });
  });
});

describe("rate mode", () => {
  it("sends each credit at its intended time on the coordinator's clock, not all at once", async () => {
    const run = await createRun({
      target: { url: "https://api.example.org/v1/chat/completions", model: "m", stream: true },
      load: { rate: 20, arrival: "constant" },
      stop: { requests: 10 },
    });
    await realClock(run);
    const sentAt: number[] = [];
    const a = new AgentEngine({
      transport: transportFor(run, () => undefined),
      fetchTarget: async () => {
        sentAt.push(Date.now());
        return sseResponse();
      },
      resolveUrl: () => "https://api.example.org/v1/chat/completions",
    });
    await a.join();
    expect(await a.runSlice({})).toBe("done");
    expect(sentAt).toHaveLength(10);
    // Intended times are 0, 50, …, 450 ms after the run's start. Coordinator and agent
    // share this isolate's clock, so the true offset is 0 and the estimate is within ±rtt/2.
    const start = a.state.runStartedAt ?? 0;
    const slack = (a.state.offsetRttMs ?? 0) / 2 + 2;
    sentAt.forEach((t, i) => {
      expect(t - (start + 50 * i)).toBeGreaterThanOrEqual(-slack); // never early
      // Not much late: generous, as a loaded 2-core machine delays timers; sending all at
      // once, the failure this guards against, is caught by the line above.
      expect(t - (start + 50 * i)).toBeLessThan(400);
    });
    const done = (await status(run)).body;
    expect(done.counts).toMatchObject({ granted: 10, completed: 10 });
    // The agents measured how late each went out: the run's schedule lag, within the same bound.
    expect(done.delivered.scheduleLagMs.p50).toBeGreaterThanOrEqual(0);
    expect(done.delivered.scheduleLagMs.p99).toBeLessThan(400);
  });
});

describe("the clock offset", () => {
  it("estimates the coordinator's clock minus the local one from the round trips", async () => {
    const run = await createRun({ stop: { requests: 4 } });
    await realClock(run);
    const a = new AgentEngine({
      transport: transportFor(run, () => undefined),
      fetchTarget: async () => sseResponse(),
      resolveUrl: () => "https://api.example.org/v1/chat/completions",
      wallNow: () => Date.now() - 5_000, // this machine's clock is 5 s behind
    });
    await a.join();
    await a.runSlice({});
    expect(a.state.offsetRttMs).not.toBeNull();
    expect(Math.abs(a.state.offsetMs - 5_000)).toBeLessThan(250);
  });
});

describe("end times", () => {
  it("places each result in the time slice its request ended in, not the one its report arrived in", async () => {
    // One request at a time, each answered 120 ms after it was sent, in slices of 100 ms:
    // every slice can hold at most one request's end. An agent reports every 250 ms or
    // more (several results a report), so slices by report arrival would hold two or more.
    const run = await createRun({
      target: { url: "https://api.example.org/v1/chat/completions", model: "m", stream: true },
      load: { concurrency: 1 },
      stop: { requests: 6 },
      timesliceSeconds: 0.1,
    });
    await realClock(run);
    const endedAt: number[] = [];
    const reportSizes: number[] = [];
    const a = new AgentEngine({
      transport: transportFor(run, () => undefined),
      fetchTarget: async () => {
        await pause(120);
        endedAt.push(Date.now());
        return sseResponse();
      },
      resolveUrl: () => "https://api.example.org/v1/chat/completions",
      wallNow: () => Date.now() - 5_000, // this machine's clock is 5 s behind: endMs is on the coordinator's
      onEvent: (e) => {
        if (e.type === "report" && e.results > 0) reportSizes.push(e.results);
      },
    });
    await a.join();
    expect(await a.runSlice({})).toBe("done");
    expect(endedAt).toHaveLength(6);
    expect(Math.max(...reportSizes)).toBeGreaterThan(1); // what would bunch them without endMs
    const res = (await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken })).body;
    const buckets = res.timeseries.buckets as Array<{ t: number; completed: number }>;
    expect(res.timeseries.bucketSeconds).toBe(0.1);
    expect(buckets.reduce((n, b) => n + b.completed, 0)).toBe(6);
    expect(Math.max(...buckets.map((b) => b.completed))).toBe(1);
    // Slices start at whole tenths as written, not 0.30000000000000004.
    for (const b of buckets) expect(String(b.t)).toMatch(/^\d+(\.\d)?$/);
  });
});

describe("a clock that counts whole milliseconds", () => {
  // workerd's clocks tick every millisecond: a 21.4 ms TTFT reads 21 or 22 as the clock's
  // phase falls, 21 more often, so the median of what the clock read is 21 (0.4 ms off).
  // The engine's clockTickMs spreads each reading over its tick, which keeps the mean and
  // puts the median back near 21.4. Time here is virtual: the target answers 21.4 ms after
  // each send, the engine reads it through a clock that drops the fraction.
  const TRUE_TTFT = 21.4;

  async function ttftOnTickingClock(clockTickMs: number) {
    const run = await createRun({
      target: { url: "https://api.example.org/v1/chat/completions", model: "m", stream: true },
      load: { concurrency: 1 },
      stop: { requests: 200 },
    });
    const vt = new VirtualTime();
    const a = new AgentEngine({
      transport: transportFor(run, () => undefined, vt),
      fetchTarget: async () => {
        await vt.sleep(TRUE_TTFT);
        return sseResponse();
      },
      resolveUrl: () => "https://api.example.org/v1/chat/completions",
      now: () => Math.floor(vt.t),
      wallNow: vt.wall,
      sleep: vt.sleep,
      clockTickMs,
    });
    await vt.drive(a.join());
    expect(await vt.drive(a.runSlice({}))).toBe("done");
    const s = (await status(run)).body;
    expect(s.counts).toMatchObject({ completed: 200, outstanding: 0 });
    const results = (await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken })).body;
    return results.metrics.time_to_first_token as { avg: number; p50: number; std: number };
  }

  it("reads the median to the whole tick without spreading, and near the truth with it; the mean both ways", async () => {
    const rounded = await ttftOnTickingClock(0);
    const spread = await ttftOnTickingClock(1);
    expect(Math.abs(rounded.avg - TRUE_TTFT)).toBeLessThan(0.1);
    expect(Math.abs(spread.avg - TRUE_TTFT)).toBeLessThan(0.1);
    // The sketch answers within 0.5% (±0.11 ms here).
    expect(Math.abs(rounded.p50 - 21)).toBeLessThan(0.15);
    expect(Math.abs(spread.p50 - TRUE_TTFT)).toBeLessThan(0.2);
    // std is exact: the spread adds a whole tick's uniform variance (1/12 ms²), not half a tick's (1/48).
    expect(Math.abs(spread.std - Math.sqrt(rounded.std ** 2 + 1 / 12))).toBeLessThan(0.03);
  });
});
