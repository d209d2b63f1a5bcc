// The rate-mode arrival schedule: one seeded global sequence of intended send times,
// split across agents by handing each lease the next slots. Constant arrivals are
// evenly spaced; Poisson arrivals have exponential gaps; gamma arrivals have gamma gaps
// of shape `smoothness` (AIPerf's --arrival-smoothness, vLLM's burstiness: 1 is Poisson,
// smaller is burstier, larger is more even) and the same mean. All from a seeded PRNG, so
// a run with the same seed and rate gets the same schedule (reproducible benchmarks).
//
// A ramp (load.rampSeconds) raises the rate linearly from 0 to its target over R ms: the
// slots are drawn at the target rate and mapped through the inverse of the ramped
// cumulative rate, so the same seed gives the same sequence, stretched at its start.

import { mulberry32Step } from "../contract/prng";

export type Arrival = "constant" | "poisson" | "gamma";

/** Where the schedule stands; stored so an evicted coordinator continues the same sequence. */
export interface ScheduleCursor {
  /** Slots issued so far. */
  k: number;
  /** Offset of the next slot, ms after the measured phase began. */
  t: number;
  /** PRNG state (Poisson only). */
  rng: number;
}

export const startSchedule = (seed: number): ScheduleCursor => ({ k: 0, t: 0, rng: seed >>> 0 });

/**
 * Issues the next slot: returns its offset (on the unramped schedule: map it with
 * `rampedAt`) and the advanced cursor.
 */
export function nextSlot(c: ScheduleCursor, rate: number, arrival: Arrival, smoothness = 1): [number, ScheduleCursor] {
  const at = c.t;
  if (arrival === "constant") return [at, { k: c.k + 1, t: ((c.k + 1) * 1000) / rate, rng: c.rng }];
  if (arrival === "gamma") {
    const [g, rng] = gammaDraw(c.rng, smoothness);
    // Shape k, scale 1/(rate k): mean 1/rate, coefficient of variation 1/sqrt(k).
    return [at, { k: c.k + 1, t: at + (g * 1000) / (rate * smoothness), rng }];
  }
  const [u, rng] = mulberry32Step(c.rng);
  const gap = (-Math.log(1 - u) * 1000) / rate;
  return [at, { k: c.k + 1, t: at + gap, rng }];
}

/**
 * The real offset of an unramped slot at `u` ms when the rate rises linearly over
 * `rampMs`: the cumulative rate is r·t²/(2R) during the ramp and r·(t − R/2) after it, so
 * a slot the full rate would place at u goes at sqrt(2Ru) while u ≤ R/2, else at u + R/2.
 */
export function rampedAt(u: number, rampMs: number): number {
  if (rampMs <= 0) return u;
  return u <= rampMs / 2 ? Math.sqrt(2 * rampMs * u) : u + rampMs / 2;
}

/** A standard normal draw (Box–Muller) and the advanced PRNG state. */
function normalDraw(state: number): [number, number] {
  const [u1, s1] = mulberry32Step(state);
  const [u2, s2] = mulberry32Step(s1);
  return [Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2), s2];
}

/**
 * A Gamma(k, 1) draw: Marsaglia and Tsang's method for k ≥ 1; for k < 1, a Gamma(k + 1)
 * draw times U^(1/k). Deterministic in the PRNG state, like every other draw here.
 */
function gammaDraw(state: number, k: number): [number, number] {
  let s = state;
  let boost = 1;
  if (k < 1) {
    const [u, next] = mulberry32Step(s);
    s = next;
    boost = (1 - u) ** (1 / k);
    k += 1;
  }
  const d = k - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const [x, s1] = normalDraw(s);
    s = s1;
    const v = (1 + c * x) ** 3;
    if (v <= 0) continue;
    const [u, s2] = mulberry32Step(s);
    s = s2;
    if (Math.log(1 - u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return [d * v * boost, s];
  }
}
