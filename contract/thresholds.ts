// Threshold expressions of a RunSpec: `"time_to_first_token.p99": "<500"`.
// Parsed once at the door so a run never starts with a threshold it cannot evaluate.

import { z } from "zod";
import { StatusError } from "./errors";
import { METRIC_TAGS, SCALAR_TAGS } from "./metric-catalog";
import type { MetricTag } from "./metric-catalog";

export const THRESHOLD_STATS = [
  "avg",
  "min",
  "max",
  "sum",
  "std",
  "count",
  "p1",
  "p5",
  "p10",
  "p25",
  "p50",
  "p75",
  "p90",
  "p95",
  "p99",
  "p999",
] as const;

export const THRESHOLD_OPS = ["<", "<=", ">", ">=", "=="] as const;

export type ThresholdStat = (typeof THRESHOLD_STATS)[number];
export type ThresholdOp = (typeof THRESHOLD_OPS)[number];

export interface Threshold {
  metric: MetricTag;
  stat: ThresholdStat;
  op: ThresholdOp;
  value: number;
  /** k6's tag syntax, `{region:weur}`: the threshold applies to that region's results only. */
  region?: string;
}

// `{region:NAME}` after the metric and stat; a name is what an agent may call its region.
const REGION_TAG = /\{region:([^{}\x00-\x1f\x7f-\x9f]{1,64})\}$/;

export const MAX_THRESHOLDS = 32;

// Two-character operators first so "<=" is not read as "<" followed by "=5".
const EXPR = /^\s*(<=|>=|==|<|>)\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$/;

function includes<T extends string>(list: readonly T[], s: string): s is T {
  return (list as readonly string[]).includes(s);
}

function invalid(message: string): StatusError {
  return new StatusError(400, "invalid_threshold", message);
}

export function parseThreshold(rawKey: string, value: unknown): Threshold {
  const tag = REGION_TAG.exec(rawKey);
  const region = tag?.[1];
  const key = tag ? rawKey.slice(0, tag.index) : rawKey;
  if (!tag && rawKey.includes("{")) {
    throw invalid(
      `thresholds: a tag must be written {region:NAME} after the metric and stat, e.g. "time_to_first_token.p99{region:weur}".`,
    );
  }
  const dot = key.indexOf(".");
  const metric = dot < 0 ? key : key.slice(0, dot);
  const stat = dot < 0 ? "avg" : key.slice(dot + 1);
  // Keys are echoed only after they are known to be one of our own names.
  if (!includes(METRIC_TAGS, metric)) {
    throw invalid(`thresholds: unknown metric tag; expected one of ${METRIC_TAGS.join(", ")}.`);
  }
  if (!includes(THRESHOLD_STATS, stat)) {
    throw invalid(`thresholds.${metric}: unknown stat; expected one of ${THRESHOLD_STATS.join(", ")}.`);
  }
  if (stat !== "avg" && includes(SCALAR_TAGS, metric)) {
    throw invalid(`thresholds.${metric}.${stat}: ${metric} is a scalar metric; only avg can be compared.`);
  }
  const m = typeof value === "string" ? EXPR.exec(value) : null;
  const op = m?.[1];
  const n = Number(m?.[2]);
  if (op === undefined || !includes(THRESHOLD_OPS, op) || !Number.isFinite(n)) {
    throw invalid(`thresholds.${key}: expected "<N", "<=N", ">N", ">=N" or "==N" with N a finite number.`);
  }
  return { metric, stat, op, value: n, ...(region !== undefined ? { region } : {}) };
}

// The RunSpec field; spec.ts turns the custom issues into API errors.
export const ThresholdsSchema = z
  .record(z.string(), z.unknown())
  .superRefine((thresholds, ctx) => {
    const entries = Object.entries(thresholds);
    if (entries.length > MAX_THRESHOLDS) {
      const message = `must have at most ${MAX_THRESHOLDS} entries`;
      return ctx.addIssue({ code: "custom", path: [], message, params: { code: "out_of_range", status: 422 } });
    }
    for (const [key, value] of entries) {
      try {
        parseThreshold(key, value);
      } catch (e) {
        if (!(e instanceof StatusError)) throw e;
        ctx.addIssue({ code: "custom", path: [], message: e.message, params: { error: e } });
        return;
      }
    }
  })
  // Every value was checked to be a string above; this only narrows the type.
  .transform((thresholds) => Object.fromEntries(Object.entries(thresholds).map(([k, v]) => [k, String(v)])));
