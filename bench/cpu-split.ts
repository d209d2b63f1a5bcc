// Where the machine's CPU goes per request, by process, for the load-generation figure
// at c=32 on the bench target's /fixed route (docs/BENCHMARKS.md, "Where the CPU goes"):
//   npx node bench/cpu-split.ts [seconds=5] [concurrency=32] [path=/fixed]
// Two runs, one after the other: autocannon alone, then the Node agent (`edgeperf agent`)
// with its coordinator in `wrangler dev`. For each: requests a second, and microseconds
// of CPU (user + system) a request spent by the load generator, the target and every
// workerd process, read from /proc (processes still running) and from process.cpuUsage()
// at exit (the load generator, which exits before the run's end is read).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { nodeAgent, waitComplete, withTargetAndServer } from "./lib/edgeperf.ts";
import { cpuSecondsBy, cpuSpent, round, targetPathArg, wholeArg } from "./lib/util.ts";
import { autocannon, loadRun } from "./sections/loadgen.ts";

const [secondsArg = "5", cArg = "32", pathArg = "/fixed"] = process.argv.slice(2);
const seconds = wholeArg("seconds", secondsArg);
const c = wholeArg("concurrency", cArg);
const path = targetPathArg(pathArg);

/** The target and each workerd process (by pid), as cpuSecondsBy labels them. */
const processes = () =>
  cpuSecondsBy((pid, cmd) => (cmd.includes("bench/target.ts") ? "target" : /(^|\/)workerd /.test(cmd) ? `workerd ${pid}` : null));

// The load generator's own CPU, written by a preloaded module when its process exits.
const dir = mkdtempSync(join(tmpdir(), "edgeperf-cpu-"));
const hook = join(dir, "cpu-at-exit.mjs");
const usage = join(dir, "usage.json");
writeFileSync(
  hook,
  `import { writeFileSync } from "node:fs";\nprocess.on("exit", () => { const u = process.cpuUsage(); writeFileSync(${JSON.stringify(usage)}, JSON.stringify((u.user + u.system) / 1e6)); });\n`,
);
const generatorCpu = () => JSON.parse(readFileSync(usage, "utf8")) as number;

interface Row {
  generator: string;
  rps: number;
  requests: number;
  wallSeconds: number;
  /** Microseconds of CPU a request, by process. */
  usPerRequest: Record<string, number | null>;
  /** Of the machine's cores over the run, the share no process above used. */
  idleShare: number | null;
}

/** `span`: the seconds the requests took (for req/s); `wall`: the seconds the CPU was read over. */
function row(generator: string, requests: number, span: number, wall: number, cpu: Record<string, number>): Row {
  const us: Record<string, number | null> = {};
  let used = 0;
  for (const [k, v] of Object.entries(cpu)) {
    us[k] = round((v * 1e6) / requests, 1);
    used += v;
  }
  return {
    generator,
    rps: round(requests / span, 0)!,
    requests,
    wallSeconds: round(wall, 2)!,
    usPerRequest: us,
    idleShare: round(1 - used / (wall * cpus().length), 3),
  };
}

const rows: Row[] = [];
try {
  await withTargetAndServer(async (target, server) => {
    const url = target.url + path;
    // autocannon alone against the target.
    await autocannon(url, c, 1); // warm-up
    let before = processes();
    let t0 = performance.now();
    const ac = await autocannon(url, c, seconds, ["--import", hook]);
    let wall = (performance.now() - t0) / 1000;
    rows.push(
      row("autocannon", ac.requests!, ac.requests! / ac.rps!, wall, { generator: generatorCpu(), ...cpuSpent(before, processes()) }),
    );

    // The Node agent, its coordinator in wrangler dev, against the same target.
    const created = await loadRun(server, url, c, seconds, 0);
    before = processes();
    t0 = performance.now();
    const agent = nodeAgent(server, created, (seconds + 120) * 1000, ["--import", hook]);
    const res = await waitComplete(server, created);
    await agent;
    wall = (performance.now() - t0) / 1000;
    const requests = res.counts.completed + res.counts.failed;
    const span = requests / res.metrics.request_throughput.avg; // the run's own measured span
    rows.push(row("edgeperf agent (Node)", requests, span, wall, { generator: generatorCpu(), ...cpuSpent(before, processes()) }));
    for (const r of rows) console.log(JSON.stringify(r));
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
