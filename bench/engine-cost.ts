// What the agent's engine costs per request on top of its HTTP client (docs/BENCHMARKS.md,
// "Where the CPU goes"):
//   npx node bench/engine-cost.ts [seconds=4] [concurrency=32] [rounds=2]
// Bundles bench/engine-cost/agent.ts (the Node agent's AgentEngine and client, with an
// in-process stand-in for the coordinator) and runs it, in its own process, against the
// bench target's /fixed, `rounds` times; compare with bench/client-cost.ts's `edgeperf` line.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, Target, run } from "./lib/util.ts";

const [seconds = "4", c = "32", rounds = "2"] = process.argv.slice(2);
for (const [name, v] of [
  ["seconds", seconds],
  ["concurrency", c],
  ["rounds", rounds],
] as const)
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`${name} must be a whole number of at least 1, not ${v}`);

const dir = mkdtempSync(join(tmpdir(), "edgeperf-engine-cost-"));
const out = join(dir, "agent.mjs");
const built = await run(join(ROOT, "node_modules", ".bin", "esbuild"), [
  "bench/engine-cost/agent.ts",
  "--bundle",
  "--platform=node",
  "--format=esm",
  "--target=node22",
  `--outfile=${out}`,
  "--log-level=warning",
]);
if (built.code !== 0) throw new Error(`esbuild: ${built.stderr}`);
const target = new Target();
await target.start();
try {
  for (let r = 0; r < Number(rounds); r++) {
    const res = await run(process.execPath, [out, `${target.url}/fixed`, c, seconds], { timeoutMs: (Number(seconds) + 60) * 1000 });
    if (res.code !== 0) throw new Error(`engine-cost exited ${res.code}: ${res.stderr.slice(-500)}`);
    console.log(res.stdout.trim());
  }
} finally {
  await target.stop();
  rmSync(dir, { recursive: true, force: true });
}
