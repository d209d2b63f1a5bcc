// One kind of run against the bench target, repeated: a quick A/B driver for the
// load-generation figures (docs/BENCHMARKS.md), without the whole loadgen section.
//   npx node bench/one-run.ts [runs=2] [path=/fixed] [concurrency=32] [edge agents=6] [seconds=8] [node]
// `node` as the last argument runs the Node agent (`edgeperf agent`, this checkout's
// sources) as the run's only agent instead of edge agents. Prints one JSON line a run:
// what the run measured (req/s, p50 ms, delivered mean concurrency) and what the target
// counted (its arrivals over their span). ONE_RUN_NODE_ARGS adds Node arguments to the
// Node agent's process, e.g. ONE_RUN_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
import { benchServer, nodeAgent, waitComplete } from "./lib/edgeperf.ts";
import { Target, round, targetPathArg, wholeArg } from "./lib/util.ts";
import { loadRun, targetRps } from "./sections/loadgen.ts";

const [runsArg = "2", pathArg = "/fixed", cArg = "32", agentsArg = "6", secondsArg = "8", kind = "edge"] = process.argv.slice(2);
const path = targetPathArg(pathArg);
const runs = wholeArg("runs", runsArg);
const c = wholeArg("concurrency", cArg);
const agents = wholeArg("edge agents", agentsArg);
const seconds = wholeArg("seconds", secondsArg);
if (kind !== "edge" && kind !== "node") throw new Error(`the last argument must be edge or node, not ${kind}`);

const target = new Target();
await target.start();
const server = benchServer();
await server.start();
try {
  for (let i = 0; i < runs; i++) {
    await target.reset();
    const created = await loadRun(server, target.url + path, c, seconds, kind === "node" ? 0 : agents);
    const nodeArgs = (process.env.ONE_RUN_NODE_ARGS ?? "").split(" ").filter((a) => a !== "");
    const agent = kind === "node" ? nodeAgent(server, created, (seconds + 120) * 1000, nodeArgs) : null;
    const res = await waitComplete(server, created);
    await agent;
    console.log(
      JSON.stringify({
        kind,
        rps: round(res.metrics.request_throughput.avg, 1),
        p50Ms: round(res.metrics.request_latency.p50, 2),
        meanConcurrency: round(res.delivered?.concurrency?.mean ?? null, 2),
        targetRps: round(await targetRps(target), 1),
      }),
    );
  }
} finally {
  await server.dispose();
  await target.stop();
}
