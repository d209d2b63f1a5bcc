// The rate-mode arrival schedule: one seeded global sequence of intended send times,
// split across agents by handing each lease the next slots. Constant arrivals are
// evenly spaced; Poisson arrivals have exponential gaps from a seeded PRNG, so a run
// with the same seed and rate gets the same schedule (reproducible benchmarks).

import { mulberry32Step } from "../contract/prng";

export type Arrival = "constant" | "poisson";

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

/** Issues the next slot: returns its offset and the advanced cursor. */
export function nextSlot(c: ScheduleCursor, rate: number, arrival: Arrival): [number, ScheduleCursor] {
  const at = c.t;
  if (arrival === "constant") return [at, { k: c.k + 1, t: ((c.k + 1) * 1000) / rate, rng: c.rng }];
  const [u, rng] = mulberry32Step(c.rng);
  const gap = (-Math.log(1 - u) * 1000) / rate;
  return [at, { k: c.k + 1, t: at + gap, rng }];
}
