// The built-in mock target (README, `builtin:mock`): a server for every endpoint kind
// edgeperf measures (OpenAI Chat Completions, Completions, Responses and Embeddings,
// Anthropic Messages), whose latency shape and answer are set by knobs, so runs and
// tests have a target that is always there and whose true TTFT, ITL and token counts
// are known.
//
// - Output is max_tokens (max_completion_tokens, max_output_tokens) tokens, default 16,
//   capped at 4096, one token per event (mock/answer.ts): reasoning first (knob
//   reasoningTokens), then the answer as text, or as a tool call (knob toolCalls).
//   `usage` counts the prompt and the answer by the request's tokenizer (x-mock-tokenizer).
// - Token i is sent at start + ttftMs + i·itlMs (mock/stream.ts).
// - Unknown body fields are ignored, as vLLM does. Errors the API would answer (bad JSON,
//   bad fields, bad knob headers, the injected 500s) use its error shape: OpenAI's
//   {"error":{"message","type","param","code"}}, or Anthropic's on /v1/messages. An
//   unknown path gets our 404.
// - Nothing from the request's headers is ever echoed: callers put API keys there.

import { z } from "zod";
import { readJson } from "../contract/body";
import { errorResponse, StatusError, toErrorResponse } from "../contract/errors";
import type { MockKnobs } from "./answer";
import { isTokenizer, MOCK_DEFAULTS, mockTokens, planAnswer } from "./answer";
import { DEFAULT_DIMENSIONS, embeddingsReply, MAX_DIMENSIONS } from "./embeddings";
import { messagesReply } from "./messages";
import { openAiReply } from "./openai";
import type { OpenAiApi } from "./openai";
import { responsesReply } from "./responses";
import { Ticker } from "./stream";
import type { Timing } from "./stream";

export type { MockKnobs };
export { MOCK_DEFAULTS, Ticker };

type NumericKnob = Exclude<keyof MockKnobs, "tokenizer">;

// The same ranges RunSpec's target.mock accepts (contract/spec.ts); toolCalls is 0 or 1.
export const MOCK_LIMITS: Record<NumericKnob, { header: string; max: number; integer?: boolean }> = {
  ttftMs: { header: "x-mock-ttft-ms", max: 60_000 },
  itlMs: { header: "x-mock-itl-ms", max: 10_000 },
  errorRate: { header: "x-mock-error-rate", max: 1 },
  reasoningTokens: { header: "x-mock-reasoning-tokens", max: 4096, integer: true },
  toolCalls: { header: "x-mock-tool-calls", max: 1, integer: true },
};
export const MOCK_TOKENIZER_HEADER = "x-mock-tokenizer";

export const MOCK_MODEL = "mock";
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
  for (const key of Object.keys(MOCK_LIMITS) as NumericKnob[]) {
    const { header, max, integer } = MOCK_LIMITS[key];
    const raw = h.get(header);
    if (raw === null) continue;
    const value = Number(raw);
    // The value is not quoted back: the message says what is allowed, never what was sent.
    if (raw.trim() === "" || !Number.isFinite(value) || value < 0 || value > max || (integer && !Number.isInteger(value))) {
      throw new StatusError(
        400,
        "invalid_mock_header",
        `Header ${header} must be ${integer ? "an integer" : "a number"} from 0 to ${max}.`,
      );
    }
    knobs[key] = value;
  }
  const tokenizer = h.get(MOCK_TOKENIZER_HEADER);
  if (tokenizer !== null) {
    if (!isTokenizer(tokenizer))
      throw new StatusError(400, "invalid_mock_header", `Header ${MOCK_TOKENIZER_HEADER} must name a shipped encoding.`);
    knobs.tokenizer = tokenizer;
  }
  return knobs;
}

const TextPart = z.looseObject({ text: z.string().optional() });
const Content = z.union([z.string(), z.array(TextPart)]).nullish();
const Message = z.looseObject({ content: Content });
const tokenCount = z.int().min(1).nullish();
const common = { model: z.string().min(1), stream: z.boolean().nullish() };
const usageOption = { stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish() };
const ChatBody = z.looseObject({
  ...common,
  ...usageOption,
  messages: z.array(Message).min(1),
  max_tokens: tokenCount,
  max_completion_tokens: tokenCount,
});
const CompletionBody = z.looseObject({
  ...common,
  ...usageOption,
  max_tokens: tokenCount,
  // A string, a batch of strings (counted together: one choice, not one per prompt), or token ids.
  prompt: z.union([z.string(), z.array(z.string()), z.array(z.int())]),
});
// Responses: input is a string or a list of items with a string or a list of parts.
const ResponsesBody = z.looseObject({
  ...common,
  input: z.union([z.string(), z.array(Message)]),
  instructions: z.string().nullish(),
  max_output_tokens: tokenCount,
});
const MessagesBody = z.looseObject({
  ...common,
  messages: z.array(Message).min(1),
  system: Content,
  max_tokens: z.int().min(1),
});
const EmbeddingsBody = z.looseObject({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(z.string()).min(1), z.array(z.int()).min(1), z.array(z.array(z.int())).min(1)]),
  encoding_format: z.enum(["float", "base64"]).nullish(),
  dimensions: z.int().min(1).max(MAX_DIMENSIONS).nullish(),
});

type Route = (body: unknown, knobs: MockKnobs, t: Timing) => Promise<Response>;

const outputLength = (...asked: (number | null | undefined)[]) =>
  Math.min(MAX_TOKENS_CAP, asked.find((n) => n != null) ?? DEFAULT_MAX_TOKENS);

function textOf(c: z.infer<typeof Content>): string {
  return typeof c === "string" ? c : (c ?? []).map((p) => p.text ?? "").join(" ");
}

/** Prompt tokens: each message's text counted alone (a template's own tokens are the server's business). */
const promptTokens = (texts: string[], knobs: MockKnobs) =>
  Math.max(
    1,
    texts.reduce((n, s) => n + mockTokens(s, knobs.tokenizer), 0),
  );

function openAi(api: OpenAiApi): Route {
  return async (body, knobs, t) => {
    if (api === "chat") {
      const b = parse(ChatBody, body);
      const answer = planAnswer(
        outputLength(b.max_completion_tokens, b.max_tokens),
        promptTokens(
          b.messages.map((m) => textOf(m.content)),
          knobs,
        ),
        knobs,
      );
      return openAiReply(
        { api, model: b.model, stream: b.stream === true, includeUsage: b.stream_options?.include_usage === true, answer },
        t,
        knobs,
      );
    }
    const b = parse(CompletionBody, body);
    const p = b.prompt;
    const prompt =
      typeof p === "string"
        ? mockTokens(p, knobs.tokenizer)
        : p.reduce<number>((n, x) => n + (typeof x === "string" ? mockTokens(x, knobs.tokenizer) : 1), 0);
    // Completions have no reasoning and no tools: the answer is text whatever the knobs.
    const answer = planAnswer(outputLength(b.max_tokens), Math.max(1, prompt), { ...knobs, reasoningTokens: 0, toolCalls: 0 });
    return openAiReply(
      { api, model: b.model, stream: b.stream === true, includeUsage: b.stream_options?.include_usage === true, answer },
      t,
      knobs,
    );
  };
}

const routes: Record<string, { route: Route; anthropic?: boolean }> = {
  "POST /mock/v1/chat/completions": { route: openAi("chat") },
  "POST /mock/v1/completions": { route: openAi("completions") },
  "POST /mock/v1/responses": {
    route: async (body, knobs, t) => {
      const b = parse(ResponsesBody, body);
      const texts = typeof b.input === "string" ? [b.input] : b.input.map((m) => textOf(m.content));
      const answer = planAnswer(outputLength(b.max_output_tokens), promptTokens([b.instructions ?? "", ...texts], knobs), knobs);
      return responsesReply({ model: b.model, stream: b.stream === true, answer }, t, knobs);
    },
  },
  "POST /mock/v1/messages": {
    anthropic: true,
    route: async (body, knobs, t) => {
      const b = parse(MessagesBody, body);
      const texts = [textOf(b.system), ...b.messages.map((m) => textOf(m.content))];
      const answer = planAnswer(outputLength(b.max_tokens), promptTokens(texts, knobs), knobs);
      return messagesReply({ model: b.model, stream: b.stream === true, answer }, t, knobs);
    },
  },
  "POST /mock/v1/embeddings": {
    route: async (body, knobs, t) => {
      const b = parse(EmbeddingsBody, body);
      const inputs: (string | number[])[] =
        typeof b.input === "string"
          ? [b.input]
          : typeof b.input[0] === "number"
            ? [b.input as number[]]
            : (b.input as (string | number[])[]);
      const tokens = inputs.reduce((n, x) => n + (typeof x === "string" ? mockTokens(x, knobs.tokenizer) : x.length), 0);
      return embeddingsReply(
        {
          model: b.model,
          inputs: inputs.length,
          promptTokens: tokens,
          base64: b.encoding_format === "base64",
          dimensions: b.dimensions ?? DEFAULT_DIMENSIONS,
        },
        t,
        knobs,
      );
    },
  },
  "GET /mock/v1/models": {
    route: async () =>
      Response.json({ object: "list", data: [{ id: MOCK_MODEL, object: "model", created: MODEL_CREATED, owned_by: "edgeperf" }] }),
  },
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
  const entry = routes[`${request.method} ${path}`];
  if (entry === undefined) return errorResponse(404, "not_found", `No route for ${request.method} ${path}.`);
  try {
    const knobs = mockKnobsFromHeaders(request.headers, MOCK_DEFAULTS);
    const body = request.method === "POST" ? await readJson(request, MOCK_MAX_BODY_BYTES) : undefined;
    // A load knob, not a measurement: Math.random is enough. The failure is immediate,
    // like a server refusing work, so it does not hold a concurrency slot for the TTFT.
    if (request.method === "POST" && knobs.errorRate > 0 && Math.random() < knobs.errorRate) {
      throw new StatusError(500, "mock_injected_error", "The mock failed this request on purpose (x-mock-error-rate).");
    }
    return await entry.route(body, knobs, { start, ticker });
  } catch (e) {
    if (e instanceof StatusError) return entry.anthropic ? anthropicError(e.status, e.message) : openAiError(e.status, e.code, e.message);
    return toErrorResponse(e, `mock ${request.method} ${path}`);
  }
}

function parse<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue === undefined || issue.path.length === 0 ? "body" : issue.path.join(".");
  throw new StatusError(400, "invalid_request", `${where}: ${issue?.message ?? "invalid"}.`);
}

function openAiError(status: number, code: string, message: string): Response {
  const type = status >= 500 ? "server_error" : "invalid_request_error";
  return Response.json({ error: { message, type, param: null, code } }, { status, headers: { "cache-control": "no-store" } });
}

function anthropicError(status: number, message: string): Response {
  const type = status >= 500 ? "api_error" : "invalid_request_error";
  return Response.json({ type: "error", error: { type, message } }, { status, headers: { "cache-control": "no-store" } });
}
