// A capacity search against a server that is not ours, whose latency grows with the
// requests it has in flight, so the right answer is known in advance: 20 ms alone and
// 30 ms more for each other request in flight, so a request's latency at concurrency c is
// about 20 + 30·(c − 1) ms, and "request_latency.p50 < 125" holds up to c = 4. The server
// records when each request arrived and finished, which shows that no request of one
// level overlapped another level (the drain keeps levels apart).
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_API_TOKEN, api, e2eServer } from "./dev-server.ts";

interface Seen {
  arrived: number;
  finished: number;
}

const seen: Seen[] = [];
let inflight = 0;
let target: Server;
let targetUrl = "";

function startTarget(): Promise<void> {
  target = createServer((req, res) => {
    const arrived = Date.now();
    req.resume();
    req.on("end", () => {
      inflight++;
      const delay = 20 + 30 * (inflight - 1);
      setTimeout(() => {
        inflight--;
        const body = JSON.stringify({
          id: "x",
          object: "chat.completion",
          choices: [{ index: 0, message: { role: "assistant", content: "fine thanks" }, finish_reason: "stop" }],
          usage: { prompt_tokens: 8, completion_tokens: 2, total_tokens: 10 },
        });
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
        res.end(body);
        seen.push({ arrived, finished: Date.now() });
      }, delay);
    });
  });
  return new Promise((resolve) =>
    target.listen(0, "127.0.0.1", () => {
      targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}/v1/chat/completions`;
      resolve();
    }),
  );
}

const dev = e2eServer({ ALLOWED_TARGETS: "127.0.0.1:*" });
beforeAll(async () => {
  await startTarget();
  await dev.start();
});
afterAll(async () => {
  await dev.dispose();
  await new Promise((r) => target.close(r));
});

describe("a capacity search against a server whose latency grows with load", () => {
  it("finds the known answer, and no request of one level overlaps another at the server", async () => {
    const created = await api(dev.url, "POST", "/v1/experiments", DEV_API_TOKEN, {
      base: {
        target: { url: targetUrl, model: "m" },
        workload: { inputTokens: { mean: 8 }, outputTokens: { mean: 2 } },
        stop: { requests: 40 },
        agents: { edge: 1 },
      },
      search: { over: "concurrency", slo: ["request_latency.p50<125"], min: 1, max: 16 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { id, readToken } = created.body as { id: string; readToken: string };
    let summary: any = null;
    const deadline = Date.now() + 150_000;
    while (Date.now() < deadline) {
      const r = await api(dev.url, "GET", `/v1/experiments/${id}/results?wait=30`, readToken);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      summary = r.body;
      if (summary.phase === "complete") break;
    }
    expect(summary?.phase).toBe("complete");
    const tried = summary.search.tried.map((t: { level: number; ok: boolean }) => [t.level, t.ok]);
    console.log(`FIGURE: search tried ${JSON.stringify(tried)}, best ${summary.search.best}`);
    expect(summary.search.best).toBe(4);

    // Each level's run window on the service's clock (the same machine's clock as the server's).
    const windows: Array<{ level: number; start: number; end: number }> = [];
    for (const level of summary.levels) {
      const run = await api(dev.url, "GET", `/v1/runs/${level.runId}`, readToken);
      expect(run.status).toBe(200);
      windows.push({ level: level.level, start: Date.parse(run.body.startedAt), end: Date.parse(run.body.completedAt) });
    }
    windows.sort((a, b) => a.start - b.start);
    for (let i = 1; i < windows.length; i++) {
      const prev = windows[i - 1]!;
      const cur = windows[i]!;
      // Every request of the previous level finished before the first of this level arrived.
      const prevRequests = seen.filter((s) => s.arrived >= prev.start - 5 && s.arrived <= prev.end + 5);
      const curRequests = seen.filter((s) => s.arrived >= cur.start - 5 && s.arrived <= cur.end + 5);
      expect(prevRequests.length).toBeGreaterThanOrEqual(40);
      expect(Math.min(...curRequests.map((s) => s.arrived))).toBeGreaterThanOrEqual(Math.max(...prevRequests.map((s) => s.finished)));
    }
  });
});
