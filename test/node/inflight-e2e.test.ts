// The load in flight, seen by the target (issue 13): a plain Node server that answers
// every request after a fixed delay records when each one arrived and when its answer
// ended, and the time-weighted mean of requests in flight over the steady middle of the
// run must be the concurrency the run asked for. The target answers only when done (no
// streaming), so each request waits for response headers its whole life: edge agents
// are sized at six such requests each (contract/run-plan.ts, HEADER_WAIT_LIMIT; README,
// "Agents and the wire protocol"), and an edge agent asked for more sends six at a time.
//
// Figures are printed as `FIGURE:` lines for docs/BENCHMARKS.md.

import { createServer } from "node:http";
import type { Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { edgeperf } from "./cli-process.ts";
import { DEV_API_TOKEN, api, createE2eRun, e2eServer } from "./dev-server.ts";
import type { E2eRun } from "./dev-server.ts";
import { closeLocal, listenLocal } from "./local-server.ts";

/**
 * The target's fixed answer time, ms. Long enough that the agents' own cost per request
 * is a small part of it: in `wrangler dev` every edge agent and the coordinator share one
 * workerd thread, and at 50 ms (480 req/s at concurrency 24) on a shared 2-core machine
 * that thread added ~17 ms a request, so the target saw 18.4 in flight while the agents
 * counted 23.6 (at 200 ms, 120 req/s, it adds a few).
 */
const DELAY_MS = 200;
/** What the target sees must be what was asked for, within this share. */
const TOLERANCE = 0.1;

interface Span {
  /** performance.now() when the request's headers arrived. */
  arrivedAt: number;
  /** When its answer ended (or the client went away); null while in flight. */
  endedAt: number | null;
}

/**
 * A non-streaming OpenAI-compatible chat endpoint: reads the body, waits DELAY_MS, answers
 * one JSON completion. It shares no code with edgeperf; its records are the truth.
 */
class FixedDelayTarget {
  readonly spans: Span[] = [];
  private server: Server | null = null;
  private port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/v1/chat/completions`;
  }

  async start(): Promise<void> {
    const server = createServer({ noDelay: true, keepAlive: true }, (req, res) => {
      const span: Span = { arrivedAt: performance.now(), endedAt: null };
      this.spans.push(span);
      const end = () => {
        span.endedAt ??= performance.now();
      };
      res.on("finish", end);
      res.on("close", end);
      req.resume();
      req.on("end", () => {
        const due = span.arrivedAt + DELAY_MS;
        setTimeout(
          () => {
            const body = JSON.stringify({
              id: "c",
              object: "chat.completion",
              choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
              usage: { prompt_tokens: 4, completion_tokens: 1, total_tokens: 5 },
            });
            res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
            res.end(body);
          },
          Math.max(0, due - performance.now()),
        );
      });
    });
    this.server = server;
    this.port = await listenLocal(server);
  }

  async stop(): Promise<void> {
    await closeLocal(this.server);
  }

  /** The most requests in flight at once. */
  maxInflight(): number {
    let n = 0;
    let most = 0;
    for (const [, d] of this.events()) {
      n += d;
      most = Math.max(most, n);
    }
    return most;
  }

  /** Time-weighted mean of requests in flight over [from, to] (performance.now() ms). */
  meanInflight(from: number, to: number): number {
    let n = 0;
    let area = 0;
    let last = from;
    for (const [t, d] of this.events()) {
      if (t > from) {
        const until = Math.min(t, to);
        if (until > last) area += n * (until - last);
        last = Math.max(last, until);
      }
      if (t >= to) break;
      n += d;
    }
    if (to > last) area += n * (to - last);
    return area / (to - from);
  }

  /** From the first arrival to the last end. */
  extent(): { first: number; last: number } {
    const ended = this.spans.map((s) => s.endedAt ?? s.arrivedAt);
    return { first: Math.min(...this.spans.map((s) => s.arrivedAt)), last: Math.max(...ended) };
  }

  /** The steady middle: the run's extent without its first and last fifth (ramp-up, drain). */
  middle(): { from: number; to: number } {
    const { first, last } = this.extent();
    const cut = (last - first) / 5;
    return { from: first + cut, to: last - cut };
  }

  /** +1 at each arrival, −1 at each end, in time order (ends first at a tie). */
  private events(): Array<[number, number]> {
    const ev: Array<[number, number]> = [];
    for (const s of this.spans) {
      ev.push([s.arrivedAt, 1]);
      if (s.endedAt !== null) ev.push([s.endedAt, -1]);
    }
    return ev.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  }
}

const dev = e2eServer({ ALLOWED_TARGETS: "127.0.0.1:*" });
const targets: FixedDelayTarget[] = [];
beforeAll(() => dev.start());
afterAll(async () => {
  await Promise.all(targets.map((t) => t.stop()));
  await dev.dispose();
});

async function target(): Promise<FixedDelayTarget> {
  const t = new FixedDelayTarget();
  await t.start();
  targets.push(t);
  return t;
}

type Run = E2eRun;
const createRun = (spec: Record<string, unknown>): Promise<Run> => createE2eRun(dev, spec);

async function waitComplete(run: Run, deadlineMs = 60_000): Promise<any> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    const res = await api(dev.url, "GET", `/v1/runs/${run.id}/results?wait=10`, run.readToken);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    if (res.body.phase === "complete") return res.body;
  }
  throw new Error(`run ${run.id} did not complete within ${deadlineMs} ms\n${dev.logs().slice(-3000)}`);
}

/** agent_restarted failures mean workerd reset the agents mid-run (a source file changed: see test/README.md). */
function noRestarts(res: { counts: { failed: number }; errors: Array<{ code: string }> }): void {
  const restarted = res.errors.some((e) => e.code === "agent_restarted");
  expect(restarted, "agent_restarted: wrangler dev restarted workerd mid-run; run the test again").toBe(false);
  expect(res.counts.failed, JSON.stringify(res.errors)).toBe(0);
}

const figure = (text: string) => console.log(`FIGURE: ${text}`);

const within = (x: number, want: number) => Math.abs(x - want) / want;

/** The run's spec: a non-streaming chat target, one token a request, for `seconds`. */
const spec = (url: string, load: Record<string, unknown>, seconds: number, agents?: Record<string, unknown>) => ({
  target: { url, model: "m" },
  workload: { inputTokens: { mean: 4 }, outputTokens: { mean: 1 } },
  load,
  stop: { durationSeconds: seconds },
  ...(agents ? { agents } : {}),
});

/** What the target saw, what the run says, printed and checked against each other. */
function compare(label: string, srv: FixedDelayTarget, res: any, concurrency: number) {
  const { from, to } = srv.middle();
  const { first, last } = srv.extent();
  const middle = srv.meanInflight(from, to);
  const whole = srv.meanInflight(first, last);
  const delivered = res.delivered.concurrency.mean as number;
  figure(
    `${label}: ${srv.spans.length} requests of ${DELAY_MS} ms over ${((last - first) / 1000).toFixed(2)} s; in flight at the target: ` +
      `mean ${middle.toFixed(2)} over the middle three fifths, ${whole.toFixed(2)} first arrival → last end, most ${srv.maxInflight()}; ` +
      `the run's delivered.concurrency.mean ${delivered.toFixed(2)} (target ${concurrency}), request_latency avg ${res.metrics.request_latency.avg.toFixed(2)} ms ` +
      `p99 ${res.metrics.request_latency.p99.toFixed(2)} ms; agents ${res.agents.length}; ` +
      `warnings ${JSON.stringify(res.warnings.map((w: { code: string }) => w.code))}`,
  );
  return { middle, whole, delivered };
}

describe("requests in flight at a target that answers only when done", () => {
  it("edge agents by the default count (concurrency 24 → 4 agents of 6) keep 24 in flight at the target, and the run's delivered mean agrees", async () => {
    const srv = await target();
    const run = await createRun(spec(srv.url, { concurrency: 24 }, 4));
    const res = await waitComplete(run);
    noRestarts(res);
    const { middle, whole, delivered } = compare("edge agents, default count, c=24", srv, res, 24);
    expect(res.agents).toHaveLength(4); // ceil(24 / 6): none is asked for more than six
    expect(res.agents.map((a: { concurrency: number }) => a.concurrency)).toEqual([6, 6, 6, 6]);
    expect(srv.maxInflight()).toBeLessThanOrEqual(24);
    expect(within(middle, 24)).toBeLessThanOrEqual(TOLERANCE);
    expect(within(delivered, whole)).toBeLessThanOrEqual(TOLERANCE);
    expect(res.warnings).toEqual([]);
  });

  it("an edge agent asked for 12 sends 6 at a time: 2 explicit agents at concurrency 24 keep 12 in flight, and the run says it fell short", async () => {
    const srv = await target();
    const run = await createRun(spec(srv.url, { concurrency: 24 }, 3, { edge: 2 }));
    const res = await waitComplete(run);
    noRestarts(res);
    const { middle, whole, delivered } = compare("edge agents, 2 explicit (share 12 each), c=24", srv, res, 24);
    expect(res.agents.map((a: { concurrency: number }) => a.concurrency)).toEqual([12, 12]);
    expect(srv.maxInflight()).toBeLessThanOrEqual(12);
    expect(within(middle, 12)).toBeLessThanOrEqual(TOLERANCE);
    expect(within(delivered, whole)).toBeLessThanOrEqual(TOLERANCE);
    expect(res.warnings.map((w: { code: string }) => w.code)).toContain("generator_bound");
    expect(res.warnings.map((w: { code: string }) => w.code)).toContain("connection_bound");
  });

  it("the Node CLI agent (edgeperf agent, no edge agents) keeps 24 in flight at the target, and the run's delivered mean agrees", async () => {
    const srv = await target();
    const run = await createRun(spec(srv.url, { concurrency: 24 }, 4, { edge: 0 }));
    const r = await edgeperf(["agent", run.id, "--server", dev.url, "--token", run.agentToken, "--name", "inflight"], {
      timeoutMs: 60_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const res = await waitComplete(run);
    noRestarts(res);
    const { middle, whole, delivered } = compare("Node CLI agent, c=24", srv, res, 24);
    expect(res.agents.map((a: { name: string }) => a.name)).toEqual(["inflight"]);
    expect(srv.maxInflight()).toBeLessThanOrEqual(24);
    expect(within(middle, 24)).toBeLessThanOrEqual(TOLERANCE);
    expect(within(delivered, whole)).toBeLessThanOrEqual(TOLERANCE);
    expect(res.warnings).toEqual([]);
  });
});
