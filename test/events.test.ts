// Reading a run live: status long-poll with ETags, and Server-Sent Events.
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, createRun, join, lease, okResult, report } from "./helpers";
import type { TestRun } from "./helpers";

interface SseEvent {
  event: string;
  data: any;
}

/** Reads SSE events from a response body until `until` says stop or the stream ends. */
async function readEvents(
  res: Response,
  until: (e: SseEvent) => boolean,
): Promise<{ events: SseEvent[]; reader: ReadableStreamDefaultReader<Uint8Array> }> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const events: SseEvent[] = [];
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { events, reader };
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event && data) {
        const e = { event, data: JSON.parse(data) };
        events.push(e);
        if (until(e)) return { events, reader };
      }
    }
  }
}

const openEvents = (run: TestRun) =>
  exports.default.fetch(
    new Request(`https://edgeperf.test/v1/runs/${run.id}/events`, { headers: { authorization: `Bearer ${run.readToken}` } }),
  );

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
});
