// Edge agents against the bare workerd fetch loop, alternated in one process (the bench's
// `wrangler dev` up throughout, the same target), so that a machine whose speed drifts
// from minute to minute shows in both: the load-generation figure's ratio, `pairs` times.
//   npx node bench/edge-vs-ceiling.ts [pairs=3] [concurrency=32] [edge agents=6] [seconds=5]
// Prints one JSON line a pair: each side's req/s and local workerd CPU per request, and
// the ratio of their req/s.
import { benchServer, waitComplete } from "./lib/edgeperf.ts";
import { Target, cpuSpent, round, wholeArg, workerdCpu } from "./lib/util.ts";
import { ceilingWithCpu, loadRun } from "./sections/loadgen.ts";

const [pairsArg = "3", cArg = "32", agentsArg = "6", secondsArg = "5"] = process.argv.slice(2);
const pairs = wholeArg("pairs", pairsArg);
const c = wholeArg("concurrency", cArg);
const agents = wholeArg("edge agents", agentsArg);
const seconds = wholeArg("seconds", secondsArg);

const target = new Target();
await target.start();
const server = benchServer();
await server.start();
try {
  const url = `${target.url}/fixed`;
  await waitComplete(server, await loadRun(server, url, c, 1, agents)); // warm-up, unmeasured
  for (let i = 0; i < pairs; i++) {
    const before = workerdCpu();
    const res = await waitComplete(server, await loadRun(server, url, c, seconds, agents));
    const requests = res.counts.completed + res.counts.failed;
    const edge = {
      rps: round(res.metrics.request_throughput.avg, 1),
      usPerRequest: round(((cpuSpent(before, workerdCpu()).workerd ?? 0) * 1e6) / requests, 1),
    };
    const ceiling = await ceilingWithCpu(url, c, seconds, 0);
    console.log(JSON.stringify({ edge, ceiling, ratio: edge.rps && ceiling.rps ? round(edge.rps / ceiling.rps, 3) : null }));
  }
} finally {
  await server.dispose();
  await target.stop();
}
