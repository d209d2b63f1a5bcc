// Datasets, sessions and trace replay end to end (README, "Datasets and workloads"): runs in
// a real `wrangler dev` against a plain Node server written here, which records every
// request body and when it arrived, and answers each with text of its own
// ("reply-<n> …"), so what edgeperf sent is checked from outside:
// - a single_turn dataset's exact prompts and output lengths reach the server;
// - turn 2 of a session carries turn 1's prompt and the answer the server really gave;
// - a mooncake_trace arrives at the trace's offsets ÷ replaySpeedup, and requests with
//   the same hash id begin with the same block of text;
// - a malformed dataset is refused with its line number.
//
// Figures are printed as `FIGURE:` lines.
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { edgeperf } from "./cli-process.ts";
import { DEV_API_TOKEN, api, e2eServer } from "./dev-server.ts";
import { closeLocal, listenLocal } from "./local-server.ts";

interface Seen {
  n: number;
  body: any;
  arrivedAt: number;
  answer: string;
}

/** Answers chat completions (non-streaming) after `delayMs` with "reply-<n>" and some words. */
class RecordingServer {
  readonly seen: Seen[] = [];
  delayMs = 5;
  private server: Server | null = null;
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/v1/chat/completions`;
  }

  async start(): Promise<void> {
    const server = createServer({ keepAlive: true }, (req, res) => this.handle(req, res));
    this.server = server;
    this.port = await listenLocal(server);
  }

  async stop(): Promise<void> {
    await closeLocal(this.server);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const arrivedAt = performance.now();
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      const n = this.seen.length;
      const answer = `reply-${n} from the server`;
      this.seen.push({ n, body, arrivedAt, answer });
      setTimeout(() => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            id: `c${n}`,
            object: "chat.completion",
            choices: [{ index: 0, message: { role: "assistant", content: answer }, finish_reason: "stop" }],
            usage: { prompt_tokens: 10, completion_tokens: 4, total_tokens: 14 },
          }),
        );
      }, this.delayMs);
    });
  }
}

const dev = e2eServer({ ALLOWED_TARGETS: "127.0.0.1:*" });
const srv = new RecordingServer();
beforeAll(async () => {
  await srv.start();
  await dev.start();
}, 120_000);
afterAll(async () => {
  await srv.stop();
  await dev.dispose();
});
beforeEach(() => {
  srv.seen.length = 0;
  srv.delayMs = 5;
});

async function upload(type: string, lines: unknown[]): Promise<{ status: number; body: any }> {
  const res = await fetch(`${dev.url}/v1/datasets?type=${type}`, {
    method: "POST",
    headers: { authorization: `Bearer ${DEV_API_TOKEN}`, "content-type": "application/x-ndjson" },
    body: lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n"),
  });
  return { status: res.status, body: await res.json() };
}

/** Runs `spec` to completion on one edge agent, or with `external` on `edgeperf agent` (the CLI, a subprocess) alone. */
async function runToEnd(spec: Record<string, unknown>, opts: { external?: boolean } = {}): Promise<any> {
  const created = await api(dev.url, "POST", "/v1/runs", DEV_API_TOKEN, {
    target: { url: srv.url, model: "m" },
    agents: { edge: opts.external ? 0 : 1 },
    graceSeconds: 60,
    ...spec,
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const { id, readToken, agentToken } = created.body;
  if (opts.external) {
    const r = await edgeperf(["agent", id, "--server", dev.url, "--token", agentToken, "--name", "cli"], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
  }
  const end = Date.now() + 90_000;
  while (Date.now() < end) {
    const res = await api(dev.url, "GET", `/v1/runs/${id}/results?wait=10`, readToken);
    if (res.body.phase === "complete") return res.body;
  }
  throw new Error(`run ${id} did not complete: ${dev.logs().slice(-2000)}`);
}

const userText = (s: Seen): string => {
  const messages = s.body.messages as Array<{ role: string; content: string }>;
  return messages[messages.length - 1]!.content;
};

describe("a single_turn dataset", () => {
  it("sends its exact prompts and output lengths, each once in sequential order", async () => {
    const lines = [
      { text: "What is the capital of France?", output_length: 7 },
      { text: "Name three prime numbers.", output_length: 9 },
      {
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "Why is the sky blue?" },
        ],
      },
    ];
    const up = await upload("single_turn", lines);
    expect(up.status, JSON.stringify(up.body)).toBe(201);
    const res = await runToEnd({
      workload: { dataset: { id: up.body.id, sampling: "sequential" }, outputTokens: { mean: 5 } },
      load: { concurrency: 1 },
      stop: { requests: 6 },
    });
    expect(res.counts).toMatchObject({ completed: 6, failed: 0 });
    expect(srv.seen.map(userText)).toEqual([
      "What is the capital of France?",
      "Name three prime numbers.",
      "Why is the sky blue?",
      "What is the capital of France?",
      "Name three prime numbers.",
      "Why is the sky blue?",
    ]);
    expect(srv.seen[2]!.body.messages[0]).toEqual({ role: "system", content: "Be brief." });
    expect(srv.seen.map((s) => s.body.max_tokens ?? s.body.max_completion_tokens)).toEqual([7, 9, 5, 7, 9, 5]);
  }, 120_000);
});

describe("a multi_turn dataset", () => {
  it("sends each session's turns in order on one conversation carrying the server's real answers, after each turn's delay", async () => {
    const sessions = [
      { session_id: "a", turns: [{ text: "a1" }, { text: "a2", delay: 300 }, { text: "a3" }] },
      { session_id: "b", turns: [{ text: "b1" }, { text: "b2", delay: 300 }] },
    ];
    const up = await upload("multi_turn", sessions);
    expect(up.status, JSON.stringify(up.body)).toBe(201);
    const res = await runToEnd({
      workload: { dataset: { id: up.body.id } },
      load: { concurrency: 2 },
      stop: { requests: 5 },
    });
    expect(res.counts).toMatchObject({ completed: 5, failed: 0 });
    const byText = new Map(srv.seen.map((s) => [userText(s), s]));
    expect([...byText.keys()].sort()).toEqual(["a1", "a2", "a3", "b1", "b2"]);
    // Turn 2 carries turn 1's prompt and the answer the server gave to it, and so on.
    for (const [prev, next] of [
      ["a1", "a2"],
      ["a2", "a3"],
      ["b1", "b2"],
    ] as const) {
      const p = byText.get(prev)!;
      const n = byText.get(next)!;
      const history = n.body.messages as Array<{ role: string; content: string }>;
      const at = history.findIndex((m) => m.role === "user" && m.content === prev);
      expect(at, JSON.stringify(history)).toBeGreaterThanOrEqual(0);
      expect(history[at + 1]).toEqual({ role: "assistant", content: p.answer });
      expect(history[history.length - 1]).toEqual({ role: "user", content: next });
    }
    // a2 and b2 waited their 300 ms after the answers before them (≥ 300 ms after arrival + 5 ms answer).
    for (const [prev, next] of [
      ["a1", "a2"],
      ["b1", "b2"],
    ] as const) {
      const gap = byText.get(next)!.arrivedAt - byText.get(prev)!.arrivedAt;
      console.log(`FIGURE: multi_turn ${prev}→${next} gap ${gap.toFixed(1)} ms (delay 300 ms + answer 5 ms)`);
      expect(gap).toBeGreaterThanOrEqual(300);
    }
    expect(res.sessions).toMatchObject({ started: 2, completed: 2, cut: 0 });
  }, 120_000);

  it("runs the same way on `edgeperf agent`, which reads the dataset from the Worker with the run's agent token", async () => {
    const sessions = [{ session_id: "n", turns: [{ text: "n1" }, { text: "n2", delay: 50 }] }];
    const up = await upload("multi_turn", sessions);
    expect([200, 201]).toContain(up.status);
    const res = await runToEnd(
      { workload: { dataset: { id: up.body.id } }, load: { concurrency: 1 }, stop: { requests: 2 } },
      { external: true },
    );
    expect(res.counts).toMatchObject({ completed: 2, failed: 0 });
    expect(res.agents.map((a: { name: string }) => a.name)).toEqual(["cli"]);
    const [first, second] = srv.seen as [Seen, Seen];
    expect(userText(first)).toBe("n1");
    expect(second.body.messages).toEqual([
      { role: "user", content: "n1" },
      { role: "assistant", content: first.answer },
      { role: "user", content: "n2" },
    ]);
    expect(res.sessions).toEqual({ started: 1, completed: 1, cut: 0 });
  }, 120_000);
});

describe("a mooncake_trace dataset", () => {
  // Offsets at speed 1: 0, 400, 800, 1200, 2000, 2000 ms; replayed at 2×: 0, 200, 400, 600, 1000, 1000.
  const TRACE = [
    { timestamp: 5000, input_length: 600, output_length: 4, hash_ids: [11, 12] },
    { timestamp: 5400, input_length: 600, output_length: 4, hash_ids: [11, 13] },
    { timestamp: 5800, input_length: 700, output_length: 4, hash_ids: [11, 12] },
    { timestamp: 6200, input_length: 300, output_length: 4, hash_ids: [14] },
    { timestamp: 7000, input_length: 600, output_length: 4, hash_ids: [14, 12] },
    { timestamp: 7000, input_length: 600, output_length: 4, hash_ids: [11, 12] },
  ];

  it("arrives at the trace's offsets ÷ replaySpeedup, and the same hash id begins with the same block", async () => {
    const up = await upload("mooncake_trace", TRACE);
    expect(up.status, JSON.stringify(up.body)).toBe(201);
    const res = await runToEnd({
      workload: { dataset: { id: up.body.id }, replaySpeedup: 2 },
      load: { concurrency: 4 },
      stop: { requests: 100 },
    });
    expect(res.counts).toMatchObject({ completed: 6, failed: 0 });
    expect(srv.seen).toHaveLength(6);
    const first = Math.min(...srv.seen.map((s) => s.arrivedAt));
    const offsets = srv.seen.map((s) => s.arrivedAt - first).sort((a, b) => a - b);
    const want = [0, 200, 400, 600, 1000, 1000];
    const lagP99 = res.delivered.scheduleLagMs.p99 as number;
    console.log(
      `FIGURE: trace arrivals ${offsets.map((o) => o.toFixed(1)).join(", ")} ms (want ${want.join(", ")}); schedule lag p99 ${lagP99} ms`,
    );
    // Within the schedule-lag bound of generator_bound (50 ms), as seen at the server.
    for (const [i, o] of offsets.entries()) expect(Math.abs(o - want[i]!)).toBeLessThanOrEqual(50);
    // Block k is 512 tokens of words; identical hash ids give identical text.
    const words = (s: Seen) => userText(s).split(" ");
    const blockOf = (s: Seen, k: number) =>
      words(s)
        .slice(k * 512, (k + 1) * 512)
        .join(" ");
    const byLength = [...srv.seen].sort((a, b) => a.arrivedAt - b.arrivedAt);
    const [r0, r1, r2, r3, r4, r5] = byLength as [Seen, Seen, Seen, Seen, Seen, Seen];
    expect(blockOf(r1, 0)).toBe(blockOf(r0, 0)); // 11
    expect(blockOf(r2, 0)).toBe(blockOf(r0, 0)); // 11
    // 14: the 300-token prompt is the first 300 tokens of the block the 600-token one begins with.
    expect(words(r3)).toHaveLength(300);
    expect(words(r4).slice(0, 300).join(" ")).toBe(words(r3).join(" "));
    expect(blockOf(r4, 0)).not.toBe(blockOf(r0, 0)); // 14 vs 11
    // Block 12 (second block) is the same where it appears: the first 88 tokens of it in a 600-token prompt.
    expect(words(r2).slice(512, 600).join(" ")).toBe(words(r0).slice(512, 600).join(" "));
    expect(words(r4).slice(512, 600).join(" ")).toBe(words(r0).slice(512, 600).join(" "));
    expect(words(r1).slice(512, 600).join(" ")).not.toBe(words(r0).slice(512, 600).join(" ")); // 13 vs 12
    expect(words(r5).join(" ")).toBe(words(r0).join(" ")); // the same hash ids and length: the same prompt
    expect(res.delivered.concurrency.target).toBeNull();
  }, 120_000);
});

describe("a malformed dataset", () => {
  it("is refused with its line number, and nothing is stored", async () => {
    const before = (await api(dev.url, "GET", "/v1/datasets", DEV_API_TOKEN)).body.datasets.length;
    const res = await upload("multi_turn", [{ turns: [{ text: "ok" }] }, { turns: [{ text: "ok" }] }, { turns: [{ text: 5 }] }]);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/^line 3: /);
    expect((await api(dev.url, "GET", "/v1/datasets", DEV_API_TOKEN)).body.datasets.length).toBe(before);
  }, 60_000);
});
