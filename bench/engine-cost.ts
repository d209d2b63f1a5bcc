// What the agent's engine costs per request on top of its HTTP client (docs/BENCHMARKS.md,
// "Where the CPU goes"):
//   npx node bench/engine-cost.ts [seconds=4] [concurrency=32] [rounds=2]
// Bundles bench/engine-cost/agent.ts (the Node agent's AgentEngine and client, with an
// in-process stand-in for the coordinator) and runs it, in its own process, against the
// bench target's /fixed, `rounds` times; compare with bench/client-cost.ts's `edgeperf` line.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Target, bundle, run, wholeArg } from "./lib/util.ts";

const [secondsArg = "4", cArg = "32", roundsArg = "2"] = process.argv.slice(2);
const seconds = wholeArg("seconds", secondsArg, 1);
const c = wholeArg("concurrency", cArg, 1);
const rounds = wholeArg("rounds", roundsArg, 1);

const dir = mkdtempSync(join(tmpdir(), "edgeperf-engine-cost-"));
const out = join(dir, "agent.mjs");
await bundle("bench/engine-cost/agent.ts", out);
const target = new Target();
await target.start();
try {
  for (let r = 0; r < rounds; r++) {
    const res = await run(process.execPath, [out, `${target.url}/fixed`, String(c), String(seconds)], { timeoutMs: (seconds + 60) * 1000 });
    if (res.code !== 0) throw new Error(`engine-cost exited ${res.code}: ${res.stderr.slice(-500)}`);
    console.log(res.stdout.trim());
  }
} finally {
  await target.stop();
  rmSync(dir, { recursive: true, force: true });
}
