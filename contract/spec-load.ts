// load, stop and agents: how hard a run pushes the target, when it ends, and from where
// (README, "The API"). Together because they share one kind of bound: most of their upper
// limits are the operator's caps, which only the Config knows, so the schema here sets
// floors and exclusions and leaves the ceilings to checkCaps (spec.ts).

import { z } from "zod";
import { fail, int, num } from "./spec-fields";

export const REGIONS = ["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"] as const;

// A slower rate is not a benchmark: at 0.001 requests/s the longest run any operator can
// allow (MAX_DURATION_SECONDS is at most 7 days) sends about 600 requests. Without a floor,
// rates near the smallest double make the next slot time (1000 / rate ms) Infinity.
const MIN_RATE = 0.001;
// Durations are kept in whole milliseconds (run-plan.ts rounds): anything shorter would
// round to a run that ends before it starts.
const MIN_DURATION_SECONDS = 0.001;

// Upper bounds: fields without one in the schema (concurrency, maxConcurrency, rate,
// stop.requests, stop.durationSeconds, warmup.requests, agents.edge) are bounded by the
// operator's caps in checkCaps (spec.ts), which every spec passes, and config.ts bounds every cap.
// Left to checkCaps, an oversized value is told the cap it crossed.

// Either closed-loop (concurrency) or open-loop (rate) load; the output is a union so
// code downstream narrows with `"rate" in load` and never sees a mix of both.
export const LoadSchema = z
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

export const StopSchema = z
  .strictObject({ requests: int(1).optional(), durationSeconds: num(MIN_DURATION_SECONDS).optional() })
  .superRefine((s, ctx) => {
    if (s.requests === undefined && s.durationSeconds === undefined) {
      fail(ctx, [], "needs requests or durationSeconds (or both): a run must end", "no_stop_condition");
    }
  });

export const AgentsSchema = z.strictObject({
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
