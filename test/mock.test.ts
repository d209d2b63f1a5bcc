// The built-in mock target, driven the way benchmarks drive it: by the official `openai`
// client (so its wire format is what real clients parse) and by raw requests (for
// headers, error shapes and timing the client would hide).
import OpenAI, { APIError } from "openai";
import { describe, expect, it } from "vitest";
import { MAX_TOKENS, promptText } from "../agent/prompt";
import { buildRequest } from "../agent/request";
import { countTokens } from "../contract/tokenizer";
import { readConfig } from "../contract/config";
import { parseRunSpec } from "../contract/spec";
import { handleMock, handleMockRoute, MOCK_DEFAULTS, MOCK_MAX_BODY_BYTES, mockKnobsFromHeaders } from "../mock/mock";

const BASE = "https://mock.test/mock/v1";
const FAST = { "x-mock-ttft-ms": "0", "x-mock-itl-ms": "0" };

function client(headers: Record<string, string> = FAST): OpenAI {
  return new OpenAI({
    apiKey: "x",
    baseURL: BASE,
    defaultHeaders: headers,
    // Retries would hide the injected 500s, and the mock answers within the test.
    maxRetries: 0,
    fetch: (input, init) => handleMock(new Request(input, init)),
  });
}

function post(path: string, body: unknown, headers: Record<string, string> = FAST): Promise<Response> {
  return handleMock(
    new Request(BASE + path, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    }),
  );
}

async function sseEvents(res: Response): Promise<string[]> {
  const text = await res.text();
  expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
  return text
    .split("\n\n")
    .filter((frame) => frame !== "")
    .map((frame) => {
      expect(frame.startsWith("data: ")).toBe(true);
      return frame.slice("data: ".length);
    });
}

const messages = [
  { role: "system" as const, content: "You are terse." },
  { role: "user" as const, content: "count  to\nfive please" },
];
/** What the mock's usage says for `messages`: each message's tokens by the default encoding. */
const PROMPT = countTokens("You are terse.") + countTokens("count  to\nfive please");

describe("chat completions", () => {
  it("streams exactly max_tokens content chunks to the openai client, then a length finish and the usage", async () => {
    const stream = await client().chat.completions.create({
      model: "mock",
      messages,
      max_tokens: 8,
      stream: true,
      stream_options: { include_usage: true },
    });
    const contents: string[] = [];
    const finishes: (string | null)[] = [];
    let role: string | undefined;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      expect(chunk.object).toBe("chat.completion.chunk");
      expect(chunk.model).toBe("mock");
      const choice = chunk.choices[0];
      if (choice?.delta.content) contents.push(choice.delta.content);
      if (choice?.delta.role !== undefined) role ??= choice.delta.role;
      if (choice) finishes.push(choice.finish_reason);
      if (chunk.usage) usage = chunk.usage;
    }
    expect(contents).toHaveLength(8);
    expect(contents.every((c) => c === " tok")).toBe(true);
    expect(role).toBe("assistant");
    expect(finishes.at(-1)).toBe("length");
    expect(finishes.filter((f) => f !== null)).toHaveLength(1);
    expect(PROMPT).toBe(10);
    expect(usage).toEqual({ prompt_tokens: PROMPT, completion_tokens: 8, total_tokens: PROMPT + 8 });
  });

  it("sends the role on the first content chunk, an empty-choices usage chunk last, and [DONE]", async () => {
    const res = await post("/chat/completions", {
      model: "m",
      messages,
      max_tokens: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events = await sseEvents(res);
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks).toHaveLength(5);
    expect(chunks[0].choices[0].delta).toEqual({ role: "assistant", content: " tok" });
    expect(chunks[1].choices[0].delta).toEqual({ content: " tok" });
    expect(chunks[3].choices[0]).toMatchObject({ delta: {}, finish_reason: "length" });
    expect(chunks[4].choices).toEqual([]);
    expect(chunks[4].usage).toEqual({ prompt_tokens: PROMPT, completion_tokens: 3, total_tokens: PROMPT + 3 });
    expect(chunks.slice(0, 4).every((c) => c.usage === null)).toBe(true);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
  });

  it("streams no usage chunk unless stream_options.include_usage asks for one", async () => {
    const events = await sseEvents(await post("/chat/completions", { model: "m", messages, max_tokens: 2, stream: true }));
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks).toHaveLength(3);
    expect(chunks.every((c) => !("usage" in c) && c.choices.length === 1)).toBe(true);
  });

  it("answers a non-streaming request with one message of max_completion_tokens tokens and the usage", async () => {
    const res = await client().chat.completions.create({
      model: "my-model",
      messages: [{ role: "user", content: [{ type: "text", text: "one two three" }] }],
      max_completion_tokens: 5,
    });
    expect(res.object).toBe("chat.completion");
    expect(res.id).toMatch(/^chatcmpl-/);
    expect(res.model).toBe("my-model");
    expect(res.choices[0]?.message).toMatchObject({ role: "assistant", content: " tok".repeat(5) });
    expect(res.choices[0]?.finish_reason).toBe("length");
    expect(res.usage).toEqual({ prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 });
  });

  it("defaults to 16 output tokens, caps at 4096, and counts an empty prompt as one token", async () => {
    const plain = await client().chat.completions.create({ model: "m", messages: [{ role: "user", content: "" }] });
    expect(plain.usage).toMatchObject({ prompt_tokens: 1, completion_tokens: 16 });
    const huge = await client().chat.completions.create({ model: "m", messages, max_tokens: 100_000 });
    expect(huge.usage?.completion_tokens).toBe(4096);
  });

  it("ignores unknown fields, as vLLM does", async () => {
    const res = await post("/chat/completions", { model: "m", messages, max_tokens: 1, temperature: 0, ignore_eos: true, seed: 7 });
    expect(res.status).toBe(200);
  });
});

describe("text completions", () => {
  it("streams one text chunk per token to the openai client, with the usage at the end", async () => {
    const stream = await client().completions.create({
      model: "mock",
      prompt: "a b c d",
      max_tokens: 6,
      stream: true,
      stream_options: { include_usage: true },
    });
    const texts: string[] = [];
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      expect(chunk.object).toBe("text_completion");
      const choice = chunk.choices[0];
      if (choice?.text) texts.push(choice.text);
      if (choice?.finish_reason) finish = choice.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(texts).toEqual(Array(6).fill(" tok"));
    expect(finish).toBe("length");
    expect(usage).toEqual({ prompt_tokens: 4, completion_tokens: 6, total_tokens: 10 });
  });

  it("answers a non-streaming request with the whole text and the usage", async () => {
    const res = await client().completions.create({ model: "mock", prompt: ["x y", "z"], max_tokens: 4 });
    expect(res.object).toBe("text_completion");
    expect(res.id).toMatch(/^cmpl-/);
    expect(res.choices[0]?.text).toBe(" tok".repeat(4));
    expect(res.choices[0]?.finish_reason).toBe("length");
    expect(res.usage).toEqual({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 });
  });

  it("counts a prompt of token ids by its length", async () => {
    const res = await client().completions.create({ model: "mock", prompt: [1, 2, 3, 4, 5], max_tokens: 1 });
    expect(res.usage?.prompt_tokens).toBe(5);
  });
});

describe("the models list", () => {
  it("lists the one mock model", async () => {
    const models: OpenAI.Model[] = [];
    for await (const m of client().models.list()) models.push(m);
    expect(models).toEqual([{ id: "mock", object: "model", created: expect.any(Number), owned_by: "edgeperf" }]);
  });
});

describe("timing", () => {
  it("sends the first token after ttft and the last after ttft + (n-1)·itl, not much later", async () => {
    const t0 = performance.now();
    const stream = await client({ "x-mock-ttft-ms": "40", "x-mock-itl-ms": "8" }).chat.completions.create({
      model: "mock",
      messages,
      max_tokens: 16,
      stream: true,
    });
    const arrivals: number[] = [];
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) arrivals.push(performance.now() - t0);
    }
    expect(arrivals).toHaveLength(16);
    expect(arrivals[0]).toBeGreaterThanOrEqual(40);
    expect(arrivals[0]).toBeLessThan(40 + 100);
    arrivals.forEach((t, i) => expect(t).toBeGreaterThanOrEqual(40 + i * 8));
    expect(arrivals[15]).toBeGreaterThanOrEqual(40 + 15 * 8);
    expect(arrivals[15]).toBeLessThan(40 + 15 * 8 + 100);
  });

  it("keeps to the schedule when a reader stalls: tokens already due go out at once instead of slipping", async () => {
    // Relative sleeps would end at 20 + 100 + 14·10 = 260 ms here; the schedule ends at 170 ms.
    const t0 = performance.now();
    const res = await post(
      "/chat/completions",
      { model: "m", messages, max_tokens: 16, stream: true },
      { "x-mock-ttft-ms": "20", "x-mock-itl-ms": "10" },
    );
    const reader = res.body!.getReader();
    await reader.read();
    await scheduler.wait(100);
    while (!(await reader.read()).done) {
      /* drain */
    }
    const total = performance.now() - t0;
    expect(total).toBeGreaterThanOrEqual(20 + 15 * 10);
    expect(total).toBeLessThan(20 + 15 * 10 + 60);
  });

  it("holds a non-streaming answer for ttft + (n-1)·itl", async () => {
    const t0 = performance.now();
    await client({ "x-mock-ttft-ms": "30", "x-mock-itl-ms": "10" }).chat.completions.create({ model: "m", messages, max_tokens: 6 });
    const total = performance.now() - t0;
    expect(total).toBeGreaterThanOrEqual(30 + 5 * 10);
    expect(total).toBeLessThan(30 + 5 * 10 + 100);
  });
});

describe("injected errors", () => {
  it("fails every request with a 500 the openai client surfaces as an APIError when the error rate is 1", async () => {
    const c = client({ ...FAST, "x-mock-error-rate": "1" });
    const errors = await Promise.all(
      Array.from({ length: 20 }, () =>
        c.chat.completions.create({ model: "m", messages, stream: true }).then(
          () => undefined,
          (e: unknown) => e,
        ),
      ),
    );
    for (const err of errors) {
      expect(err).toBeInstanceOf(APIError);
      expect((err as APIError).status).toBe(500);
      expect((err as APIError).code).toBe("mock_injected_error");
      expect((err as APIError).type).toBe("server_error");
    }
  });

  it("answers the 500 at once, without waiting out the TTFT", async () => {
    const t0 = performance.now();
    const res = await post("/completions", { model: "m", prompt: "p" }, { "x-mock-ttft-ms": "5000", "x-mock-error-rate": "1" });
    expect(res.status).toBe(500);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it("never fails a request when the error rate is 0", async () => {
    const c = client({ ...FAST, "x-mock-error-rate": "0" });
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, () => c.completions.create({ model: "m", prompt: "p", max_tokens: 1 })),
    );
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
  });
});

describe("the knob headers", () => {
  it("fall back to the defaults when absent and override them when present", () => {
    const defaults = { ttftMs: 20, itlMs: 5, errorRate: 0, reasoningTokens: 0, toolCalls: 0, tokenizer: "cl100k_base" };
    expect(mockKnobsFromHeaders(new Headers(), MOCK_DEFAULTS)).toEqual(defaults);
    const h = new Headers({
      "x-mock-ttft-ms": "60000",
      "x-mock-itl-ms": "2.5",
      "x-mock-error-rate": "0.25",
      "x-mock-reasoning-tokens": "4096",
      "x-mock-tool-calls": "1",
      "x-mock-tokenizer": "o200k_base",
    });
    expect(mockKnobsFromHeaders(h, MOCK_DEFAULTS)).toEqual({
      ttftMs: 60000,
      itlMs: 2.5,
      errorRate: 0.25,
      reasoningTokens: 4096,
      toolCalls: 1,
      tokenizer: "o200k_base",
    });
  });

  it.each([
    ["x-mock-ttft-ms", "abc"],
    ["x-mock-ttft-ms", "-1"],
    ["x-mock-ttft-ms", "60001"],
    ["x-mock-itl-ms", "10001"],
    ["x-mock-itl-ms", ""],
    ["x-mock-error-rate", "1.5"],
    ["x-mock-error-rate", "NaN"],
    ["x-mock-reasoning-tokens", "4097"],
    ["x-mock-reasoning-tokens", "1.5"],
    ["x-mock-tool-calls", "2"],
    ["x-mock-tokenizer", "gpt2"],
  ])("refuse %s: %j with 400", async (header, value) => {
    const res = await post("/chat/completions", { model: "m", messages }, { [header]: value });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("invalid_mock_header");
    expect(body.error.message).toContain(header);
  });
});

describe("refusals", () => {
  it("answers 404 in edgeperf's error shape for an unknown path or a wrong method", async () => {
    for (const req of [
      new Request("https://mock.test/mock/v1/audio/speech", { method: "POST" }),
      new Request("https://mock.test/mock/", { method: "GET" }),
      new Request(`${BASE}/chat/completions`, { method: "GET" }),
    ]) {
      const res = await handleMock(req);
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ error: { code: "not_found", message: expect.any(String) } });
    }
  });

  it("answers 400 in OpenAI's error shape for invalid JSON or a body missing its required fields", async () => {
    for (const [path, body] of [
      ["/chat/completions", "{not json"],
      ["/chat/completions", { model: "m" }],
      ["/chat/completions", { model: "m", messages, max_tokens: 0 }],
      ["/completions", { model: "m", messages }],
    ] as const) {
      const res = await post(path, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const json = (await res.json()) as { error: Record<string, unknown> };
      expect(json.error).toMatchObject({
        type: "invalid_request_error",
        param: null,
        code: expect.any(String),
        message: expect.any(String),
      });
    }
  });

  it("never echoes the request's headers, which carry API keys", async () => {
    const secret = "sk-very-secret-123";
    const headers = { ...FAST, authorization: `Bearer ${secret}`, "x-extra": secret };
    for (const res of [
      await post("/chat/completions", { model: "m", messages, max_tokens: 2, stream: true }, headers),
      await post("/chat/completions", { model: "m", messages, max_tokens: 2 }, headers),
      await post("/chat/completions", "{bad", headers),
      await post("/chat/completions", { model: "m", messages }, { ...headers, "x-mock-itl-ms": secret }),
      await post("/completions", { model: "m", prompt: "p" }, { ...headers, "x-mock-error-rate": "1" }),
    ]) {
      expect(await res.text()).not.toContain(secret);
      expect([...res.headers].join(" ")).not.toContain(secret);
    }
  });
});

describe("the body cap", () => {
  // The agent's words, found by walking promptText's choice over the whole [0, 1) range.
  const steps = 4096;
  let k = 0;
  const vocabulary = new Set(promptText(() => (k++ % steps) / steps, steps).split(" "));
  const longest = [...vocabulary].reduce((a, b) => (b.length > a.length ? b : a));

  /** The largest request any agent can send to builtin:mock for `api`: every word the longest, every length at its clamp. */
  function largest(api: "openai-chat" | "openai-completions"): RequestInit {
    const spec = parseRunSpec(
      // Each character of this model name is escaped to 6 bytes in JSON, the most any character takes.
      { target: { url: "builtin:mock", api, model: "\u0001".repeat(256), mock: { ttftMs: 0, itlMs: 0 } }, stop: { requests: 1 } },
      readConfig({}),
    );
    const prompt = Array.from({ length: MAX_TOKENS }, () => longest).join(" ");
    return buildRequest(spec.target, { inputTokens: MAX_TOKENS, outputTokens: MAX_TOKENS, prompt });
  }

  it.each(["openai-chat", "openai-completions"] as const)("accepts the largest %s request an agent can send", async (api) => {
    const init = largest(api);
    const bytes = new TextEncoder().encode(String(init.body)).length;
    expect(bytes).toBeGreaterThan(MAX_TOKENS * longest.length);
    expect(bytes).toBeLessThanOrEqual(MOCK_MAX_BODY_BYTES);
    const res = await handleMock(new Request(`${BASE}/${api === "openai-chat" ? "chat/completions" : "completions"}`, init));
    expect(res.status).toBe(200);
    const json = (await res.json()) as { usage: { prompt_tokens: number } };
    expect(json.usage.prompt_tokens).toBe(MAX_TOKENS);
  });

  it("is far below the 8 MiB it used to be: at most 2 MiB, what the largest request needs and a little room", () => {
    expect(MOCK_MAX_BODY_BYTES).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect(vocabulary.size).toBeGreaterThan(1);
  });

  it("refuses one byte over the cap with 413, whether or not the length was declared", async () => {
    const body = JSON.stringify({ model: "m", messages: [{ content: "" }] });
    const over = body.replace('"content":""', `"content":"${"x".repeat(MOCK_MAX_BODY_BYTES - body.length + 1)}"`);
    expect(over.length).toBe(MOCK_MAX_BODY_BYTES + 1);
    const declared = await post("/chat/completions", over, { ...FAST, "content-length": String(over.length) });
    expect(declared.status).toBe(413);
    const bytes = new TextEncoder().encode(over);
    const streamed = new ReadableStream<Uint8Array>({
      start(c) {
        for (let at = 0; at < bytes.length; at += 65_536) c.enqueue(bytes.slice(at, at + 65_536));
        c.close();
      },
    });
    const res = await handleMock(
      new Request(`${BASE}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: streamed }),
    );
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("body_too_large");
    const exact = body.replace('"content":""', `"content":"${"x".repeat(MOCK_MAX_BODY_BYTES - body.length)}"`);
    expect((await post("/chat/completions", exact)).status).toBe(200);
  });
});

describe("MOCK_ENABLED", () => {
  const chat = () =>
    new Request(`${BASE}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...FAST },
      body: JSON.stringify({ model: "m", messages, max_tokens: 1 }),
    });

  it.each(["false", "FALSE", " off ", "0", "no"])("closes the public route with the router's 404 when it is %j", async (value) => {
    for (const req of [chat(), new Request(`${BASE}/models`)]) {
      const res = await handleMockRoute(req, { MOCK_ENABLED: value });
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({
        error: { code: "not_found", message: `No route for ${req.method} ${new URL(req.url).pathname}.` },
      });
    }
  });

  it.each([["true"], ["TRUE"], ["yes"], [""], [undefined]])("leaves the public route open when it is %j", async (value) => {
    const res = await handleMockRoute(chat(), value === undefined ? {} : { MOCK_ENABLED: value });
    expect(res.status).toBe(200);
  });

  it("does not reach the in-process mock edge agents call, so builtin:mock runs work with the route closed", async () => {
    // LoadAgent calls handleMock directly (durable/LoadAgent.ts); it has no env to read.
    expect((await handleMock(chat())).status).toBe(200);
    expect((await handleMockRoute(chat(), { MOCK_ENABLED: "false" })).status).toBe(404);
  });
});
