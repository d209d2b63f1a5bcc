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
import { eventStream, streamLimits } from "./events";
import type { StreamLimits } from "./events";
import { experiment } from "./experiments";

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
  return eventStream(request, ctx, limits, deadline, {
    first,
    next: (ms, prev) => watch(ms, prev.version),
    phase: (w) => w.summary.phase,
    status: (w) => w.summary,
    final: (w) => (w.summary.final ? w.summary : null),
    unavailable: "experiment_unavailable",
  });
}
