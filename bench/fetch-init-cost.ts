// What each part of an edge agent's fetch init costs workerd, in CPU a request: the bare
// fetch loop (bench/ceiling/) with none, then with each of a new AbortController's signal,
// one signal shared by every fetch, an empty Headers and redirect "manual", alternating, on
// one `wrangler dev`.
//   npx node bench/fetch-init-cost.ts [rounds=2] [concurrency=32] [seconds=5] [objects=6] [variants=,signal,headers,manual,signal+headers+manual]
// Prints one JSON line per loop: the variant, req/s and the local workerd's CPU a request.
import { API_TOKEN, DevServer } from "./lib/edgeperf.ts";
import { Target, cpuSpent, round, wholeArg, workerdCpu } from "./lib/util.ts";

const [roundsArg = "2", cArg = "32", secondsArg = "5", objectsArg = "6", variantsArg = ",signal,headers,manual,signal+headers+manual"] =
  process.argv.slice(2);
const rounds = wholeArg("rounds", roundsArg);
const c = wholeArg("concurrency", cArg);
const seconds = wholeArg("seconds", secondsArg);
const objects = wholeArg("objects", objectsArg, 0);
const variants = variantsArg.split(",");

const target = new Target();
await target.start();
const dev = new DevServer({ apiToken: API_TOKEN, extraArgs: ["--config", "bench/ceiling/wrangler.toml"] });
try {
  await dev.start();
  const loop = (ms: number, init: string) =>
    fetch(
      `${dev.url}/loop?objects=${objects}&c=${c}&ms=${ms}&init=${init.replaceAll("+", ",")}&target=${encodeURIComponent(`${target.url}/fixed`)}`,
    ).then((r) => r.json() as Promise<{ rps: number; n: number }>);
  await loop(1_000, ""); // warm-up, unmeasured
  for (let r = 0; r < rounds; r++)
    for (const v of variants) {
      const before = workerdCpu();
      const m = await loop(seconds * 1000, v);
      const us = ((cpuSpent(before, workerdCpu()).workerd ?? 0) * 1e6) / m.n;
      console.log(JSON.stringify({ init: v || "bare", rps: round(m.rps, 1), workerdUsPerRequest: round(us, 1) }));
    }
} finally {
  await dev.dispose();
  await target.stop();
}
