// Operator configuration from wrangler vars, parsed once per request with defaults.
// A malformed var falls back to its default rather than taking the service down.

export interface Config {
  apiToken: string | undefined;
  allowedTargets: string[];
  graceSecondsDefault: number;
  maxConcurrency: number;
  maxRate: number;
  maxRequests: number;
  maxDurationSeconds: number;
  maxAgents: number;
  maxBodyBytes: number;
}

export const DEFAULTS = {
  graceSecondsDefault: 5,
  maxConcurrency: 1024,
  maxRate: 10_000,
  maxRequests: 10_000_000,
  maxDurationSeconds: 86_400,
  maxAgents: 64,
  maxBodyBytes: 1_048_576,
} as const;

function intVar(raw: unknown, fallback: number, min: number, max: number): number {
  if (typeof raw !== "string" || raw.trim() === "") return fallback;
  const n = Number(raw);
  return Number.isInteger(n) && n >= min && n <= max ? n : fallback;
}

export interface ConfigVars {
  API_TOKEN?: string;
  ALLOWED_TARGETS?: string;
  POST_COMPLETE_GRACE_SECONDS?: string;
  MAX_CONCURRENCY?: string;
  MAX_RATE?: string;
  MAX_REQUESTS?: string;
  MAX_DURATION_SECONDS?: string;
  MAX_AGENTS?: string;
  MAX_BODY_BYTES?: string;
}

export function readConfig(env: ConfigVars): Config {
  return {
    apiToken: env.API_TOKEN ? env.API_TOKEN : undefined,
    allowedTargets: (env.ALLOWED_TARGETS ?? "")
      .split(",")
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s.length > 0),
    graceSecondsDefault: intVar(env.POST_COMPLETE_GRACE_SECONDS, DEFAULTS.graceSecondsDefault, 0, 300),
    maxConcurrency: intVar(env.MAX_CONCURRENCY, DEFAULTS.maxConcurrency, 1, 1_000_000),
    maxRate: intVar(env.MAX_RATE, DEFAULTS.maxRate, 1, 10_000_000),
    maxRequests: intVar(env.MAX_REQUESTS, DEFAULTS.maxRequests, 1, 1_000_000_000),
    maxDurationSeconds: intVar(env.MAX_DURATION_SECONDS, DEFAULTS.maxDurationSeconds, 1, 7 * 86_400),
    maxAgents: intVar(env.MAX_AGENTS, DEFAULTS.maxAgents, 1, 10_000),
    maxBodyBytes: intVar(env.MAX_BODY_BYTES, DEFAULTS.maxBodyBytes, 1024, 100 * 1_048_576),
  };
}
