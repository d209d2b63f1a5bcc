// The completion webhook (RunSpec `notify`): the final results are POSTed once, signed,
// retried with backoff while the grace window lasts. State lives in the coordinator's
// storage, so retries survive eviction; delivery is at-least-once and receivers dedupe
// by the `edgeperf-delivery` header (one value per run).
//
// Signature: `edgeperf-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
// with the run's notify secret (answered once at creation). Receivers recompute it and
// compare in constant time, and reject stale timestamps.

import type { RunStore } from "./run-store";

export interface WebhookState {
  url: string;
  attempts: number;
  /** When to try next (coordinator clock); null until the run completes or once finished. */
  nextAt: number | null;
  delivered: boolean;
  lastError: string | null;
}

const BACKOFF_BASE_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;
const TIMEOUT_MS = 10_000;

export function backoffMs(attempts: number): number {
  return Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attempts - 1));
}

const encoder = new TextEncoder();

export async function sign(secret: string, timestamp: number, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(`${timestamp}.${body}`));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** One delivery attempt. Never follows redirects; any non-2xx is a failure. */
export async function deliver(
  fetchOut: typeof fetch,
  hook: WebhookState,
  secret: string,
  runId: string,
  body: string,
  nowMs: number,
): Promise<{ ok: true } | { ok: false; error: string }> {
  const t = Math.floor(nowMs / 1000);
  try {
    const res = await fetchOut(hook.url, {
      method: "POST",
      redirect: "manual",
      signal: AbortSignal.timeout(TIMEOUT_MS),
      headers: {
        "content-type": "application/json",
        "user-agent": "edgeperf-webhook/1",
        "edgeperf-delivery": runId,
        "edgeperf-signature": `t=${t},v1=${await sign(secret, t, body)}`,
      },
      body,
    });
    await res.body?.cancel();
    return res.status >= 200 && res.status < 300 ? { ok: true } : { ok: false, error: `http_${res.status}` };
  } catch (e) {
    return { ok: false, error: e instanceof Error && e.name === "TimeoutError" ? "timeout" : "connection" };
  }
}

/**
 * The webhook's stored state (`meta` row "webhook"; absent when the spec has no
 * `notify`), cached in memory and written through: the coordinator reads it on every
 * call to place its alarm.
 */
export class WebhookRecord {
  /** undefined: not loaded; null: the run has no webhook. */
  private cached: WebhookState | null | undefined;

  constructor(private readonly store: RunStore) {}

  invalidate(): void {
    this.cached = undefined;
  }

  get(): WebhookState | null {
    if (this.cached === undefined) this.cached = this.store.getMeta<WebhookState>("webhook");
    return this.cached;
  }

  put(hook: WebhookState): void {
    this.store.putMeta("webhook", hook);
    this.cached = hook;
  }

  /** Whether a webhook is set and no attempt has been made yet. */
  neverAttempted(): boolean {
    const hook = this.get();
    return hook !== null && !hook.delivered && hook.attempts === 0;
  }

  /** When the next attempt is due, if one is pending. */
  nextAt(): number | null {
    const hook = this.get();
    return hook && !hook.delivered ? hook.nextAt : null;
  }

  /** The run completed at `at`: the first attempt is due then (inside the completing transaction). */
  arm(at: number | null): void {
    const hook = this.get();
    if (hook) this.put({ ...hook, nextAt: at });
  }

  /**
   * Makes one attempt if one is due at `now`; `last` means the grace window is over, so
   * the attempt is made now and none after it. Answers the state to store after it (the
   * caller stores it only if the run still exists: it may be wiped during the attempt),
   * or null if no attempt was due.
   */
  async attempt(
    fetchOut: typeof fetch,
    secret: () => string,
    runId: string,
    body: () => string,
    now: number,
    last: boolean,
  ): Promise<WebhookState | null> {
    const hook = this.get();
    if (!hook || hook.delivered || hook.nextAt === null || (!last && now < hook.nextAt)) return null;
    const r = await deliver(fetchOut, hook, secret(), runId, body(), now);
    const attempts = hook.attempts + 1;
    return r.ok
      ? { ...hook, attempts, delivered: true, nextAt: null, lastError: null }
      : { ...hook, attempts, nextAt: last ? null : now + backoffMs(attempts), lastError: r.error };
  }
}
