// Small helpers shared by the benchmark sections: child processes, statistics, the
// machine's description.
import { execFileSync, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { join } from "node:path";

export const ROOT = join(import.meta.dirname, "..", "..");
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const epoch = () => performance.timeOrigin + performance.now();

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, capturing its output; never throws on a non-zero exit. */
export function run(cmd: string, args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs) : null;
    child.on("error", reject);
    child.on("close", (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A script's whole-number argument, refused by name below `min`. */
export function wholeArg(name: string, value: string, min = 0): number {
  if (!/^\d+$/.test(value) || Number(value) < min)
    throw new Error(`${name} must be a whole number${min > 0 ? ` of at least ${min}` : ""}, not ${value}`);
  return Number(value);
}

/** A script's target-path argument (a route of bench/target.ts such as /fixed or /delay/20). */
export function targetPathArg(value: string): string {
  if (!/^\/[\w/]*$/.test(value)) throw new Error(`path must be a target path such as /fixed or /delay/20, not ${value}`);
  return value;
}

/** Bundles a TypeScript entry (the checkout's sources) for Node 22 with esbuild, as the CLI is built. */
export async function bundle(entry: string, outfile: string): Promise<void> {
  const r = await run(join(ROOT, "node_modules", ".bin", "esbuild"), [
    entry,
    "--bundle",
    "--platform=node",
    "--format=esm",
    "--target=node22",
    `--outfile=${outfile}`,
    "--log-level=warning",
  ]);
  if (r.code !== 0) throw new Error(`esbuild: ${r.stderr}`);
}

/**
 * CPU seconds (user + system) so far of the running processes `label` names from their
 * pid and command line, summed by label (/proc; clock ticks at USER_HZ, 100 on Linux).
 */
export function cpuSecondsBy(label: (pid: string, cmdline: string) => string | null): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const name = label(pid, readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" "));
      if (name === null) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out[name] = (out[name] ?? 0) + (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      /* the process ended meanwhile */
    }
  }
  return out;
}

/**
 * CPU seconds so far of the local workerd processes: `workerd` runs the Worker and its
 * Durable Objects (the one with an inspector), `proxy` is the one wrangler dev puts in
 * front of it (not in production).
 */
export const workerdCpu = (): Record<string, number> =>
  cpuSecondsBy((_, cmd) => (/(^|\/)workerd /.test(cmd) ? (cmd.includes("--inspector-addr") ? "workerd" : "proxy") : null));

/** What each label spent between two readings of cpuSecondsBy. */
export function cpuSpent(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) out[k] = v - (before[k] ?? 0);
  return out;
}

/** The path of an executable on PATH, or null (peers that are absent are skipped). */
export function which(name: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const p = join(dir, name);
    if (dir && existsSync(p)) return p;
  }
  return null;
}

/** bench/target.ts in its own process; resolves once it listens. */
export class Target {
  private proc: ChildProcess | null = null;
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const proc = spawn(process.execPath, [join(ROOT, "bench", "target.ts")], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    this.proc = proc;
    this.port = await new Promise<number>((resolve, reject) => {
      let out = "";
      proc.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /LISTENING (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      proc.once("exit", (code) => reject(new Error(`target exited (${code})`)));
    });
  }

  async reset(): Promise<void> {
    await fetch(`${this.url}/reset`, { method: "POST" });
  }

  async stats(): Promise<TargetStats> {
    return (await (await fetch(`${this.url}/stats`)).json()) as TargetStats;
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    await Promise.race([exited, sleep(3000).then(() => proc.kill("SIGKILL"))]);
    this.proc = null;
  }
}

export interface TargetStats {
  count: number;
  firstArrival: number | null;
  lastArrival: number | null;
  byRoute: Record<string, number>;
  streamed: Array<{ ttftMs: number; itlMs: number | null; tokens: number }>;
}

/** Linear-interpolated percentile (numpy's default), p in 0..100. */
export function percentile(xs: number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const r = (p / 100) * (s.length - 1);
  const lo = Math.floor(r);
  const hi = Math.ceil(r);
  return s[lo]! + (s[hi]! - s[lo]!) * (r - lo);
}

export const mean = (xs: number[]): number | null => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);

export const round = (x: number | null | undefined, digits = 2): number | null =>
  x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10 ** digits) / 10 ** digits;

function pkgVersion(name: string): string | null {
  try {
    return (JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return null;
  }
}

function debVersion(name: string): string | null {
  try {
    return execFileSync("dpkg-query", ["-W", "-f=${Version}", name], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }) || null;
  } catch {
    return null;
  }
}

export function machine(): Record<string, unknown> {
  const c = cpus();
  return {
    cpu: c[0]?.model ?? "unknown",
    cores: c.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    workerd: pkgVersion("workerd"),
    wrangler: pkgVersion("wrangler"),
    vitestPlugin: pkgVersion("@cloudflare/vitest-plugin"),
    autocannon: pkgVersion("autocannon"),
    hey: which("hey") ? debVersion("hey") : null,
    loadAverageAtStart: loadavg().map((x) => round(x)),
  };
}
