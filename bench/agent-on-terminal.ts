// The Node agent with its progress line on a terminal, as a user runs it (docs/BENCHMARKS.md):
//   npx node bench/agent-on-terminal.ts [runs=2]
// Runs `edgeperf agent` (this checkout, bundled) under `script`, so its stderr is a
// pseudo-terminal, at c=32 on the bench target's /fixed for 5 s, and prints the run's
// req/s and how many bytes the agent wrote to the terminal.
import { cliLauncher, waitComplete, withTargetAndServer } from "./lib/edgeperf.ts";
import { run, wholeArg, which } from "./lib/util.ts";
import { loadRun } from "./sections/loadgen.ts";

const runs = wholeArg("runs", process.argv[2] ?? "2");
if (which("script") === null) throw new Error("needs `script` (util-linux) for a pseudo-terminal");

await withTargetAndServer(async (target, server) => {
  const launcher = await cliLauncher();
  for (let i = 0; i < runs; i++) {
    const created = await loadRun(server, `${target.url}/fixed`, 32, 5, 0);
    const cmd = `${process.execPath} ${launcher} agent ${created.id} --server ${server.url} --token ${created.agentToken} --name terminal > /dev/null`;
    const agent = run("script", ["-qfec", cmd, "/dev/null"], { timeoutMs: 120_000 });
    const res = await waitComplete(server, created);
    const r = await agent;
    if (r.code !== 0) throw new Error(`edgeperf agent exited ${r.code}: ${r.stdout.slice(-300)}`);
    console.log(JSON.stringify({ rps: Math.round(res.metrics.request_throughput.avg), terminalBytes: r.stdout.length }));
  }
});
