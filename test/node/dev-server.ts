// Starts a real `wrangler dev` (workerd) on a free loopback port with its own storage
// directory, so a test can kill it and start it again on the same storage.

import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const DEV_API_TOKEN = "e2e-api-token";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

export class DevServer {
  private proc: ChildProcess | null = null;
  private output = "";
  readonly persistTo = mkdtempSync(join(tmpdir(), "edgeperf-e2e-"));
  port = 0;

  private readonly vars: Record<string, string>;

  constructor(vars: Record<string, string> = {}) {
    this.vars = vars;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.port = await freePort();
    // End-to-end suites create many runs a minute; the creation limit has its own tests.
    const vars = { API_TOKEN: DEV_API_TOKEN, MAX_RUNS_PER_MINUTE: "0", ...this.vars };
    const args = [
      "wrangler", "dev", "--ip", "127.0.0.1", "--port", String(this.port), "--inspector-port", String(await freePort()),
      "--persist-to", this.persistTo, "--show-interactive-dev-session=false", "--log-level", "warn",
      ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
    ];
    this.output = "";
    const proc = spawn("npx", args, { env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" }, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    proc.stdout?.on("data", (d: Buffer) => (this.output += d.toString()));
    proc.stderr?.on("data", (d: Buffer) => (this.output += d.toString()));
    this.proc = proc;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`wrangler dev exited: ${this.output.slice(-2000)}`);
      try {
        const res = await fetch(`${this.url}/healthz`);
        if (res.ok) return;
      } catch {
        /* not up yet */
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`wrangler dev did not start: ${this.output.slice(-2000)}`);
  }

  /** Kills the whole process group at once, as a crash would. */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.pid === undefined) return;
    const exited = new Promise((r) => proc.once("exit", r));
    process.kill(-proc.pid, "SIGKILL");
    await exited;
    this.proc = null;
  }

  logs(): string {
    return this.output;
  }
}

export async function api<T = any>(base: string, method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* text */
  }
  return { status: res.status, body: parsed as T };
}
