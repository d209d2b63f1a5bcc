// Starts this checkout's Worker with `wrangler dev` (for `demo` and `dev`) and waits
// until it answers /healthz. Wrangler runs under the same Node as the CLI, from the
// project's own node_modules, so no global install or PATH lookup is involved.

import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { CliError, oneLine } from "./errors.ts";

/** The checkout: the bundle is dist/edgeperf.mjs and the sources cli/*.ts, both one level down. */
export const PROJECT_ROOT = fileURLToPath(new URL("..", import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no free port"))));
    });
  });
}

/**
 * The environment wrangler runs in: no metrics sent, and wrangler's local observability
 * off unless the caller set X_LOCAL_OBSERVABILITY. That collector (on by default in
 * `wrangler dev`) stores every span of the local Worker, one per request to the target,
 * in its own SQLite store inside the same workerd: it took about a third of workerd's
 * CPU in a local benchmark and added a millisecond to each measured latency
 * (docs/BENCHMARKS.md, "Round of 2026-11-30, eighth"). Deployed Workers have no such
 * collector.
 */
export function wranglerEnv(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...base, WRANGLER_SEND_METRICS: "false", X_LOCAL_OBSERVABILITY: base.X_LOCAL_OBSERVABILITY ?? "false" };
}

export interface WranglerOptions {
  port: number;
  inspectorPort?: number;
  vars: Record<string, string>;
  persistTo?: string;
  /** "pipe": output kept for error messages, own process group (demo). "inherit": the user's terminal (dev). */
  stdio: "pipe" | "inherit";
  extraArgs?: string[];
  /** wrangler's temporary folder (TMPDIR), where miniflare keeps its own; the OS's when absent. */
  tmpDir?: string;
}

export class Wrangler {
  readonly proc: ChildProcess;
  readonly url: string;
  private output = "";
  private readonly group: boolean;

  constructor(opts: WranglerOptions) {
    const bin = `${PROJECT_ROOT}node_modules/wrangler/bin/wrangler.js`;
    if (!existsSync(bin)) throw new CliError(`wrangler is not installed in ${PROJECT_ROOT}: run \`npm ci\` there first`);
    this.url = `http://127.0.0.1:${opts.port}`;
    const args = [
      bin,
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(opts.port),
      ...(opts.inspectorPort !== undefined ? ["--inspector-port", String(opts.inspectorPort)] : []),
      ...(opts.persistTo !== undefined ? ["--persist-to", opts.persistTo] : []),
      ...(opts.stdio === "pipe" ? ["--show-interactive-dev-session=false", "--log-level", "warn"] : []),
      ...Object.entries(opts.vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
      ...(opts.extraArgs ?? []),
    ];
    this.group = opts.stdio === "pipe";
    const env = {
      ...wranglerEnv(process.env),
      ...(this.group ? { CI: "true" } : {}),
      ...(opts.tmpDir !== undefined ? { TMPDIR: opts.tmpDir } : {}),
    };
    this.proc = spawn(process.execPath, args, {
      cwd: PROJECT_ROOT,
      env,
      detached: this.group,
      stdio: opts.stdio === "pipe" ? ["ignore", "pipe", "pipe"] : "inherit",
    });
    const keep = (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-20_000);
    };
    this.proc.stdout?.on("data", keep);
    this.proc.stderr?.on("data", keep);
  }

  /** Resolves once /healthz answers 200; fails with wrangler's last words if it exits first. */
  async ready(timeoutMs = 90_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    this.proc.once("exit", () => (exited = true));
    while (Date.now() < deadline) {
      if (exited || this.proc.exitCode !== null) throw new CliError(`wrangler dev exited before it was ready${this.lastWords()}`);
      try {
        const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(2_000) });
        if (res.ok) return;
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new CliError(`wrangler dev did not answer ${this.url}/healthz within ${timeoutMs / 1000} s${this.lastWords()}`);
  }

  /** The last of wrangler's output (piped mode only). */
  logs(): string {
    return this.output;
  }

  private lastWords(): string {
    const lines = this.output
      .replace(/\x1b\[[0-9;]*m/g, "")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !/^[▲✘⎔─]*$/.test(l));
    const last = lines.slice(-2).join(" / ");
    return last ? `: ${oneLine(last, 300)}` : "";
  }

  /** Stops wrangler and workerd: SIGTERM to the process group, SIGKILL if it lingers. */
  async stop(graceMs = 5_000): Promise<void> {
    const proc = this.proc;
    if (proc.pid === undefined) return;
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((r) => proc.once("exit", () => r()));
      this.signal("SIGTERM");
      const timer = setTimeout(() => this.signal("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    }
    // workerd may outlive wrangler by a moment; the group takes it too.
    if (this.group) this.signal("SIGKILL");
  }

  /** Synchronous, for process exit hooks. */
  kill(): void {
    this.signal("SIGKILL");
  }

  private signal(sig: NodeJS.Signals): void {
    const pid = this.proc.pid;
    if (pid === undefined) return;
    try {
      if (this.group) process.kill(-pid, sig);
      else this.proc.kill(sig);
    } catch {
      /* already gone */
    }
  }
}
