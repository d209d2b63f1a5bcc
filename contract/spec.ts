// The RunSpec (README, "The API"): one strict zod schema and the RunSpec type derived from
// it (how a refused spec is told, naming the field: spec-errors.ts). Checks that need
// the operator's Config (allowed targets, caps) run after the schema, on typed data.
// Secrets in a spec (apiKey, header values, URL query strings) never appear in an error
// message; publicSpec() is the only form of a spec that may be echoed.

import { z } from "zod";
import type { Config } from "./config";
import { StatusError } from "./errors";
import { forbiddenKeyError, zodToStatus } from "./spec-errors";
import { ThresholdsSchema } from "./thresholds";
import { checkTargetUrl, redactUrl } from "./targets";
import { GoodputSchema } from "./goodput";
import { DATASET_ID, SAMPLINGS } from "./dataset";

export { parseThreshold, THRESHOLD_STATS } from "./thresholds";
export type { Threshold, ThresholdOp, ThresholdStat } from "./thresholds";

export const MOCK_URL = "builtin:mock";
export const REGIONS = ["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"] as const;

const MAX_HEADERS = 64;
const MAX_HEADER_VALUE_BYTES = 8 * 1024;
const MAX_BODY_BYTES = 256 * 1024;
const MAX_URL_LENGTH = 8192;
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

const utf8 = new TextEncoder();

// Custom issues carry the API error they stand for; see zodToStatus (spec-errors.ts). Returns z.NEVER so
// a transform can `return fail(…)`.
function fail(ctx: z.RefinementCtx, path: PropertyKey[], message: string, code = "invalid_spec", status = 400): never {
  ctx.addIssue({ code: "custom", path, message, params: { code, status } });
  return z.NEVER;
}

// Range messages name the whole allowed range, not just the bound that was crossed.
// Returning undefined for a missing value lets the parse-wide map say "is required".
function rangeError(kind: string, min: number, max: number | undefined) {
  const text = `must be ${kind} ${max === undefined ? `>= ${min}` : `from ${min} to ${max}`}`;
  return (iss: { input?: unknown }) => (iss.input === undefined ? undefined : text);
}

// Integer-ness is a refinement rather than z.int(), which would refuse 1e20 as out of
// range: an integer that large is still an integer, and the cap check names the cap.
function int(min: number, max?: number) {
  const error = rangeError("an integer", min, max);
  const s = z.number({ error }).refine(Number.isInteger, { error, abort: true }).min(min, { error });
  return max === undefined ? s : s.max(max, { error });
}

function num(min: number, max?: number) {
  const error = rangeError("a number", min, max);
  const s = z.number({ error }).min(min, { error });
  return max === undefined ? s : s.max(max, { error });
}

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

/** The placeholders a template body may use; anything else in double braces is refused. */
export const TEMPLATE_PLACEHOLDERS = ["prompt", "max_tokens", "model"] as const;
/** `{{name}}` in a template body, spaces inside the braces allowed. */
export const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;
// A dotted path into a JSON document: keys and array indexes, e.g. choices.0.delta.content.
const JSON_PATH = z
  .string()
  .max(256)
  .regex(/^[A-Za-z0-9_$@-]+(\.[A-Za-z0-9_$@-]+){0,15}$/, {
    error: "must be a dotted path of at most 16 keys or indexes, e.g. choices.0.message.content",
  });

// Deeper than any real API's body; filling a template recurses once per level.
const MAX_TEMPLATE_DEPTH = 32;

/** The placeholder names used in a JSON value's strings, and how deep it nests (walked without recursion). */
function walkTemplate(value: unknown): { names: Set<string>; depth: number } {
  const names = new Set<string>();
  let depth = 0;
  const stack: [unknown, number][] = [[value, 0]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [v, d] = top;
    depth = Math.max(depth, d);
    if (typeof v === "string") for (const m of v.matchAll(PLACEHOLDER)) names.add(m[1] ?? "");
    else if (typeof v === "object" && v !== null && d < MAX_TEMPLATE_DEPTH + 1) {
      for (const x of Array.isArray(v) ? v : [...Object.keys(v), ...Object.values(v)]) stack.push([x, d + 1]);
    }
  }
  return { names, depth };
}

/** The placeholder names a template body uses. */
export function templatePlaceholders(value: unknown): Set<string> {
  return walkTemplate(value).names;
}

// api "template": any JSON API measured by a body template and where its text is.
const TemplateSchema = z
  .strictObject({
    body: z.record(z.string(), z.unknown()),
    textPath: JSON_PATH,
    streamTextPath: JSON_PATH.optional(),
    usagePath: JSON_PATH.optional(),
  })
  .superRefine((t, ctx) => {
    const { names, depth } = walkTemplate(t.body);
    if (depth > MAX_TEMPLATE_DEPTH) return fail(ctx, ["body"], `must nest at most ${MAX_TEMPLATE_DEPTH} levels deep`, "out_of_range", 422);
    if (utf8.encode(JSON.stringify(t.body)).length > MAX_BODY_BYTES) {
      return fail(ctx, ["body"], `must be at most ${MAX_BODY_BYTES} bytes as JSON`, "out_of_range", 422);
    }
    const unknown = [...names].find((n) => !(TEMPLATE_PLACEHOLDERS as readonly string[]).includes(n));
    // The unknown name is not echoed: a body may carry anything.
    if (unknown !== undefined) return fail(ctx, ["body"], "uses a placeholder other than {{prompt}}, {{max_tokens}} and {{model}}");
    if (!names.has("prompt")) return fail(ctx, ["body"], "must use {{prompt}} somewhere, or no prompt is ever sent");
  });

const TargetSchema = z
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

// Draws are clamped to [1, 262,144] tokens (agent/prompt.ts): a spread wider than the
// largest mean only piles draws onto the clamps, and an unbounded one could overflow.
const MAX_TOKEN_MEAN = 131_072;

function tokens(mean: number) {
  return z.strictObject({ mean: int(1, MAX_TOKEN_MEAN).default(mean), stddev: num(0, MAX_TOKEN_MEAN).default(0) }).prefault({});
}

// Shared prefixes are drawn per request from a pool this large; only its size is stored,
// each prefix's text is a pure function of (seed, index) (agent/prompt.ts).
const MAX_PREFIX_PROMPTS = 1_000_000;

const DatasetRefSchema = z.strictObject({
  id: z.string().regex(DATASET_ID, { error: 'must be "ds_" followed by 64 lowercase hex digits, as POST /v1/datasets answers' }),
  sampling: z.enum(SAMPLINGS).default("sequential"),
});

const WorkloadSchema = z
  .strictObject({
    inputTokens: tokens(550),
    outputTokens: tokens(128),
    seed: int(0, 2 ** 32 - 1).default(0),
    // An uploaded dataset's prompts instead of synthetic ones (README, "Datasets and workloads").
    dataset: DatasetRefSchema.optional(),
    // AIPerf's --num-prefix-prompts and --prefix-prompt-length: every prompt starts with one
    // of `prompts` prefixes of `tokens` tokens; inputTokens is the part after it, as in AIPerf.
    sharedPrefix: z.strictObject({ tokens: int(1, MAX_TOKEN_MEAN), prompts: int(1, MAX_PREFIX_PROMPTS) }).optional(),
    // A mooncake_trace's timestamps divided by this. The dataset's type is known only when
    // the run is created (worker), which refuses it for other types; here only its range.
    replaySpeedup: num(0.001, 10_000).optional(),
  })
  .superRefine((w, ctx) => {
    if (w.replaySpeedup !== undefined && w.dataset === undefined) {
      fail(ctx, ["replaySpeedup"], "is only allowed with workload.dataset (a mooncake_trace dataset)");
    }
    if (w.sharedPrefix !== undefined && w.dataset !== undefined) {
      fail(ctx, ["sharedPrefix"], "is only allowed with synthetic prompts, not with workload.dataset");
    }
  });

// A slower rate is not a benchmark: at 0.001 requests/s the longest run any operator can
// allow (MAX_DURATION_SECONDS is at most 7 days) sends about 600 requests. Without a floor,
// rates near the smallest double make the next slot time (1000 / rate ms) Infinity.
const MIN_RATE = 0.001;
// Durations are kept in whole milliseconds (run-plan.ts rounds): anything shorter would
// round to a run that ends before it starts.
const MIN_DURATION_SECONDS = 0.001;

// Upper bounds: fields without one in the schema (concurrency, maxConcurrency, rate,
// stop.requests, stop.durationSeconds, warmup.requests, agents.edge) are bounded by the
// operator's caps in checkCaps, which every spec passes, and config.ts bounds every cap.
// Left to checkCaps, an oversized value is told the cap it crossed.

// Either closed-loop (concurrency) or open-loop (rate) load; the output is a union so
// code downstream narrows with `"rate" in load` and never sees a mix of both.
const LoadSchema = z
  .strictObject({
    concurrency: int(1).optional(),
    rate: num(MIN_RATE).optional(),
    arrival: z.enum(["poisson", "constant", "gamma"]).optional(),
    // Gamma arrivals' shape (AIPerf's --arrival-smoothness): 1 is Poisson, smaller is
    // burstier, larger is more even. Bounded so a gap's draw stays fast and finite.
    smoothness: num(0.01, 1000).optional(),
    maxConcurrency: int(1).optional(),
    // Concurrency, or rate, rises linearly from nothing to its target over this long.
    rampSeconds: num(0, 3600).optional(),
  })
  .transform((l, ctx) => {
    const ramp = l.rampSeconds !== undefined && l.rampSeconds > 0 ? { rampSeconds: l.rampSeconds } : {};
    if (l.concurrency !== undefined) {
      if (l.rate !== undefined) return fail(ctx, [], "must have either concurrency or rate, not both");
      if (l.arrival !== undefined) return fail(ctx, ["arrival"], "is only allowed with rate");
      if (l.smoothness !== undefined) return fail(ctx, ["smoothness"], 'is only allowed with rate and arrival "gamma"');
      if (l.maxConcurrency !== undefined) return fail(ctx, ["maxConcurrency"], "is only allowed with rate");
      return { concurrency: l.concurrency, ...ramp };
    }
    if (l.rate === undefined) return fail(ctx, [], "must have either concurrency or rate");
    if (l.smoothness !== undefined && l.arrival !== "gamma") return fail(ctx, ["smoothness"], 'is only allowed with arrival "gamma"');
    const arrival = l.arrival ?? "constant";
    return {
      rate: l.rate,
      arrival,
      ...(arrival === "gamma" ? { smoothness: l.smoothness ?? 1 } : {}),
      ...(l.maxConcurrency !== undefined ? { maxConcurrency: l.maxConcurrency } : {}),
      ...ramp,
    };
  });

const StopSchema = z
  .strictObject({ requests: int(1).optional(), durationSeconds: num(MIN_DURATION_SECONDS).optional() })
  .superRefine((s, ctx) => {
    if (s.requests === undefined && s.durationSeconds === undefined) {
      fail(ctx, [], "needs requests or durationSeconds (or both): a run must end", "no_stop_condition");
    }
  });

const AgentsSchema = z.strictObject({
  edge: int(0).optional(),
  regions: z
    .array(z.enum(REGIONS))
    .max(REGIONS.length)
    .superRefine((regions, ctx) => {
      const dup = regions.findIndex((r, i) => regions.indexOf(r) !== i);
      if (dup >= 0) fail(ctx, [dup], "is a duplicate region");
    })
    .optional(),
});

const RunSpecSchema = z.strictObject({
  target: TargetSchema,
  workload: WorkloadSchema.prefault({}),
  load: LoadSchema.prefault({ concurrency: 1 }),
  stop: StopSchema.prefault({}), // a missing stop reaches the refinement as {}: no_stop_condition
  warmup: z.strictObject({ requests: int(0).default(0) }).prefault({}),
  drainTimeoutSeconds: num(0, 3600).default(30),
  // A run with no live agent for this long ends (start_timeout before its first credit, no_agents after).
  agentTimeoutSeconds: int(1, 86_400).default(300),
  graceSeconds: int(0, 300), // defaulted from Config in parseRunSpec
  // AIPerf's --slice-duration: the width of the time series' buckets, which are the
  // timeslices of the exports (at most 240; a longer run merges neighbours).
  timesliceSeconds: num(0.1, 3600).default(1),
  agents: AgentsSchema.optional(),
  thresholds: ThresholdsSchema.optional(),
  // AIPerf's --goodput: per-request limits that make a successful request good.
  goodput: GoodputSchema.optional(),
  abortOnThresholdFail: z.boolean().default(false),
  notify: z.strictObject({ url: z.string().min(1).max(MAX_URL_LENGTH) }).optional(),
});

export type RunSpec = z.output<typeof RunSpecSchema>;
export type LoadSpec = RunSpec["load"];
export type TargetSpec = RunSpec["target"];
export type WorkloadSpec = RunSpec["workload"];

function checkCap(path: string, value: number | undefined, cap: number, name: string): void {
  if (value !== undefined && value > cap) {
    throw new StatusError(422, "exceeds_cap", `${path} is ${value}, above this service's cap ${name}=${cap}.`);
  }
}

function checkCaps(spec: RunSpec, cfg: Config): void {
  const { load, stop, warmup } = spec;
  if ("rate" in load) {
    checkCap("load.rate", load.rate, cfg.maxRate, "MAX_RATE");
    checkCap("load.maxConcurrency", load.maxConcurrency, cfg.maxConcurrency, "MAX_CONCURRENCY");
  } else {
    checkCap("load.concurrency", load.concurrency, cfg.maxConcurrency, "MAX_CONCURRENCY");
  }
  checkCap("stop.requests", stop.requests, cfg.maxRequests, "MAX_REQUESTS");
  checkCap("warmup.requests", warmup.requests, cfg.maxRequests, "MAX_REQUESTS");
  // Warmup requests hit the target too, so they count against the same budget.
  if (stop.requests !== undefined) {
    checkCap("stop.requests + warmup.requests", stop.requests + warmup.requests, cfg.maxRequests, "MAX_REQUESTS");
  }
  checkCap("stop.durationSeconds", stop.durationSeconds, cfg.maxDurationSeconds, "MAX_DURATION_SECONDS");
  checkCap("agents.edge", spec.agents?.edge, cfg.maxAgents, "MAX_AGENTS");
}

export function parseRunSpec(body: unknown, cfg: Config): RunSpec {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new StatusError(400, "invalid_spec", "The run spec must be a JSON object.");
  }
  // Checked here too, not only in readJson: a spec may come from elsewhere (a file, a test).
  const forbidden = forbiddenKeyError(body);
  if (forbidden) throw forbidden;
  const input: Record<string, unknown> = { ...body };
  if (input.graceSeconds === undefined) input.graceSeconds = cfg.graceSecondsDefault;
  const parsed = RunSpecSchema.safeParse(input);
  if (!parsed.success) throw zodToStatus(parsed.error);
  const spec = parsed.data;
  checkPromptless(spec);
  // The checked, normalized href is stored so the URL fetched is exactly the URL checked.
  if (spec.target.url !== MOCK_URL) spec.target.url = checkTargetUrl(spec.target.url, cfg.allowedTargets, "target").href;
  if (spec.notify) spec.notify.url = checkTargetUrl(spec.notify.url, cfg.allowedTargets, "notify").href;
  checkCaps(spec, cfg);
  return spec;
}

// api "http" sends target.body as it is: there is no prompt for a dataset or a prefix to go into.
function checkPromptless(spec: RunSpec): void {
  if (spec.target.api !== "http") return;
  for (const field of ["dataset", "sharedPrefix"] as const) {
    if (spec.workload[field] !== undefined) {
      throw new StatusError(400, "invalid_spec", `workload.${field} is not allowed with api "http", which sends no prompt.`);
    }
  }
}

// The spec as it may be shown to anyone holding a read token, or logged.
export function publicSpec(spec: RunSpec) {
  const { apiKey, headers, body, template, ...target } = spec.target;
  return {
    ...spec,
    target: {
      ...target,
      url: redactUrl(target.url),
      hasApiKey: apiKey !== undefined,
      headers: Object.fromEntries(Object.keys(headers).map((name) => [name, "REDACTED"])),
      ...(body !== undefined ? { body: "REDACTED" } : {}),
      // A template body is a request body like api "http"'s: some APIs take their key in it.
      ...(template !== undefined ? { template: { ...template, body: "REDACTED" } } : {}),
    },
    // Webhook URLs (Slack, Discord…) carry their secret in the path.
    ...(spec.notify ? { notify: { url: redactUrl(spec.notify.url, { path: true }) } } : {}),
  };
}

export type PublicRunSpec = ReturnType<typeof publicSpec>;
