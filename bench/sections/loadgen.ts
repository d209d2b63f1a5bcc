// Load generation vs peers (issue 7 §2): one local target, the same concurrency, the
// same duration; edgeperf's edge agents in `wrangler dev` vs autocannon (npm) vs hey
// (Debian). First a target that answers at once (the tools' own ceiling on this
// machine), then one that answers after a fixed 20 ms, where every tool should report
// ~20 ms: the spread above 20 ms is each tool's measurement overhead. Last, the fixed
// delay at concurrency 8 (ideal 400 req/s): the Node agent against a plain keep-alive
// node:http client, two edge agents against a bare workerd fetch loop.
import { join } from "node:path";
import { nodeHttpLoop } from "../lib/clients.ts";
import { API_TOKEN, DevServer, createRun, nodeAgent as runNodeAgent, waitComplete } from "../lib/edgeperf.ts";
import type { Target } from "../lib/util.ts";
import { ROOT, cpuSpent, log, round, run, sleep, which, workerdCpu } from "../lib/util.ts";

export interface ToolRow {
  tool: string;
  rps: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  requests: number | null;
  errors: number | null;
  /** Requests per second as the target counted them (arrivals over their span). */
  targetRps: number | null;
  /** edgeperf's rows: the local workerd's CPU per request (steadier than req/s on this machine). */
  workerdUsPerRequest?: number | null;
  note?: string;
}

export interface LoadgenOut {
  concurrency: number;
  durationSeconds: number;
  edgeAgents: number;
  fixed: ToolRow[];
  delay20: ToolRow[];
  /** edgeperf alone on the fixed target at other concurrencies: where its ceiling is. */
  sweep: Array<{ concurrency: number; agents: number; rps: number | null; p50Ms: number | null; p99Ms: number | null }>;
  /**
   * A bare Worker's fetch loop (bench/ceiling/) in its own wrangler dev, same target and
   * concurrency, nothing measured or coordinated: the most any load generator running
   * inside workerd can send on this machine.
   */
  workerdCeilingRps: number | null;
  workerdCeilingTargetRps: number | null;
  /** The bare loop's workerd CPU per request, to set against edgeperf's (ToolRow). */
  workerdCeilingUsPerRequest: number | null;
  /**
   * The same loops spread over `edgeAgents` Durable Objects, as edgeperf spreads the run:
   * what that shape costs by itself, with none of edgeperf's work.
   */
  workerdObjectsCeilingRps: number | null;
  workerdObjectsCeilingUsPerRequest: number | null;
  /**
   * edgeperf's req/s against the bare loop's, alternated: the fixed row's run and the
   * ceiling just after it, then more pairs back to back. `edgeCeilingRatio` is their median
   * (the edge agents' figure; one pair moves by a tenth with this VM's speed).
   */
  edgeCeilingPairs: Array<{ edgeRps: number | null; ceilingRps: number | null; ratio: number | null }>;
  edgeCeilingRatio: number | null;
  /**
   * A target that answers after a fixed 20 ms, at concurrency 8 (ideal 400 req/s), each
   * figure as the target counted it (arrivals over their span; the same yardstick for
   * every client). The Node agent vs a plain keep-alive node:http client in the bench's
   * process; two edge agents vs the bare workerd fetch loop.
   */
  fixedDelay: FixedDelayOut | null;
}

export interface FixedDelayOut {
  delayMs: number;
  concurrency: number;
  edgeAgents: number;
  seconds: number;
  nodeRps: number | null;
  nodeReferenceRps: number | null;
  edgeRps: number | null;
  edgeReferenceRps: number | null;
  /**
   * Every alternated pair of edge agents and the bare loop (as the target counted them and
   * as they counted themselves); edgeRps and edgeReferenceRps are the pair of median ratio.
   */
  edgePairs: Array<{
    edge: { self: number | null; seen: number | null };
    reference: { self: number | null; seen: number | null };
    ratio: number | null;
  }>;
  /** The same runs as the clients counted themselves (the run's request_throughput for edgeperf). */
  selfReported: { node: number | null; nodeReference: number | null; edge: number | null; edgeReference: number | null };
}

/**
 * The bare workerd fetch loop (bench/ceiling/) in its own wrangler dev. `measured` runs
 * just before the measured loop, after the warm-up (e.g. to reset the target's counts),
 * `finished` just after it, while its workerd still runs (e.g. to read its CPU).
 */
async function workerdCeiling(
  url: string,
  c: number,
  seconds: number,
  hooks: { measured?: () => Promise<void> | void; finished?: (requests: number) => void; objects?: number } = {},
): Promise<number> {
  const dev = new DevServer({ apiToken: API_TOKEN, extraArgs: ["--config", "bench/ceiling/wrangler.toml"] });
  try {
    await dev.start();
    const loop = (ms: number) =>
      fetch(`${dev.url}/loop?objects=${hooks.objects ?? 0}&c=${c}&ms=${ms}&target=${encodeURIComponent(url)}`).then(
        (r) => r.json() as Promise<{ rps: number; n: number }>,
      );
    await loop(1_000); // warm-up, unmeasured
    await hooks.measured?.();
    const measured = await loop(seconds * 1000);
    hooks.finished?.(measured.n);
    return measured.rps;
  } finally {
    await dev.dispose();
  }
}

/** workerdCeiling with the loop's workerd CPU per request, over `objects` Durable Objects (0: the Worker alone). */
export async function ceilingWithCpu(url: string, c: number, seconds: number, objects: number) {
  let before: Record<string, number> = {};
  let usPerRequest: number | null = null;
  const rps = await workerdCeiling(url, c, seconds, {
    objects,
    measured: () => {
      before = workerdCpu();
    },
    finished: (requests) => {
      usPerRequest = requests > 0 ? round(((cpuSpent(before, workerdCpu()).workerd ?? 0) * 1e6) / requests, 1) : null;
    },
  });
  return { rps: round(rps, 1), usPerRequest };
}

export async function targetRps(target: Target): Promise<number | null> {
  const s = await target.stats();
  if (s.firstArrival === null || s.lastArrival === null || s.lastArrival <= s.firstArrival) return null;
  return s.count / ((s.lastArrival - s.firstArrival) / 1000);
}

/** A run of `seconds` at concurrency `c` against `url` (api http, GET) on `agents` edge agents. */
export function loadRun(server: DevServer, url: string, c: number, seconds: number, agents: number) {
  return createRun(server, {
    target: { url, api: "http", method: "GET" },
    load: { concurrency: c },
    stop: { durationSeconds: seconds },
    agents: { edge: agents },
    graceSeconds: 60,
  });
}

/** A finished run's row: throughput and latency as the run measured them. */
function runRow(tool: string, res: any): ToolRow {
  const m = res.metrics;
  return {
    tool,
    rps: round(m.request_throughput.avg, 1),
    p50Ms: round(m.request_latency.p50, 3),
    p99Ms: round(m.request_latency.p99, 3),
    requests: res.counts.completed + res.counts.failed,
    errors: res.counts.failed,
    targetRps: null,
  };
}

/** A run on edge agents as the section's edgeperf rows measure it, with the local workerd's CPU a request. */
export async function edgeperf(server: DevServer, url: string, c: number, seconds: number, agents: number): Promise<ToolRow> {
  const before = workerdCpu();
  const created = await loadRun(server, url, c, seconds, agents);
  const row = runRow("edgeperf", await waitComplete(server, created));
  const cpu = cpuSpent(before, workerdCpu()).workerd ?? 0;
  return { ...row, workerdUsPerRequest: row.requests ? round((cpu * 1e6) / row.requests, 1) : null };
}

/** `edgeperf agent` (the Node agent, one process, this checkout's sources) as the run's only agent. */
async function nodeAgent(server: DevServer, url: string, c: number, seconds: number): Promise<ToolRow> {
  const created = await loadRun(server, url, c, seconds, 0);
  const agent = runNodeAgent(server, created, (seconds + 120) * 1000);
  const res = await waitComplete(server, created);
  await agent;
  return { ...runRow("edgeperf agent (Node)", res), note: `mean concurrency ${round(res.delivered?.concurrency?.mean ?? null, 2)}` };
}

/** autocannon at concurrency `c` for `seconds`; `nodeArgs` go to its Node process (e.g. a preloaded module). */
export async function autocannon(url: string, c: number, seconds: number, nodeArgs: string[] = []): Promise<ToolRow> {
  const bin = join(ROOT, "node_modules", "autocannon", "autocannon.js");
  const r = await run(process.execPath, [...nodeArgs, bin, "-c", String(c), "-d", String(seconds), "--json", "--no-progress", url], {
    timeoutMs: (seconds + 60) * 1000,
  });
  if (r.code !== 0) throw new Error(`autocannon exited ${r.code}: ${r.stderr.slice(-500)}`);
  const j = JSON.parse(r.stdout) as {
    requests: { total: number; average: number };
    latency: { p50: number; p99: number };
    duration: number;
    errors: number;
    non2xx: number;
  };
  return {
    tool: "autocannon",
    rps: round(j.requests.total / j.duration, 1),
    p50Ms: round(j.latency.p50, 3),
    p99Ms: round(j.latency.p99, 3),
    requests: j.requests.total,
    errors: j.errors + j.non2xx,
    targetRps: null,
  };
}

/** hey's text summary: "Requests/sec:", "50% in X secs", "99% in X secs". */
async function hey(url: string, c: number, seconds: number): Promise<ToolRow> {
  const r = await run("hey", ["-z", `${seconds}s`, "-c", String(c), url], { timeoutMs: (seconds + 60) * 1000 });
  if (r.code !== 0) throw new Error(`hey exited ${r.code}: ${r.stderr.slice(-500)}`);
  const num = (re: RegExp) => {
    const m = re.exec(r.stdout);
    return m ? Number(m[1]) : null;
  };
  const codes = [...r.stdout.matchAll(/\[(\d{3})\]\s+(\d+) responses/g)];
  const total = codes.reduce((s, m) => s + Number(m[2]), 0);
  const ok = codes.filter((m) => m[1]!.startsWith("2")).reduce((s, m) => s + Number(m[2]), 0);
  const p50 = num(/50% in ([\d.]+) secs/);
  const p99 = num(/99% in ([\d.]+) secs/);
  return {
    tool: "hey",
    rps: round(num(/Requests\/sec:\s+([\d.]+)/), 1),
    p50Ms: p50 === null ? null : round(p50 * 1000, 3),
    p99Ms: p99 === null ? null : round(p99 * 1000, 3),
    requests: total,
    errors: total - ok + (num(/Error distribution:[\s\S]*?\[(\d+)\]/) ?? 0),
    targetRps: null,
  };
}

export async function loadgen(server: DevServer, target: Target, quick: boolean): Promise<LoadgenOut> {
  const c = quick ? 32 : 64;
  const seconds = quick ? 5 : 15;
  // As a run against this target sizes them by default: the target answers only when done,
  // so one edge agent per six requests in flight (contract/run-plan.ts, HEADER_WAIT_LIMIT).
  const agents = Math.ceil(c / 6);
  const heyPresent = which("hey") !== null;
  const out: LoadgenOut = {
    concurrency: c,
    durationSeconds: seconds,
    edgeAgents: agents,
    fixed: [],
    delay20: [],
    sweep: [],
    workerdCeilingRps: null,
    workerdCeilingTargetRps: null,
    workerdCeilingUsPerRequest: null,
    workerdObjectsCeilingRps: null,
    workerdObjectsCeilingUsPerRequest: null,
    edgeCeilingPairs: [],
    edgeCeilingRatio: null,
    fixedDelay: null,
  };
  // Warm the target's JIT and the agents' code paths once, unmeasured.
  await autocannon(`${target.url}/fixed`, c, 1);
  await edgeperf(server, `${target.url}/fixed`, c, 1, agents);
  for (const [key, path] of [
    ["fixed", "/fixed"],
    ["delay20", "/delay/20"],
  ] as const) {
    const url = target.url + path;
    const tools: Array<[string, () => Promise<ToolRow>]> = [
      ["edgeperf", () => edgeperf(server, url, c, seconds, agents)],
      ["edgeperf agent (Node)", () => nodeAgent(server, url, c, seconds)],
      ["autocannon", () => autocannon(url, c, seconds)],
      ["hey", () => hey(url, c, seconds)],
    ];
    for (const [name, go] of tools) {
      if (name === "hey" && !heyPresent) {
        out[key].push({
          tool: "hey",
          rps: null,
          p50Ms: null,
          p99Ms: null,
          requests: null,
          errors: null,
          targetRps: null,
          note: "not installed",
        });
        continue;
      }
      log(`loadgen ${key}: ${name}, c=${c}, ${seconds} s`);
      await target.reset();
      const row = await go();
      row.targetRps = round(await targetRps(target), 1);
      out[key].push(row);
      log(`  ${row.rps} req/s, p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms (target saw ${row.targetRps} req/s)`);
      await sleep(500);
      // The ceilings right after edgeperf's run on the same target, so that the ratio
      // compares two measurements a minute apart, not the two ends of a section on a VM
      // whose speed drifts from minute to minute.
      if (key === "fixed" && name === "edgeperf") {
        await ceilings(target, c, seconds, agents, out);
        await edgeCeilingPairs(server, target, c, seconds, agents, row, out);
      }
    }
  }
  for (const [sc, sa] of (quick
    ? [
        [8, 1],
        [128, 8],
      ]
    : [
        [1, 1],
        [8, 1],
        [32, 1],
        [128, 8],
        [256, 16],
      ]) as Array<[number, number]>) {
    log(`loadgen sweep: edgeperf c=${sc}, ${sa} agents`);
    const row = await edgeperf(server, `${target.url}/fixed`, sc, seconds, sa);
    out.sweep.push({ concurrency: sc, agents: sa, rps: row.rps, p50Ms: row.p50Ms, p99Ms: row.p99Ms });
  }
  out.fixedDelay = await fixedDelay(server, target, seconds);
  return out;
}

/** The bare workerd fetch loop, alone and over `agents` Durable Objects, into `out`. */
async function ceilings(target: Target, c: number, seconds: number, agents: number, out: LoadgenOut): Promise<void> {
  log(`loadgen: workerd ceiling (a bare Worker's fetch loop), c=${c}, ${seconds} s`);
  await target.reset();
  const ceiling = await ceilingWithCpu(`${target.url}/fixed`, c, seconds, 0);
  out.workerdCeilingRps = ceiling.rps;
  out.workerdCeilingUsPerRequest = ceiling.usPerRequest;
  out.workerdCeilingTargetRps = round(await targetRps(target), 1);
  log(
    `  ${out.workerdCeilingRps} req/s, ${out.workerdCeilingUsPerRequest} µs of workerd CPU a request (target saw ${out.workerdCeilingTargetRps} req/s, warm-up included)`,
  );
  log(`loadgen: the same loops over ${agents} Durable Objects, c=${c}, ${seconds} s`);
  const objects = await ceilingWithCpu(`${target.url}/fixed`, c, seconds, agents);
  out.workerdObjectsCeilingRps = objects.rps;
  out.workerdObjectsCeilingUsPerRequest = objects.usPerRequest;
  log(`  ${objects.rps} req/s, ${objects.usPerRequest} µs of workerd CPU a request`);
}

/** Pairs of edgeperf and the bare loop beyond the first (see LoadgenOut.edgeCeilingPairs). */
const EXTRA_PAIRS = 4;

/**
 * The edge figure from several alternated pairs: the first is the fixed row's edgeperf run
 * and the ceiling just after it, then EXTRA_PAIRS more back to back, every other one with
 * the bare loop first, so a machine that speeds up or slows down over the section favours
 * neither side. One pair swung between 0.47× and 0.87× on this VM, three pairs' median
 * between 0.57× and 0.72× in two runs of one tree; the median of five is the figure.
 */
async function edgeCeilingPairs(
  server: DevServer,
  target: Target,
  c: number,
  seconds: number,
  agents: number,
  first: ToolRow,
  out: LoadgenOut,
): Promise<void> {
  const url = `${target.url}/fixed`;
  const pair = (edgeRps: number | null, ceilingRps: number | null) => ({
    edgeRps,
    ceilingRps,
    ratio: edgeRps && ceilingRps ? round(edgeRps / ceilingRps, 3) : null,
  });
  out.edgeCeilingPairs = [pair(first.rps, out.workerdCeilingRps)];
  for (let i = 0; i < EXTRA_PAIRS; i++) {
    log(`loadgen: edgeperf and the bare loop again (pair ${i + 2} of ${EXTRA_PAIRS + 1}), c=${c}, ${seconds} s each`);
    const { edge, bare } = await pairRun(
      i % 2 === 0,
      async () => {
        await target.reset();
        return edgeperf(server, url, c, seconds, agents);
      },
      async () => {
        await target.reset();
        return ceilingWithCpu(url, c, seconds, 0);
      },
    );
    out.edgeCeilingPairs.push(pair(edge.rps, bare.rps));
    log(`  ${edge.rps} vs ${bare.rps} req/s`);
  }
  out.edgeCeilingRatio = medianPair(out.edgeCeilingPairs).ratio;
}

/** Runs an edge-agent measurement and a bare-loop one back to back, the bare loop first when `bareFirst`. */
async function pairRun<E, B>(bareFirst: boolean, edgeRun: () => Promise<E>, bareRun: () => Promise<B>): Promise<{ edge: E; bare: B }> {
  if (bareFirst) {
    const bare = await bareRun();
    return { edge: await edgeRun(), bare };
  }
  const edge = await edgeRun();
  return { edge, bare: await bareRun() };
}

/** The pair of median ratio among those with a ratio (a failed run has none); the first pair when none has. */
function medianPair<P extends { ratio: number | null }>(pairs: P[]): P {
  const byRatio = pairs.filter((p) => p.ratio !== null).sort((a, b) => a.ratio! - b.ratio!);
  return byRatio[Math.floor(byRatio.length / 2)] ?? pairs[0]!;
}

/** The fixed-delay comparison (see FixedDelayOut): 20 ms, concurrency 8, two edge agents. */
export async function fixedDelay(server: DevServer, target: Target, seconds: number): Promise<FixedDelayOut> {
  const delayMs = 20;
  const c = 8;
  const edgeAgents = 2;
  const url = `${target.url}/delay/${delayMs}`;
  const counted = async (name: string, go: () => Promise<number | null>) => {
    log(`loadgen fixed delay ${delayMs} ms, c=${c}: ${name}, ${seconds} s`);
    await target.reset();
    const self = await go();
    const seen = round(await targetRps(target), 1);
    log(`  ${round(self, 1)} req/s (target saw ${seen} req/s)`);
    await sleep(500);
    return { self: round(self, 1), seen };
  };
  // Unmeasured: a first run of each kind warms the code paths (and builds the CLI bundle).
  await nodeAgent(server, url, c, 1);
  await nodeHttpLoop(url, c, 1);
  const node = await counted("edgeperf agent (Node)", async () => (await nodeAgent(server, url, c, seconds)).rps);
  const nodeRef = await counted("plain node:http client", () => nodeHttpLoop(url, c, seconds));
  const edgeRun = () =>
    counted(`edgeperf, ${edgeAgents} edge agents`, async () => (await edgeperf(server, url, c, seconds, edgeAgents)).rps);
  const bareRun = async () => {
    log(`loadgen fixed delay ${delayMs} ms, c=${c}: bare workerd fetch loop, ${seconds} s`);
    const self = await workerdCeiling(url, c, seconds, { measured: () => target.reset() });
    const seen = round(await targetRps(target), 1);
    log(`  ${round(self, 1)} req/s (target saw ${seen} req/s)`);
    return { self: round(self, 1), seen };
  };
  // Edge agents against the bare loop in FIXED_DELAY_PAIRS alternated pairs (every other
  // one with the bare loop first); the pair of median ratio is the figure, as for the fast
  // target's (see edgeCeilingPairs): one pair read 0.92–1.0 on this VM within an hour.
  const edgePairs: FixedDelayOut["edgePairs"] = [];
  for (let i = 0; i < FIXED_DELAY_PAIRS; i++) {
    const { edge, bare } = await pairRun(i % 2 === 1, edgeRun, bareRun);
    edgePairs.push({ edge, reference: bare, ratio: edge.seen && bare.seen ? round(edge.seen / bare.seen, 3) : null });
  }
  const { edge, reference } = medianPair(edgePairs);
  return {
    delayMs,
    concurrency: c,
    edgeAgents,
    seconds,
    nodeRps: node.seen,
    nodeReferenceRps: nodeRef.seen,
    edgeRps: edge.seen,
    edgeReferenceRps: reference.seen,
    edgePairs,
    selfReported: { node: node.self, nodeReference: nodeRef.self, edge: edge.self, edgeReference: reference.self },
  };
}

/** Alternated pairs of edge agents and the bare loop on the 20 ms target (see fixedDelay). */
const FIXED_DELAY_PAIRS = 3;
