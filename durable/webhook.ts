// The completion webhook (RunSpec `notify`): the final results are POSTed once, signed,
// retried with backoff while the grace window lasts. State lives in the coordinator's
// storage, so retries survive eviction; delivery is at-least-once and receivers dedupe
// by the `edgeperf-delivery` header (one value per run).
//
// Signature: `edgeperf-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
// with the run's notify secret (answered once at creation). Receivers recompute it and
// compare in constant time, and reject stale timestamps.

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
