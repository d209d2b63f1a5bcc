// GET /v1/runs/:id/events — Server-Sent Events: a status snapshot at once, then one
// about every second and at every phase change, then `event: complete` with the final
// results, and the stream ends. Each step is a long-poll RPC to the coordinator
// (`watch`), so a phase change is sent the moment it happens, not on the next tick, and
// the final results come in the same call that sees the run complete: a run with
// graceSeconds 0 is wiped right after, and a second call would find nothing.
//
// A stream has a bounded life (SSE_MAX_SECONDS, 10 minutes by default): one coordinator
// call a second would reach the 10,000-subrequest limit of an invocation after about 2.8
// hours and the stream would be cut silently, and every open stream keeps its run's
// coordinator awake. At the end of its life the stream says `event: reconnect` and
// closes. Every event has an id, `<phase>.<n>`; a client that reconnects with
// Last-Event-ID gets the current snapshot at once (or, if the run completed meanwhile,
// `complete` with the final results), numbered on from n. Snapshots are whole states, so
// nothing sent while it was away is needed.
//
// A client that disconnects cancels the response body; the next write then fails and
// the loop ends, so nothing keeps polling for a reader that is gone.

import type { IRequest } from "itty-router";
import { readConfig } from "../contract/config";
import { unwrap } from "../contract/errors";
import type { RpcResult } from "../contract/errors";
import type { Results, Snapshot } from "../durable/views";
import { runAuth } from "./auth";
import { coordinator } from "./runs";

const TICK_MS = 1_000;
/** A stream's life when SSE_MAX_SECONDS does not say. */
export const STREAM_LIFE_SECONDS = 600;
/** The longest life SSE_MAX_SECONDS may set: a call a second stays under 10,000 subrequests. */
export const MAX_STREAM_LIFE_SECONDS = 7_200;

export interface StreamLimits {
  /** The stream says `reconnect` and ends this long after it opened. */
  lifeMs: number;
  /** The longest one long-poll waits: a snapshot at least this often. */
  tickMs: number;
}

type Watched = { snapshot: Snapshot; results: Results | null };

const encoder = new TextEncoder();
const EVENT_ID = /^(created|running|draining|complete)\.(\d{1,15})$/;

/** The stream's limits from the SSE_MAX_SECONDS var: a whole number of seconds, 1–7,200; anything else is the default. */
export function streamLimits(env: unknown): StreamLimits {
  const raw = (env as { SSE_MAX_SECONDS?: unknown }).SSE_MAX_SECONDS;
  const s = typeof raw === "string" && /^\s*\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
  const seconds = s >= 1 && s <= MAX_STREAM_LIFE_SECONDS ? s : STREAM_LIFE_SECONDS;
  return { lifeMs: seconds * 1000, tickMs: TICK_MS };
}

/** The counter of a Last-Event-ID this service sent, or null (absent, or not one of ours). */
export function lastEventNumber(header: string | null): number | null {
  const m = header === null ? null : EVENT_ID.exec(header.trim());
  return m ? Number(m[2]) : null;
}

export function streamEvents(request: IRequest, env: Env, ctx: ExecutionContext): Promise<Response> {
  return openEventStream(request, env, ctx, streamLimits(env));
}

/** The event stream with explicit limits (tests shorten them). */
export async function openEventStream(request: IRequest, env: Env, ctx: ExecutionContext, limits: StreamLimits): Promise<Response> {
  const auth = await runAuth(request, readConfig(env).apiToken);
  const run = coordinator(env, request.params.id);
  const deadline = Date.now() + limits.lifeMs;
  // RPC's type mapping of the deep Results type defeats narrowing; the value is plain data.
  const watch = (ms: number) => run.watch(auth, ms) as Promise<RpcResult<Watched>>;
  // Checked before the stream starts, so a bad token or unknown run is a plain JSON error.
  const first = unwrap(await watch(0));
  return eventStream(request, ctx, limits, deadline, {
    first,
    next: (ms) => watch(ms),
    phase: (w) => w.snapshot.phase,
    status: (w) => w.snapshot,
    final: (w) => w.results,
    // The coordinator was unreachable (reset, overloaded): a new stream will find it.
    unavailable: "coordinator_unavailable",
  });
}

/** What a stream follows: a run (above) or an experiment (experiment-events.ts). */
export interface StreamSource<W> {
  /** The state at the start, read before the stream opened. */
  first: W;
  /** The next state: a long-poll of at most `ms` after `prev`. */
  next(ms: number, prev: W): Promise<RpcResult<W>>;
  phase(w: W): string;
  /** The `status` event's data. */
  status(w: W): unknown;
  /** The `complete` event's data once the followed thing is done, else null. */
  final(w: W): unknown;
  /** The `reconnect` reason when a long-poll throws. */
  unavailable: string;
}

/**
 * The Server-Sent Events response following `source` until `deadline`: `status` events,
 * then `complete`, or `reconnect` at the end of the stream's life (see the head of this file).
 */
export function eventStream<W>(
  request: IRequest,
  ctx: ExecutionContext,
  limits: StreamLimits,
  deadline: number,
  source: StreamSource<W>,
): Response {
  const resumed = lastEventNumber(request.headers.get("last-event-id"));
  let n = resumed ?? 0;

  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const send = (event: string, phase: string, data: unknown) =>
    writer.write(encoder.encode(`id: ${phase}.${++n}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
  const next = (prev: W): Promise<RpcResult<W>> | null => {
    const left = deadline - Date.now();
    return left > 0 ? source.next(Math.min(limits.tickMs, left), prev) : null;
  };

  const pump = async () => {
    let pending: Promise<RpcResult<W>> | null = null;
    let w = source.first;
    const done = (x: W) => source.final(x) !== null;
    try {
      await writer.write(encoder.encode(`retry: ${limits.tickMs}\n\n`));
      // The next long-poll is under way before an event is written, so the object has
      // this stream waiting whenever it completes (a slow reader included): waiters are
      // handed the final documents even when the wipe follows at once.
      pending = done(w) ? null : next(w);
      // A client that comes back to a finished run needs only the end; a new one, the state.
      if (!(resumed !== null && done(w))) await send("status", source.phase(w), source.status(w));
      while (!done(w)) {
        if (!pending) {
          await send("reconnect", source.phase(w), { reason: "stream_life", lifeSeconds: limits.lifeMs / 1000 });
          return;
        }
        let r: RpcResult<W>;
        try {
          r = await pending;
        } catch {
          pending = null;
          await send("reconnect", source.phase(w), { reason: source.unavailable });
          return;
        }
        pending = null;
        if (!r.ok) {
          await send("error", source.phase(w), { error: { code: r.code, message: r.message } });
          return;
        }
        w = r.value;
        if (done(w)) break;
        pending = next(w);
        await send("status", source.phase(w), source.status(w));
      }
      await send("complete", "complete", source.final(w));
    } catch {
      // The client went away (the write failed): nothing to tell anyone.
    } finally {
      pending?.catch(() => {});
      await writer.close().catch(() => {});
    }
  };
  ctx.waitUntil(pump());
  return new Response(readable, {
    headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" },
  });
}
