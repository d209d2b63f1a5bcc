// GET /v1/runs/:id/events — Server-Sent Events: a status snapshot at once, then one
// about every second and at every phase change, then `event: complete` with the final
// results, and the stream ends. Each step is a long-poll RPC to the coordinator, so a
// phase change is sent the moment it happens, not on the next tick.
//
// A client that disconnects cancels the response body; the next write then fails and
// the loop ends, so nothing keeps polling for a reader that is gone.

import type { IRequest } from "itty-router";
import { runAuth } from "./auth";
import { readConfig } from "../contract/config";
import type { Results } from "../durable/views";
import { unwrap } from "../contract/errors";
import type { RpcResult } from "../contract/errors";
import { coordinator } from "./runs";

const TICK_MS = 1_000;
const encoder = new TextEncoder();

export async function streamEvents(request: IRequest, env: Env, ctx: ExecutionContext): Promise<Response> {
  const auth = await runAuth(request, readConfig(env).apiToken);
  const run = coordinator(env, request.params.id);
  // Checked before the stream starts, so a bad token or unknown run is a plain JSON error.
  const first = unwrap(await run.status(auth));

  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const send = (event: string, data: unknown) => writer.write(encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));

  const pump = async () => {
    try {
      await writer.write(encoder.encode(`retry: ${TICK_MS}\n\n`));
      let snapshot = first;
      await send("status", snapshot);
      while (snapshot.phase !== "complete") {
        const next = await run.status(auth, TICK_MS);
        if (!next.ok) {
          await send("error", { error: { code: next.code, message: next.message } });
          return;
        }
        snapshot = next.value;
        await send("status", snapshot);
      }
      // RPC's type mapping of the deep Results type defeats narrowing; the value is plain data.
      const results = (await run.results(auth)) as RpcResult<Results>;
      if (results.ok) await send("complete", results.value);
      else await send("error", { error: { code: results.code, message: results.message } });
    } catch {
      // The client went away (the write failed) or the run vanished: nothing to tell anyone.
    } finally {
      await writer.close().catch(() => {});
    }
  };
  ctx.waitUntil(pump());
  return new Response(readable, {
    headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" },
  });
}
