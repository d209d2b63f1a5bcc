// Why edge agents in `wrangler dev` send slowly (docs/BENCHMARKS.md, load generation):
// the cost of one outbound fetch() from workerd to the local bench target, from a plain
// Worker context and from inside a Durable Object, with and without a SQLite write in
// the same turn (LoadAgent writes the seq it is about to send, then fetches). A Durable
// Object's output gate holds outgoing messages until its writes are durable.
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, it } from "vitest";

const ONLY = (env.BENCH_ONLY ?? "").split(",").filter((s) => s !== "");
const TARGET = env.BENCH_TARGET ?? "";

async function timed(n: number, c: number, one: (i: number) => Promise<void>): Promise<{ perRequestMs: number; rps: number }> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (next < n) await one(next++);
    }),
  );
  const ms = performance.now() - t0;
  return { perRequestMs: (ms * c) / n, rps: (n / ms) * 1000 };
}

describe("bench", () => {
  it.runIf(TARGET !== "" && (ONLY.length === 0 || ONLY.includes("outbound")))(
    "outbound: fetch cost in workerd, with and without a write before it",
    async () => {
      const url = `${TARGET}/fixed`;
      const n = env.BENCH_QUICK === "1" ? 200 : 1000;
      const get = async () => {
        const res = await fetch(url);
        await res.arrayBuffer();
      };
      const out: Record<string, unknown> = { section: "outbound" };
      await timed(20, 1, get); // warm the connection pool
      for (const c of [1, 8]) {
        out[`worker_c${c}`] = await timed(n, c, get);
        const ns = env.RUN_COORDINATOR as unknown as { idFromName(n: string): unknown; get(id: unknown): unknown };
        const stub = ns.get(ns.idFromName(`outbound-probe-${c}`));
        out[`object_c${c}`] = await runInDurableObject(stub, () => timed(n, c, get));
        out[`objectAfterWrite_c${c}`] = await runInDurableObject(stub, (_i, state) => {
          state.storage.sql.exec("CREATE TABLE IF NOT EXISTS bench_probe (seq INTEGER PRIMARY KEY)");
          return timed(n, c, async (i) => {
            state.storage.sql.exec("INSERT OR IGNORE INTO bench_probe (seq) VALUES (?)", i);
            await get();
          });
        });
      }
      console.log(`BENCH_RESULT ${JSON.stringify(out)}`);
    },
  );
});
