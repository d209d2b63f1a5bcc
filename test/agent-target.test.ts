// One request, measured as AIPerf measures it, against fake targets with known timings.
// The fake stream moves an injected clock as each chunk is read, so times are exact.
import { describe, expect, it } from "vitest";
import type { Job } from "../agent/prompt";
import { Deadlines } from "../agent/deadlines";
import { buildRequest, MOCK_HEADERS } from "../agent/request";
import { sendRequest, spreadOverTick } from "../agent/target";
import { MOCK_LIMITS, MOCK_TOKENIZER_HEADER } from "../mock/mock";
import type { TargetSpec } from "../contract/spec";

const enc = new TextEncoder();

function target(over: Partial<TargetSpec> = {}): TargetSpec {
  return {
    url: "https://llm.example.com/v1/chat/completions",
    api: "openai-chat",
    model: "m",
    stream: true,
    headers: {},
    timeoutSeconds: 600,
    ...over,
  };
}

const job: Job = { inputTokens: 5, outputTokens: 3, prompt: "the of and to in" };

class Clock {
  t = 1_000;
  now = () => this.t;
}

/** A body that hands out one piece per read, setting the clock to the piece's time first. */
function timedBody(clock: Clock, pieces: Array<[number, string]>): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull(ctrl) {
        const p = pieces[i++];
        if (!p) return ctrl.close();
        clock.t = p[0];
        ctrl.enqueue(enc.encode(p[1]));
      },
    },
    { highWaterMark: 0 },
  );
}

const sse = (clock: Clock, pieces: Array<[number, string]>, status = 200) =>
  new Response(timedBody(clock, pieces), { status, headers: { "content-type": "text/event-stream" } });

const chat = (content: string) => `data: ${JSON.stringify({ choices: [{ delta: { content } }] })}\n\n`;
const comp = (text: string) => `data: ${JSON.stringify({ choices: [{ text }] })}\n\n`;

function run(
  t: TargetSpec,
  clock: Clock,
  respond: (init: RequestInit | undefined) => Response | Promise<Response>,
  deadlines = new Deadlines(),
) {
  const calls: Array<RequestInit | undefined> = [];
  const fetchFake: typeof fetch = async (_input, init) => {
    calls.push(init);
    return respond(init);
  };
  return {
    calls,
    result: sendRequest({ target: t, url: t.url, fetch: fetchFake, now: clock.now, deadlines }, job),
  };
}

describe("streaming measurement", () => {
  it("takes TTFT from the first non-empty content chunk and latency from the last, not from usage or [DONE]", async () => {
    const clock = new Clock();
    const { result } = run(target(), clock, () => {
      clock.t = 1_010; // headers
      return sse(clock, [
        [1_020, 'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n'],
        [1_050, chat("Hel")],
        [1_060, chat("lo")],
        [1_075, chat(" you")],
        [1_090, 'data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3}}\n\n'],
        [1_200, "data: [DONE]\n\n"],
      ]);
    });
    expect(await result).toEqual({ ok: true, ttftMs: 50, ttfoMs: 50, ttstMs: 10, latencyMs: 75, inputTokens: 12, outputTokens: 3 });
  });

  it("counts the output's tokens by the tokenizer, not its chunks, and uses the synthetic input length without usage", async () => {
    const clock = new Clock();
    const { result } = run(target(), clock, () =>
      sse(clock, [
        [1_030, chat(" one two")],
        [1_040, ": comment\n\n" + chat("")],
        [1_045, chat(" three four") + chat(" five")], // two events in one read: both at 1045
        [1_300, "data: [DONE]\n\n"],
      ]),
    );
    expect(await result).toEqual({ ok: true, ttftMs: 30, ttfoMs: 30, ttstMs: 15, latencyMs: 45, inputTokens: 5, outputTokens: 5 });
  });

  it("measures events split across reads when their last piece arrives", async () => {
    const clock = new Clock();
    const { result } = run(target({ api: "openai-completions", url: "https://llm.example.com/v1/completions" }), clock, () =>
      sse(clock, [
        [1_005, comp("one").slice(0, 9)],
        [1_015, comp("one").slice(9, -1)],
        [1_025, "\n" + comp("two").slice(0, 4)],
        [1_035, comp("two").slice(4)],
      ]),
    );
    expect(await result).toEqual({ ok: true, ttftMs: 25, ttfoMs: 25, ttstMs: 10, latencyMs: 35, inputTokens: 5, outputTokens: 2 });
  });

  it("fails with stream_parse on a data line that is not JSON", async () => {
    const clock = new Clock();
    const { result } = run(target(), clock, () =>
      sse(clock, [
        [1_010, chat("a")],
        [1_020, "data: {not json\n\n"],
      ]),
    );
    expect(await result).toMatchObject({ ok: false, latencyMs: 20, error: { code: "stream_parse", type: "stream" } });
  });

  it("fails with empty_response when the stream has no content at all", async () => {
    const clock = new Clock();
    const { result } = run(target(), clock, () =>
      sse(clock, [
        [1_010, chat("")],
        [1_020, "data: [DONE]\n\n"],
      ]),
    );
    expect(await result).toMatchObject({ ok: false, error: { code: "empty_response", type: "stream" } });
  });

  it("fails with stream_error when the stream carries an error object", async () => {
    const clock = new Clock();
    const { result } = run(target(), clock, () =>
      sse(clock, [
        [1_010, chat("a")],
        [1_020, 'data: {"error":{"message":"overloaded"}}\n\n'],
      ]),
    );
    expect(await result).toMatchObject({ ok: false, error: { code: "stream_error", type: "stream" } });
  });
});

describe("non-streaming measurement", () => {
  it("takes latency when the body is fully read, no TTFT, and tokens from usage", async () => {
    const clock = new Clock();
    const body = JSON.stringify({ choices: [{ message: { content: "a b c d" } }], usage: { prompt_tokens: 9, completion_tokens: 6 } });
    const { result } = run(
      target({ stream: false }),
      clock,
      () =>
        new Response(
          timedBody(clock, [
            [1_100, body.slice(0, 20)],
            [1_180, body.slice(20)],
          ]),
          { headers: { "content-type": "application/json" } },
        ),
    );
    expect(await result).toEqual({ ok: true, latencyMs: 180, inputTokens: 9, outputTokens: 6 });
  });

  it("counts the content's tokens by the tokenizer when there is no usage", async () => {
    const clock = new Clock();
    const { result } = run(target({ stream: false, api: "openai-completions" }), clock, () =>
      Response.json({ choices: [{ text: " four tokens of text" }] }),
    );
    expect(await result).toEqual({ ok: true, latencyMs: 0, inputTokens: 5, outputTokens: 4 });
  });

  it("measures an http target until its body is read, without tokens", async () => {
    const clock = new Clock();
    const { result, calls } = run(
      target({ api: "http", method: "PUT", body: "raw", stream: false, headers: { "content-type": "text/plain" } }),
      clock,
      () =>
        new Response(
          timedBody(clock, [
            [1_040, "x".repeat(100)],
            [1_070, "y"],
          ]),
        ),
    );
    expect(await result).toEqual({ ok: true, latencyMs: 70 });
    expect(calls[0]?.method).toBe("PUT");
    expect(calls[0]?.body).toBe("raw");
  });
});

describe("the request", () => {
  it("sends an OpenAI chat body with max_tokens, stream_options when streaming, headers and the API key", () => {
    const init = buildRequest(target({ apiKey: "sk-1", headers: { "X-Extra": "1", Authorization: "Bearer other" } }), job);
    const headers = new Headers(init.headers);
    expect(headers.get("authorization")).toBe("Bearer sk-1");
    expect(headers.get("x-extra")).toBe("1");
    expect(headers.get("content-type")).toBe("application/json");
    expect(JSON.parse(String(init.body))).toEqual({
      model: "m",
      messages: [{ role: "user", content: job.prompt }],
      max_tokens: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(JSON.parse(String(buildRequest(target({ api: "openai-completions", stream: false }), job).body))).toEqual({
      model: "m",
      prompt: job.prompt,
      max_tokens: 3,
      stream: false,
    });
  });
});

describe("the built-in mock", () => {
  it("gets the spec's knobs and the tokenizer in the headers the mock reads", () => {
    const mock = { ttftMs: 7, itlMs: 2, errorRate: 0.5, reasoningTokens: 12, toolCalls: true };
    const init = buildRequest(target({ url: "builtin:mock", tokenizer: "o200k_base", mock }), job);
    const headers = new Headers(init.headers);
    expect(headers.get(MOCK_LIMITS.ttftMs.header)).toBe("7");
    expect(headers.get(MOCK_LIMITS.itlMs.header)).toBe("2");
    expect(headers.get(MOCK_LIMITS.errorRate.header)).toBe("0.5");
    expect(headers.get(MOCK_LIMITS.reasoningTokens.header)).toBe("12");
    expect(headers.get(MOCK_LIMITS.toolCalls.header)).toBe("1");
    expect(headers.get(MOCK_TOKENIZER_HEADER)).toBe("o200k_base");
    expect(Object.values(MOCK_HEADERS).sort()).toEqual([...Object.values(MOCK_LIMITS).map((l) => l.header), MOCK_TOKENIZER_HEADER].sort());
  });

  it("leaves the optional knobs out when the spec does not set them, and names the default tokenizer", () => {
    const headers = new Headers(buildRequest(target({ url: "builtin:mock", mock: { ttftMs: 7, itlMs: 2, errorRate: 0 } }), job).headers);
    expect(headers.has(MOCK_LIMITS.reasoningTokens.header)).toBe(false);
    expect(headers.has(MOCK_LIMITS.toolCalls.header)).toBe(false);
    expect(headers.get(MOCK_TOKENIZER_HEADER)).toBe("cl100k_base");
  });
});

describe("error classification", () => {
  it("never follows a redirect: a 302 is a failed request http_302", async () => {
    const clock = new Clock();
    const { result, calls } = run(
      target(),
      clock,
      () => new Response(null, { status: 302, headers: { location: "https://elsewhere.example.com/" } }),
    );
    expect(await result).toMatchObject({ ok: false, error: { code: "http_302", type: "http" } });
    expect(calls).toHaveLength(1);
    expect(calls[0]?.redirect).toBe("manual");
  });

  it("classifies 4xx and 5xx as http_<status>, keeping the body out of the message", async () => {
    for (const status of [400, 429, 500, 503]) {
      const clock = new Clock();
      const { result } = run(target(), clock, () => new Response("secret-token-in-body ".repeat(1000), { status }));
      const r = await result;
      expect(r).toMatchObject({ ok: false, error: { code: `http_${status}`, type: "http" } });
      expect(JSON.stringify(r)).not.toContain("secret");
    }
  });

  it("classifies a network failure as connection, without the error's text", async () => {
    const clock = new Clock();
    const { result } = run(target({ url: "https://llm.example.com/?key=secret" }), clock, () => {
      throw new TypeError("fetch failed for https://llm.example.com/?key=secret");
    });
    const r = await result;
    expect(r).toMatchObject({ ok: false, error: { code: "connection", type: "connection" } });
    expect(JSON.stringify(r)).not.toContain("secret");
  });

  it("aborts at timeoutSeconds and classifies it as timeout, before or after the headers", async () => {
    const never = (init: RequestInit | undefined) =>
      new Promise<Response>((_, reject) =>
        init?.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))),
      );
    const clock = new Clock();
    const before = run(target({ timeoutSeconds: 0.05 }), clock, never);
    expect(await before.result).toMatchObject({ ok: false, error: { code: "timeout", type: "timeout" } });

    const stalled = run(target({ timeoutSeconds: 0.05 }), clock, (init) => {
      const body = new ReadableStream<Uint8Array>({
        start(ctrl) {
          ctrl.enqueue(enc.encode(chat("a")));
          init?.signal?.addEventListener("abort", () => ctrl.error(new DOMException("aborted", "AbortError")));
        },
      });
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    });
    expect(await stalled.result).toMatchObject({ ok: false, error: { code: "timeout", type: "timeout" } });
  });

  it("times out the same on the engine's shared deadline timer, and leaves nothing pending after", async () => {
    const never = (init: RequestInit | undefined) =>
      new Promise<Response>((_, reject) =>
        init?.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))),
      );
    const clock = new Clock();
    const deadlines = new Deadlines();
    const slow = run(target({ timeoutSeconds: 0.05 }), clock, never, deadlines);
    const quick = run(target({ timeoutSeconds: 0.05 }), clock, () => sse(clock, [[1_010, chat("a")]]), deadlines);
    expect(await quick.result).toMatchObject({ ok: true });
    expect(deadlines.size).toBe(1);
    expect(await slow.result).toMatchObject({ ok: false, error: { code: "timeout", type: "timeout" } });
    expect(deadlines.size).toBe(0);
  });

  it("is cancelled with the engine's other requests through the shared deadlines (cancelled, not timed out)", async () => {
    const never: typeof fetch = (_input, init) =>
      new Promise<Response>((_, reject) =>
        init?.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))),
      );
    const clock = new Clock();
    const deadlines = new Deadlines();
    const t = target({ timeoutSeconds: 60 });
    const result = sendRequest({ target: t, url: t.url, fetch: never, now: clock.now, deadlines }, job);
    deadlines.cancelAll();
    expect(await result).toMatchObject({ ok: false, error: { code: "cancelled", type: "cancelled" } });
    expect(deadlines.size).toBe(0);
  });
});

describe("durations on a clock that ticks", () => {
  const outcome = { ok: true, latencyMs: 40, ttftMs: 21, ttfoMs: 25, ttstMs: 3, outputTokens: 4 };

  it("leaves an outcome as measured on a fine clock (tick 0)", () => {
    expect(spreadOverTick(outcome, 17, 0)).toBe(outcome);
  });

  it("moves the durations read from a request's start by one offset within half a tick, and nothing else", () => {
    for (const seq of [0, 1, 2, 3, 999, 123_456_789]) {
      const r = spreadOverTick(outcome, seq, 1);
      const d = r.latencyMs - 40;
      expect(Math.abs(d)).toBeLessThanOrEqual(0.5);
      expect(Math.abs(d)).toBeGreaterThan(0.001); // moved: seq × 0.618… is never that near a half
      expect(r.ttftMs! - 21).toBeCloseTo(d, 3);
      expect(r.ttfoMs! - 25).toBeCloseTo(d, 3);
      expect(r.ttstMs).toBe(3); // between two arrivals: as read
      expect(r.outputTokens).toBe(4);
      expect(spreadOverTick(outcome, seq, 1)).toEqual(r); // a function of seq
    }
  });

  it("spreads the offsets evenly over the tick for any run of seqs, so the mean is kept", () => {
    for (const first of [1, 5_000, 1_000_000]) {
      const offsets = Array.from({ length: 1000 }, (_, i) => spreadOverTick(outcome, first + i, 1).latencyMs - 40);
      const mean = offsets.reduce((a, b) => a + b, 0) / offsets.length;
      expect(Math.abs(mean)).toBeLessThan(0.01);
      const tenths = Array.from({ length: 10 }, (_, k) => offsets.filter((d) => d >= k / 10 - 0.5 && d < (k + 1) / 10 - 0.5).length);
      for (const n of tenths) expect(Math.abs(n - 100)).toBeLessThanOrEqual(3);
    }
  });

  it("leaves a reading of 0 as read, and keeps TTFT ≤ TTFO ≤ latency", () => {
    for (let seq = 0; seq < 50; seq++) {
      const r = spreadOverTick({ ok: true, latencyMs: 2, ttftMs: 0, ttfoMs: 1, ttstMs: 0 }, seq, 1);
      expect(r.ttftMs).toBe(0);
      expect(r.ttstMs).toBe(0);
      expect(r.ttfoMs).toBeGreaterThanOrEqual(0.5);
      expect(r.ttfoMs).not.toBe(1); // moved, as a reading above 0 is
      expect(r.latencyMs).toBeGreaterThanOrEqual(r.ttfoMs!);
      expect(spreadOverTick({ ok: false, latencyMs: 0 }, seq, 1).latencyMs).toBe(0);
    }
  });
});
