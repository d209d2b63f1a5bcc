// The built-in mock's reasoning, tool-call, Responses, Messages and Embeddings modes, read
// by the official `openai` client where it speaks the API (Anthropic's Messages API it
// does not: read raw), and measured by the agent as a run measures it.
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import type { Job } from "../agent/prompt";
import { jobFor } from "../agent/prompt";
import { Deadlines } from "../agent/deadlines";
import { sendRequest } from "../agent/target";
import { countTokens } from "../contract/tokenizer";
import { readConfig } from "../contract/config";
import { parseRunSpec } from "../contract/spec";
import type { TargetSpec } from "../contract/spec";
import { mockTokens } from "../mock/answer";
import { handleMock } from "../mock/mock";
import { mockPath } from "../agent/target";

const BASE = "https://mock.test/mock/v1";
const FAST = { "x-mock-ttft-ms": "0", "x-mock-itl-ms": "0" };
const mockFetch: typeof fetch = (input, init) => handleMock(new Request(input, init));

function client(headers: Record<string, string> = {}): OpenAI {
  return new OpenAI({ apiKey: "x", baseURL: BASE, defaultHeaders: { ...FAST, ...headers }, maxRetries: 0, fetch: mockFetch });
}

function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return handleMock(
    new Request(BASE + path, {
      method: "POST",
      headers: { "content-type": "application/json", ...FAST, ...headers },
      body: JSON.stringify(body),
    }),
  );
}

/** The `data` of every SSE event, with the `event` name when there is one. */
async function events(res: Response): Promise<Array<{ event: string | null; data: any }>> {
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((f) => f !== "" && !f.endsWith("[DONE]"))
    .map((frame) => {
      const lines = frame.split("\n");
      const event = lines.find((l) => l.startsWith("event: "))?.slice(7) ?? null;
      return { event, data: JSON.parse(lines.find((l) => l.startsWith("data: "))!.slice(6)) };
    });
}

const user = [{ role: "user" as const, content: "the of and to" }];

describe("chat completions with reasoning", () => {
  it("streams reasoningTokens reasoning_content deltas before the answer, and reports them in usage", async () => {
    const stream = await client({ "x-mock-reasoning-tokens": "3" }).chat.completions.create({
      model: "mock",
      messages: user,
      max_tokens: 8,
      stream: true,
      stream_options: { include_usage: true },
    });
    const kinds: string[] = [];
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta as { content?: string; reasoning_content?: string } | undefined;
      if (delta?.reasoning_content) kinds.push("r");
      if (delta?.content) kinds.push("c");
      if (chunk.usage) usage = chunk.usage;
    }
    expect(kinds.join("")).toBe("rrrccccc");
    expect(usage).toEqual({ prompt_tokens: 4, completion_tokens: 8, total_tokens: 12, completion_tokens_details: { reasoning_tokens: 3 } });
  });

  it("answers with reasoning only when it takes every output token, finishing with length", async () => {
    const res = await client({ "x-mock-reasoning-tokens": "100" }).chat.completions.create({
      model: "mock",
      messages: user,
      max_tokens: 6,
    });
    const message = res.choices[0]?.message as { content: string | null; reasoning_content?: string };
    expect(message.content).toBe("");
    expect(message.reasoning_content).toBe(" think".repeat(6));
    expect(res.choices[0]?.finish_reason).toBe("length");
    expect(res.usage).toMatchObject({ completion_tokens: 6, completion_tokens_details: { reasoning_tokens: 6 } });
  });
});

describe("chat completions with a tool call", () => {
  it("streams the call's name then its arguments, which parse as JSON, and finishes with tool_calls", async () => {
    const stream = await client({ "x-mock-tool-calls": "1" }).chat.completions.create({
      model: "mock",
      messages: user,
      max_tokens: 10,
      stream: true,
      stream_options: { include_usage: true },
    });
    let name = "";
    let args = "";
    let deltas = 0;
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      for (const tc of chunk.choices[0]?.delta.tool_calls ?? []) {
        deltas++;
        name += tc.function?.name ?? "";
        args += tc.function?.arguments ?? "";
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(name).toBe("lookup");
    expect(JSON.parse(args)).toEqual({ q: " tok".repeat(5) });
    expect(finish).toBe("tool_calls");
    // One token per delta: the usage is what was streamed, by the tokenizer.
    expect(deltas).toBe(10);
    expect(usage?.completion_tokens).toBe(10);
    expect(countTokens(name + args)).toBe(10);
  });

  it("answers a whole message with the tool call and no content", async () => {
    const res = await client({ "x-mock-tool-calls": "1" }).chat.completions.create({ model: "mock", messages: user, max_tokens: 7 });
    const call = res.choices[0]?.message.tool_calls?.[0] as { type: string; function: { name: string; arguments: string } };
    expect(res.choices[0]?.message.content).toBeNull();
    expect(call.function.name).toBe("lookup");
    expect(JSON.parse(call.function.arguments)).toEqual({ q: " tok tok" });
    expect(res.usage?.completion_tokens).toBe(7);
  });
});

describe("the Responses API", () => {
  it("streams reasoning_text and output_text deltas to the openai client, and the usage in response.completed", async () => {
    const stream = await client({ "x-mock-reasoning-tokens": "2" }).responses.create({
      model: "mock",
      input: "the of and",
      max_output_tokens: 5,
      stream: true,
    });
    const types: string[] = [];
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "response.completed") completed = event.response;
    }
    expect(types.filter((t) => t === "response.reasoning_text.delta")).toHaveLength(2);
    expect(types.filter((t) => t === "response.output_text.delta")).toHaveLength(3);
    expect(types[0]).toBe("response.created");
    expect(types.at(-1)).toBe("response.completed");
    expect(completed?.usage).toMatchObject({ input_tokens: 3, output_tokens: 5, output_tokens_details: { reasoning_tokens: 2 } });
    const message = completed?.output.find((o) => o.type === "message") as { content: Array<{ text: string }> };
    expect(message.content[0]?.text).toBe(" tok".repeat(3));
  });

  it("answers a whole response whose output_text the client assembles, and a function call when asked", async () => {
    const text = await client().responses.create({ model: "mock", input: [{ role: "user", content: "the of" }], max_output_tokens: 4 });
    expect(text.output_text).toBe(" tok".repeat(4));
    expect(text.usage).toMatchObject({ input_tokens: 2, output_tokens: 4 });
    const call = await client({ "x-mock-tool-calls": "1" }).responses.create({ model: "mock", input: "the", max_output_tokens: 8 });
    const item = call.output.find((o) => o.type === "function_call") as { name: string; arguments: string };
    expect(item.name).toBe("lookup");
    expect(JSON.parse(item.arguments)).toEqual({ q: " tok tok tok" });
  });
});

describe("embeddings", () => {
  it("gives the openai client one vector per input (base64, as it asks by default) and the prompt's tokens", async () => {
    const res = await client().embeddings.create({ model: "mock", input: ["the of", "and"] });
    expect(res.data).toHaveLength(2);
    expect(res.data[0]?.embedding).toHaveLength(8);
    expect(res.data[0]?.embedding[0]).toBeCloseTo(1 / Math.sqrt(8), 6);
    expect(res.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 });
    const floats = await client().embeddings.create({ model: "mock", input: "the", encoding_format: "float", dimensions: 3 });
    expect(floats.data[0]?.embedding).toHaveLength(3);
  });

  it("answers after ttftMs", async () => {
    const t0 = performance.now();
    const res = await post("/embeddings", { model: "mock", input: "the" }, { "x-mock-ttft-ms": "40" });
    expect(res.status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(40);
  });
});

describe("Anthropic's Messages API", () => {
  it("streams message_start, a thinking block, a text block, message_delta with the output tokens, and message_stop", async () => {
    const res = await post(
      "/messages",
      { model: "mock", max_tokens: 5, system: "be brief", messages: [{ role: "user", content: "the of" }], stream: true },
      { "x-mock-reasoning-tokens": "2" },
    );
    const got = await events(res);
    expect(got.every((e) => e.event === e.data.type)).toBe(true);
    expect(got.map((e) => e.data.type)).toEqual([
      "message_start",
      "content_block_start",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "content_block_start",
      "content_block_delta",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    expect(got[0]?.data.message.usage).toEqual({ input_tokens: countTokens("be brief") + 2, output_tokens: 1 });
    expect(got[2]?.data.delta).toEqual({ type: "thinking_delta", thinking: " think" });
    expect(got[6]?.data.delta).toEqual({ type: "text_delta", text: " tok" });
    expect(got[10]?.data).toEqual({
      type: "message_delta",
      delta: { stop_reason: "max_tokens", stop_sequence: null },
      usage: { output_tokens: 5 },
    });
  });

  it("answers a whole message with a tool_use block, and refuses a body without max_tokens in Anthropic's error shape", async () => {
    const res = await post(
      "/messages",
      { model: "mock", max_tokens: 8, messages: [{ role: "user", content: "the" }] },
      { "x-mock-tool-calls": "1" },
    );
    const message = (await res.json()) as any;
    expect(message).toMatchObject({
      type: "message",
      role: "assistant",
      stop_reason: "tool_use",
      usage: { input_tokens: 1, output_tokens: 8 },
    });
    expect(message.content).toEqual([
      { type: "tool_use", id: expect.stringMatching(/^toolu_/), name: "lookup", input: { q: " tok tok tok" } },
    ]);
    const refused = await post("/messages", { model: "mock", messages: [{ role: "user", content: "the" }] });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({
      type: "error",
      error: { type: "invalid_request_error", message: expect.stringContaining("max_tokens") },
    });
  });
});

describe("usage by the request's tokenizer", () => {
  it("counts the prompt with the encoding x-mock-tokenizer names", async () => {
    const text = "Ünïcödé façade naïveté 1234567 ∑∫ the of";
    const counts = await Promise.all(
      (["cl100k_base", "o200k_base"] as const).map(async (name) => {
        const res = await client({ "x-mock-tokenizer": name }).chat.completions.create({
          model: "m",
          messages: [{ role: "user", content: text }],
          max_tokens: 1,
        });
        return [res.usage?.prompt_tokens, countTokens(text, name)];
      }),
    );
    expect(counts[0]![0]).toBe(counts[0]![1]);
    expect(counts[1]![0]).toBe(counts[1]![1]);
    expect(counts[0]![0]).not.toBe(counts[1]![0]);
  });

  it("counts exactly as the agent does, long runs without spaces too, and a megabyte of them fast", () => {
    const corpus = [
      "plain words, with punctuation; and\nnew lines\r\n  and  spaces",
      "x".repeat(10_000),
      `${"word ".repeat(300)}${"y".repeat(700)} tail`,
      " ".repeat(3_000),
      "中文字符 ".repeat(200),
    ];
    for (const text of corpus)
      for (const name of ["cl100k_base", "o200k_base"] as const) expect(mockTokens(text, name)).toBe(countTokens(text, name));
    const t0 = performance.now();
    mockTokens("z".repeat(1_000_000), "cl100k_base");
    expect(performance.now() - t0).toBeLessThan(2_000);
  });
});

describe("the agent measuring the mock in each mode", () => {
  const cfg = readConfig({});
  const job: Job = jobFor({ inputTokens: { mean: 12, stddev: 0 }, outputTokens: { mean: 24, stddev: 0 }, seed: 1 }, 0);
  const measure = (target: Record<string, unknown>) => {
    const t: TargetSpec = parseRunSpec({ target: { url: "builtin:mock", ...target }, stop: { requests: 1 } }, cfg).target;
    return sendRequest(
      { target: t, url: `https://mock.test${mockPath(t.api)}`, fetch: mockFetch, now: () => performance.now(), deadlines: new Deadlines() },
      job,
    );
  };
  const mock = { ttftMs: 30, itlMs: 4, reasoningTokens: 10 };

  it.each(["openai-chat", "responses", "messages"] as const)(
    "%s: TTFT at the first reasoning token, TTFO ten tokens later, OSL and reasoning tokens as asked",
    async (api) => {
      const r = await measure({ api, stream: true, mock });
      expect(r).toMatchObject({ ok: true, inputTokens: 12, outputTokens: 24, reasoningTokens: 10 });
      // The mock's tokens keep absolute deadlines from its start (after the agent's), each
      // released up to 1 ms early (its ticker coalesces), and workerd's clock moves in whole
      // milliseconds, only at I/O, so a reading may be up to 1 ms early: each time is at
      // least its schedule less 2 ms. A difference of two times has no such floor: a first
      // token released late on a busy machine (the rest back on schedule) shortens it, and
      // once read 37 ms for the ten tokens' 40.
      expect(r.ttftMs).toBeGreaterThanOrEqual(30 - 2);
      expect(r.ttfoMs).toBeGreaterThanOrEqual(30 + 10 * 4 - 2);
      expect(r.ttfoMs).toBeGreaterThan(r.ttftMs!);
      expect(r.latencyMs).toBeGreaterThanOrEqual(30 + 23 * 4 - 2);
    },
  );

  it.each(["openai-chat", "responses", "messages"] as const)("%s: a tool call only is a success, its tokens counted", async (api) => {
    const r = await measure({ api, stream: true, mock: { ttftMs: 0, itlMs: 0, toolCalls: true } });
    expect(r).toMatchObject({ ok: true, outputTokens: 24 });
    expect(r.reasoningTokens).toBeUndefined();
  });

  it("embeddings: latency and the prompt's tokens, nothing else", async () => {
    expect(await measure({ api: "embeddings", mock: { ttftMs: 0 } })).toEqual({ ok: true, latencyMs: expect.any(Number), inputTokens: 12 });
  });

  it("template: a chat body with placeholders against the mock's chat route, read by its paths", async () => {
    const template = {
      body: { model: "{{model}}", messages: [{ role: "user", content: "{{prompt}}" }], max_tokens: "{{max_tokens}}", stream: true },
      textPath: "choices.0.message.content",
      streamTextPath: "choices.0.delta.content",
    };
    const r = await measure({ api: "template", template, stream: true, mock: { ttftMs: 0, itlMs: 0 } });
    expect(r).toMatchObject({ ok: true, inputTokens: 12, outputTokens: 24 });
  });
});
