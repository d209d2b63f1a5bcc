// How evenly a request budget's tail is spread over edge agents: runs of `stop.requests`
// at concurrency c on the fixed target, printing the delivered mean concurrency (the
// time-weighted mean in flight over the measured period) and the run's warnings.
//   npx node bench/budget-tail.ts [runs=2] [requests=3000] [concurrency=32] [edge agents=6]
import { createRun, waitComplete, withTargetAndServer } from "./lib/edgeperf.ts";
import { round, wholeArg } from "./lib/util.ts";

const [runsArg = "2", requestsArg = "3000", cArg = "32", agentsArg = "6"] = process.argv.slice(2);
const runs = wholeArg("runs", runsArg);
const requests = wholeArg("requests", requestsArg);
const c = wholeArg("concurrency", cArg);
const agents = wholeArg("edge agents", agentsArg);

await withTargetAndServer(async (target, server) => {
  for (let i = 0; i < runs; i++) {
    const created = await createRun(server, {
      target: { url: `${target.url}/fixed`, api: "http", method: "GET" },
      load: { concurrency: c },
      stop: { requests },
      agents: { edge: agents },
      graceSeconds: 60,
    });
    const res = await waitComplete(server, created);
    console.log(
      JSON.stringify({
        requests: res.counts.completed + res.counts.failed,
        rps: round(res.metrics.request_throughput.avg, 1),
        meanConcurrency: round(res.delivered?.concurrency?.mean ?? null, 2),
        warnings: (res.warnings ?? []).map((w: { code: string }) => w.code),
      }),
    );
  }
});
