// GET /v1/experiments/:id/events — Server-Sent Events, as worker/events.ts does for a run:
// a `status` summary at once, then one at every change (a level started or ended, the
// phase moved) and at least every tick, then `event: complete` with the final summary,
// and the stream ends. Each step is a long-poll RPC to the Experiment object (`watch`),
// which answers as soon as its state's version moves past the one this stream last sent,
// so no change made between two calls is missed.
//
// Same bounded life as a run's stream (SSE_MAX_SECONDS, then `event: reconnect`), the same
// ids (`<phase>.<n>`) and the same Last-Event-ID handling: summaries are whole states, so
// a client that reconnects needs only the current one, or `complete` if it ended meanwhile.

import type { IRequest } from "itty-router";
import { readConfig } from "../contract/config";
import { unwrap } from "../contract/errors";
import type { RpcResult } from "../contract/errors";
import type { Watched } from "../durable/Experiment";
import { runAuth } from "./auth";
import { lastEventNumber, streamLimits } from "./events";
import type { StreamLimits } from "./events";
import { experiment } from "./experiments";

const encoder = new TextEncoder();

export function streamExperimentEvents(request: IRequest, env: Env, ctx: ExecutionContext): Promise<Response> {
  return openExperimentStream(request, env, ctx, streamLimits(env));
}

/** The event stream with explicit limits (tests shorten them). */
export async function openExperimentStream(request: IRequest, env: Env, ctx: ExecutionContext, limits: StreamLimits): Promise<Response> {
  const auth = await runAuth(request, readConfig(env).apiToken);
  const stub = experiment(env, request.params.id);
  const deadline = Date.now() + limits.lifeMs;
  // RPC's type mapping of the deep summary type defeats narrowing; the value is plain data.
  const watch = (ms: number, since: number | null) => stub.watch(auth, ms, since) as Promise<RpcResult<Watched>>;
  // Checked before the stream starts, so a bad token or unknown experiment is a plain JSON error.
  const first = unwrap(await watch(0, null));
  const resumed = lastEventNumber(request.headers.get("last-event-id"));
  let n = resumed ?? 0;

  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const send = (event: string, phase: string, data: unknown) =>
    writer.write(encoder.encode(`id: ${phase}.${++n}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
  const next = (since: number): Promise<RpcResult<Watched>> | null => {
    const left = deadline - Date.now();
    return left > 0 ? watch(Math.min(limits.tickMs, left), since) : null;
  };

  const pump = async () => {
    let pending: Promise<RpcResult<Watched>> | null = null;
    let w = first;
    try {
      await writer.write(encoder.encode(`retry: ${limits.tickMs}\n\n`));
      pending = w.summary.final ? null : next(w.version);
      // A client that comes back to a finished experiment needs only the end; a new one, the state.
      if (!(resumed !== null && w.summary.final)) await send("status", w.summary.phase, w.summary);
      while (!w.summary.final) {
        if (!pending) {
          await send("reconnect", w.summary.phase, { reason: "stream_life", lifeSeconds: limits.lifeMs / 1000 });
          return;
        }
        let r: RpcResult<Watched>;
        try {
          r = await pending;
        } catch {
          pending = null;
          await send("reconnect", w.summary.phase, { reason: "experiment_unavailable" });
          return;
        }
        pending = null;
        if (!r.ok) {
          await send("error", w.summary.phase, { error: { code: r.code, message: r.message } });
          return;
        }
        w = r.value;
        if (w.summary.final) break;
        pending = next(w.version);
        await send("status", w.summary.phase, w.summary);
      }
      await send("complete", "complete", w.summary);
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
