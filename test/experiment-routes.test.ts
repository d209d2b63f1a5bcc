// The experiment routes at the door: bodies refused with the field named, caps, the
// service drain, and the event stream.
import { env } from "cloudflare:workers";
import { createExecutionContext } from "cloudflare:test";
import type { IRequest } from "itty-router";
import { describe, expect, it } from "vitest";
import { POLL_MS } from "../durable/Experiment";
import { openExperimentStream } from "../worker/experiment-events";
import { call, mockSpec } from "./helpers";
import { advanceAndAlarm, createExperiment, currentRun, driveLevel } from "./experiment-helpers";
import type { TestExperiment } from "./experiment-helpers";

const post = (body: unknown, token?: string | null) => call("POST", "/v1/experiments", { body, token });
const base = mockSpec();
const search = (s: Record<string, unknown>) => ({
  base,
  search: { over: "concurrency", slo: ["time_to_first_token.p95<200"], min: 1, max: 8, ...s },
});

describe("creating an experiment", () => {
  it("refuses each bad body with the status and the message naming its field", async () => {
    const cases: Array<[unknown, number, string]> = [
      [{ base, levels: { concurrency: [1, 2, 0] } }, 422, "levels.concurrency[2] must be an integer >= 1."],
      [{ base, levels: { concurrency: [1, 2.5] } }, 400, "levels.concurrency[1] must be an integer >= 1."],
      [{ base, levels: { concurrency: ["4"] } }, 400, "levels.concurrency[0] must be an integer >= 1."],
      [{ base, levels: { rate: [10, 0] } }, 422, "levels.rate[1] must be a number >= 0.001."],
      [
        { base, levels: { concurrency: Array.from({ length: 33 }, (_, i) => i + 1) } },
        422,
        "levels.concurrency must have at most 32 items.",
      ],
      [{ base, levels: { concurrency: [] } }, 422, "levels.concurrency must not be empty."],
      [{ base, levels: { concurrency: [1], rate: [1] } }, 400, "levels must have either concurrency or rate, not both."],
      [{ base, levels: {} }, 400, 'levels must have concurrency or rate, e.g. {"concurrency": [1, 2, 4, 8]}.'],
      [{ base, levels: { concurrency: [1] }, search: search({}).search }, 400, "body must have either levels (a sweep) or search"],
      [{ base }, 400, "body must have either levels (a sweep) or search"],
      [{ levels: { concurrency: [1] } }, 400, "base is required."],
      [{ base, levels: { concurrency: [1] }, repeat: 2 }, 400, "repeat is not a known field."],
      [{ base, levels: { concurrency: [1] }, graceSeconds: 301 }, 422, "graceSeconds must be an integer from 0 to 300."],
      [search({ slo: ["time_to_first_token.p95<200", "time_to_frist_token.p95<200"] }), 400, "search.slo[1]: unknown metric tag"],
      [search({ slo: ["time_to_first_token.p95"] }), 400, "search.slo[0]: expected METRIC.STAT<N"],
      [search({ slo: [] }), 422, "search.slo must not be empty."],
      [search({ min: 8, max: 4 }), 400, "search.max must be at least search.min."],
      [search({ min: 1.5 }), 400, 'search.min must be an integer >= 1 when search.over is "concurrency".'],
      [search({ over: "load" }), 400, 'search.over must be one of "concurrency", "rate".'],
      // The levels' specs are run specs: the base's own fields are named under base.
      [{ base: { ...base, target: undefined }, levels: { concurrency: [1] } }, 400, "base.target is required."],
      [{ base: { ...base, stop: {} }, levels: { concurrency: [1] } }, 400, "base.stop needs requests or durationSeconds"],
      [
        { base: { ...base, load: { rate: 5 } }, levels: { concurrency: [1] } },
        400,
        "base.load must have either concurrency or rate, not both.",
      ],
      [
        { base: { ...base, notify: { url: "https://hooks.example.com/x" } }, levels: { concurrency: [1] } },
        400,
        "base.notify is not supported",
      ],
    ];
    for (const [body, status, message] of cases) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(res.body.error.message, JSON.stringify(body)).toContain(message);
    }
  });

  it("checks every level against the operator's caps, naming the level", async () => {
    const sweep = await post({ base, levels: { concurrency: [1, 5000] } });
    expect(sweep.status).toBe(422);
    expect(sweep.body.error).toEqual({
      code: "exceeds_cap",
      message: "levels.concurrency[1] is 5000, above this service's cap MAX_CONCURRENCY=1024.",
    });
    const searched = await post(search({ max: 4096 }));
    expect(searched.status).toBe(422);
    expect(searched.body.error.message).toBe("search.max is 4096, above this service's cap MAX_CONCURRENCY=1024.");
  });

  it("needs the API token", async () => {
    expect((await post({ base, levels: { concurrency: [1] } }, null)).status).toBe(401);
    expect((await post({ base, levels: { concurrency: [1] } }, "epr_not-the-api-token")).status).toBe(401);
  });

  it("is refused while the service drains, and leaves no run behind", async () => {
    const before = (await call("GET", "/v1/runs")).body.activeRuns;
    expect((await call("POST", "/v1/admin/drain")).status).toBe(202);
    try {
      const res = await post({ base, levels: { concurrency: [1, 2] } });
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe("service_draining");
      expect((await call("GET", "/v1/runs")).body.activeRuns).toBe(before);
    } finally {
      await call("DELETE", "/v1/admin/drain");
    }
  });
});

interface SseEvent {
  id: string | undefined;
  event: string;
  data: any;
}

/** Reads SSE events from a response body, one at a time. */
class SseReader {
  readonly events: SseEvent[] = [];
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffer = "";

  constructor(res: Response) {
    this.reader = res.body!.getReader();
  }

  async next(): Promise<SseEvent | null> {
    for (;;) {
      let end: number;
      while ((end = this.buffer.indexOf("\n\n")) >= 0) {
        const block = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) {
          const e = { id: /^id: (.*)$/m.exec(block)?.[1], event, data: JSON.parse(data) };
          this.events.push(e);
          return e;
        }
      }
      const { done, value } = await this.reader.read();
      if (done) return null;
      this.buffer += this.decoder.decode(value, { stream: true });
    }
  }
}

function openStream(exp: TestExperiment, limits = { lifeMs: 60_000, tickMs: 1_000 }): Promise<Response> {
  const request = Object.assign(
    new Request(`https://edgeperf.test/v1/experiments/${exp.id}/events`, { headers: { authorization: `Bearer ${exp.readToken}` } }),
    { params: { id: exp.id } },
  );
  return openExperimentStream(request as unknown as IRequest, env, createExecutionContext(), limits);
}

describe("the experiment's event stream", () => {
  it("sends the summary at once, again as each level ends and the next starts, then `complete`, and ends", async () => {
    const exp = await createExperiment({ base: mockSpec({ stop: { requests: 2 } }), levels: { concurrency: [1, 2] } });
    const s = new SseReader(await openStream(exp));
    const first = await s.next();
    expect(first).toMatchObject({ id: "running.1", event: "status" });
    expect(first!.data.current.level).toBe(1);

    await driveLevel(await currentRun(exp));
    await advanceAndAlarm(exp, POLL_MS);
    // Level 1 recorded, level 2 chosen, its run created: each change is sent, in order.
    let e = await s.next();
    const seen: string[] = [];
    for (; e && e.data.levels[1].status !== "running"; e = await s.next())
      seen.push(e.data.levels.map((l: { status: string }) => l.status).join());
    expect(
      seen.every((x) => ["running,pending", "complete,pending", "complete,starting"].includes(x)),
      seen.join(" "),
    ).toBe(true);
    expect(e!.data.levels.map((l: { status: string }) => l.status)).toEqual(["complete", "running"]);
    expect(e!.data.current).toEqual({ level: 2, runId: e!.data.levels[1].runId });

    await driveLevel(await currentRun(exp));
    await advanceAndAlarm(exp, POLL_MS);
    for (e = await s.next(); e && e.event === "status"; e = await s.next());
    expect(e).toMatchObject({ event: "complete" });
    expect(e!.data).toMatchObject({ final: true, phase: "complete", status: "complete" });
    expect(e!.data.levels).toHaveLength(2);
    expect(await s.next()).toBeNull();
  });

  it("ends at its life cap with `event: reconnect`", async () => {
    const exp = await createExperiment({ base: mockSpec(), levels: { concurrency: [1] } });
    const s = new SseReader(await openStream(exp, { lifeMs: 300, tickMs: 50 }));
    let last: SseEvent | null = null;
    for (let e = await s.next(); e; e = await s.next()) last = e;
    expect(last).toMatchObject({ event: "reconnect", data: { reason: "stream_life" } });
    expect(s.events.filter((x) => x.event === "status").length).toBeGreaterThanOrEqual(2);
    await call("POST", `/v1/experiments/${exp.id}/stop`, { body: { mode: "force" } });
  });
});
