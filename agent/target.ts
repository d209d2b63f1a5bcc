// Sends one request to the target and measures it as AIPerf does (README, "Reading the
// metrics"). A token is any text a stream carries: reasoning, answer or tool call.
//   start   = right before fetch() is called
//   TTFT    = first event with a token − start                      (streaming only)
//   TTFO    = first event with a non-reasoning token − start        (streaming only)
//   TTST    = second event with a token − the first one             (streaming only)
//   latency = last event with a token − start                       (streaming)
//           = body fully read − start                               (otherwise)
//   OSL     = usage's completion tokens, else the answer's and the reasoning's tokens
//             by the tokenizer (contract/tokenizer.ts), streaming or not alike
//   reasoning tokens = usage's reasoning_tokens, else the reasoning's tokens, for a
//             request that reasoned
// A response with only reasoning or only tool calls is a success; one with no token at
// all is `empty_response`. What each kind's events look like is agent/endpoints.ts.
// Never throws: every failure becomes a result with an error {code, type, message}. The
// message is short and fixed: no response body, URL or header ever goes into it, since
// URLs and bodies may carry secrets.

import type { ResultItem } from "../contract/protocol";
import { DEFAULT_TOKENIZER } from "../contract/spec";
import type { TargetSpec } from "../contract/spec";
import { hasEmbeddings, read } from "./endpoints";
import type { Deadlines } from "./deadlines";
import type { Job } from "./prompt";
import { buildRequest } from "./request";
import { SseParser } from "./sse";
import { Tally } from "./tally";

export { mockPath } from "./endpoints";

export type Outcome = Omit<ResultItem, "seq">;

/**
 * What the agent reads of a response: the part of the Fetch API's Response it uses. The
 * runtime's fetch fits it; so does the CLI's HTTP/1.1 client (cli/node-http.ts),
 * which hands back a lighter object than a Response over a web stream.
 */
export interface TargetResponse {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  readonly body: { getReader(): TargetBodyReader } | null;
  text(): Promise<string>;
  /** Where the runtime has it, reads the whole body natively (cheaper than a reader loop). */
  arrayBuffer?(): Promise<ArrayBuffer>;
}

export interface TargetBodyReader {
  read(): Promise<{ done: false; value: Uint8Array } | { done: true; value?: undefined }>;
  cancel(reason?: unknown): Promise<void>;
}

/**
 * How the agent sends a request: fetch's shape. It must not follow redirects (init asks
 * for "manual"), must reject when init.signal aborts, and must let the body be read as
 * it arrives (a stream's first token is timed at its read).
 */
export type TargetFetch = (url: string, init: RequestInit) => Promise<TargetResponse>;

export interface TargetContext {
  target: TargetSpec;
  /** The URL to fetch (spec.target.url resolved, e.g. builtin:mock to the Worker's mock). */
  url: string;
  fetch: TargetFetch;
  /** Monotonic milliseconds (performance.now-like). */
  now: () => number;
  /**
   * Where a successful response's answer text is written (multi-turn sessions carry it into
   * the next turn): an object, not a callback, so no closure is made per request.
   */
  answer?: { text: string | null };
  /**
   * Times the request out on a timer shared with the engine's other requests, and cancels
   * it with them from outside (Deadlines.cancelAll: the run is gone; reported as "cancelled").
   */
  deadlines: Deadlines;
}

/** How much of an error response is read before the rest is cancelled. */
const ERROR_BODY_BYTES = 4096;

/** Milliseconds rounded to microseconds: reports stay small, precision stays far below noise. */
const ms = (x: number) => Math.max(0, Math.round(x * 1000) / 1000);

/** The fractional part of the golden ratio: seq · this, mod 1, spreads evenly over [0, 1) for any run of seqs. */
const WEYL = 0.6180339887498949;

/**
 * An outcome measured on a clock that ticks every `tickMs` (workerd's count whole
 * milliseconds), spread over one tick. Such a duration is a whole number of ticks, the one
 * below or the one above the true duration as the clock's phase falls, so a percentile of
 * many lands on a whole tick: a true 21.4 ms TTFT reads 21 ms as its median, a true 21.6
 * reads 22. Adding an offset in [-tick/2, tick/2) keeps the mean and puts the median back
 * between the ticks (docs/ARCHITECTURE.md, "Measuring on a millisecond clock"). The offset
 * is a function of seq (a Weyl sequence), so it covers the tick evenly over any run of
 * seqs. It is one offset per request for the durations read from its start (latency,
 * TTFT, TTFO), so latency − TTFT, and the ITL made of it, is what the clock read (when
 * TTFT read more than 0); TTST (between two arrivals, often 0 when both came in one read)
 * and the schedule lag are left as read, and so is a reading of 0, which nothing can spread
 * without pushing it below 0 or moving its mean.
 */
export function spreadOverTick(r: Outcome, seq: number, tickMs: number): Outcome {
  if (!(tickMs > 0)) return r;
  const d = (((seq * WEYL) % 1) - 0.5) * tickMs;
  const out: Outcome = { ...r, latencyMs: moved(r.latencyMs, d) };
  if (r.ttftMs !== undefined) out.ttftMs = moved(r.ttftMs, d);
  if (r.ttfoMs !== undefined) out.ttfoMs = moved(r.ttfoMs, d);
  return out;
}

// A module function, not a closure per request: see sendRequest on esbuild's keepNames.
// A reading of a whole tick or more stays above half a tick: nothing is clamped.
function moved(x: number, d: number): number {
  return x > 0 ? ms(x + d) : x;
}

type Failure = { code: string; type: string; message: string };

const TIMEOUT: Failure = { code: "timeout", type: "timeout", message: "The request timed out." };
const CONNECTION: Failure = { code: "connection", type: "connection", message: "The connection to the target failed." };
const CANCELLED: Failure = { code: "cancelled", type: "cancelled", message: "The request was cancelled by the agent." };
const STREAM_PARSE: Failure = { code: "stream_parse", type: "stream", message: "A stream event was not valid JSON." };
const STREAM_ERROR: Failure = { code: "stream_error", type: "stream", message: "The stream carried an error object." };
const EMPTY: Failure = { code: "empty_response", type: "stream", message: "The response had no content." };
const RESPONSE_PARSE: Failure = { code: "response_parse", type: "response", message: "The response was not valid JSON." };
const RESPONSE_ERROR: Failure = { code: "response_error", type: "response", message: "The response carried an error object." };

function httpFailure(status: number): Failure {
  const redirect = status >= 300 && status < 400;
  return {
    code: `http_${status}`,
    type: "http",
    message: redirect ? `The target answered HTTP ${status}; redirects are not followed.` : `The target answered HTTP ${status}.`,
  };
}

async function discard(body: TargetResponse["body"]): Promise<void> {
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

/** The largest body drain() reads in one piece (see there). */
const WHOLE_BODY_BYTES = 1 << 20;

async function drain(res: TargetResponse): Promise<void> {
  // workerd's Response reads the whole body in one native call; a reader loop there was
  // 14% of an edge agent's CPU on a fast target (docs/BENCHMARKS.md). Only for a body
  // known to be small: a large or unsized one is read chunk by chunk, never held whole.
  const length = Number(res.headers.get("content-length") ?? Number.NaN);
  if (res.arrayBuffer && length <= WHOLE_BODY_BYTES) {
    await res.arrayBuffer();
    return;
  }
  if (!res.body) return;
  const reader = res.body.getReader();
  for (;;) if ((await reader.read()).done) return;
}

/** A failed request's outcome: what went wrong, and how long it took to. */
function failed(f: Failure, now: () => number, start: number): Outcome {
  return { ok: false, latencyMs: ms(now() - start), error: { ...f } };
}

export async function sendRequest(ctx: TargetContext, job: Job): Promise<Outcome> {
  const { target, now } = ctx;
  const init = buildRequest(target, job);
  const abort = new AbortController();
  let timedOut = false;
  // No named closure is made per request (the helpers are module functions, the callbacks
  // anonymous): wrangler bundles with esbuild's keepNames, which wraps every named one in a
  // defineProperty call, and two of them were about 4% of an edge agent's CPU on a fast
  // target (docs/BENCHMARKS.md). test/node/hot-path.test.ts checks the bundle for it.
  const clear = ctx.deadlines.add(
    target.timeoutSeconds * 1000,
    () => {
      timedOut = true;
      abort.abort();
    },
    () => abort.abort(),
  );

  const start = now();
  try {
    let res: TargetResponse;
    try {
      res = await ctx.fetch(ctx.url, { ...init, redirect: "manual", signal: abort.signal });
    } catch {
      return failed(timedOut ? TIMEOUT : ctx.deadlines.cancelled ? CANCELLED : CONNECTION, now, start);
    }
    if (res.status < 200 || res.status >= 300) {
      const f = failed(httpFailure(res.status), now, start);
      await discard(res.body);
      return f;
    }
    if (target.api === "http") {
      await drain(res);
      return { ok: true, latencyMs: ms(now() - start) };
    }
    const json = (res.headers.get("content-type") ?? "").includes("application/json");
    // A server that ignores `stream: true` and answers JSON is measured as non-streaming.
    if (target.stream && !json) return await readStream(res, ctx, job, start);
    return await readWhole(res, ctx, job, start);
  } catch {
    return failed(timedOut ? TIMEOUT : ctx.deadlines.cancelled ? CANCELLED : CONNECTION, now, start);
  } finally {
    clear();
  }
}

/** A stream that went wrong: the failure, timed now, and the rest of the body cancelled. */
async function stopStream(reader: TargetBodyReader, f: Failure, now: () => number, start: number): Promise<Outcome> {
  const out: Outcome = { ok: false, latencyMs: ms(now() - start), error: { ...f } };
  await reader.cancel().catch(() => undefined);
  return out;
}

async function readStream(res: TargetResponse, ctx: TargetContext, job: Job, start: number): Promise<Outcome> {
  const { target, now, answer } = ctx;
  if (!res.body) return { ok: false, latencyMs: ms(now() - start), error: { ...EMPTY } };
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  const tally = new Tally();
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
        return stopStream(reader, STREAM_PARSE, now, start);
      }
      const r = read(target, obj, true);
      if (r.error) return stopStream(reader, STREAM_ERROR, now, start);
      tally.add(r, t);
      if (r.end) {
        finished = true;
        break;
      }
    }
    if (done) break;
    if (finished) await reader.cancel().catch(() => undefined);
  }
  const { first, second, firstOutput } = tally;
  if (first === null) return { ok: false, latencyMs: ms(now() - start), error: { ...EMPTY } };
  if (answer) answer.text = tally.answer;
  return {
    ok: true,
    latencyMs: ms(tally.last - start),
    ttftMs: ms(first - start),
    ...(firstOutput !== null ? { ttfoMs: ms(firstOutput - start) } : {}),
    ...(second !== null ? { ttstMs: ms(second - first) } : {}),
    ...tally.tokens(job, target.tokenizer ?? DEFAULT_TOKENIZER),
  };
}

async function readWhole(res: TargetResponse, ctx: TargetContext, job: Job, start: number): Promise<Outcome> {
  const { target, now, answer } = ctx;
  const text = await res.text();
  const latencyMs = ms(now() - start);
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    return { ok: false, latencyMs, error: { ...RESPONSE_PARSE } };
  }
  const r = read(target, obj, false);
  if (r.error) return { ok: false, latencyMs, error: { ...RESPONSE_ERROR } };
  if (target.api === "embeddings") {
    // Embeddings produce no tokens: latency and the input's length are all there is.
    if (!hasEmbeddings(obj)) return { ok: false, latencyMs, error: { ...EMPTY, type: "response" } };
    return { ok: true, latencyMs, inputTokens: r.usage.promptTokens ?? job.inputTokens };
  }
  const tally = new Tally();
  tally.add(r, 0);
  if (tally.empty) return { ok: false, latencyMs, error: { ...EMPTY, type: "response" } };
  if (answer) answer.text = tally.answer;
  return { ok: true, latencyMs, ...tally.tokens(job, target.tokenizer ?? DEFAULT_TOKENIZER) };
}
