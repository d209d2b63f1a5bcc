// Capacity under an SLO as a pure function of the results so far (README, "Experiments"):
// given the levels tried and whether every SLO held at each, the next level to try, or
// the answer. No clock, no I/O: the Experiment object calls it after each level, and tests
// call it against a synthetic model of a target.
//
// Expansion doubles from `min` (capped at `max`) while levels pass; the first failure
// brackets the answer between the last level that passed and the first that failed, and
// bisection narrows that bracket: to adjacent integers for concurrency, to 5% of the
// passing level for rate. The state is derived from the trials, not carried: `lo` is the
// highest passing level below every failure, `hi` the lowest failing level. So a noisy
// target (a pass above a failure) can never make it propose a level it already bracketed
// out, and replaying the same trials always gives the same answer.

export type Over = "concurrency" | "rate";

/** The smallest rate a RunSpec accepts (contract/spec.ts). */
export const MIN_RATE = 0.001;
/** Rate bisection stops when the bracket is within this fraction of the passing level. */
export const RATE_RESOLUTION = 0.05;
/** The most levels a search tries; it then answers the best it has (end `level_cap`). */
export const MAX_SEARCH_LEVELS = 32;

export interface SearchBounds {
  over: Over;
  min: number;
  max: number;
}

export interface Trial {
  level: number;
  /** Every SLO held at this level (and its run completed on its own). */
  ok: boolean;
}

/** converged: the bracket is as narrow as the resolution; reached_max: max passed; min_failed: min failed. */
export type SearchEnd = "converged" | "reached_max" | "min_failed" | "level_cap";

export type SearchStep = { done: false; next: number } | { done: true; best: number | null; end: SearchEnd };

/** The bracket the trials define: the highest pass below every failure, the lowest failure. */
export function bracket(tried: readonly Trial[]): { lo: number | null; hi: number | null } {
  let hi: number | null = null;
  for (const t of tried) if (!t.ok && (hi === null || t.level < hi)) hi = t.level;
  let lo: number | null = null;
  for (const t of tried) if (t.ok && (hi === null || t.level < hi) && (lo === null || t.level > lo)) lo = t.level;
  return { lo, hi };
}

/** Rates are kept to the RunSpec's resolution (a thousandth), integers for concurrency. */
function midpoint(lo: number, hi: number, over: Over): number {
  return over === "concurrency" ? Math.floor((lo + hi) / 2) : Math.round(((lo + hi) / 2) * 1000) / 1000;
}

function converged(lo: number, hi: number, over: Over): boolean {
  return over === "concurrency" ? hi - lo <= 1 : hi - lo <= RATE_RESOLUTION * lo;
}

export function searchStep(s: SearchBounds, tried: readonly Trial[]): SearchStep {
  const { lo, hi } = bracket(tried);
  if (tried.length === 0) return { done: false, next: s.min };
  if (lo === null) {
    // Nothing passed below the lowest failure, so min failed (it is tried first, and a
    // pass at min would be below every higher failure).
    return { done: true, best: null, end: "min_failed" };
  }
  if (tried.length >= MAX_SEARCH_LEVELS) return { done: true, best: lo, end: "level_cap" };
  if (hi === null) {
    if (lo >= s.max) return { done: true, best: lo, end: "reached_max" };
    return { done: false, next: Math.min(lo * 2, s.max) };
  }
  if (converged(lo, hi, s.over)) return { done: true, best: lo, end: "converged" };
  const next = midpoint(lo, hi, s.over);
  // Rounding can land on the bracket's edge only when it is already a thousandth wide.
  if (next <= lo || next >= hi) return { done: true, best: lo, end: "converged" };
  return { done: false, next };
}
