// The ceiling for any load generator inside workerd on this machine: a bare Worker whose
// only work is fetch loops at concurrency c, reading each body, for ms milliseconds. No
// measurement, no coordination, no storage. bench/sections/loadgen.ts runs it in its own
// `wrangler dev` against the same target as edgeperf and the peers.
//   GET /healthz                         200 (the launcher waits for it)
//   GET /loop?c=32&ms=5000&target=URL    {"n", "seconds", "rps"}
export default {
  async fetch(request) {
    const u = new URL(request.url);
    if (u.pathname === "/healthz") return new Response("ok\n");
    if (u.pathname !== "/loop") return new Response("not found\n", { status: 404 });
    const c = Number(u.searchParams.get("c"));
    const ms = Number(u.searchParams.get("ms"));
    const target = u.searchParams.get("target");
    const t0 = Date.now();
    let n = 0;
    await Promise.all(
      Array.from({ length: c }, async () => {
        while (Date.now() - t0 < ms) {
          const res = await fetch(target);
          await res.arrayBuffer();
          n++;
        }
      }),
    );
    const seconds = (Date.now() - t0) / 1000;
    return Response.json({ n, seconds, rps: n / seconds });
  },
};
