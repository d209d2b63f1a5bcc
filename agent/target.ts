// Sends one request to the target and measures it as AIPerf does (README, "The API"):
//   start   = right before fetch() is called
//   TTFT    = first chunk with non-empty content − start          (streaming only)
//   latency = last chunk with non-empty content − start           (streaming)
//           = body fully read − start                             (otherwise)
//   OSL     = usage.completion_tokens, else the non-empty content chunks (streaming) or
//             the words of the content (not streaming)
// Never throws: every failure becomes a result with an error {code, type, message}. The
// message is short and fixed: no response body, URL or header ever goes into it, since
// URLs and bodies may carry secrets.

import type { ResultItem } from "../contract/protocol";
import type { TargetSpec } from "../contract/spec";
import type { Job } from "./prompt";
import { SseParser } from "./sse";

export type Outcome = Omit<ResultItem, "seq">;

export interface TargetContext {
  target: TargetSpec;
  /** The URL to fetch (spec.target.url resolved, e.g. builtin:mock to the Worker's mock). */
  url: string;
  fetch: typeof fetch;
  /** Monotonic milliseconds (performance.now-like). */
  now: () => number;
  /** Aborts the request from outside (the run is gone); reported as "cancelled". */
  signal?: AbortSignal;
}

/**
 * builtin:mock takes its latency shape per request in these headers (mock/mock.ts;
 * a test checks they match). Not imported: the mock module is Worker code, the agent
 * must also run on Node.
 */
export const MOCK_HEADERS = { ttftMs: "x-mock-ttft-ms", itlMs: "x-mock-itl-ms", errorRate: "x-mock-error-rate" } as const;

/** How much of an error response is read before the rest is cancelled. */
const ERROR_BODY_BYTES = 4096;

/** Milliseconds rounded to microseconds: reports stay small, precision stays far below noise. */
const ms = (x: number) => Math.max(0, Math.round(x * 1000) / 1000);

const get = (o: unknown, key: string): unknown => (typeof o === "object" && o !== null ? (o as Record<string, unknown>)[key] : undefined);

const count = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 10_000_000 ? v : undefined;

/**
 * The request for one job. openai APIs send `max_tokens` only: `max_completion_tokens`
 * is newer and refused by several OpenAI-compatible servers, while every server we
 * know still honours max_tokens. Usage in streams needs stream_options.include_usage.
 */
export function buildRequest(target: TargetSpec, job: Job): RequestInit {
  const headers = new Headers();
  if (target.api !== "http") headers.set("content-type", "application/json");
  for (const [name, value] of Object.entries(target.headers)) headers.set(name, value);
  if (target.apiKey !== undefined) headers.set("authorization", `Bearer ${target.apiKey}`);
  // Every agent, edge or external, gives the mock the spec's latency shape.
  if (target.mock) {
    for (const key of ["ttftMs", "itlMs", "errorRate"] as const) headers.set(MOCK_HEADERS[key], String(target.mock[key]));
  }
  if (target.api === "http") {
    return { method: target.method ?? "GET", headers, ...(target.body !== undefined ? { body: target.body } : {}) };
  }
  const model = target.model ?? "";
  const limits = {
    max_tokens: job.outputTokens,
    stream: target.stream,
    ...(target.stream ? { stream_options: { include_usage: true } } : {}),
  };
  const body =
    target.api === "openai-chat"
      ? { model, messages: [{ role: "user", content: job.prompt }], ...limits }
      : { model, prompt: job.prompt, ...limits };
  return { method: "POST", headers, body: JSON.stringify(body) };
}

type Failure = { code: string; type: string; message: string };

const TIMEOUT: Failure = { code: "timeout", type: "timeout", message: "The request timed out." };
const CONNECTION: Failure = { code: "connection", type: "connection", message: "The connection to the target failed." };
const CANCELLED: Failure = { code: "cancelled", type: "cancelled", message: "The request was cancelled by the agent." };
const STREAM_PARSE: Failure = { code: "stream_parse", type: "stream", message: "A stream event was not valid JSON." };
const STREAM_ERROR: Failure = { code: "stream_error", type: "stream", message: "The stream carried an error object." };
const EMPTY: Failure = { code: "empty_response", type: "stream", message: "The response had no content." };
const RESPONSE_PARSE: Failure = { code: "response_parse", type: "response", message: "The response was not valid JSON." };

function httpFailure(status: number): Failure {
  const redirect = status >= 300 && status < 400;
  return {
    code: `http_${status}`,
    type: "http",
    message: redirect ? `The target answered HTTP ${status}; redirects are not followed.` : `The target answered HTTP ${status}.`,
  };
}

/** Content and usage of one streamed chunk or whole response. */
function inspect(obj: unknown, api: "openai-chat" | "openai-completions", streamed: boolean) {
  const choice = get(get(obj, "choices"), "0");
  const content = api === "openai-completions" ? get(choice, "text") : get(get(choice, streamed ? "delta" : "message"), "content");
  const usage = get(obj, "usage");
  return {
    content: typeof content === "string" ? content : "",
    promptTokens: count(get(usage, "prompt_tokens")),
    completionTokens: count(get(usage, "completion_tokens")),
    error: get(obj, "error") !== undefined && get(obj, "error") !== null,
  };
}

async function discard(body: ReadableStream<Uint8Array> | null): Promise<void> {
  if (!body) return;
  const reader = body.getReader();
  try {
    // A little is read so small error bodies end the exchange cleanly; the rest is cancelled.
    for (let n = 0; n < ERROR_BODY_BYTES; ) {
      const { done, value } = await reader.read();
      if (done) return;
      n += value.byteLength;
    }
    await reader.cancel();
  } catch {
    /* the request failed anyway */
  }
}

async function drain(body: ReadableStream<Uint8Array> | null): Promise<void> {
  if (!body) return;
  const reader = body.getReader();
  for (;;) if ((await reader.read()).done) return;
}

export async function sendRequest(ctx: TargetContext, job: Job): Promise<Outcome> {
  const { target, now } = ctx;
  const init = buildRequest(target, job);
  const abort = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort();
  }, target.timeoutSeconds * 1000);
  const cancel = () => abort.abort();
  ctx.signal?.addEventListener("abort", cancel);
  if (ctx.signal?.aborted) abort.abort();

  const start = now();
  const fail = (f: Failure): Outcome => ({ ok: false, latencyMs: ms(now() - start), error: { ...f } });
  try {
    let res: Response;
    try {
      res = await ctx.fetch(ctx.url, { ...init, redirect: "manual", signal: abort.signal });
    } catch {
      return fail(timedOut ? TIMEOUT : ctx.signal?.aborted ? CANCELLED : CONNECTION);
    }
    if (res.status < 200 || res.status >= 300) {
      const f = fail(httpFailure(res.status));
      await discard(res.body);
      return f;
    }
    if (target.api === "http") {
      await drain(res.body);
      return { ok: true, latencyMs: ms(now() - start) };
    }
    const json = (res.headers.get("content-type") ?? "").includes("application/json");
    // A server that ignores `stream: true` and answers JSON is measured as non-streaming.
    if (target.stream && !json) return await readStream(res, target.api, job, start, now);
    return await readWhole(res, target.api, job, start, now);
  } catch {
    return fail(timedOut ? TIMEOUT : ctx.signal?.aborted ? CANCELLED : CONNECTION);
  } finally {
    clearTimeout(timer);
    ctx.signal?.removeEventListener("abort", cancel);
  }
}

async function readStream(
  res: Response,
  api: "openai-chat" | "openai-completions",
  job: Job,
  start: number,
  now: () => number,
): Promise<Outcome> {
  if (!res.body) return { ok: false, latencyMs: ms(now() - start), error: { ...EMPTY } };
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  let first: number | null = null;
  let last = 0;
  let chunks = 0;
  let promptTokens: number | undefined;
  let completionTokens: number | undefined;
  const stopWith = async (f: Failure): Promise<Outcome> => {
    const out: Outcome = { ok: false, latencyMs: ms(now() - start), error: { ...f } };
    await reader.cancel().catch(() => undefined);
    return out;
  };

  for (let finished = false; !finished; ) {
    const { done, value } = await reader.read();
    // Every event decoded from one read arrived at the same instant.
    const t = now();
    const events = done ? [...parser.push(decoder.decode()), ...parser.end()] : parser.push(decoder.decode(value, { stream: true }));
    for (const data of events) {
      if (data.trim() === "[DONE]") {
        finished = true;
        break;
      }
      let obj: unknown;
      try {
        obj = JSON.parse(data);
      } catch {
        return stopWith(STREAM_PARSE);
      }
      const c = inspect(obj, api, true);
      if (c.error) return stopWith(STREAM_ERROR);
      if (c.content !== "") {
        first ??= t;
        last = t;
        chunks++;
      }
      promptTokens = c.promptTokens ?? promptTokens;
      completionTokens = c.completionTokens ?? completionTokens;
    }
    if (done) break;
    if (finished) await reader.cancel().catch(() => undefined);
  }
  if (first === null) return { ok: false, latencyMs: ms(now() - start), error: { ...EMPTY } };
  return {
    ok: true,
    latencyMs: ms(last - start),
    ttftMs: ms(first - start),
    inputTokens: promptTokens ?? job.inputTokens,
    outputTokens: completionTokens ?? chunks,
  };
}

async function readWhole(
  res: Response,
  api: "openai-chat" | "openai-completions",
  job: Job,
  start: number,
  now: () => number,
): Promise<Outcome> {
  const text = await res.text();
  const latencyMs = ms(now() - start);
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    return { ok: false, latencyMs, error: { ...RESPONSE_PARSE } };
  }
  const c = inspect(obj, api, false);
  const words = c.content.split(/\s+/).filter((w) => w !== "").length;
  if (words === 0 && !c.completionTokens) return { ok: false, latencyMs, error: { ...EMPTY, type: "response" } };
  return { ok: true, latencyMs, inputTokens: c.promptTokens ?? job.inputTokens, outputTokens: c.completionTokens ?? words };
}
