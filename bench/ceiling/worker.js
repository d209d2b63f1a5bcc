// The ceiling for any load generator inside workerd on this machine: a bare Worker whose
// only work is fetch loops at concurrency c, reading each body, for ms milliseconds. No
// measurement, no coordination, no storage. bench/sections/loadgen.ts runs it in its own
// `wrangler dev` against the same target as edgeperf and the peers.
//   GET /healthz                                     200 (the launcher waits for it)
//   GET /loop?c=32&ms=5000&target=URL                {"n", "seconds", "rps"}
//   GET /loop?c=32&ms=5000&target=URL&objects=6      the same loops spread over 6 Durable
//     Objects (c/6 each, rounded up), as edgeperf spreads a run over edge agents: what that
//     shape costs by itself, with none of edgeperf's work (bench/one-run.ts `ceiling`).
import { DurableObject } from "cloudflare:workers";

// `init` (comma-separated) adds parts of what an edge agent's fetch carries, to price each:
// signal (a new AbortController's), shared (one signal for every fetch), headers (an empty
// Headers), manual (redirect: "manual").
function initFor(parts) {
  if (parts.length === 0) return null;
  const headers = parts.includes("headers") ? new Headers() : undefined;
  const shared = parts.includes("shared") ? new AbortController().signal : undefined;
  return () => ({
    ...(headers ? { headers } : {}),
    ...(parts.includes("manual") ? { redirect: "manual" } : {}),
    ...(parts.includes("signal") ? { signal: new AbortController().signal } : {}),
    ...(shared ? { signal: shared } : {}),
  });
}

async function loops(c, ms, target, parts = []) {
  const t0 = Date.now();
  let n = 0;
  const init = initFor(parts);
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (Date.now() - t0 < ms) {
        const res = await (init ? fetch(target, init()) : fetch(target));
        await res.arrayBuffer();
        n++;
      }
    }),
  );
  return { n, seconds: (Date.now() - t0) / 1000 };
}

export class Looper extends DurableObject {
  loops(c, ms, target, parts) {
    return loops(c, ms, target, parts);
  }
}

export default {
  async fetch(request, env) {
    const u = new URL(request.url);
    if (u.pathname === "/healthz") return new Response("ok\n");
    if (u.pathname !== "/loop") return new Response("not found\n", { status: 404 });
    const c = Number(u.searchParams.get("c"));
    const ms = Number(u.searchParams.get("ms"));
    const target = u.searchParams.get("target");
    const objects = Number(u.searchParams.get("objects") ?? 0);
    const parts = (u.searchParams.get("init") ?? "").split(",").filter((p) => p !== "");
    if (objects === 0) {
      const { n, seconds } = await loops(c, ms, target, parts);
      return Response.json({ n, seconds, rps: n / seconds });
    }
    const each = Math.ceil(c / objects);
    const runs = await Promise.all(
      Array.from({ length: objects }, (_, i) => env.LOOPER.get(env.LOOPER.idFromName(`looper-${i}`)).loops(each, ms, target, parts)),
    );
    const n = runs.reduce((a, r) => a + r.n, 0);
    const seconds = Math.max(...runs.map((r) => r.seconds));
    return Response.json({ n, seconds, rps: n / seconds });
  },
};
