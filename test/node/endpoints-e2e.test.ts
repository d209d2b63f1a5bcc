// Reasoning models, tool calls and every endpoint kind, end to end: runs in a real
// `wrangler dev` measure an independent server (endpoint-server.ts) that streams what
// vLLM, SGLang, DeepSeek, OpenAI's Responses API and Anthropic's Messages API stream,
// and what edgeperf reports is checked against what that server sent and when.
// The stream: the first token at 100 ms, then one every 10 ms; 20 reasoning
// tokens, then 10 answer tokens; usage 30. The truth: TTFT 100 ms, TTFO 300 ms, ITL 10
// ms, 100 tokens/s per user, OSL 30 with 20 reasoning tokens.
//
// Figures are printed as `FIGURE:` lines.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentEngine } from "../../agent/engine.ts";
import { httpTransport, withRetries } from "../../agent/transport.ts";
import { DEV_API_TOKEN, api, e2eServer } from "./dev-server.ts";
import { ANSWER, EndpointServer, REASONING, TOTAL } from "./endpoint-server.ts";
import type { Served } from "./endpoint-server.ts";
import { percentile } from "./openai-server.ts";

const TTFT = 100;
const ITL = 10;
const REQUESTS = 6;

const dev = e2eServer({ ALLOWED_TARGETS: "127.0.0.1:*" });
const srv = new EndpointServer({ ttftMs: TTFT, itlMs: ITL });
beforeAll(async () => {
  await srv.start();
  await dev.start();
});
afterAll(async () => {
  await srv.stop();
  await dev.dispose();
});

interface Run {
  id: string;
  readToken: string;
  agentToken: string;
}

async function createRun(target: Record<string, unknown>, edge = 1): Promise<Run> {
  const res = await api(dev.url, "POST", "/v1/runs", DEV_API_TOKEN, {
    target: { model: "m", stream: true, ...target },
    workload: { inputTokens: { mean: 16 }, outputTokens: { mean: TOTAL } },
    load: { concurrency: 2 },
    stop: { requests: REQUESTS },
    agents: { edge },
    graceSeconds: 60,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as Run;
}

async function results(run: Run): Promise<any> {
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    const res = await api(dev.url, "GET", `/v1/runs/${run.id}/results?wait=10`, run.readToken);
    if (res.body.phase === "complete") return res.body;
  }
  throw new Error(`run ${run.id} did not complete: ${dev.logs().slice(-2000)}`);
}

/** Runs `target` on one edge agent to completion; every request must have succeeded. */
async function measure(target: Record<string, unknown>): Promise<any> {
  const res = await results(await createRun(target));
  expect(res.errors, JSON.stringify(res.errors)).toEqual([]);
  expect(res.counts).toMatchObject({ completed: REQUESTS, failed: 0 });
  return res.metrics;
}

const served = {
  ttft: (s: Served[]) =>
    percentile(
      s.map((r) => r.tokenAt[0]! - r.arrivedAt),
      50,
    ),
  ttfo: (s: Served[]) =>
    percentile(
      s.map((r) => r.tokenAt[r.firstOutput!]! - r.arrivedAt),
      50,
    ),
  ttst: (s: Served[]) =>
    percentile(
      s.map((r) => r.tokenAt[1]! - r.tokenAt[0]!),
      50,
    ),
  itl: (s: Served[]) => s.reduce((a, r) => a + (r.tokenAt.at(-1)! - r.tokenAt[0]!) / (r.tokenAt.length - 1), 0) / s.length,
};

/**
 * Measured against served: the agent's clock starts before the request leaves and stops
 * after the token arrives, so measured ≥ served (less the sketch's 0.5%), and at most a
 * loopback round trip through workerd and the coordinator's turns later (see loadgen-e2e).
 */
function expectLatency(name: string, measured: number, servedMs: number): void {
  expect(measured, name).toBeGreaterThanOrEqual(servedMs * 0.99 - 0.5);
  expect(measured - servedMs, name).toBeLessThanOrEqual(15);
}

const figure = (text: string) => console.log(`FIGURE: ${text}`);

describe("a reasoning model's stream, measured as AIPerf defines it", () => {
  it.each(["reasoning_content", "reasoning"])(
    "delta.%s before delta.content: TTFT at the first reasoning token, TTFO at the answer, ITL 10 ms, OSL 30 with 20 reasoning",
    async (variant) => {
      const m = await measure({ url: srv.url(variant, "/v1/chat/completions") });
      const s = srv.of(variant);
      expect(s).toHaveLength(REQUESTS);
      // What the server sent: 20 reasoning tokens, then 10 answer tokens.
      expect(s.every((r) => r.firstOutput === REASONING && r.tokenAt.length === REASONING + ANSWER)).toBe(true);
      figure(
        `${variant}: TTFT p50 ${m.time_to_first_token.p50.toFixed(1)} ms (served ${served.ttft(s).toFixed(1)}), ` +
          `TTFO p50 ${m.time_to_first_output_token.p50.toFixed(1)} (served ${served.ttfo(s).toFixed(1)}), ` +
          `ITL ${m.inter_token_latency.avg.toFixed(2)} (served ${served.itl(s).toFixed(2)}), ` +
          `${m.output_token_throughput_per_user.avg.toFixed(1)} tokens/s/user, TTST p50 ${m.time_to_second_token.p50.toFixed(1)} (served ${served.ttst(s).toFixed(1)})`,
      );
      expect(m.output_sequence_length).toMatchObject({ min: TOTAL, max: TOTAL });
      expect(m.reasoning_token_count).toMatchObject({ count: REQUESTS, min: REASONING, max: REASONING });
      expect(m.input_sequence_length.avg).toBe(16);
      expectLatency("TTFT", m.time_to_first_token.p50, served.ttft(s));
      expectLatency("TTFO", m.time_to_first_output_token.p50, served.ttfo(s));
      expect(Math.abs(m.time_to_first_output_token.p50 - m.time_to_first_token.p50 - REASONING * ITL)).toBeLessThanOrEqual(15);
      expect(Math.abs(m.inter_token_latency.avg - served.itl(s))).toBeLessThanOrEqual(1);
      expect(Math.abs(m.output_token_throughput_per_user.avg - 1000 / served.itl(s))).toBeLessThanOrEqual(10);
      expect(Math.abs(m.time_to_second_token.p50 - served.ttst(s))).toBeLessThanOrEqual(5);
    },
  );

  it("only reasoning (finish_reason length) is a success: no TTFO, every token reasoning", async () => {
    const m = await measure({ url: srv.url("reasoning-only", "/v1/chat/completions") });
    expect(m.output_sequence_length).toMatchObject({ min: TOTAL, max: TOTAL });
    expect(m.reasoning_token_count).toMatchObject({ min: TOTAL, max: TOTAL });
    expect(m.time_to_first_output_token.count).toBe(0);
    expectLatency("TTFT", m.time_to_first_token.p50, served.ttft(srv.of("reasoning-only")));
  });

  it("only tool-call deltas is a success: TTFT and TTFO at the first delta, the call's tokens counted", async () => {
    const m = await measure({ url: srv.url("tools-only", "/v1/chat/completions") });
    const s = srv.of("tools-only");
    expect(m.output_sequence_length).toMatchObject({ min: TOTAL, max: TOTAL });
    expect(m.reasoning_token_count.count).toBe(0);
    expectLatency("TTFT", m.time_to_first_token.p50, served.ttft(s));
    expectLatency("TTFO", m.time_to_first_output_token.p50, served.ttft(s));
    expect(Math.abs(m.inter_token_latency.avg - served.itl(s))).toBeLessThanOrEqual(1);
  });

  it("without usage, OSL and reasoning tokens are the tokenizer's count of the text: 30 and 20, streaming or not", async () => {
    const streamed = await measure({ url: srv.url("no-usage", "/v1/chat/completions") });
    const whole = await measure({ url: srv.url("whole", "/v1/chat/completions"), stream: false });
    for (const m of [streamed, whole]) {
      expect(m.output_sequence_length).toMatchObject({ min: TOTAL, max: TOTAL });
      expect(m.reasoning_token_count).toMatchObject({ min: REASONING, max: REASONING });
    }
    expect(Math.abs(streamed.inter_token_latency.avg - served.itl(srv.of("no-usage")))).toBeLessThanOrEqual(1);
    expect(whole.time_to_first_token.count).toBe(0);
  });

  it("a stream that ends without [DONE] is measured to its last token", async () => {
    const m = await measure({ url: srv.url("no-done", "/v1/chat/completions") });
    const s = srv.of("no-done");
    expect(m.output_sequence_length).toMatchObject({ min: TOTAL, max: TOTAL });
    expectLatency(
      "latency",
      m.request_latency.p50,
      percentile(
        s.map((r) => r.tokenAt.at(-1)! - r.arrivedAt),
        50,
      ),
    );
  });

  it("the agent engine in Node measures the same stream as the edge agents do", async () => {
    const run = await createRun({ url: srv.url("node-reasoning", "/v1/chat/completions") }, 0);
    const engine = new AgentEngine({
      transport: withRetries(httpTransport({ server: dev.url, runId: run.id, token: run.agentToken })),
      fetchTarget: (input, init) => fetch(input, init),
      resolveUrl: (spec) => spec.target.url,
      name: "node-engine",
    });
    await engine.join();
    expect(await engine.runSlice()).toBe("done");
    const m = (await results(run)).metrics;
    const s = srv.of("node-reasoning");
    expect(m.output_sequence_length).toMatchObject({ min: TOTAL, max: TOTAL });
    expect(m.reasoning_token_count).toMatchObject({ min: REASONING, max: REASONING });
    expectLatency("TTFT", m.time_to_first_token.p50, served.ttft(s));
    expectLatency("TTFO", m.time_to_first_output_token.p50, served.ttfo(s));
    expect(Math.abs(m.inter_token_latency.avg - served.itl(s))).toBeLessThanOrEqual(1);
  });
});

describe("every endpoint kind", () => {
  it("responses: reasoning_text then output_text deltas, usage from response.completed", async () => {
    const m = await measure({ api: "responses", url: srv.url("responses", "/v1/responses") });
    const s = srv.of("responses");
    expect(s[0]?.body).toMatchObject({ model: "m", max_output_tokens: TOTAL, stream: true });
    expect(m.output_sequence_length).toMatchObject({ min: TOTAL, max: TOTAL });
    expect(m.reasoning_token_count).toMatchObject({ min: REASONING, max: REASONING });
    expect(m.input_sequence_length.avg).toBe(16);
    expectLatency("TTFT", m.time_to_first_token.p50, served.ttft(s));
    expectLatency("TTFO", m.time_to_first_output_token.p50, served.ttfo(s));
    expect(Math.abs(m.inter_token_latency.avg - served.itl(s))).toBeLessThanOrEqual(1);
  });

  it("messages: thinking_delta then text_delta, input tokens from message_start, output tokens from message_delta", async () => {
    const m = await measure({ api: "messages", url: srv.url("messages", "/v1/messages"), apiKey: "sk-ant-test" });
    const s = srv.of("messages");
    expect(s[0]?.headers["x-api-key"]).toBe("sk-ant-test");
    expect(s[0]?.headers["anthropic-version"]).toBe("2023-06-01");
    expect(s[0]?.body).toMatchObject({ model: "m", max_tokens: TOTAL, stream: true });
    expect(m.output_sequence_length).toMatchObject({ min: TOTAL, max: TOTAL });
    expect(m.reasoning_token_count).toMatchObject({ min: REASONING, max: REASONING });
    expectLatency("TTFT", m.time_to_first_token.p50, served.ttft(s));
    expectLatency("TTFO", m.time_to_first_output_token.p50, served.ttfo(s));
    expect(Math.abs(m.inter_token_latency.avg - served.itl(s))).toBeLessThanOrEqual(1);
  });

  it("embeddings: latency and input tokens, no TTFT and no output", async () => {
    const m = await measure({ api: "embeddings", url: srv.url("embeddings", "/v1/embeddings"), stream: false });
    const s = srv.of("embeddings");
    expect(s[0]?.body).toEqual({ model: "m", input: expect.any(String) });
    expect(m.input_sequence_length.avg).toBe(16);
    expect(m.time_to_first_token.count).toBe(0);
    expect(m.output_sequence_length.count).toBe(0);
    expectLatency(
      "latency",
      m.request_latency.p50,
      percentile(
        s.map((r) => r.endedAt! - r.arrivedAt),
        50,
      ),
    );
  });

  it("template: any JSON API by a body template and the paths to its text and usage", async () => {
    const template = {
      body: { text: "{{prompt}}", limit: "{{max_tokens}}", stream: true },
      textPath: "text",
      streamTextPath: "token.text",
      usagePath: "usage",
    };
    const m = await measure({ api: "template", url: srv.url("template", "/generate"), template });
    const s = srv.of("template");
    expect(s[0]?.body).toMatchObject({ limit: TOTAL, stream: true });
    expect(s[0]?.body.text.split(" ")).toHaveLength(16);
    expect(m.output_sequence_length).toMatchObject({ min: TOTAL, max: TOTAL });
    expect(m.input_sequence_length.avg).toBe(16);
    expectLatency("TTFT", m.time_to_first_token.p50, served.ttft(s));
    expect(Math.abs(m.inter_token_latency.avg - served.itl(s))).toBeLessThanOrEqual(1);
  });
});
