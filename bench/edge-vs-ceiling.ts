// Edge agents against the bare workerd fetch loop, alternated in one process (the bench's
// `wrangler dev` up throughout, the same target), so that a machine whose speed drifts
// from minute to minute shows in both: the load-generation figure's ratio, `pairs` times.
//   npx node bench/edge-vs-ceiling.ts [pairs=3] [concurrency=32] [edge agents=6] [seconds=5]
// Prints one JSON line a pair: each side's req/s and local workerd CPU per request, and
// the ratio of their req/s.
import { withTargetAndServer } from "./lib/edgeperf.ts";
import { round, wholeArg } from "./lib/util.ts";
import { ceilingWithCpu, edgeperf } from "./sections/loadgen.ts";

const [pairsArg = "3", cArg = "32", agentsArg = "6", secondsArg = "5"] = process.argv.slice(2);
const pairs = wholeArg("pairs", pairsArg);
const c = wholeArg("concurrency", cArg);
const agents = wholeArg("edge agents", agentsArg);
const seconds = wholeArg("seconds", secondsArg);

await withTargetAndServer(async (target, server) => {
  const url = `${target.url}/fixed`;
  await edgeperf(server, url, c, 1, agents); // warm-up, unmeasured
  for (let i = 0; i < pairs; i++) {
    const row = await edgeperf(server, url, c, seconds, agents);
    const edge = { rps: row.rps, usPerRequest: row.workerdUsPerRequest ?? null };
    const ceiling = await ceilingWithCpu(url, c, seconds, 0);
    console.log(JSON.stringify({ edge, ceiling, ratio: edge.rps && ceiling.rps ? round(edge.rps / ceiling.rps, 3) : null }));
  }
});
