// An independent OpenAI-compatible target for end-to-end tests: node:http on a free
// loopback port, sharing no code with edgeperf (not its mock, not its agent), so what
// it records is a second opinion on what edgeperf measures.
//
// POST /v1/chat/completions (and /v1/completions):
// - streaming (stream: true): SSE, one content chunk per token, token i sent at
//   arrival + ttftMs + i·itlMs (computed from the arrival each time, so late timers do
//   not add up), then a finish chunk, a usage chunk when stream_options.include_usage,
//   and `data: [DONE]`;
// - otherwise one JSON body after ttftMs + (n − 1)·itlMs;
// - n = max_tokens (or max_completion_tokens), default 16, capped at 4096.
// For every request it records, on performance.now() (the test process's clock), when it
// arrived, when the response headers were written, when the first and the last token
// were written, and when the response ended; and it tracks the requests in flight
// (arrived, response not yet ended), with the most ever seen at once.

import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { closeLocal, listenLocal } from "./local-server.ts";

export interface ServerTiming {
  /** Time to the first token, from the request's arrival. */
  ttftMs: number;
  /** Time between two tokens. */
  itlMs: number;
}

export interface RequestRecord {
  /** Order of arrival, from 0. */
  index: number;
  path: string;
  model: string | null;
  stream: boolean;
  includeUsage: boolean;
  maxTokens: number;
  /** Requests in flight right after this one arrived (itself included). */
  inflightAtArrival: number;
  /** performance.now() when the request's headers had arrived. */
  arrivedAt: number;
  /** When the response headers (the first byte) were written. */
  firstByteAt: number | null;
  /** When the first token was written. */
  firstTokenAt: number | null;
  /** When the last token was written. */
  lastTokenAt: number | null;
  /** When the response was ended (or the connection closed before that). */
  endedAt: number | null;
  /** Tokens written. */
  tokens: number;
  /** The client went away before the response ended. */
  aborted: boolean;
  status: number;
}

const DEFAULT_MAX_TOKENS = 16;
const MAX_TOKENS = 4096;
const TOKEN = "tok ";

export class OpenAIServer {
  readonly timing: ServerTiming;
  readonly requests: RequestRecord[] = [];
  inflight = 0;
  maxInflight = 0;
  private server: Server | null = null;
  port = 0;

  constructor(timing: ServerTiming) {
    this.timing = timing;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/v1/chat/completions`;
  }

  async start(): Promise<void> {
    const server = createServer({ noDelay: true, keepAlive: true }, (req, res) => this.handle(req, res));
    this.server = server;
    this.port = await listenLocal(server);
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    await closeLocal(server);
  }

  /** Forgets the records and the high-water mark (between runs on one server). */
  reset(): void {
    this.requests.length = 0;
    this.maxInflight = this.inflight;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const arrivedAt = performance.now();
    const dbg = req.headers["x-debug-start"];
    if (typeof dbg === "string")
      (globalThis as any).__transit = [...((globalThis as any).__transit ?? []), performance.timeOrigin + arrivedAt - Number(dbg)];
    this.inflight++;
    this.maxInflight = Math.max(this.maxInflight, this.inflight);
    const rec: RequestRecord = {
      index: this.requests.length,
      path: req.url ?? "",
      model: null,
      stream: false,
      includeUsage: false,
      maxTokens: 0,
      inflightAtArrival: this.inflight,
      arrivedAt,
      firstByteAt: null,
      firstTokenAt: null,
      lastTokenAt: null,
      endedAt: null,
      tokens: 0,
      aborted: false,
      status: 0,
    };
    this.requests.push(rec);
    const timers: NodeJS.Timeout[] = [];
    let ended = false;
    const finish = () => {
      if (ended) return;
      ended = true;
      rec.endedAt = performance.now();
      this.inflight--;
      for (const t of timers) clearTimeout(t);
    };
    // The client went away: nothing more is written, the request no longer counts.
    res.once("close", () => {
      if (!ended) rec.aborted = true;
      finish();
    });
    const fail = (status: number, message: string) => {
      rec.status = status;
      res.writeHead(status, { "content-type": "application/json" });
      rec.firstByteAt = performance.now();
      finish();
      res.end(JSON.stringify({ error: { message, type: "invalid_request_error", param: null, code: null } }));
    };

    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method !== "POST" || (req.url !== "/v1/chat/completions" && req.url !== "/v1/completions")) {
        return fail(404, "Not found.");
      }
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
      } catch {
        return fail(400, "The body is not JSON.");
      }
      const chat = req.url === "/v1/chat/completions";
      const asked = body.max_tokens ?? body.max_completion_tokens;
      const n = typeof asked === "number" && Number.isInteger(asked) && asked > 0 ? Math.min(asked, MAX_TOKENS) : DEFAULT_MAX_TOKENS;
      const streamOptions = body.stream_options as { include_usage?: unknown } | undefined;
      rec.model = typeof body.model === "string" ? body.model : null;
      rec.stream = body.stream === true;
      rec.includeUsage = streamOptions?.include_usage === true;
      rec.maxTokens = n;
      rec.status = 200;
      const promptTokens = chat ? wordsOfMessages(body.messages) : words(body.prompt);
      const id = `cmpl-${rec.index}`;
      const created = Math.floor(Date.now() / 1000);
      const model = rec.model ?? "m";
      const usage = { prompt_tokens: promptTokens, completion_tokens: n, total_tokens: promptTokens + n };
      const tokenAt = (i: number) => arrivedAt + this.timing.ttftMs + i * this.timing.itlMs;
      // Never early: Node's timers count from the loop's cached clock, so one may fire a
      // little before its delay is up on performance.now(); then it waits the rest.
      const at = (t: number, fn: () => void): void => {
        const wait = t - performance.now();
        if (wait <= 0) fn();
        else timers.push(setTimeout(() => at(t, fn), Math.ceil(wait)));
      };

      if (!rec.stream) {
        at(tokenAt(n - 1), () => {
          if (ended) return;
          const text = TOKEN.repeat(n);
          const choice = chat
            ? { index: 0, message: { role: "assistant", content: text }, finish_reason: "length" }
            : { index: 0, text, finish_reason: "length" };
          const object = chat ? "chat.completion" : "text_completion";
          res.writeHead(200, { "content-type": "application/json" });
          const now = performance.now();
          rec.firstByteAt = now;
          rec.firstTokenAt = now;
          rec.lastTokenAt = now;
          rec.tokens = n;
          finish();
          res.end(JSON.stringify({ id, object, created, model, choices: [choice], usage }));
        });
        return;
      }

      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.flushHeaders();
      rec.firstByteAt = performance.now();
      const object = chat ? "chat.completion.chunk" : "text_completion";
      const event = (choices: unknown[], extra: Record<string, unknown> = {}) =>
        `data: ${JSON.stringify({ id, object, created, model, choices, ...extra })}\n\n`;
      const content = (text: string, finishReason: string | null) =>
        chat
          ? { index: 0, delta: text === "" ? {} : { content: text }, finish_reason: finishReason }
          : { index: 0, text, finish_reason: finishReason };
      const send = (i: number) => {
        if (ended) return;
        const now = performance.now();
        rec.firstTokenAt ??= now;
        rec.lastTokenAt = now;
        rec.tokens++;
        if (i < n - 1) {
          res.write(event([content(TOKEN, null)]));
          at(tokenAt(i + 1), () => send(i + 1));
          return;
        }
        // The last token, its finish chunk, the usage chunk and [DONE] in one write.
        let tail = event([content(TOKEN, null)]) + event([content("", "length")]);
        if (rec.includeUsage) tail += event([], { usage });
        tail += "data: [DONE]\n\n";
        finish();
        res.end(tail);
      };
      at(tokenAt(0), () => send(0));
    });
  }
}

function words(v: unknown): number {
  if (typeof v === "string") return v.split(/\s+/).filter((w) => w !== "").length;
  if (Array.isArray(v)) return v.reduce((sum: number, x) => sum + (typeof x === "number" ? 1 : words(x)), 0);
  return 0;
}

function wordsOfMessages(messages: unknown): number {
  if (!Array.isArray(messages)) return 0;
  return messages.reduce((sum: number, m) => sum + words((m as { content?: unknown } | null)?.content), 0);
}

// ── Figures from the server's own records ────────────────────────────────────

/** Numpy's default (linear) percentile, as AIPerf and edgeperf compute it. */
export function percentile(values: readonly number[], p: number): number {
  const xs = [...values].sort((a, b) => a - b);
  if (xs.length === 0) return Number.NaN;
  const rank = (p / 100) * (xs.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return xs[lo]! + (xs[hi]! - xs[lo]!) * (rank - lo);
}

export const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Served TTFT of each completed streaming request: first token written − arrival. */
export function servedTtft(records: readonly RequestRecord[]): number[] {
  return records.filter((r) => r.firstTokenAt !== null && !r.aborted).map((r) => r.firstTokenAt! - r.arrivedAt);
}

/** Served ITL of each completed request with at least two tokens: (last − first) / (n − 1). */
export function servedItl(records: readonly RequestRecord[]): number[] {
  return records
    .filter((r) => r.tokens >= 2 && !r.aborted && r.firstTokenAt !== null && r.lastTokenAt !== null)
    .map((r) => (r.lastTokenAt! - r.firstTokenAt!) / (r.tokens - 1));
}
