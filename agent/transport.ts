// The agent's connection to its run's coordinator: wire protocol v1 (README, "Agents and the wire protocol") over
// HTTP, and a retry wrapper. Lease and report calls are idempotent by requestId and
// reportId, so a call whose answer was lost is simply sent again with the same body;
// the coordinator answers it as it did the first time and counts nothing twice.

import type { JoinAnswer, JoinBody, LeaseAnswer, LeaseBody, ReportAnswer, ReportBody, ReportLeaseAnswer } from "../contract/protocol";

export interface CoordinatorTransport {
  join(b: JoinBody): Promise<JoinAnswer>;
  lease(b: LeaseBody): Promise<LeaseAnswer>;
  report(b: ReportBody): Promise<ReportAnswer>;
  /**
   * Optional: a report, then a lease, in one round trip (edge agents over Durable Object
   * RPC, where each call costs ~1 ms of CPU). The report's refusal or failure is thrown
   * as from `report`; the lease's comes back as a value, so the report's answer survives it.
   */
  reportThenLease?(
    report: ReportBody,
    lease: LeaseBody,
  ): Promise<{ report: ReportAnswer; lease: LeaseAnswer | CoordinatorError | CoordinatorUnavailable }>;
}

/** A refusal: the coordinator understood the call and said no (4xx). Retrying cannot help. */
export class CoordinatorError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "CoordinatorError";
    this.status = status;
    this.code = code;
  }
}

/** The coordinator could not be reached, or answered 5xx or 429: the same call may be sent again. */
export class CoordinatorUnavailable extends Error {
  /** null for a network failure. */
  readonly status: number | null;
  readonly retryAfterMs: number | null;
  constructor(status: number | null, message: string, retryAfterMs: number | null = null) {
    super(message);
    this.name = "CoordinatorUnavailable";
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

// A 429 that is a cap, not a rate limit: waiting does not make room.
const PERMANENT_429 = new Set(["too_many_agents"]);

/** What the transport reads of an answer: fetch's Response fits, and so does the CLI's HTTP/1.1 client (cli/node-http.ts). */
export interface CoordinatorResponse {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  json(): Promise<unknown>;
}

/** How the transport sends a call: the runtime's fetch, or any function of its shape. */
export type CoordinatorFetch = (url: string, init: RequestInit) => Promise<CoordinatorResponse>;

async function readError(res: CoordinatorResponse): Promise<{ code: string; message: string }> {
  const fallback = { code: `http_${res.status}`, message: `The coordinator answered HTTP ${res.status}.` };
  try {
    const body: unknown = await res.json();
    if (typeof body !== "object" || body === null || !("error" in body)) return fallback;
    const e: unknown = body.error;
    if (typeof e !== "object" || e === null) return fallback;
    const code = "code" in e && typeof e.code === "string" ? e.code : fallback.code;
    const message = "message" in e && typeof e.message === "string" ? e.message : fallback.message;
    return { code, message };
  } catch {
    return fallback;
  }
}

function retryAfterMs(res: CoordinatorResponse): number | null {
  const v = res.headers.get("retry-after");
  if (v === null) return null;
  const s = Number(v);
  return Number.isFinite(s) && s >= 0 ? Math.min(s * 1000, 60_000) : null;
}

/**
 * A coordinator call unanswered this long counts as unreachable (and is retried, where
 * withRetries wraps the transport). Without a bound, a connection that hangs would hold an
 * agent for good. Every call carries an id, so sending it again is safe even if the first
 * one was applied after all. Edge agents use the same bound over RPC (durable/edge-agents.ts).
 */
export const COORDINATOR_CALL_TIMEOUT_MS = 30_000;

export function httpTransport(opts: {
  server: string;
  runId: string;
  token: string;
  fetch?: CoordinatorFetch;
  /** Default COORDINATOR_CALL_TIMEOUT_MS. */
  timeoutMs?: number;
}): CoordinatorTransport {
  // Wrapped, not stored bare: workerd refuses a global fetch called with another `this`.
  const send: CoordinatorFetch = opts.fetch ?? ((input, init) => fetch(input, init));
  const timeoutMs = opts.timeoutMs ?? COORDINATOR_CALL_TIMEOUT_MS;
  const base = `${opts.server.replace(/\/+$/, "")}/v1/runs/${encodeURIComponent(opts.runId)}`;

  async function post<T>(path: string, body: unknown): Promise<T> {
    let res: CoordinatorResponse;
    try {
      res = await send(base + path, {
        method: "POST",
        headers: { authorization: `Bearer ${opts.token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
        redirect: "manual",
        // Covers the answer's body too: a body that stalls fails the call as not JSON.
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch {
      throw new CoordinatorUnavailable(null, "The coordinator could not be reached.");
    }
    if (res.status >= 200 && res.status < 300) {
      try {
        return (await res.json()) as T;
      } catch {
        // The call may have been applied: sending it again with the same id is safe.
        throw new CoordinatorUnavailable(res.status, "The coordinator's answer was not JSON.");
      }
    }
    const err = await readError(res);
    if (res.status >= 500 || (res.status === 429 && !PERMANENT_429.has(err.code))) {
      throw new CoordinatorUnavailable(res.status, err.message, retryAfterMs(res));
    }
    throw new CoordinatorError(res.status, err.code, err.message);
  }

  return {
    join: (b) => post<JoinAnswer>("/agents", b),
    lease: (b) => post<LeaseAnswer>("/leases", b),
    report: (b) => post<ReportAnswer>("/reports", b),
    // One round trip for a report-and-lease cycle (POST /v1/runs/:id/report-lease): the
    // report's refusal is thrown as from `report`; the lease's comes back as a value.
    reportThenLease: async (report, lease) => {
      const both = await post<ReportLeaseAnswer>("/report-lease", { report, lease });
      const l = both.lease;
      if (!("error" in l)) return { report: both.report, lease: l };
      const e = l.error;
      const transient = e.status >= 500 || (e.status === 429 && !PERMANENT_429.has(e.code));
      return {
        report: both.report,
        lease: transient ? new CoordinatorUnavailable(e.status, e.message) : new CoordinatorError(e.status, e.code, e.message),
      };
    },
  };
}

export interface RetryOptions {
  /** Attempts per call, the first included. */
  attempts?: number;
  /** No retry starts later than this after the first attempt; keep it under the lease TTL. */
  maxElapsedMs?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** In [0, 1); spreads the retries of many agents after a shared outage. */
  random?: () => number;
}

/**
 * Retries transient failures with capped exponential backoff and jitter, sending the
 * very same body (same requestId/reportId) each time. Refusals pass through at once.
 * Joins carry a requestId too (an extension of the wire protocol), so a retried join
 * answers the agent the first attempt created.
 */
export function withRetries(inner: CoordinatorTransport, opts: RetryOptions = {}): CoordinatorTransport {
  const attempts = opts.attempts ?? 6;
  const maxElapsedMs = opts.maxElapsedMs ?? 10_000;
  const base = opts.baseDelayMs ?? 100;
  const cap = opts.maxDelayMs ?? 2_000;
  const now = opts.now ?? (() => performance.now());
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const random = opts.random ?? Math.random;

  async function retry<T>(op: () => Promise<T>): Promise<T> {
    const start = now();
    for (let attempt = 1; ; attempt++) {
      try {
        return await op();
      } catch (e) {
        if (!(e instanceof CoordinatorUnavailable)) throw e;
        const backoff = Math.min(cap, base * 2 ** (attempt - 1)) * (0.5 + random() / 2);
        const delay = e.retryAfterMs ?? backoff;
        if (attempt >= attempts || now() - start + delay > maxElapsedMs) throw e;
        await sleep(delay);
      }
    }
  }

  const both = inner.reportThenLease?.bind(inner);
  return {
    join: (b) => retry(() => inner.join(b)),
    lease: (b) => retry(() => inner.lease(b)),
    report: (b) => retry(() => inner.report(b)),
    // Both halves are idempotent by their own ids, so the pair is retried as one.
    ...(both ? { reportThenLease: (r: ReportBody, l: LeaseBody) => retry(() => both(r, l)) } : {}),
  };
}
