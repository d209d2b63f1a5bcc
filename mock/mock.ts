// The built-in mock target (README, `builtin:mock`): an OpenAI-compatible server
// whose latency shape is set by three knobs, so runs and tests have a target that is
// always there and whose true TTFT and ITL are known.
//
// - Output is max_tokens (or max_completion_tokens) tokens, default 16, capped at 4096;
//   every token is the word "tok ", one per SSE chunk, so a client counting content
//   chunks counts exactly that many. prompt_tokens counts whitespace-separated words.
// - Token i is sent at start + ttftMs + i·itlMs, computed from the start each time, so
//   slow timers never add up to drift.
// - Unknown body fields are ignored, as vLLM does. Errors the OpenAI API would answer
//   (bad JSON, bad fields, bad knob headers, the injected 500s) use OpenAI's shape
//   {"error":{"message","type","param","code"}}, which keeps our "code" and "message",
//   so OpenAI clients and edgeperf tooling both read it. An unknown path gets our 404.
// - Nothing from the request's headers is ever echoed: callers put API keys there.

import { z } from "zod";
import { readJson } from "../contract/body";
import { errorResponse, StatusError, toErrorResponse } from "../contract/errors";

export interface MockKnobs {
  ttftMs: number;
  itlMs: number;
  errorRate: number;
}

export const MOCK_DEFAULTS: MockKnobs = { ttftMs: 20, itlMs: 5, errorRate: 0 };

// The same ranges RunSpec's target.mock accepts (contract/spec.ts).
export const MOCK_LIMITS: Record<keyof MockKnobs, { header: string; max: number }> = {
  ttftMs: { header: "x-mock-ttft-ms", max: 60_000 },
  itlMs: { header: "x-mock-itl-ms", max: 10_000 },
  errorRate: { header: "x-mock-error-rate", max: 1 },
};

export const MOCK_MODEL = "mock";
const TOKEN = "tok ";
const DEFAULT_MAX_TOKENS = 16;
const MAX_TOKENS_CAP = 4096;
// The largest request an agent sends: input lengths are drawn around RunSpec's mean
// (at most 131,072 tokens) and clamped at 262,144 tokens (agent/prompt.ts, MAX_TOKENS),
// one word of at most 5 letters plus a space each, so a prompt is at most 1,572,863 bytes;
// the rest of the body (a model of 256 characters, at most 6 bytes each escaped, and
// the fixed fields) is under 2 KiB. 1,600 KiB holds that with room to spare and no
// more: /mock/* is open to anyone, and every byte read is the operator's CPU.
// (api "http" bodies are at most 256 KiB.) A test builds that request and checks it fits.
export const MOCK_MAX_BODY_BYTES = 1_600 * 1024;
// A fixed `created` for the one model, so the models list is stable across calls.
const MODEL_CREATED = 1_735_689_600;

export function mockKnobsFromHeaders(h: Headers, defaults: MockKnobs): MockKnobs {
  const knobs = { ...defaults };
  for (const key of Object.keys(MOCK_LIMITS) as (keyof MockKnobs)[]) {
    const { header, max } = MOCK_LIMITS[key];
    const raw = h.get(header);
    if (raw === null) continue;
    const value = Number(raw);
    // The value is not quoted back: the message says what is allowed, never what was sent.
    if (raw.trim() === "" || !Number.isFinite(value) || value < 0 || value > max) {
      throw new StatusError(400, "invalid_mock_header", `Header ${header} must be a number from 0 to ${max}.`);
    }
    knobs[key] = value;
  }
  return knobs;
}

const TextPart = z.looseObject({ text: z.string().optional() });
const Message = z.looseObject({ content: z.union([z.string(), z.array(TextPart)]).nullish() });
const tokenCount = z.int().min(1).nullish();
const common = {
  model: z.string().min(1),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
  max_tokens: tokenCount,
};
const ChatBody = z.looseObject({ ...common, messages: z.array(Message).min(1), max_completion_tokens: tokenCount });
const CompletionBody = z.looseObject({
  ...common,
  // A string, a batch of strings (counted together: one choice, not one per prompt), or token ids.
  prompt: z.union([z.string(), z.array(z.string()), z.array(z.int())]),
});

type Api = "chat" | "completions";

interface Job {
  api: Api;
  model: string;
  stream: boolean;
  includeUsage: boolean;
  promptTokens: number;
  outputTokens: number;
}

interface Timing {
  start: number;
  ticker: Ticker;
}

const routes: Record<string, (request: Request, knobs: MockKnobs, t: Timing) => Promise<Response>> = {
  "POST /mock/v1/chat/completions": (request, knobs, t) => complete(request, knobs, t, "chat"),
  "POST /mock/v1/completions": (request, knobs, t) => complete(request, knobs, t, "completions"),
  "GET /mock/v1/models": async () =>
    Response.json({ object: "list", data: [{ id: MOCK_MODEL, object: "model", created: MODEL_CREATED, owned_by: "edgeperf" }] }),
};

/**
 * The public route /mock/*, for worker/index.ts. MOCK_ENABLED "false" (or "0", "off",
 * "no") closes it with the router's 404; any other value, or none, leaves it open.
 * Edge agents are not affected: a LoadAgent calls handleMock in its own isolate and never
 * comes through here, so builtin:mock runs work either way. `env` is the Worker's env;
 * only MOCK_ENABLED is read.
 */
export function handleMockRoute(request: Request, env: object): Promise<Response> {
  if (!mockEnabled(env)) {
    return Promise.resolve(errorResponse(404, "not_found", `No route for ${request.method} ${new URL(request.url).pathname}.`));
  }
  return handleMock(request);
}

function mockEnabled(env: object): boolean {
  const value = (env as { MOCK_ENABLED?: unknown }).MOCK_ENABLED;
  return !(typeof value === "string" && /^\s*(false|0|off|no)\s*$/i.test(value));
}

/** `ticker`: the caller's (a LoadAgent's, shared by its streams); a fresh one per request otherwise. */
export async function handleMock(request: Request, ticker: Ticker = new Ticker()): Promise<Response> {
  const start = performance.now();
  const path = new URL(request.url).pathname;
  const route = routes[`${request.method} ${path}`];
  if (route === undefined) return errorResponse(404, "not_found", `No route for ${request.method} ${path}.`);
  try {
    return await route(request, mockKnobsFromHeaders(request.headers, MOCK_DEFAULTS), { start, ticker });
  } catch (e) {
    if (e instanceof StatusError) return openAiError(e.status, e.code, e.message);
    return toErrorResponse(e, `mock ${request.method} ${path}`);
  }
}

async function complete(request: Request, knobs: MockKnobs, t: Timing, api: Api): Promise<Response> {
  const job = parseJob(api, await readJson(request, MOCK_MAX_BODY_BYTES));
  // A load knob, not a measurement: Math.random is enough. The failure is immediate,
  // like a server refusing work, so it does not hold a concurrency slot for the TTFT.
  if (knobs.errorRate > 0 && Math.random() < knobs.errorRate) {
    throw new StatusError(500, "mock_injected_error", "The mock failed this request on purpose (x-mock-error-rate).");
  }
  const reply = new Reply(job, t, knobs);
  if (job.stream) {
    return new Response(sseBody(reply.frames()), {
      headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" },
    });
  }
  await t.ticker.sleepUntil(reply.tokenTime(job.outputTokens - 1));
  return Response.json(reply.whole());
}

function parseJob(api: Api, body: unknown): Job {
  const base = { api, includeUsage: false, stream: false };
  if (api === "chat") {
    const b = parse(ChatBody, body);
    const text = b.messages.map((m) => (typeof m.content === "string" ? m.content : (m.content ?? []).map((p) => p.text ?? "").join(" ")));
    return {
      ...base,
      model: b.model,
      stream: b.stream === true,
      includeUsage: b.stream_options?.include_usage === true,
      promptTokens: Math.max(1, words(text.join(" "))),
      outputTokens: Math.min(MAX_TOKENS_CAP, b.max_completion_tokens ?? b.max_tokens ?? DEFAULT_MAX_TOKENS),
    };
  }
  const b = parse(CompletionBody, body);
  const p = b.prompt;
  const promptTokens = typeof p === "string" ? words(p) : p.reduce<number>((n, x) => n + (typeof x === "string" ? words(x) : 1), 0);
  return {
    ...base,
    model: b.model,
    stream: b.stream === true,
    includeUsage: b.stream_options?.include_usage === true,
    promptTokens: Math.max(1, promptTokens),
    outputTokens: Math.min(MAX_TOKENS_CAP, b.max_tokens ?? DEFAULT_MAX_TOKENS),
  };
}

function parse<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue === undefined || issue.path.length === 0 ? "body" : issue.path.join(".");
  throw new StatusError(400, "invalid_request", `${where}: ${issue?.message ?? "invalid"}.`);
}

function words(s: string): number {
  const t = s.trim();
  return t === "" ? 0 : t.split(/\s+/).length;
}

// One request's answer, in the two wire forms: a stream of chunks or one JSON object.
class Reply {
  private readonly id: string;
  private readonly created = Math.floor(Date.now() / 1000);

  constructor(
    private readonly job: Job,
    private readonly t: Timing,
    private readonly knobs: MockKnobs,
  ) {
    this.id = `${job.api === "chat" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID().replaceAll("-", "")}`;
  }

  tokenTime(i: number): number {
    return this.t.start + this.knobs.ttftMs + Math.max(0, i) * this.knobs.itlMs;
  }

  private usage() {
    const { promptTokens: prompt_tokens, outputTokens: completion_tokens } = this.job;
    return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };
  }

  private envelope(object: string) {
    return { id: this.id, object, created: this.created, model: this.job.model };
  }

  whole(): object {
    const content = TOKEN.repeat(this.job.outputTokens);
    const choice =
      this.job.api === "chat"
        ? { index: 0, message: { role: "assistant", content, refusal: null }, logprobs: null, finish_reason: "length" }
        : { index: 0, text: content, logprobs: null, finish_reason: "length" };
    return { ...this.envelope(this.job.api === "chat" ? "chat.completion" : "text_completion"), choices: [choice], usage: this.usage() };
  }

  // The chunks OpenAI streams: one per token (the first chat delta also says the role),
  // one with finish_reason and no content, with include_usage one with empty choices
  // and the usage (every other chunk then carries "usage": null), then [DONE].
  async *frames(): AsyncGenerator<string> {
    const chat = this.job.api === "chat";
    const head = {
      ...this.envelope(chat ? "chat.completion.chunk" : "text_completion"),
      ...(this.job.includeUsage ? { usage: null } : {}),
    };
    const choice = (text: string, i: number, finish: string | null) =>
      chat
        ? {
            index: 0,
            delta: text === "" ? {} : i === 0 ? { role: "assistant", content: text } : { content: text },
            logprobs: null,
            finish_reason: finish,
          }
        : { index: 0, text, logprobs: null, finish_reason: finish };
    for (let i = 0; i < this.job.outputTokens; i++) {
      await this.t.ticker.sleepUntil(this.tokenTime(i));
      yield sse({ ...head, choices: [choice(TOKEN, i, null)] });
    }
    yield sse({ ...head, choices: [choice("", this.job.outputTokens, "length")] });
    if (this.job.includeUsage) yield sse({ ...head, choices: [], usage: this.usage() });
    yield "data: [DONE]\n\n";
  }
}

function sse(data: object): string {
  return `data: ${JSON.stringify(data)}\n\n`;
}

// Pull-driven, so a token is produced only when the reader is ready for it; a cancelled
// stream (client gone) stops the generator and its timers instead of running to the end.
function sseBody(frames: AsyncGenerator<string>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let cancelled = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await frames.next();
      if (cancelled) return;
      if (next.done) controller.close();
      else controller.enqueue(encoder.encode(next.value));
    },
    cancel() {
      cancelled = true;
      void frames.return(undefined);
    },
  });
}

// One timer for many streams, set for the earliest deadline; when it fires it releases
// every token due within COALESCE_MS. Thousands of per-token timers (16 streams at 8 ms
// ITL is 2,000/s) make workerd fire them late, by ~10 ms measured in one isolate; one
// timer at a time keeps tokens on schedule. Deadlines stay absolute, so releasing a
// token up to COALESCE_MS early never accumulates. A Ticker must not be shared across
// Durable Objects (each has its own I/O context): a LoadAgent owns one, and an HTTP
// request to the mock gets its own.
// In workerd the clock only moves across I/O, and a timer is I/O, so now() is fresh here.
const COALESCE_MS = 1;

function wait(ms: number): Promise<void> {
  if (typeof scheduler !== "undefined" && typeof scheduler.wait === "function") return scheduler.wait(ms);
  return new Promise<void>((resolve) => setTimeout(resolve, ms));
}

export class Ticker {
  private readonly due: Array<{ at: number; resolve: () => void }> = [];
  private armedFor = Number.POSITIVE_INFINITY;

  sleepUntil(deadline: number): Promise<void> {
    if (deadline - performance.now() <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let i = this.due.length;
      while (i > 0 && this.due[i - 1]!.at > deadline) i--;
      this.due.splice(i, 0, { at: deadline, resolve });
      this.arm();
    });
  }

  private arm(): void {
    const first = this.due[0];
    if (!first || first.at >= this.armedFor) return;
    this.armedFor = first.at;
    void wait(Math.max(0, first.at - performance.now())).then(() => {
      this.armedFor = Number.POSITIVE_INFINITY;
      const now = performance.now();
      let n = 0;
      while (n < this.due.length && this.due[n]!.at <= now + COALESCE_MS) n++;
      for (const d of this.due.splice(0, n)) d.resolve();
      this.arm();
    });
  }
}

function openAiError(status: number, code: string, message: string): Response {
  const type = status >= 500 ? "server_error" : "invalid_request_error";
  return Response.json({ error: { message, type, param: null, code } }, { status, headers: { "cache-control": "no-store" } });
}
