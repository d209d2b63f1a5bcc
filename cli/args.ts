// Flags → RunSpec (README, "The API"). Flag names follow NVIDIA AIPerf's where AIPerf has one.
// Values are only parsed (a number is a number), never range-checked: the server
// validates the spec and its message is what the user sees, so the two never disagree.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { ParseArgsConfig } from "node:util";
import { UsageError, oneLine } from "./errors.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;

export const COMMON_FLAGS = {
  server: { type: "string" },
  token: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies Options;

export const SPEC_FLAGS = {
  url: { type: "string" },
  model: { type: "string", short: "m" },
  "endpoint-type": { type: "string" },
  tokenizer: { type: "string" },
  streaming: { type: "boolean" },
  concurrency: { type: "string" },
  "request-rate": { type: "string" },
  "arrival-pattern": { type: "string" },
  "request-count": { type: "string" },
  "benchmark-duration": { type: "string" },
  "warmup-request-count": { type: "string" },
  isl: { type: "string" },
  "isl-stddev": { type: "string" },
  osl: { type: "string" },
  "osl-stddev": { type: "string" },
  "random-seed": { type: "string" },
  "api-key": { type: "string" },
  header: { type: "string", short: "H", multiple: true },
  "request-timeout-seconds": { type: "string" },
  "mock-ttft-ms": { type: "string" },
  "mock-itl-ms": { type: "string" },
  "mock-error-rate": { type: "string" },
  "edge-agents": { type: "string" },
  regions: { type: "string" },
  grace: { type: "string" },
  "drain-timeout": { type: "string" },
  "slice-duration": { type: "string" },
  threshold: { type: "string", multiple: true },
  "abort-on-threshold-fail": { type: "boolean" },
  spec: { type: "string" },
  out: { type: "string" },
} as const satisfies Options;

/**
 * `run`'s dataset (README, "Datasets and workloads"), AIPerf's names: the file is uploaded
 * by cli/dataset.ts before the run is created; only the sampling is a RunSpec field here.
 * `--dataset-sampling` is short for AIPerf's `--dataset-sampling-strategy`.
 */
export const DATASET_FLAGS = {
  "input-file": { type: "string" },
  "custom-dataset-type": { type: "string" },
  "sharegpt-multi-turn": { type: "boolean" },
  "dataset-sampling": { type: "string" },
  "dataset-sampling-strategy": { type: "string" },
  "fixed-schedule": { type: "boolean" },
  "replay-speedup": { type: "string" },
  "shared-system-prompt-length": { type: "string" },
  "prefix-prompt-length": { type: "string" },
  "num-prefix-prompts": { type: "string" },
} as const satisfies Options;

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Parsed {
  values: Values;
  positionals: string[];
}

/** Edit distance with adjacent transpositions ("optimal string alignment"). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!;
      const up = d[i - 1]!;
      row[j] = Math.min(up[j]! + 1, row[j - 1]! + 1, up[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * What a mistyped word most likely meant: the one candidate it begins (`--request-c` →
 * `--request-count`), else the nearest within a typo or two for its length; else null.
 */
export function suggest(word: string, candidates: readonly string[]): string | null {
  const w = word.toLowerCase();
  if (w.length >= 3) {
    const extending = candidates.filter((c) => c.startsWith(w));
    if (extending.length === 1) return extending[0] ?? null;
  }
  let best: string | null = null;
  let bestDistance = Math.max(1, Math.floor(w.length / 3)) + 1;
  for (const c of candidates) {
    const d = distance(w, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

/** parseArgs with its errors turned into one-line usage errors. */
export function parseFlags(argv: string[], options: Options, positionals: { min: number; max: number; names: string }): Parsed {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    // Node's messages may go on to explain `--` at length; the first sentence says it all.
    let msg = e instanceof Error ? (e.message.split(/(?<=\.) /)[0] ?? e.message) : String(e);
    const unknown = (e as { code?: unknown }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" ? /'--([^'=]+)/.exec(msg)?.[1] : undefined;
    const meant = unknown === undefined ? null : suggest(unknown, Object.keys(options));
    if (meant !== null) msg = `${msg.replace(/\.$/, "")}; did you mean --${meant}?`;
    throw new UsageError(oneLine(msg));
  }
  const values = parsed.values as Values;
  if (!values.help) {
    const n = parsed.positionals.length;
    if (n < positionals.min) throw new UsageError(`missing ${positionals.names}`);
    if (n > positionals.max) throw new UsageError(`unexpected argument "${oneLine(parsed.positionals[positionals.max] ?? "", 80)}"`);
  }
  return { values, positionals: parsed.positionals };
}

export function str(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

export function num(values: Values, name: string): number | undefined {
  const v = str(values, name);
  if (v === undefined) return undefined;
  const n = v.trim() === "" ? Number.NaN : Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} expects a number, got "${oneLine(v, 40)}"`);
  return n;
}

// AIPerf's --endpoint-type names, and ours (target.api) where they differ.
const ENDPOINT_TYPES: Record<string, string> = {
  chat: "openai-chat",
  completions: "openai-completions",
  embeddings: "embeddings",
  responses: "responses",
  messages: "messages",
  template: "template",
  http: "http",
  "openai-chat": "openai-chat",
  "openai-completions": "openai-completions",
};

const THRESHOLD = /^\s*([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)?)\s*(<=|>=|==|<|>)\s*(\S.*)$/;

/** "time_to_first_token.p99<500" → ["time_to_first_token.p99", "<500"]; the server checks names and numbers. */
export function parseThresholdFlag(expr: string): [string, string] {
  const m = THRESHOLD.exec(expr);
  if (!m?.[1] || !m[2] || !m[3]) {
    throw new UsageError(`--threshold expects METRIC[.STAT]<OP><NUMBER>, e.g. "time_to_first_token.p99<500" (got "${oneLine(expr, 60)}")`);
  }
  return [m[1], `${m[2]}${m[3].trim()}`];
}

function parseHeader(h: string): [string, string] {
  const i = h.indexOf(":");
  if (i <= 0) throw new UsageError(`--header expects "Name: value" (got "${oneLine(h, 60)}")`);
  return [h.slice(0, i).trim(), h.slice(i + 1).trim()];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** Fields set in `over` win; objects merge field by field; undefined never overrides. */
export function merge(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const b = out[k];
    out[k] = isObj(b) && isObj(v) ? merge(b, v) : v;
  }
  return out;
}

/** Drops undefined fields and objects left empty, so only what a flag set is sent. */
function compact(o: Obj): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    if (isObj(v)) {
      const c = compact(v);
      if (Object.keys(c).length > 0) out[k] = c;
    } else out[k] = v;
  }
  return out;
}

export function readSpecFile(path: string): Obj {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new UsageError(
      `cannot read --spec ${path}: ${code === "ENOENT" ? "no such file" : oneLine(e instanceof Error ? e.message : String(e), 120)}`,
    );
  }
  let spec: unknown;
  try {
    spec = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--spec ${path} is not valid JSON: ${oneLine(e instanceof Error ? e.message : String(e), 160)}`);
  }
  if (!isObj(spec)) throw new UsageError(`--spec ${path} must hold a JSON object (a RunSpec)`);
  return spec;
}

/** The RunSpec the flags describe, laid over `base` (from --spec or a command's defaults). */
export function buildSpec(values: Values, base: Obj = {}): Obj {
  const endpoint = str(values, "endpoint-type");
  const api = endpoint === undefined ? undefined : ENDPOINT_TYPES[endpoint];
  if (endpoint !== undefined && api === undefined)
    throw new UsageError(
      `--endpoint-type must be chat, completions, embeddings, responses, messages, template or http (got "${oneLine(endpoint, 40)}")`,
    );

  const headers = (values.header as string[] | undefined)?.map(parseHeader);
  const thresholds = (values.threshold as string[] | undefined)?.map(parseThresholdFlag);
  const regions = str(values, "regions")
    ?.split(",")
    .map((r) => r.trim())
    .filter((r) => r !== "");

  const concurrency = num(values, "concurrency");
  const rate = num(values, "request-rate");
  const arrival = str(values, "arrival-pattern");
  // AIPerf: --request-rate with --concurrency caps the requests in flight; --concurrency
  // alone is closed-loop. A load flag replaces the spec file's load; --arrival-pattern
  // alone only adjusts it.
  let load: Obj | undefined;
  if (rate !== undefined) load = compact({ rate, arrival, maxConcurrency: concurrency });
  else if (concurrency !== undefined) load = compact({ concurrency, arrival });
  else if (arrival !== undefined) load = { ...(isObj(base.load) ? base.load : {}), arrival };

  const flags = compact({
    target: {
      url: str(values, "url"),
      api,
      model: str(values, "model"),
      // The server checks the name against the encodings it ships.
      tokenizer: str(values, "tokenizer"),
      stream: values.streaming === true ? true : undefined,
      apiKey: str(values, "api-key"),
      headers: headers ? Object.fromEntries(headers) : undefined,
      timeoutSeconds: num(values, "request-timeout-seconds"),
      mock: { ttftMs: num(values, "mock-ttft-ms"), itlMs: num(values, "mock-itl-ms"), errorRate: num(values, "mock-error-rate") },
    },
    workload: {
      inputTokens: { mean: num(values, "isl"), stddev: num(values, "isl-stddev") },
      outputTokens: { mean: num(values, "osl"), stddev: num(values, "osl-stddev") },
      seed: num(values, "random-seed"),
      dataset: { sampling: str(values, "dataset-sampling") ?? str(values, "dataset-sampling-strategy") },
      replaySpeedup: num(values, "replay-speedup"),
      // AIPerf: one shared system prompt of N tokens, or K prefixes of N tokens each.
      sharedPrefix: {
        tokens: num(values, "prefix-prompt-length") ?? num(values, "shared-system-prompt-length"),
        prompts: num(values, "num-prefix-prompts") ?? (values["shared-system-prompt-length"] !== undefined ? 1 : undefined),
      },
    },
    stop: { requests: num(values, "request-count"), durationSeconds: num(values, "benchmark-duration") },
    warmup: { requests: num(values, "warmup-request-count") },
    agents: { edge: num(values, "edge-agents"), regions },
    thresholds: thresholds ? Object.fromEntries(thresholds) : undefined,
    abortOnThresholdFail: values["abort-on-threshold-fail"] === true ? true : undefined,
    graceSeconds: num(values, "grace"),
    drainTimeoutSeconds: num(values, "drain-timeout"),
    timesliceSeconds: num(values, "slice-duration"),
  });
  const spec = merge(base, flags);
  if (load !== undefined) spec.load = load;
  return spec;
}
