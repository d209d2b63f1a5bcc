// An independent server for every endpoint kind and the streams reasoning models and tool
// calls produce: node:http on a free loopback port, sharing no code with edgeperf (not its
// mock, not its agent, not its tokenizer), so what it records is a second opinion on what
// edgeperf measures.
//
// The path names the variant, then the API: POST /<variant>/v1/chat/completions,
// /responses/v1/responses, /messages/v1/messages, /embeddings/v1/embeddings,
// /template/generate. Every token is one piece of text written in its own event: piece i
// at arrival + ttftMs + i·itlMs (computed from the arrival each time, so late timers do
// not add up). Each answer is REASONING reasoning pieces (" think") then ANSWER answer
// pieces (" tok"), unless the variant says otherwise; each piece is one token in the
// usual BPE vocabularies, so a correct count of the text is TOTAL.
//
// Variants (chat completions unless named after another API):
//   reasoning_content   delta.reasoning_content, then delta.content; usage in a chunk with choices: []
//   reasoning           delta.reasoning (vLLM's newer field), usage with completion_tokens_details
//   reasoning-only      TOTAL reasoning pieces and finish_reason "length"
//   tools-only          one tool call: its name, then its arguments piece by piece
//   no-usage            never sends usage, whatever stream_options asks
//   no-done             answer pieces only, usage, and no [DONE]: the body just ends
//   whole               no streaming: one JSON message with reasoning_content and content, no usage
//   responses, messages, embeddings, template: those APIs, with reasoning where they have it

import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { closeLocal, listenLocal } from "./local-server.ts";

export const REASONING = 20;
export const ANSWER = 10;
export const TOTAL = REASONING + ANSWER;
/** The tool call of "tools-only": a name and 29 argument pieces, TOTAL tokens. */
export const TOOL_PIECES = ["lookup", '{"', "q", '":"', ...Array(TOTAL - 5).fill(" tok"), '"}'] as const;

export interface Timing {
  ttftMs: number;
  itlMs: number;
}

export interface Served {
  variant: string;
  /** The parsed request body. */
  body: Record<string, any>;
  headers: IncomingMessage["headers"];
  arrivedAt: number;
  /** When each token was written (performance.now of this process). */
  tokenAt: number[];
  /** The index of the first non-reasoning token, or null. */
  firstOutput: number | null;
  endedAt: number | null;
}

type Piece = { kind: "reasoning" | "answer" | "tool"; text: string };

function pieces(variant: string): Piece[] {
  if (variant === "reasoning-only") return Array.from({ length: TOTAL }, () => ({ kind: "reasoning", text: " think" }));
  if (variant === "tools-only") return TOOL_PIECES.map((text) => ({ kind: "tool", text }));
  if (variant === "no-done" || variant === "template") return Array.from({ length: TOTAL }, () => ({ kind: "answer", text: " tok" }));
  return [
    ...Array.from({ length: REASONING }, (): Piece => ({ kind: "reasoning", text: " think" })),
    ...Array.from({ length: ANSWER }, (): Piece => ({ kind: "answer", text: " tok" })),
  ];
}

const words = (s: unknown): number => (typeof s === "string" ? s.split(/\s+/).filter((w) => w !== "").length : 0);

export class EndpointServer {
  readonly served: Served[] = [];
  private server: Server | null = null;
  port = 0;

  readonly timing: Timing;

  constructor(timing: Timing) {
    this.timing = timing;
  }

  /** The URL of `variant` for an API path such as "/v1/chat/completions". */
  url(variant: string, apiPath: string): string {
    return `http://127.0.0.1:${this.port}/${variant}${apiPath}`;
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

  of(variant: string): Served[] {
    return this.served.filter((s) => s.variant === variant);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const arrivedAt = performance.now();
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const [, variant = "", ...rest] = (req.url ?? "").split("/");
      let body: Record<string, any>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        res.writeHead(400).end();
        return;
      }
      const rec: Served = { variant, body, headers: req.headers, arrivedAt, tokenAt: [], firstOutput: null, endedAt: null };
      this.served.push(rec);
      const timers: NodeJS.Timeout[] = [];
      res.once("close", () => {
        rec.endedAt ??= performance.now();
        for (const t of timers) clearTimeout(t);
      });
      // Never early: Node's timers count from the loop's cached clock, so one may fire a
      // little before its delay is up on performance.now(); then it waits the rest.
      const at = (t: number, fn: () => void): void => {
        const wait = t - performance.now();
        if (wait <= 0) fn();
        else timers.push(setTimeout(() => at(t, fn), Math.ceil(wait)));
      };
      const due = (i: number) => arrivedAt + this.timing.ttftMs + i * this.timing.itlMs;
      const api = `/${rest.join("/")}`;
      const ps = pieces(variant);
      const prompt = words(body.messages?.[0]?.content ?? body.input ?? body.text);

      if (api === "/v1/embeddings") {
        at(due(0), () => {
          rec.endedAt = performance.now();
          res.writeHead(200, { "content-type": "application/json" });
          res.end(
            JSON.stringify({
              object: "list",
              data: [{ object: "embedding", index: 0, embedding: [0.5, 0.5] }],
              usage: { prompt_tokens: prompt, total_tokens: prompt },
            }),
          );
        });
        return;
      }
      if (variant === "whole") {
        at(due(ps.length - 1), () => {
          const now = performance.now();
          rec.tokenAt = ps.map(() => now);
          rec.firstOutput = REASONING;
          rec.endedAt = now;
          const text = (kind: string) =>
            ps
              .filter((p) => p.kind === kind)
              .map((p) => p.text)
              .join("");
          const message = { role: "assistant", reasoning_content: text("reasoning"), content: text("answer") };
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ object: "chat.completion", choices: [{ index: 0, message, finish_reason: "length" }] }));
        });
        return;
      }

      const frames = framer(variant, api, prompt, body);
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.write(frames.head);
      const send = (i: number) => {
        const p = ps[i]!;
        const now = performance.now();
        rec.tokenAt.push(now);
        if (p.kind !== "reasoning") rec.firstOutput ??= i;
        if (i < ps.length - 1) {
          res.write(frames.piece(p, i));
          at(due(i + 1), () => send(i + 1));
          return;
        }
        rec.endedAt = now;
        res.end(frames.piece(p, i) + frames.tail);
      };
      at(due(0), () => send(0));
    });
  }
}

const data = (o: unknown, event?: string) => `${event ? `event: ${event}\n` : ""}data: ${JSON.stringify(o)}\n\n`;

/** Each API's wire form: what goes before the first token, one event per piece, and the end. */
function framer(
  variant: string,
  api: string,
  prompt: number,
  body: Record<string, any>,
): { head: string; piece: (p: Piece, i: number) => string; tail: string } {
  if (api === "/v1/responses") {
    const ev = (type: string, f: object = {}) => data({ type, ...f }, type);
    const usage = { input_tokens: prompt, output_tokens: TOTAL, output_tokens_details: { reasoning_tokens: REASONING } };
    return {
      head: ev("response.created", { response: { status: "in_progress" } }),
      piece: (p) => ev(p.kind === "reasoning" ? "response.reasoning_text.delta" : "response.output_text.delta", { delta: p.text }),
      tail: ev("response.completed", { response: { status: "completed", usage } }),
    };
  }
  if (api === "/v1/messages") {
    const ev = (type: string, f: object = {}) => data({ type, ...f }, type);
    return {
      head: ev("message_start", { message: { type: "message", usage: { input_tokens: prompt, output_tokens: 1 } } }),
      piece: (p, i) =>
        (i === 0 ? ev("content_block_start", { index: 0, content_block: { type: "thinking", thinking: "" } }) : "") +
        (i === REASONING
          ? ev("content_block_stop", { index: 0 }) + ev("content_block_start", { index: 1, content_block: { type: "text", text: "" } })
          : "") +
        ev("content_block_delta", {
          index: i < REASONING ? 0 : 1,
          delta: p.kind === "reasoning" ? { type: "thinking_delta", thinking: p.text } : { type: "text_delta", text: p.text },
        }),
      tail:
        ev("content_block_stop", { index: 1 }) +
        ev("message_delta", { delta: { stop_reason: "max_tokens" }, usage: { output_tokens: TOTAL } }) +
        ev("message_stop"),
    };
  }
  if (api === "/generate") {
    return {
      head: "",
      piece: (p) => data({ token: { text: p.text } }),
      tail: data({ token: { text: "" }, done: true, usage: { prompt_tokens: prompt, completion_tokens: TOTAL } }),
    };
  }
  // Chat completions.
  const chunk = (delta: object, finish: string | null = null) =>
    data({ object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: finish }] });
  const wantsUsage = body.stream_options?.include_usage === true && variant !== "no-usage";
  const usage =
    variant === "reasoning"
      ? { prompt_tokens: prompt, completion_tokens: TOTAL, completion_tokens_details: { reasoning_tokens: REASONING } }
      : { prompt_tokens: prompt, completion_tokens: TOTAL };
  const finish = variant === "tools-only" ? "tool_calls" : "length";
  return {
    head: "",
    piece: (p, i) => {
      if (p.kind === "reasoning") return chunk(variant === "reasoning" ? { reasoning: p.text } : { reasoning_content: p.text });
      if (p.kind === "answer") return chunk({ content: p.text });
      const call =
        i === 0 ? { id: "call_1", type: "function", function: { name: p.text, arguments: "" } } : { function: { arguments: p.text } };
      return chunk({ tool_calls: [{ index: 0, ...call }] });
    },
    tail:
      chunk({}, finish) +
      (wantsUsage ? data({ object: "chat.completion.chunk", choices: [], usage }) : "") +
      (variant === "no-done" ? "" : "data: [DONE]\n\n"),
  };
}
