// Goodput, as AIPerf defines it (`--goodput`): a RunSpec names per-request limits,
// `goodput: {"time_to_first_token": 200, "inter_token_latency": 10}`, in each metric's
// catalog unit; a successful request is good when every listed metric meets its limit:
// at or under it for a metric where lower is better, at or over it where higher is
// better (output_token_throughput_per_user). good_request_count counts them; goodput is
// good requests per second of benchmark_duration.

import { z } from "zod";
import { metricDef } from "./metric-catalog";

/** The per-request metrics a goodput limit may name. */
export const GOODPUT_METRICS = [
  "time_to_first_token",
  "time_to_first_output_token",
  "time_to_second_token",
  "inter_token_latency",
  "request_latency",
  "output_token_throughput_per_user",
] as const;
export type GoodputMetric = (typeof GOODPUT_METRICS)[number];
export type Goodput = Partial<Record<GoodputMetric, number>>;

/** One request's per-request values, as the coordinator derives them from a result. */
export type RequestValues = Partial<Record<GoodputMetric, number>>;

export const GoodputSchema = z
  .strictObject(
    Object.fromEntries(GOODPUT_METRICS.map((tag) => [tag, z.number().min(0).max(1e9).optional()])) as Record<
      GoodputMetric,
      z.ZodOptional<z.ZodNumber>
    >,
  )
  .refine((g) => Object.values(g).some((v) => v !== undefined), { error: "must name at least one metric" });

/** Whether a successful request with these values is good; a listed metric it has no value for is not met. */
export function isGood(values: RequestValues, goodput: Goodput): boolean {
  for (const tag of GOODPUT_METRICS) {
    const limit = goodput[tag];
    if (limit === undefined) continue;
    const v = values[tag];
    if (v === undefined) return false;
    const lowerIsBetter = metricDef(tag)?.lowerIsBetter !== false;
    if (lowerIsBetter ? v > limit : v < limit) return false;
  }
  return true;
}
