// The RunSpec (README, "The API"): one strict zod schema and the RunSpec type derived from
// it (how a refused spec is told, naming the field: spec-errors.ts). Checks that need
// the operator's Config (allowed targets, caps) run after the schema, on typed data.
// Secrets in a spec (apiKey, header values, URL query strings) never appear in an error
// message; publicSpec() is the only form of a spec that may be echoed.
// The schema's parts each have a module: the target (spec-target.ts, its api "template"
// body in spec-template.ts), the workload (spec-workload.ts), load, stop and agents
// (spec-load.ts), and the field builders they share (spec-fields.ts). This file joins
// them and re-exports their public names, so callers import the RunSpec from one place.

import { z } from "zod";
import type { Config } from "./config";
import { StatusError } from "./errors";
import { forbiddenKeyError, zodToStatus } from "./spec-errors";
import { ThresholdsSchema } from "./thresholds";
import { checkTargetUrl, redactUrl } from "./targets";
import { GoodputSchema } from "./goodput";
import { MAX_URL_LENGTH, int, num } from "./spec-fields";
import { AgentsSchema, LoadSchema, StopSchema } from "./spec-load";
import { MOCK_URL, TargetSchema } from "./spec-target";
import { WorkloadSchema } from "./spec-workload";

export { parseThreshold, THRESHOLD_STATS } from "./thresholds";
export type { Threshold, ThresholdOp, ThresholdStat } from "./thresholds";
export { REGIONS } from "./spec-load";
export { APIS, DEFAULT_TOKENIZER, MOCK_URL, TOKENIZERS } from "./spec-target";
export type { Api, TokenizerName } from "./spec-target";
export { PLACEHOLDER, TEMPLATE_PLACEHOLDERS, templatePlaceholders } from "./spec-template";

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
