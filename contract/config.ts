// Operator configuration from wrangler vars: one zod schema, parsed once per env object.
// A malformed var falls back to its default rather than taking the service down.

import { z } from "zod";

export const DEFAULTS = {
  graceSecondsDefault: 5,
  maxConcurrency: 1024,
  maxRate: 10_000,
  maxRequests: 10_000_000,
  maxDurationSeconds: 86_400,
  // Edge agents of a run plus the external agents that join it. A target that answers only
  // when done gets one edge agent per 6 requests in flight (contract/run-plan.ts,
  // HEADER_WAIT_LIMIT): MAX_CONCURRENCY's 1024 takes 171, and this leaves room beside them.
  maxAgents: 256,
  maxBodyBytes: 1_048_576,
  // The largest dataset upload (README, "Datasets and workloads").
  maxDatasetBytes: 16 * 1_048_576,
} as const;

/** An integer var in [min, max]; anything else (missing, blank, out of range) is the default. */
const intVar = (fallback: number, min: number, max: number) =>
  z.string().trim().min(1).pipe(z.coerce.number<string>().int().min(min).max(max)).catch(fallback);

const ConfigSchema = z
  .object({
    API_TOKEN: z.string().min(1).optional().catch(undefined),
    ALLOWED_TARGETS: z.string().catch(""),
    POST_COMPLETE_GRACE_SECONDS: intVar(DEFAULTS.graceSecondsDefault, 0, 300),
    MAX_CONCURRENCY: intVar(DEFAULTS.maxConcurrency, 1, 1_000_000),
    MAX_RATE: intVar(DEFAULTS.maxRate, 1, 10_000_000),
    MAX_REQUESTS: intVar(DEFAULTS.maxRequests, 1, 1_000_000_000),
    MAX_DURATION_SECONDS: intVar(DEFAULTS.maxDurationSeconds, 1, 7 * 86_400),
    MAX_AGENTS: intVar(DEFAULTS.maxAgents, 1, 10_000),
    MAX_BODY_BYTES: intVar(DEFAULTS.maxBodyBytes, 1024, 100 * 1_048_576),
    MAX_DATASET_BYTES: intVar(DEFAULTS.maxDatasetBytes, 1024, 100 * 1_048_576),
  })
  .transform((v) => ({
    apiToken: v.API_TOKEN,
    allowedTargets: v.ALLOWED_TARGETS.split(",")
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s.length > 0),
    graceSecondsDefault: v.POST_COMPLETE_GRACE_SECONDS,
    maxConcurrency: v.MAX_CONCURRENCY,
    maxRate: v.MAX_RATE,
    maxRequests: v.MAX_REQUESTS,
    maxDurationSeconds: v.MAX_DURATION_SECONDS,
    maxAgents: v.MAX_AGENTS,
    maxBodyBytes: v.MAX_BODY_BYTES,
    maxDatasetBytes: v.MAX_DATASET_BYTES,
  }));

export type Config = z.output<typeof ConfigSchema>;
export type ConfigVars = Partial<Record<keyof z.input<typeof ConfigSchema>, string>>;

/**
 * Parsed once per env object: a Worker's env is the same object for every request of an
 * isolate (and a Durable Object's for its life), and parsing it took about a tenth of a
 * coordinator call's CPU (docs/BENCHMARKS.md). Another object (a test's own env) is parsed anew.
 */
const parsed = new WeakMap<object, Config>();

export function readConfig(env: ConfigVars): Config {
  let cfg = parsed.get(env);
  if (cfg === undefined) {
    cfg = ConfigSchema.parse(env);
    parsed.set(env, cfg);
  }
  return cfg;
}
