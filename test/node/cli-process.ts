// The `edgeperf` command as a user runs it: the bundled CLI (bin/edgeperf.mjs →
// dist/edgeperf.mjs, built by `pretest` or `npm run build:cli`) as a subprocess, with
// Node 22 from the project (as npm scripts and npx run it).

import { spawn } from "node:child_process";

export interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface EdgeperfOptions {
  /** Called on every chunk of stderr with all of it so far; `signal` sends the process a signal. */
  onStderr?: (text: string, signal: (s: NodeJS.Signals) => void) => void;
  /** Killed after this long [60 s]. */
  timeoutMs?: number;
  /** Extra environment (EDGEPERF_SERVER and EDGEPERF_TOKEN are always removed first). */
  env?: Record<string, string>;
}

export function edgeperf(args: string[], opts: EdgeperfOptions = {}): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = { ...process.env };
    delete env.EDGEPERF_SERVER;
    delete env.EDGEPERF_TOKEN;
    Object.assign(env, opts.env);
    const proc = spawn("node_modules/.bin/node", ["bin/edgeperf.mjs", ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      opts.onStderr?.(stderr, (s) => proc.kill(s));
    });
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const timer = setTimeout(() => {
      stderr += `\n[test: killed after ${timeoutMs / 1000} s]`;
      proc.kill("SIGKILL");
    }, timeoutMs);
    proc.on("error", reject);
    proc.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The non-empty lines of a text. */
export const lines = (text: string) => text.split("\n").filter((l) => l.trim() !== "");
