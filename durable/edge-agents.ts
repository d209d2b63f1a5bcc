// Edge agents as the coordinator sees them: starting a run's LoadAgents (placed by
// locationHint) and the coordinator reached over Durable Object RPC with the HTTP
// transport's error semantics, its shares capped at what one edge agent may have waiting
// for response headers. Kept apart from both Durable Object classes so neither imports
// the other (docs/ARCHITECTURE.md, "Layers").

import { COORDINATOR_CALL_TIMEOUT_MS, CoordinatorError, CoordinatorUnavailable } from "../agent/transport";
import type { CoordinatorTransport } from "../agent/transport";
import type { RpcResult } from "../contract/errors";
import type { LeaseAnswer, ReportAnswer } from "../contract/protocol";
import { edgeInflightCap } from "../contract/run-plan";
import type { RunConfig } from "../contract/run-plan";
import type { RunSpec } from "../contract/spec";

export interface LoadAgentInit {
  runId: string;
  index: number;
  region: string | null;
  /**
   * Where the agent asks which Cloudflare colo it runs in (the `colo=` line of
   * /cdn-cgi/trace on the service's own host); absent for a local service, whose agents
   * run in "local".
   */
  traceUrl?: string;
}

/**
 * The trace URL for a service reached at `origin`, or null when the service runs locally
 * (wrangler dev, tests): loopback and reserved hosts have no Cloudflare colo, and asking
 * one would send traffic off the machine.
 */
export function traceUrlFor(origin: string | undefined): string | null {
  if (!origin) return null;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return null;
  }
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const local =
    url.protocol !== "https:" ||
    host === "localhost" ||
    host === "::1" ||
    /^127\./.test(host) ||
    /\.(test|localhost|local|invalid|example)$/.test(host) ||
    /(^|\.)example\.(com|org|net)$/.test(host);
  return local ? null : `${url.origin}/cdn-cgi/trace`;
}

/**
 * The coordinator over Durable Object RPC, with the HTTP transport's error semantics. A
 * call unanswered for COORDINATOR_CALL_TIMEOUT_MS counts as unreachable: without a bound,
 * a coordinator that hangs would hold an edge agent's slice until the platform cut the
 * alarm off at its 15 minutes, as a failed alarm.
 */
export function rpcTransport(env: Env, runId: string, opts: { timeoutMs?: number } = {}): CoordinatorTransport {
  const timeoutMs = opts.timeoutMs ?? COORDINATOR_CALL_TIMEOUT_MS;
  const id = env.RUN_COORDINATOR.idFromString(runId);
  // A fresh stub per call: a stub that saw a broken connection is not reused.
  const stub = () => env.RUN_COORDINATOR.get(id);
  const api = { role: "api" } as const;
  const refusal = (r: Extract<RpcResult<unknown>, { ok: false }>) =>
    r.status >= 500 ? new CoordinatorUnavailable(r.status, r.message) : new CoordinatorError(r.status, r.code, r.message);
  async function reach<R>(fn: () => Promise<R>): Promise<R> {
    // Requests the engine launched in this turn reach the network first. Without this
    // yield the call is delivered first, and where the coordinator shares this thread
    // (every Durable Object of a local `wrangler dev` does) its whole handling runs before
    // those requests are written out, while their clocks have already started: TTFT
    // measured against an independent server was ~13 ms too high at concurrency 8 (3–8
    // with the yield; a plain Worker fetching the same server: ~2).
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`The coordinator did not answer within ${timeoutMs / 1000} s.`)), timeoutMs);
    });
    try {
      return await Promise.race([fn(), late]);
    } catch (e) {
      throw new CoordinatorUnavailable(null, e instanceof Error ? e.message : "The coordinator could not be reached.");
    } finally {
      clearTimeout(timer);
    }
  }
  async function call<T>(fn: () => Promise<RpcResult<T>>): Promise<T> {
    const r = await reach(fn);
    if (r.ok) return r.value;
    throw refusal(r);
  }
  type Both = { report: RpcResult<ReportAnswer>; lease: RpcResult<LeaseAnswer> | null };
  return {
    join: (b) => call(() => stub().join(api, b)),
    lease: (b) => call(() => stub().lease(api, b)),
    report: (b) => call(() => stub().report(api, b)),
    reportThenLease: async (rb, lb) => {
      const both = await reach<Both>(() => stub().reportThenLease(api, rb, lb));
      if (!both.report.ok) throw refusal(both.report);
      const report = both.report.value;
      const lease =
        both.lease === null
          ? new CoordinatorUnavailable(null, "The lease was not tried.")
          : both.lease.ok
            ? both.lease.value
            : refusal(both.lease);
      return { report, lease };
    },
  };
}

/**
 * The coordinator as an edge agent's engine sees it: every share it answers is capped at
 * what one edge agent may have in flight against the run's target (edgeInflightCap in
 * contract/run-plan.ts: six when the target answers only when done, since an invocation
 * may have six connections waiting for response headers). The engine sends within its
 * share, so a seventh request never waits in the runtime's queue with its latency clock
 * running, to be reported as the target's latency; the run's warnings say so instead
 * (connection_bound, durable/delivered.ts). The coordinator's own accounting is
 * untouched: an agent applying a smaller share than it was sent is always safe. `spec`
 * is the run's spec when the agent joined in an earlier slice; a join answer brings it.
 */
export function cappedShares(t: CoordinatorTransport, spec: RunSpec | null): CoordinatorTransport {
  let cap = spec ? edgeInflightCap(spec.target) : Number.POSITIVE_INFINITY;
  const capped = <A extends { concurrency: number }>(a: A): A => (a.concurrency > cap ? { ...a, concurrency: cap } : a);
  const both = t.reportThenLease?.bind(t);
  return {
    join: async (b) => {
      const a = await t.join(b);
      cap = edgeInflightCap(a.spec.target);
      return capped(a);
    },
    lease: async (b) => capped(await t.lease(b)),
    report: async (b) => capped(await t.report(b)),
    ...(both
      ? {
          reportThenLease: async (rb: Parameters<typeof both>[0], lb: Parameters<typeof both>[1]) => {
            const r = await both(rb, lb);
            return { report: capped(r.report), lease: r.lease instanceof Error ? r.lease : capped(r.lease) };
          },
        }
      : {}),
  };
}

/** Edge agents join like any agent; one that fails to start leaves the run to the others. */
export async function startEdgeAgents(env: Env, cfg: RunConfig, origin?: string): Promise<void> {
  const traceUrl = traceUrlFor(origin);
  const starts = Array.from({ length: cfg.edgeAgents }, async (_, index) => {
    const region = cfg.regions.length > 0 ? (cfg.regions[index % cfg.regions.length] ?? null) : null;
    const ns = env.LOAD_AGENT;
    const stub = ns.get(ns.idFromName(`${cfg.id}/${index}`), region ? { locationHint: region as DurableObjectLocationHint } : {});
    try {
      await stub.start({ runId: cfg.id, index, region, ...(traceUrl ? { traceUrl } : {}) });
    } catch (e) {
      console.error(`RunCoordinator:${cfg.id}: edge agent ${index} did not start`, e instanceof Error ? e.message : e);
    }
  });
  await Promise.all(starts);
}
