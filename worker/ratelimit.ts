// Run creation is rate-limited per API token, so a leaked or misused token cannot turn
// the service into a load cannon by starting runs in a loop (docs/SECURITY.md).
//
// Two counters, both must agree:
//   - The Workers Rate Limiting binding RUN_RATE_LIMITER (wrangler.toml [[ratelimits]]):
//     shared by every isolate in a Cloudflare location, so it is the limit that holds in
//     production. Its limit and period are fixed in wrangler.toml, not read from a var.
//   - A fixed one-minute window kept in this isolate's memory, at MAX_RUNS_PER_MINUTE.
//     It is the whole limit where the binding is absent or fails, and lets an operator
//     lower the limit without a deploy. Per isolate only: N isolates admit up to N × the
//     limit, and a new isolate starts at zero.
// MAX_RUNS_PER_MINUTE = "0" turns both off (the test suites create hundreds of runs).

import { sha256Hex } from "../contract/tokens";
import { bearer } from "./auth";
import { StatusError } from "../contract/errors";

export const DEFAULT_RUNS_PER_MINUTE = 30;
const WINDOW_MS = 60_000;
/** The binding's period (wrangler.toml); it does not say when its window ends. */
const BINDING_RETRY_AFTER_S = 60;
/** Windows kept at most; past it, expired ones are dropped, then the oldest. */
const MAX_KEYS = 1_000;

interface Limiter {
  limit(options: { key: string }): Promise<{ success: boolean }>;
}

/** Same defensive parsing as config.ts: a malformed value falls back to the default. */
export function runsPerMinute(raw: unknown): number {
  if (typeof raw !== "string" || raw.trim() === "") return DEFAULT_RUNS_PER_MINUTE;
  const n = Number(raw);
  return Number.isInteger(n) && n >= 0 && n <= 1_000_000 ? n : DEFAULT_RUNS_PER_MINUTE;
}

function limiterOf(binding: unknown): Limiter | undefined {
  if (typeof binding !== "object" || binding === null) return undefined;
  return typeof (binding as { limit?: unknown }).limit === "function" ? (binding as Limiter) : undefined;
}

/** Fixed windows aligned to each key's first call. Clock injected for tests. */
export class FixedWindow {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(private readonly periodMs = WINDOW_MS) {}

  /** Counts one call; answers how many seconds to wait when it is over the limit. */
  take(key: string, limit: number, now: number): { ok: true } | { ok: false; retryAfterS: number } {
    let w = this.windows.get(key);
    if (!w || now - w.start >= this.periodMs) {
      this.prune(now);
      w = { start: now, count: 0 };
      this.windows.set(key, w);
    }
    if (w.count >= limit) return { ok: false, retryAfterS: Math.max(1, Math.ceil((w.start + this.periodMs - now) / 1000)) };
    w.count++;
    return { ok: true };
  }

  private prune(now: number): void {
    if (this.windows.size < MAX_KEYS) return;
    for (const [k, w] of this.windows) if (now - w.start >= this.periodMs) this.windows.delete(k);
    // Still full: every window is live. Map order is insertion order, so drop the oldest.
    for (const k of this.windows.keys()) {
      if (this.windows.size < MAX_KEYS) break;
      this.windows.delete(k);
    }
  }
}

// Not stored anywhere: it lives and dies with the isolate (see the header).
const local = new FixedWindow();

function rateLimited(retryAfterS: number, limit: number): StatusError {
  return new StatusError(
    429,
    "rate_limited",
    `Too many runs created with this token (limit ${limit} a minute); retry in ${retryAfterS} s.`,
    {
      "retry-after": String(retryAfterS),
    },
  );
}

/** Throws 429 rate_limited when this API token has created too many runs. Call after the token check. */
export async function limitRunCreation(request: Request, env: object, now = Date.now()): Promise<void> {
  // Read by name: the binding and the var may be absent (tests, older wrangler.toml).
  const limit = runsPerMinute(Reflect.get(env, "MAX_RUNS_PER_MINUTE") as unknown);
  if (limit === 0) return;
  // The key is a hash: a raw token must not travel to the rate limiter's storage.
  const key = `run-create:${(await sha256Hex(bearer(request))).slice(0, 32)}`;
  const binding = limiterOf(Reflect.get(env, "RUN_RATE_LIMITER") as unknown);
  if (binding) {
    let outcome: { success: boolean } | undefined;
    try {
      outcome = await binding.limit({ key });
    } catch (e) {
      // Unsupported or failing binding: the in-memory window below still holds.
      console.error("ratelimit: RUN_RATE_LIMITER failed, using the in-memory window", e instanceof Error ? e.message : String(e));
    }
    if (outcome && !outcome.success) throw rateLimited(BINDING_RETRY_AFTER_S, limit);
  }
  const r = local.take(key, limit, now);
  if (!r.ok) throw rateLimited(r.retryAfterS, limit);
}
