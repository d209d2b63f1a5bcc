// What each endpoint kind (target.api) sends and where its text is, as AIPerf's endpoint
// parsers read them (ai-dynamo/aiperf, src/aiperf/endpoints/): for every streamed event or
// whole response, the reasoning text, the output text (answer and tool calls), the usage
// and whether it is an error or the stream's last event. agent/target.ts measures from
// these; nothing here knows about time.
//
// Output text includes tool calls (function name + arguments), since the model generated
// those tokens and the server's usage counts them; reasoning text is kept apart so TTFO
// and reasoning_token_count can tell it from the answer.

import type { Api, TargetSpec } from "../contract/spec";
import { fillTemplate, getPath } from "./json-path";
import type { ChatMessage } from "../contract/dataset";
import type { Job } from "./prompt";
import { joinMessages } from "./prompt";

export type LlmApi = Exclude<Api, "http">;

export interface Usage {
  promptTokens?: number;
  completionTokens?: number;
  reasoningTokens?: number;
}

/** One streamed event or one whole response, read. */
export interface Reading {
  reasoning: string;
  output: string;
  usage: Usage;
  /** The event or body carries an error object. */
  error: boolean;
  /** The stream's last event (it carries the final usage; nothing measured follows). */
  end: boolean;
}

/** Where builtin:mock serves each kind (mock/mock.ts). A template is measured against the mock's chat route. */
export const MOCK_PATHS: Record<Api, string> = {
  "openai-chat": "/mock/v1/chat/completions",
  "openai-completions": "/mock/v1/completions",
  http: "/mock/v1/chat/completions",
  embeddings: "/mock/v1/embeddings",
  responses: "/mock/v1/responses",
  messages: "/mock/v1/messages",
  template: "/mock/v1/chat/completions",
};

/** The mock's path for a kind: for edge agents (durable/LoadAgent.ts) and external ones (cli/agent.ts). */
export function mockPath(api: Api): string {
  return MOCK_PATHS[api];
}

// Anthropic's API refuses a request without a version; this is the one its docs use.
const ANTHROPIC_VERSION = "2023-06-01";

const obj = (v: unknown): Record<string, unknown> | undefined =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
// Arrays too: "0" reads choices[0].
const get = (o: unknown, key: string): unknown =>
  typeof o === "object" && o !== null && Object.hasOwn(o, key) ? (o as Record<string, unknown>)[key] : undefined;
const str = (v: unknown): string => (typeof v === "string" ? v : "");
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const count = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 10_000_000 ? v : undefined;

/**
 * OpenAI's, Anthropic's and the Responses API's usage shapes, read alike. Anthropic
 * reports cached prompt tokens apart from input_tokens; the prompt is all of them.
 */
export function readUsage(u: unknown): Usage {
  if (obj(u) === undefined) return {};
  const cached = (count(get(u, "cache_read_input_tokens")) ?? 0) + (count(get(u, "cache_creation_input_tokens")) ?? 0);
  const input = count(get(u, "input_tokens"));
  const out: Usage = {};
  const prompt = count(get(u, "prompt_tokens")) ?? (input === undefined ? undefined : input + cached);
  const completion = count(get(u, "completion_tokens")) ?? count(get(u, "output_tokens"));
  const reasoning =
    count(get(get(u, "completion_tokens_details"), "reasoning_tokens")) ?? count(get(get(u, "output_tokens_details"), "reasoning_tokens"));
  if (prompt !== undefined) out.promptTokens = prompt;
  if (completion !== undefined) out.completionTokens = completion;
  if (reasoning !== undefined) out.reasoningTokens = reasoning;
  return out;
}

const reading = (over: Partial<Reading> = {}): Reading => ({ reasoning: "", output: "", usage: {}, error: false, end: false, ...over });

/** Tool calls as AIPerf counts them: each one's function name and arguments (and the legacy function_call). */
function toolText(m: unknown): string {
  let text = "";
  for (const tc of list(get(m, "tool_calls"))) text += str(get(get(tc, "function"), "name")) + str(get(get(tc, "function"), "arguments"));
  const legacy = get(m, "function_call");
  return text + str(get(legacy, "name")) + str(get(legacy, "arguments"));
}

// Chat Completions: vLLM and SGLang stream reasoning as delta.reasoning_content (older)
// or delta.reasoning (newer), DeepSeek as reasoning_content.
function chat(o: unknown, streamed: boolean): Reading {
  const m = get(get(get(o, "choices"), "0"), streamed ? "delta" : "message");
  return reading({
    reasoning: str(get(m, "reasoning_content")) || str(get(m, "reasoning")),
    output: str(get(m, "content")) + toolText(m),
    usage: readUsage(get(o, "usage")),
    error: hasError(o),
  });
}

function completions(o: unknown): Reading {
  return reading({ output: str(get(get(get(o, "choices"), "0"), "text")), usage: readUsage(get(o, "usage")), error: hasError(o) });
}

const hasError = (o: unknown): boolean => get(o, "error") !== undefined && get(o, "error") !== null;

/**
 * The Responses API's stream: text, reasoning (full or summary) and function-call
 * argument deltas; the final usage arrives with response.completed, or
 * response.incomplete when max_output_tokens cut the answer short.
 */
function responsesEvent(o: unknown): Reading {
  const type = str(get(o, "type"));
  const delta = str(get(o, "delta"));
  switch (type) {
    case "response.output_text.delta":
    case "response.function_call_arguments.delta":
      return reading({ output: delta });
    case "response.reasoning_text.delta":
    case "response.reasoning_summary_text.delta":
      return reading({ reasoning: delta });
    case "response.completed":
    case "response.incomplete":
      return reading({ usage: readUsage(get(get(o, "response"), "usage")), end: true });
    case "response.failed":
    case "error":
      return reading({ error: true, end: true });
    default:
      return reading();
  }
}

function responsesWhole(o: unknown): Reading {
  let reasoning = "";
  let output = "";
  for (const item of list(get(o, "output"))) {
    const type = get(item, "type");
    if (type === "message") for (const part of list(get(item, "content"))) output += str(get(part, "text"));
    else if (type === "reasoning") {
      for (const part of [...list(get(item, "summary")), ...list(get(item, "content"))]) reasoning += str(get(part, "text"));
    } else if (type === "function_call") output += str(get(item, "name")) + str(get(item, "arguments"));
  }
  if (output === "" && reasoning === "") output = str(get(o, "output_text"));
  return reading({ reasoning, output, usage: readUsage(get(o, "usage")), error: hasError(o) });
}

/** Anthropic's stream: message_start carries input_tokens, message_delta the output_tokens so far. */
function messagesEvent(o: unknown): Reading {
  switch (get(o, "type")) {
    case "content_block_delta": {
      const d = get(o, "delta");
      const kind = get(d, "type");
      if (kind === "thinking_delta") return reading({ reasoning: str(get(d, "thinking")) });
      if (kind === "text_delta") return reading({ output: str(get(d, "text")) });
      if (kind === "input_json_delta") return reading({ output: str(get(d, "partial_json")) });
      return reading();
    }
    case "message_start":
      return reading({ usage: readUsage(get(get(o, "message"), "usage")) });
    case "message_delta":
      return reading({ usage: readUsage(get(o, "usage")) });
    case "message_stop":
      return reading({ end: true });
    case "error":
      return reading({ error: true, end: true });
    default:
      return reading();
  }
}

function messagesWhole(o: unknown): Reading {
  let reasoning = "";
  let output = "";
  for (const block of list(get(o, "content"))) {
    const type = get(block, "type");
    if (type === "thinking") reasoning += str(get(block, "thinking"));
    else if (type === "text") output += str(get(block, "text"));
    else if (type === "tool_use")
      output += str(get(block, "name")) + (get(block, "input") === undefined ? "" : JSON.stringify(get(block, "input")));
  }
  return reading({ reasoning, output, usage: readUsage(get(o, "usage")), error: get(o, "type") === "error" });
}

function templateReading(o: unknown, t: NonNullable<TargetSpec["template"]>, streamed: boolean): Reading {
  const text = getPath(o, streamed ? (t.streamTextPath ?? t.textPath) : t.textPath);
  return reading({
    output: typeof text === "string" ? text : "",
    usage: t.usagePath === undefined ? {} : readUsage(getPath(o, t.usagePath)),
    error: hasError(o),
  });
}

/** Reads one streamed event (`streamed`) or one whole response of `target`'s kind. */
export function read(target: TargetSpec, o: unknown, streamed: boolean): Reading {
  switch (target.api) {
    case "openai-chat":
      return chat(o, streamed);
    case "openai-completions":
      return completions(o);
    case "responses":
      return streamed ? responsesEvent(o) : responsesWhole(o);
    case "messages":
      return streamed ? messagesEvent(o) : messagesWhole(o);
    case "template":
      return target.template ? templateReading(o, target.template, streamed) : reading();
    case "embeddings":
    case "http":
      return reading({ usage: readUsage(get(o, "usage")), error: hasError(o) });
  }
}

/** An embeddings answer is a success when it has at least one vector. */
export function hasEmbeddings(o: unknown): boolean {
  return list(get(o, "data")).length > 0;
}

/**
 * A job's conversation for the chat-shaped APIs: its dataset messages, or its prompt as
 * one user message.
 */
function conversation(job: Job): ChatMessage[] {
  return job.messages ?? [{ role: "user", content: job.prompt }];
}

/**
 * Anthropic's Messages API takes no "system" role in `messages`: system text goes in the
 * top-level `system` field, and the messages keep their order without it.
 */
function anthropicMessages(job: Job): { system?: string; messages: ChatMessage[] } {
  const all = conversation(job);
  const system = all.filter((m) => m.role === "system").map((m) => m.content);
  const messages = all.filter((m) => m.role !== "system");
  return system.length > 0 ? { system: system.join("\n\n"), messages } : { messages };
}

/**
 * The JSON body for one job. OpenAI's APIs get `max_tokens` only: `max_completion_tokens`
 * is newer and refused by several OpenAI-compatible servers, while every server we know
 * still honours max_tokens. Usage in OpenAI streams needs stream_options.include_usage;
 * the Responses and Messages APIs always send it. A job with messages sends them as they
 * are where the API takes a conversation (chat, responses, messages), and their contents
 * joined where it takes one text (completions, embeddings, a template's {{prompt}}).
 */
export function requestBody(target: TargetSpec, job: Job): unknown {
  const model = target.model ?? "";
  const stream = target.stream;
  const text = job.messages === undefined ? job.prompt : joinMessages(job.messages);
  const openaiLimits = { max_tokens: job.outputTokens, stream, ...(stream ? { stream_options: { include_usage: true } } : {}) };
  switch (target.api) {
    case "openai-chat":
      return { model, messages: conversation(job), ...openaiLimits };
    case "openai-completions":
      return { model, prompt: text, ...openaiLimits };
    case "embeddings":
      return { model, input: text };
    case "responses":
      // The Responses API takes a plain string or a list of role/content messages as input.
      return { model, input: job.messages ?? job.prompt, max_output_tokens: job.outputTokens, stream };
    case "messages":
      return { model, max_tokens: job.outputTokens, ...anthropicMessages(job), stream };
    case "template":
      return fillTemplate(target.template?.body ?? {}, { prompt: text, max_tokens: job.outputTokens, model });
    case "http":
      return undefined;
  }
}

/** Headers a kind needs beyond the spec's: Anthropic's key header and API version. */
export function kindHeaders(target: TargetSpec, headers: Headers): void {
  if (target.api !== "messages") {
    if (target.apiKey !== undefined) headers.set("authorization", `Bearer ${target.apiKey}`);
    return;
  }
  if (target.apiKey !== undefined) headers.set("x-api-key", target.apiKey);
  if (!headers.has("anthropic-version")) headers.set("anthropic-version", ANTHROPIC_VERSION);
}
