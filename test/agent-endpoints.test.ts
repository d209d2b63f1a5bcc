// Reasoning models, tool calls and every endpoint kind, measured as AIPerf measures them,
// against fake targets whose chunks arrive at known times on an injected clock. The
// stream of the issue: the first token at 100 ms, then one every 10 ms; 20 reasoning
// tokens, then 10 answer tokens; usage 30.
import { describe, expect, it } from "vitest";
import type { Job } from "../agent/prompt";
import { Deadlines } from "../agent/deadlines";
import { buildRequest } from "../agent/request";
import { mockPath, sendRequest } from "../agent/target";
import { countTokens } from "../contract/tokenizer";
import type { TargetSpec } from "../contract/spec";
import { APIS } from "../contract/spec";

const enc = new TextEncoder();
const START = 1_000;

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

const job: Job = { inputTokens: 5, outputTokens: 30, prompt: "the of and to in" };

/** A body handing out one piece per read, setting the clock to the piece's time first. */
function timed(clock: { t: number }, pieces: Array<[number, string]>): ReadableStream<Uint8Array> {
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

/** Measures one request whose response is `pieces` (SSE) or `json` (a whole body). */
async function measure(t: TargetSpec, pieces: Array<[number, string]>, json?: unknown) {
  const clock = { t: START };
  const bodies: unknown[] = [];
  const fetchFake: typeof fetch = async (_input, init) => {
    bodies.push(JSON.parse(String(init?.body)));
    if (json !== undefined) {
      clock.t = pieces[0]?.[0] ?? START;
      return Response.json(json);
    }
    return new Response(timed(clock, pieces), { headers: { "content-type": "text/event-stream" } });
  };
  const result = await sendRequest({ target: t, url: t.url, fetch: fetchFake, now: () => clock.t, deadlines: new Deadlines() }, job);
  return { result, body: bodies[0] as Record<string, unknown> };
}

const data = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
const delta = (d: Record<string, unknown>) =>
  data({ object: "chat.completion.chunk", choices: [{ index: 0, delta: d, finish_reason: null }] });
/** Token i of the stream arrives at 100 + 10·i ms after the start. */
const at = (i: number) => START + 100 + 10 * i;

/** 20 reasoning tokens in `field`, then 10 answer tokens, then the usage chunk (choices: []) and [DONE]. */
function reasoningStream(field: "reasoning_content" | "reasoning", usage: Record<string, unknown> | null): Array<[number, string]> {
  const pieces: Array<[number, string]> = [];
  for (let i = 0; i < 20; i++) pieces.push([at(i), delta({ [field]: " think" })]);
  for (let i = 20; i < 30; i++) pieces.push([at(i), delta({ content: " tok" })]);
  pieces.push([at(29) + 1, data({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] })]);
  if (usage) pieces.push([at(29) + 2, data({ choices: [], usage })]);
  pieces.push([at(29) + 50, "data: [DONE]\n\n"]);
  return pieces;
}

describe("a reasoning model's stream (chat completions)", () => {
  it("takes TTFT from the first reasoning token, TTFO from the first answer token, and OSL from usage with the reasoning in it", async () => {
    for (const field of ["reasoning_content", "reasoning"] as const) {
      const { result } = await measure(target(), reasoningStream(field, { prompt_tokens: 50, completion_tokens: 30 }));
      // ITL = (390 − 100) / (30 − 1) = 10 ms: the coordinator computes it from these.
      expect(result, field).toEqual({
        ok: true,
        ttftMs: 100,
        ttfoMs: 300,
        ttstMs: 10,
        latencyMs: 390,
        inputTokens: 50,
        outputTokens: 30,
        reasoningTokens: 20,
      });
    }
  });

  it("takes the reasoning count from usage.completion_tokens_details when the server gives it", async () => {
    const usage = { prompt_tokens: 50, completion_tokens: 30, completion_tokens_details: { reasoning_tokens: 21 } };
    const { result } = await measure(target(), reasoningStream("reasoning_content", usage));
    expect(result).toMatchObject({ ok: true, outputTokens: 30, reasoningTokens: 21 });
  });

  it("counts reasoning and answer tokens by the tokenizer when there is no usage, and ends without [DONE] just as well", async () => {
    const pieces = reasoningStream("reasoning", null).filter(([, text]) => !text.includes("[DONE]"));
    const { result } = await measure(target(), pieces);
    expect(result).toEqual({
      ok: true,
      ttftMs: 100,
      ttfoMs: 300,
      ttstMs: 10,
      latencyMs: 390,
      inputTokens: 5,
      outputTokens: 30,
      reasoningTokens: 20,
    });
  });

  it("is a success when it only reasons (finish_reason length): no TTFO", async () => {
    const pieces: Array<[number, string]> = Array.from({ length: 30 }, (_, i) => [at(i), delta({ reasoning_content: " think" })]);
    pieces.push([at(30), data({ choices: [{ index: 0, delta: {}, finish_reason: "length" }] })], [at(30), "data: [DONE]\n\n"]);
    const { result } = await measure(target(), pieces);
    expect(result).toEqual({ ok: true, ttftMs: 100, ttstMs: 10, latencyMs: 390, inputTokens: 5, outputTokens: 30, reasoningTokens: 30 });
  });

  it("gives a request that did not reason no reasoning count, even when usage says 0", async () => {
    const pieces: Array<[number, string]> = [
      [at(0), delta({ content: " a" })],
      [at(1), data({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 1, completion_tokens_details: { reasoning_tokens: 0 } } })],
    ];
    const { result } = await measure(target(), pieces);
    expect(result).toEqual({ ok: true, ttftMs: 100, ttfoMs: 100, latencyMs: 100, inputTokens: 3, outputTokens: 1 });
  });
});

describe("tool calls (chat completions)", () => {
  const args = ['{"', "city", '":"', "Paris", '"}'];
  const toolStream = (): Array<[number, string]> => [
    [
      at(0),
      delta({
        role: "assistant",
        tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "get_weather", arguments: "" } }],
      }),
    ],
    ...args.map((a, i): [number, string] => [at(i + 1), delta({ tool_calls: [{ index: 0, function: { arguments: a } }] })]),
    [at(6), data({ choices: [{ index: 0, delta: {}, finish_reason: "tool_calls" }] })],
    [at(6), "data: [DONE]\n\n"],
  ];

  it("is a success when the answer is only a tool call: TTFT and TTFO at its first delta, its name and arguments counted", async () => {
    const { result } = await measure(target(), toolStream());
    expect(result).toEqual({
      ok: true,
      ttftMs: 100,
      ttfoMs: 100,
      ttstMs: 10,
      latencyMs: 150,
      inputTokens: 5,
      outputTokens: countTokens(`get_weather${args.join("")}`),
    });
  });

  it("counts a whole response's tool calls and reasoning the same way", async () => {
    const message = {
      role: "assistant",
      content: null,
      reasoning_content: " think think",
      tool_calls: [{ id: "c", type: "function", function: { name: "get_weather", arguments: args.join("") } }],
    };
    const { result } = await measure(target({ stream: false }), [[START + 80, ""]], {
      object: "chat.completion",
      choices: [{ index: 0, message }],
    });
    expect(result).toEqual({
      ok: true,
      latencyMs: 80,
      inputTokens: 5,
      outputTokens: 2 + countTokens(`get_weather${args.join("")}`),
      reasoningTokens: 2,
    });
  });
});

describe("the same answer streamed or not", () => {
  it("has the same output length without usage: tokens, not chunks (a 32-token answer in 8 chunks is 32)", async () => {
    const chunk = " tok".repeat(4);
    const pieces: Array<[number, string]> = Array.from({ length: 8 }, (_, i) => [at(i), delta({ content: chunk })]);
    const streamed = await measure(target(), [...pieces, [at(8), "data: [DONE]\n\n"]]);
    const whole = await measure(target({ stream: false }), [[at(7), ""]], { choices: [{ message: { content: chunk.repeat(8) } }] });
    expect(streamed.result).toMatchObject({ ok: true, outputTokens: 32 });
    expect(whole.result).toMatchObject({ ok: true, outputTokens: 32 });
  });
});

describe("the Responses API", () => {
  const ev = (type: string, fields: Record<string, unknown> = {}) => `event: ${type}\n${data({ type, ...fields })}`;

  it("streams reasoning and text deltas, ends at response.completed and takes its usage", async () => {
    const pieces: Array<[number, string]> = [[START + 5, ev("response.created", { response: { status: "in_progress" } })]];
    for (let i = 0; i < 20; i++) pieces.push([at(i), ev("response.reasoning_text.delta", { delta: " think" })]);
    for (let i = 20; i < 30; i++) pieces.push([at(i), ev("response.output_text.delta", { delta: " tok" })]);
    pieces.push([at(29) + 3, ev("response.output_text.done", { text: " tok".repeat(10) })]);
    const usage = { input_tokens: 50, output_tokens: 30, output_tokens_details: { reasoning_tokens: 20 } };
    pieces.push([at(29) + 5, ev("response.completed", { response: { status: "completed", usage } })]);
    pieces.push([at(29) + 900, ev("response.in_progress")]); // after the end: never read
    const t = target({ api: "responses", url: "https://llm.example.com/v1/responses" });
    const { result, body } = await measure(t, pieces);
    expect(result).toEqual({
      ok: true,
      ttftMs: 100,
      ttfoMs: 300,
      ttstMs: 10,
      latencyMs: 390,
      inputTokens: 50,
      outputTokens: 30,
      reasoningTokens: 20,
    });
    expect(body).toEqual({ model: "m", input: job.prompt, max_output_tokens: 30, stream: true });
  });

  it("counts a function call's argument deltas as output, and fails a stream that says response.failed", async () => {
    const t = target({ api: "responses", url: "https://llm.example.com/v1/responses" });
    const call = await measure(t, [
      [at(0), ev("response.output_item.added", { item: { type: "function_call", name: "lookup" } })],
      [at(1), ev("response.function_call_arguments.delta", { delta: '{"q":' })],
      [at(2), ev("response.function_call_arguments.delta", { delta: '"x"}' })],
      [at(3), ev("response.completed", { response: { usage: { input_tokens: 4, output_tokens: 6 } } })],
    ]);
    expect(call.result).toEqual({ ok: true, ttftMs: 110, ttfoMs: 110, ttstMs: 10, latencyMs: 120, inputTokens: 4, outputTokens: 6 });
    const failed = await measure(t, [
      [at(0), ev("response.output_text.delta", { delta: "a" })],
      [at(1), ev("response.failed", { response: { status: "failed" } })],
    ]);
    expect(failed.result).toMatchObject({ ok: false, error: { code: "stream_error" } });
  });

  it("reads a whole response's reasoning, message and usage", async () => {
    const t = target({ api: "responses", stream: false, url: "https://llm.example.com/v1/responses" });
    const response = {
      object: "response",
      output: [
        { type: "reasoning", summary: [], content: [{ type: "reasoning_text", text: " think think think" }] },
        { type: "message", content: [{ type: "output_text", text: " tok tok" }] },
      ],
      usage: { input_tokens: 9, output_tokens: 5 },
    };
    const { result } = await measure(t, [[START + 70, ""]], response);
    expect(result).toEqual({ ok: true, latencyMs: 70, inputTokens: 9, outputTokens: 5, reasoningTokens: 3 });
  });
});

describe("the Anthropic Messages API", () => {
  const ev = (type: string, fields: Record<string, unknown> = {}) => `event: ${type}\n${data({ type, ...fields })}`;
  const blockDelta = (d: Record<string, unknown>) => ev("content_block_delta", { index: 0, delta: d });

  it("streams thinking then text, takes input tokens from message_start and output tokens from message_delta", async () => {
    const pieces: Array<[number, string]> = [
      [START + 20, ev("message_start", { message: { usage: { input_tokens: 50, output_tokens: 1 } } })],
    ];
    pieces.push([START + 21, ev("content_block_start", { index: 0, content_block: { type: "thinking", thinking: "" } })]);
    for (let i = 0; i < 20; i++) pieces.push([at(i), blockDelta({ type: "thinking_delta", thinking: " think" })]);
    for (let i = 20; i < 30; i++) pieces.push([at(i), blockDelta({ type: "text_delta", text: " tok" })]);
    pieces.push([at(29) + 2, ev("message_delta", { delta: { stop_reason: "max_tokens" }, usage: { output_tokens: 30 } })]);
    pieces.push([at(29) + 3, ev("message_stop")]);
    const t = target({ api: "messages", url: "https://llm.example.com/v1/messages", apiKey: "sk-ant" });
    const { result, body } = await measure(t, pieces);
    // Anthropic reports no thinking count: it is the tokenizer's.
    expect(result).toEqual({
      ok: true,
      ttftMs: 100,
      ttfoMs: 300,
      ttstMs: 10,
      latencyMs: 390,
      inputTokens: 50,
      outputTokens: 30,
      reasoningTokens: 20,
    });
    expect(body).toEqual({ model: "m", max_tokens: 30, messages: [{ role: "user", content: job.prompt }], stream: true });
  });

  it("sends the key as x-api-key with an anthropic-version, and never as a bearer token", () => {
    const headers = new Headers(buildRequest(target({ api: "messages", apiKey: "sk-ant" }), job).headers);
    expect(headers.get("x-api-key")).toBe("sk-ant");
    expect(headers.get("anthropic-version")).toBe("2023-06-01");
    expect(headers.has("authorization")).toBe(false);
    const chosen = new Headers(buildRequest(target({ api: "messages", headers: { "anthropic-version": "2024-01-01" } }), job).headers);
    expect(chosen.get("anthropic-version")).toBe("2024-01-01");
  });

  it("is a success with only a tool_use block, counting its input_json_delta pieces, and fails on an error event", async () => {
    const t = target({ api: "messages" });
    const tool = await measure(t, [
      [at(0), ev("content_block_start", { index: 0, content_block: { type: "tool_use", name: "lookup", input: {} } })],
      [at(1), blockDelta({ type: "input_json_delta", partial_json: '{"q":' })],
      [at(2), blockDelta({ type: "input_json_delta", partial_json: '"x"}' })],
      [at(3), ev("message_stop")],
    ]);
    expect(tool.result).toEqual({
      ok: true,
      ttftMs: 110,
      ttfoMs: 110,
      ttstMs: 10,
      latencyMs: 120,
      inputTokens: 5,
      outputTokens: countTokens('{"q":"x"}'),
    });
    const error = await measure(t, [
      [at(0), blockDelta({ type: "text_delta", text: "a" })],
      [at(1), ev("error", { error: { type: "overloaded_error", message: "Overloaded" } })],
    ]);
    expect(error.result).toMatchObject({ ok: false, error: { code: "stream_error" } });
  });

  it("reads a whole message's thinking, text and usage", async () => {
    const message = {
      type: "message",
      content: [
        { type: "thinking", thinking: " think think" },
        { type: "text", text: " tok tok tok" },
      ],
      usage: { input_tokens: 8, cache_read_input_tokens: 2, output_tokens: 5 },
    };
    const { result } = await measure(target({ api: "messages", stream: false }), [[START + 60, ""]], message);
    expect(result).toEqual({ ok: true, latencyMs: 60, inputTokens: 10, outputTokens: 5, reasoningTokens: 2 });
  });
});

describe("embeddings", () => {
  it("sends the prompt as input and measures latency and input tokens only", async () => {
    const t = target({ api: "embeddings", stream: false, url: "https://llm.example.com/v1/embeddings" });
    const answer = {
      object: "list",
      data: [{ object: "embedding", index: 0, embedding: [0.1, 0.2] }],
      usage: { prompt_tokens: 6, total_tokens: 6 },
    };
    const { result, body } = await measure(t, [[START + 30, ""]], answer);
    expect(result).toEqual({ ok: true, latencyMs: 30, inputTokens: 6 });
    expect(body).toEqual({ model: "m", input: job.prompt });
    const empty = await measure(t, [[START + 30, ""]], { object: "list", data: [] });
    expect(empty.result).toMatchObject({ ok: false, error: { code: "empty_response", type: "response" } });
  });
});

describe("a template for any JSON API", () => {
  const template = {
    body: { params: { text: "Q: {{prompt}}", n: "{{max_tokens}}", label: "n={{max_tokens}}" }, engine: "{{model}}", stream: true },
    textPath: "result.text",
    streamTextPath: "token.text",
    usagePath: "result.usage",
  };

  it("fills {{prompt}}, {{max_tokens}} (a number where it stands alone) and {{model}} into the body", () => {
    const body = JSON.parse(String(buildRequest(target({ api: "template", template }), job).body));
    expect(body).toEqual({ params: { text: `Q: ${job.prompt}`, n: 30, label: "n=30" }, engine: "m", stream: true });
  });

  it("takes each chunk's text from streamTextPath and a whole answer's from textPath and usagePath", async () => {
    const t = target({ api: "template", template });
    const pieces: Array<[number, string]> = Array.from({ length: 4 }, (_, i) => [at(i), data({ token: { text: " tok" } })]);
    const streamed = await measure(t, [...pieces, [at(4), data({ token: { text: "" }, done: true })]]);
    expect(streamed.result).toEqual({ ok: true, ttftMs: 100, ttfoMs: 100, ttstMs: 10, latencyMs: 130, inputTokens: 5, outputTokens: 4 });
    const whole = await measure(target({ api: "template", template, stream: false }), [[START + 40, ""]], {
      result: { text: " tok tok", usage: { prompt_tokens: 7, completion_tokens: 2 } },
    });
    expect(whole.result).toEqual({ ok: true, latencyMs: 40, inputTokens: 7, outputTokens: 2 });
  });
});

describe("builtin:mock's paths", () => {
  it("gives every kind a path the mock serves, and a template the chat route", () => {
    expect(APIS.map((api) => [api, mockPath(api)])).toEqual([
      ["openai-chat", "/mock/v1/chat/completions"],
      ["openai-completions", "/mock/v1/completions"],
      ["http", "/mock/v1/chat/completions"],
      ["embeddings", "/mock/v1/embeddings"],
      ["responses", "/mock/v1/responses"],
      ["messages", "/mock/v1/messages"],
      ["template", "/mock/v1/chat/completions"],
    ]);
  });
});

describe("a job carrying messages (dataset conversations, multi_turn history)", () => {
  const messages = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Hi." },
    { role: "assistant", content: "Hello!" },
    { role: "user", content: "And then?" },
  ];
  const convo: Job = { inputTokens: 9, outputTokens: 12, prompt: "the of", messages };
  const joined = "Be brief.\n\nHi.\n\nHello!\n\nAnd then?";
  const bodyFor = (over: Partial<TargetSpec>, j: Job = convo) => JSON.parse(String(buildRequest(target(over), j).body));

  it("sends the messages as they are to chat completions", () => {
    expect(bodyFor({})).toEqual({ model: "m", messages, max_tokens: 12, stream: true, stream_options: { include_usage: true } });
  });

  it("sends them as the Responses API's input list", () => {
    expect(bodyFor({ api: "responses", stream: false })).toEqual({ model: "m", input: messages, max_output_tokens: 12, stream: false });
  });

  it("moves system messages to Anthropic's top-level system field and keeps the rest in order", () => {
    expect(bodyFor({ api: "messages" })).toEqual({
      model: "m",
      max_tokens: 12,
      system: "Be brief.",
      messages: messages.slice(1),
      stream: true,
    });
    // Without a system message there is no system field.
    expect(bodyFor({ api: "messages" }, { ...convo, messages: messages.slice(1) })).not.toHaveProperty("system");
  });

  it("joins the contents into one text for completions, embeddings and a template's {{prompt}}", () => {
    expect(bodyFor({ api: "openai-completions", stream: false })).toEqual({ model: "m", prompt: joined, max_tokens: 12, stream: false });
    expect(bodyFor({ api: "embeddings", stream: false })).toEqual({ model: "m", input: joined });
    const template = { body: { text: "{{prompt}}", n: "{{max_tokens}}" }, textPath: "text" };
    expect(bodyFor({ api: "template", template })).toEqual({ text: joined, n: 12 });
  });

  it("sends a job without messages as one user message, as before", () => {
    expect(bodyFor({}, job).messages).toEqual([{ role: "user", content: job.prompt }]);
    expect(bodyFor({ api: "responses" }, job).input).toBe(job.prompt);
    expect(bodyFor({ api: "messages" }, job)).not.toHaveProperty("system");
  });
});
