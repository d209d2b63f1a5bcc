// Where the machine's CPU goes per request, by process, for the load-generation figure
// at c=32 on the bench target's /fixed route (docs/BENCHMARKS.md, "Where the CPU goes"):
//   npx node bench/cpu-split.ts [seconds=5] [concurrency=32] [path=/fixed]
// Two runs, one after the other: autocannon alone, then the Node agent (`edgeperf agent`)
// with its coordinator in `wrangler dev`. For each: requests a second, and microseconds
// of CPU (user + system) a request spent by the load generator, the target and every
// workerd process, read from /proc (processes still running) and from process.cpuUsage()
// at exit (the load generator, which exits before the run's end is read).
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { benchServer, nodeAgent, waitComplete } from "./lib/edgeperf.ts";
import { ROOT, Target, round, run } from "./lib/util.ts";
import { loadRun } from "./sections/loadgen.ts";

const [seconds = "5", c = "32", path = "/fixed"] = process.argv.slice(2);
for (const [name, v] of [
  ["seconds", seconds],
  ["concurrency", c],
] as const)
  if (!/^\d+$/.test(v)) throw new Error(`${name} must be a whole number, not ${v}`);
if (!/^\/[\w/]*$/.test(path)) throw new Error(`path must be a target path such as /fixed, not ${path}`);

/** Clock ticks a second for /proc's utime and stime (USER_HZ: 100 on Linux). */
const HZ = 100;

/** CPU seconds so far of every process whose command line matches, by its label. */
function cpuByProcess(): Map<number, { label: string; s: number }> {
  const out = new Map<number, { label: string; s: number }>();
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").join(" ");
      const label = cmd.includes("bench/target.ts") ? "target" : /(^|\/)workerd /.test(cmd) ? `workerd ${p}` : null;
      if (label === null) continue;
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(Number(p), { label, s: (Number(f[11]) + Number(f[12])) / HZ });
    } catch {
      /* the process ended meanwhile */
    }
  }
  return out;
}

/** What each label spent between two readings, in CPU seconds. */
function spent(a: ReturnType<typeof cpuByProcess>, b: ReturnType<typeof cpuByProcess>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [pid, v] of b) out[v.label] = (out[v.label] ?? 0) + v.s - (a.get(pid)?.s ?? 0);
  return out;
}

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

const target = new Target();
await target.start();
const server = benchServer();
await server.start();
const rows: Row[] = [];
try {
  const url = target.url + path;
  // autocannon alone against the target.
  const bin = join(ROOT, "node_modules", "autocannon", "autocannon.js");
  await run(process.execPath, [bin, "-c", c, "-d", "1", "--json", "--no-progress", url]); // warm-up
  let a = cpuByProcess();
  let t0 = performance.now();
  const ac = await run(process.execPath, ["--import", hook, bin, "-c", c, "-d", seconds, "--json", "--no-progress", url]);
  let wall = (performance.now() - t0) / 1000;
  if (ac.code !== 0) throw new Error(`autocannon exited ${ac.code}: ${ac.stderr.slice(-300)}`);
  const acTotal = (JSON.parse(ac.stdout) as { requests: { total: number } }).requests.total;
  const acDuration = (JSON.parse(ac.stdout) as { duration: number }).duration;
  rows.push(row("autocannon", acTotal, acDuration, wall, { generator: generatorCpu(), ...spent(a, cpuByProcess()) }));

  // The Node agent, its coordinator in wrangler dev, against the same target.
  const created = await loadRun(server, url, Number(c), Number(seconds), 0);
  a = cpuByProcess();
  t0 = performance.now();
  const agent = nodeAgent(server, created, (Number(seconds) + 120) * 1000, ["--import", hook]);
  const res = await waitComplete(server, created);
  await agent;
  wall = (performance.now() - t0) / 1000;
  const requests = res.counts.completed + res.counts.failed;
  const span = requests / res.metrics.request_throughput.avg; // the run's own measured span
  rows.push(row("edgeperf agent (Node)", requests, span, wall, { generator: generatorCpu(), ...spent(a, cpuByProcess()) }));
  for (const r of rows) console.log(JSON.stringify(r));
} finally {
  await server.dispose();
  await target.stop();
  rmSync(dir, { recursive: true, force: true });
}
