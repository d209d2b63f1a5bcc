// One kind of run against the bench target, repeated: a quick A/B driver for the
// load-generation figures (docs/BENCHMARKS.md), without the whole loadgen section.
//   npx node bench/one-run.ts [runs=2] [path=/fixed] [concurrency=32] [edge agents=6] [seconds=8] [edge|node|ceiling]
// Prints one JSON line a run. `edge` (the default) runs edge agents, `node` the Node agent
// (`edgeperf agent`, this checkout's sources) as the run's only agent: what the run
// measured (req/s, p50 ms, delivered mean concurrency), what the target counted (its
// arrivals over their span), and the local workerd's CPU per request, steadier than req/s
// on a machine whose speed drifts. `ceiling` runs the bare workerd fetch loop instead
// (bench/ceiling/; CEILING_OBJECTS=6 spreads it over six Durable Objects).
// ONE_RUN_NODE_ARGS adds Node arguments to the Node agent's process, e.g.
// ONE_RUN_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"; ONE_RUN_PROFILE=/tmp/edge
// saves a CPU profile of workerd for each run (/tmp/edge-<i>.cpuprofile, with the bundle
// it refers to as /tmp/edge.bundle.js).
import { writeFileSync } from "node:fs";
import { Inspector } from "./lib/cdp.ts";
import { nodeAgent, waitComplete, withTargetAndServer } from "./lib/edgeperf.ts";
import { Target, cpuSpent, round, targetPathArg, wholeArg, workerdCpu } from "./lib/util.ts";
import { ceilingWithCpu, loadRun, targetRps } from "./sections/loadgen.ts";

const [runsArg = "2", pathArg = "/fixed", cArg = "32", agentsArg = "6", secondsArg = "8", kind = "edge"] = process.argv.slice(2);
const path = targetPathArg(pathArg);
const runs = wholeArg("runs", runsArg);
const c = wholeArg("concurrency", cArg);
const agents = wholeArg("edge agents", agentsArg);
const seconds = wholeArg("seconds", secondsArg);
if (kind !== "edge" && kind !== "node" && kind !== "ceiling")
  throw new Error(`the last argument must be edge, node or ceiling, not ${kind}`);

if (kind === "ceiling") {
  const target = new Target();
  await target.start();
  try {
    for (let i = 0; i < runs; i++) {
      const { rps, usPerRequest } = await ceilingWithCpu(target.url + path, c, seconds, Number(process.env.CEILING_OBJECTS ?? 0));
      console.log(JSON.stringify({ kind, rps, workerdUsPerRequest: usPerRequest }));
    }
  } finally {
    await target.stop();
  }
} else {
  await withTargetAndServer(async (target, server) => {
    for (let i = 0; i < runs; i++) {
      await target.reset();
      const profile = process.env.ONE_RUN_PROFILE ? new Inspector() : null;
      if (profile) {
        await profile.connect(server.inspectorPort);
        await profile.start(200);
      }
      const before = workerdCpu();
      const created = await loadRun(server, target.url + path, c, seconds, kind === "node" ? 0 : agents);
      const nodeArgs = (process.env.ONE_RUN_NODE_ARGS ?? "").split(" ").filter((a) => a !== "");
      const agent = kind === "node" ? nodeAgent(server, created, (seconds + 120) * 1000, nodeArgs) : null;
      const res = await waitComplete(server, created);
      await agent;
      const requests = res.counts.completed + res.counts.failed;
      const cpu = cpuSpent(before, workerdCpu());
      if (profile) {
        writeFileSync(`${process.env.ONE_RUN_PROFILE}-${i}.cpuprofile`, JSON.stringify(await profile.stop()));
        if (server.bundle) writeFileSync(`${process.env.ONE_RUN_PROFILE}.bundle.js`, server.bundle);
        profile.close();
      }
      console.log(
        JSON.stringify({
          kind,
          rps: round(res.metrics.request_throughput.avg, 1),
          p50Ms: round(res.metrics.request_latency.p50, 2),
          meanConcurrency: round(res.delivered?.concurrency?.mean ?? null, 2),
          targetRps: round(await targetRps(target), 1),
          // Run creation and wind-down included.
          workerdUsPerRequest: round(((cpu.workerd ?? 0) * 1e6) / requests, 1),
        }),
      );
    }
  });
}
