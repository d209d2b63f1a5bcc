// target, the endpoint a run measures (README, "The API"): its URL, which API it speaks,
// the headers and key sent with every request, and the mock's knobs. Headers are checked
// when the spec is parsed, not when agents send them: a bad one would make fetch() throw
// in every agent, or smuggle a request. The URL is checked against the operator's
// allowlist after the schema (parseRunSpec, spec.ts), where the Config is known.

import { z } from "zod";
import { MAX_BODY_BYTES, MAX_URL_LENGTH, fail, int, num, utf8 } from "./spec-fields";
import { TemplateSchema, templatePlaceholders } from "./spec-template";

export const MOCK_URL = "builtin:mock";

const MAX_HEADERS = 64;
const MAX_HEADER_VALUE_BYTES = 8 * 1024;
// Never exposed: hop-by-hop headers and Host are the runtime's to set; letting a spec set
// them would allow request smuggling or a Host that differs from the allowed URL.
const FORBIDDEN_HEADERS = new Set([
  "host",
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "content-length",
]);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const CR_LF_NUL = /[\r\n\0]/;
// A header value must be a ByteString without controls (tab allowed), or fetch() throws.
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

const BODYLESS = new Set(["GET", "HEAD"]);

const HeadersSchema = z.record(z.string(), z.string()).superRefine((headers, ctx) => {
  const names = Object.keys(headers);
  if (names.length > MAX_HEADERS) fail(ctx, [], `must have at most ${MAX_HEADERS} headers`, "out_of_range", 422);
  const seen = new Set<string>();
  for (const name of names) {
    // Names that fail these checks are not echoed: they could carry anything.
    if (CR_LF_NUL.test(name)) return fail(ctx, [], "has a header name containing CR, LF or NUL", "invalid_header");
    if (!TOKEN.test(name)) return fail(ctx, [], "has a header name that is not an RFC 7230 token", "invalid_header");
    const lower = name.toLowerCase();
    if (FORBIDDEN_HEADERS.has(lower)) return fail(ctx, [name], "is a hop-by-hop or Host header and cannot be set", "invalid_header");
    if (seen.has(lower)) return fail(ctx, [name], "is given twice (header names are case-insensitive)", "invalid_header");
    seen.add(lower);
    const value = headers[name] ?? "";
    if (CR_LF_NUL.test(value)) return fail(ctx, [name], "has a value containing CR, LF or NUL", "invalid_header");
    if (!HEADER_VALUE.test(value)) return fail(ctx, [name], "has a value with a character not allowed in an HTTP header", "invalid_header");
    if (utf8.encode(value).length > MAX_HEADER_VALUE_BYTES) {
      return fail(ctx, [name], `has a value longer than ${MAX_HEADER_VALUE_BYTES} bytes`, "out_of_range", 422);
    }
  }
});

/**
 * What target.api may be. AIPerf's --endpoint-type names where it has one (embeddings,
 * responses, messages, template); the first two keep their older names.
 */
export const APIS = ["openai-chat", "openai-completions", "http", "embeddings", "responses", "messages", "template"] as const;
export type Api = (typeof APIS)[number];

/**
 * The BPE encodings edgeperf ships (gpt-tokenizer), which target.tokenizer may name: token
 * counts without `usage`, synthetic prompts and the mock's `usage` all use one of them.
 * Each costs Worker bundle size: cl100k_base about 0.45 MiB gzipped, o200k_base about 1.1 MiB.
 */
export const TOKENIZERS = ["cl100k_base", "o200k_base"] as const;
export type TokenizerName = (typeof TOKENIZERS)[number];
export const DEFAULT_TOKENIZER: TokenizerName = "cl100k_base";

// The mock's optional knobs have no default here, so a spec that does not use them
// parses to what it did before they existed; the mock's own defaults apply.
const MockSchema = z.strictObject({
  ttftMs: num(0, 60_000).default(20),
  itlMs: num(0, 10_000).default(5),
  errorRate: num(0, 1).default(0),
  // Reasoning tokens streamed before the answer, counted within max_tokens.
  reasoningTokens: int(0, 4096).optional(),
  // The answer is a tool call whose arguments stream instead of content.
  toolCalls: z.boolean().optional(),
});

export const TargetSchema = z
  .strictObject({
    url: z.string().min(1).max(MAX_URL_LENGTH),
    api: z.enum(APIS).default("openai-chat"),
    model: z.string().min(1).max(256).optional(),
    stream: z.boolean().default(false),
    headers: HeadersSchema.default({}),
    apiKey: z
      .string()
      .min(1)
      .max(4096)
      .regex(HEADER_VALUE, { error: "must not contain control characters or characters above U+00FF" })
      .optional(),
    timeoutSeconds: num(1, 3600).default(600),
    // Extensions for api "http".
    method: z.enum(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]).optional(),
    body: z
      .string()
      .refine((b) => utf8.encode(b).length <= MAX_BODY_BYTES, {
        error: `must be at most ${MAX_BODY_BYTES} bytes`,
        params: { code: "out_of_range", status: 422 },
      })
      .optional(),
    mock: MockSchema.optional(),
    // Extension for api "template".
    template: TemplateSchema.optional(),
    tokenizer: z.enum(TOKENIZERS).optional(),
  })
  .transform((t, ctx) => {
    const isMock = t.url === MOCK_URL;
    const http = t.api === "http";
    const { model, method, body, mock, template, tokenizer, ...rest } = t;
    if (mock !== undefined && !isMock) return fail(ctx, ["mock"], `is only allowed with url "${MOCK_URL}"`);
    if (!http && method !== undefined) return fail(ctx, ["method"], `is only allowed with api "http"`);
    if (!http && body !== undefined) return fail(ctx, ["body"], `is only allowed with api "http"`);
    if (body !== undefined && BODYLESS.has(method ?? "GET")) return fail(ctx, ["body"], "is not allowed with method GET or HEAD");
    if (t.api === "template" && template === undefined) return fail(ctx, ["template"], `is required for api "template"`);
    if (t.api !== "template" && template !== undefined) return fail(ctx, ["template"], `is only allowed with api "template"`);
    if (http && tokenizer !== undefined) return fail(ctx, ["tokenizer"], `is not used with api "http", which counts no tokens`);
    // An embeddings server answers one JSON body; there is nothing to stream.
    if (t.api === "embeddings" && t.stream) return fail(ctx, ["stream"], `is not supported with api "embeddings"`);
    // A template names the model itself unless it uses {{model}}.
    const needsModel = t.api === "template" ? templatePlaceholders(template?.body).has("model") : !http;
    if (needsModel && model === undefined && !isMock) {
      return fail(
        ctx,
        ["model"],
        t.api === "template" ? "is required: target.template.body uses {{model}}" : `is required for api "${t.api}"`,
      );
    }
    return {
      ...rest,
      ...(model !== undefined ? { model } : isMock && !http ? { model: "mock" } : {}),
      ...(http ? { method: method ?? "GET" } : {}),
      ...(body !== undefined ? { body } : {}),
      ...(template !== undefined ? { template } : {}),
      ...(tokenizer !== undefined ? { tokenizer } : {}),
      ...(isMock ? { mock: mock ?? MockSchema.parse({}) } : {}),
    };
  });
