// Reading a run live: status long-poll with ETags, and Server-Sent Events.
import { env, exports } from "cloudflare:workers";
import { createExecutionContext } from "cloudflare:test";
import type { IRequest } from "itty-router";
import { describe, expect, it } from "vitest";
import { STREAM_LIFE_SECONDS, openEventStream, streamLimits } from "../worker/events";
import { call, createRun, join, lease, okResult, report, status } from "./helpers";
import type { TestRun } from "./helpers";

interface SseEvent {
  id: string | undefined;
  event: string;
  data: any;
}

/** Reads SSE events from a response body, one at a time. */
class SseReader {
  readonly events: SseEvent[] = [];
  readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffer = "";
  ended = false;

  constructor(res: Response) {
    this.reader = res.body!.getReader();
  }

  /** The next event with data, or null when the stream has ended. */
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
      if (done) {
        this.ended = true;
        return null;
      }
      this.buffer += this.decoder.decode(value, { stream: true });
    }
  }

  /** Reads until `until` says stop (that event included) or the stream ends. */
  async until(until: (e: SseEvent) => boolean): Promise<SseEvent[]> {
    for (let e = await this.next(); e !== null; e = await this.next()) if (until(e)) break;
    return this.events;
  }
}

/** Reads SSE events from a response body until `until` says stop or the stream ends. */
async function readEvents(
  res: Response,
  until: (e: SseEvent) => boolean,
): Promise<{ events: SseEvent[]; reader: ReadableStreamDefaultReader<Uint8Array> }> {
  const r = new SseReader(res);
  return { events: await r.until(until), reader: r.reader };
}

const eventsUrl = (run: TestRun) => `https://edgeperf.test/v1/runs/${run.id}/events`;

const openEvents = (run: TestRun, headers: Record<string, string> = {}) =>
  exports.default.fetch(new Request(eventsUrl(run), { headers: { authorization: `Bearer ${run.readToken}`, ...headers } }));

/** The stream with limits of the test's choosing, as the route would open it. */
function openShortStream(run: TestRun, limits: { lifeMs: number; tickMs: number }): Promise<Response> {
  const request = Object.assign(new Request(eventsUrl(run), { headers: { authorization: `Bearer ${run.readToken}` } }), {
    params: { id: run.id },
  });
  return openEventStream(request as unknown as IRequest, env, createExecutionContext(), limits);
}

const counter = (id: string | undefined) => Number(id?.split(".")[1]);

async function finish(run: TestRun, n: number): Promise<void> {
  const agentId = await join(run);
  const seqs = (await lease(run, agentId, n)).body.credits.map((c: { seq: number }) => c.seq);
  await report(
    run,
    agentId,
    seqs.map((s: number) => okResult(s)),
  );
}

describe("status long-poll", () => {
  it("answers at once without wait, and as soon as the phase changes with wait", async () => {
    const run = await createRun({ stop: { requests: 2 } });
    const waiting = call("GET", `/v1/runs/${run.id}?wait=30`, { token: run.readToken });
    const agentId = await join(run);
    await lease(run, agentId, 1); // created → running
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(res.body.phase).toBe("running");
  });

  it("carries an ETag and answers 304 to If-None-Match while nothing changed", async () => {
    const run = await createRun();
    const first = await call("GET", `/v1/runs/${run.id}`, { token: run.readToken });
    const etag = first.headers.get("etag");
    expect(etag).toMatch(/^"[0-9a-f]{32}"$/);
    const same = await call("GET", `/v1/runs/${run.id}`, { token: run.readToken, headers: { "if-none-match": etag! } });
    expect(same.status).toBe(304);
    const agentId = await join(run);
    await lease(run, agentId, 1);
    const changed = await call("GET", `/v1/runs/${run.id}`, { token: run.readToken, headers: { "if-none-match": etag! } });
    expect(changed.status).toBe(200);
    expect(changed.headers.get("etag")).not.toBe(etag);
  });
});

describe("Server-Sent Events", () => {
  it("sends a snapshot at once, then the phase changes, then the final results, and ends", async () => {
    const run = await createRun({ stop: { requests: 3 } });
    const res = await openEvents(run);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const reading = readEvents(res, (e) => e.event === "complete");
    await finish(run, 3);
    const { events, reader } = await reading;
    expect(events[0]!.event).toBe("status");
    expect(events[0]!.data.phase).toBe("created");
    const last = events.at(-1)!;
    expect(last.event).toBe("complete");
    expect(last.data).toMatchObject({ final: true, phase: "complete" });
    expect(last.data.counts.completed).toBe(3);
    expect((await reader.read()).done).toBe(true);
  });

  it("refuses a bad token with a JSON error instead of a stream", async () => {
    const run = await createRun();
    const res = await exports.default.fetch(
      new Request(`https://edgeperf.test/v1/runs/${run.id}/events`, { headers: { authorization: "Bearer nope" } }),
    );
    expect(res.status).toBe(404);
    expect(((await res.json()) as any).error.code).toBe("run_not_found");
  });

  it("survives a client that disconnects mid-stream: the run goes on and a new client gets the end", async () => {
    const run = await createRun({ stop: { requests: 2 } });
    const first = await readEvents(await openEvents(run), () => true);
    expect(first.events).toHaveLength(1);
    await first.reader.cancel();
    await finish(run, 2);
    const again = await readEvents(await openEvents(run), (e) => e.event === "complete");
    expect(again.events.map((e) => e.event)).toEqual(["status", "complete"]);
  });
  it("ends every stream of a graceSeconds-0 run with `complete` and the final results, though the run is wiped at once", async () => {
    const run = await createRun({ stop: { requests: 3 }, graceSeconds: 0 });
    const streams = await Promise.all(Array.from({ length: 5 }, async () => new SseReader(await openEvents(run))));
    for (const s of streams) expect((await s.next())?.data.phase).toBe("created");
    const agentId = await join(run);
    const seqs = (await lease(run, agentId, 3)).body.credits.map((c: { seq: number }) => c.seq);
    // Every stream has seen the drain begin, so each is between two long-polls or in one.
    for (const s of streams) await s.until((e) => e.data.phase === "draining");
    expect(
      (
        await report(
          run,
          agentId,
          seqs.map((seq: number) => okResult(seq)),
        )
      ).status,
    ).toBe(200);
    for (const s of streams) {
      await s.until((e) => e.event !== "status");
      const last = s.events.at(-1)!;
      expect(last.event, JSON.stringify(last.data)).toBe("complete");
      expect(last.data).toMatchObject({ final: true, phase: "complete" });
      expect(last.data.counts.completed).toBe(3);
      expect(await s.next()).toBeNull();
    }
    // The run really was wiped: its grace window was zero.
    expect((await status(run)).status).toBe(404);
  });

  it("ends a stream that reaches its life cap with `event: reconnect`, every event carrying an increasing id", async () => {
    const run = await createRun();
    const opened = Date.now();
    const s = new SseReader(await openShortStream(run, { lifeMs: 400, tickMs: 50 }));
    await s.until(() => false);
    const elapsed = Date.now() - opened;
    expect(s.ended).toBe(true);
    const last = s.events.at(-1)!;
    expect(last.event).toBe("reconnect");
    expect(last.data).toMatchObject({ reason: "stream_life", lifeSeconds: 0.4 });
    // A snapshot per tick until then, each with an id: the phase and a counter from 1.
    const statuses = s.events.filter((e) => e.event === "status");
    expect(statuses.length).toBeGreaterThanOrEqual(4);
    expect(s.events.map((e) => e.id)).toEqual(s.events.map((_, i) => `created.${i + 1}`));
    expect(elapsed).toBeGreaterThanOrEqual(400);
    expect(elapsed).toBeLessThan(3_000);
  });

  it("lives ten minutes unless SSE_MAX_SECONDS says otherwise, within 1 s to 2 hours", () => {
    expect(STREAM_LIFE_SECONDS).toBe(600);
    expect(streamLimits({}).lifeMs).toBe(600_000);
    expect(streamLimits({ SSE_MAX_SECONDS: "3" }).lifeMs).toBe(3_000);
    expect(streamLimits({ SSE_MAX_SECONDS: "7200" }).lifeMs).toBe(7_200_000);
    for (const bad of ["0", "7201", "-5", "1.5", "ten", ""]) expect(streamLimits({ SSE_MAX_SECONDS: bad }).lifeMs, bad).toBe(600_000);
  });

  it("numbers on from a reconnecting client's Last-Event-ID and sends it the current snapshot at once", async () => {
    const run = await createRun({ stop: { requests: 4 } });
    const first = new SseReader(await openEvents(run));
    expect((await first.next())?.id).toBe("created.1");
    await first.reader.cancel();
    const agentId = await join(run);
    await lease(run, agentId, 1); // created → running while the client was away
    const again = new SseReader(await openEvents(run, { "last-event-id": "created.41" }));
    const e = await again.next();
    expect(e).toMatchObject({ id: "running.42", event: "status" });
    expect(e!.data.phase).toBe("running");
    await again.reader.cancel();
    // An id this service did not send is a new client's.
    const stranger = new SseReader(await openEvents(run, { "last-event-id": "something-else" }));
    expect((await stranger.next())?.id).toBe("running.1");
    await stranger.reader.cancel();
  });

  it("answers a client that reconnects after the run completed with `complete` and the final results at once", async () => {
    const run = await createRun({ stop: { requests: 2 } });
    await finish(run, 2);
    const again = new SseReader(await openEvents(run, { "last-event-id": "running.7" }));
    const events = await again.until(() => false);
    expect(events.map((e) => [e.event, e.id])).toEqual([["complete", "complete.8"]]);
    expect(events[0]!.data).toMatchObject({ final: true, phase: "complete" });
    expect(events[0]!.data.counts.completed).toBe(2);
  });
});
