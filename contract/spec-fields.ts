// The pieces every part of the RunSpec schema is built from (README, "The API"): one way
// to refuse a field with the API error it stands for, number fields whose message names
// the whole allowed range, and the size limits more than one part shares. Kept apart so
// the target, workload and load schemas word and bound their fields alike.

import { z } from "zod";

export const MAX_BODY_BYTES = 256 * 1024;
export const MAX_URL_LENGTH = 8192;

export const utf8 = new TextEncoder();

// Custom issues carry the API error they stand for; see zodToStatus (spec-errors.ts). Returns z.NEVER so
// a transform can `return fail(…)`.
export function fail(ctx: z.RefinementCtx, path: PropertyKey[], message: string, code = "invalid_spec", status = 400): never {
  ctx.addIssue({ code: "custom", path, message, params: { code, status } });
  return z.NEVER;
}

// Range messages name the whole allowed range, not just the bound that was crossed.
// Returning undefined for a missing value lets the parse-wide map say "is required".
function rangeError(kind: string, min: number, max: number | undefined) {
  const text = `must be ${kind} ${max === undefined ? `>= ${min}` : `from ${min} to ${max}`}`;
  return (iss: { input?: unknown }) => (iss.input === undefined ? undefined : text);
}

// Integer-ness is a refinement rather than z.int(), which would refuse 1e20 as out of
// range: an integer that large is still an integer, and the cap check names the cap.
export function int(min: number, max?: number) {
  const error = rangeError("an integer", min, max);
  const s = z.number({ error }).refine(Number.isInteger, { error, abort: true }).min(min, { error });
  return max === undefined ? s : s.max(max, { error });
}

export function num(min: number, max?: number) {
  const error = rangeError("a number", min, max);
  const s = z.number({ error }).min(min, { error });
  return max === undefined ? s : s.max(max, { error });
}
