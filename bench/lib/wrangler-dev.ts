// A real `wrangler dev` (workerd) on free loopback ports, like test/node/dev-server.ts,
// plus the inspector: bench/profile.ts takes CPU profiles of the Worker's isolate
// (where the Durable Objects run too) over the Chrome DevTools protocol.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, sleep } from "./util.ts";

export const API_TOKEN = "bench-api-token";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

export class WranglerDev {
  private proc: ChildProcess | null = null;
  private output = "";
  private readonly persistTo = mkdtempSync(join(tmpdir(), "edgeperf-bench-"));
  private readonly vars: Record<string, string>;
  port = 0;
  inspectorPort = 0;
  /** The bundle wrangler built and serves (for mapping profile lines to sources), read at start. */
  bundle: string | null = null;

  constructor(vars: Record<string, string> = {}) {
    this.vars = vars;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.port = await freePort();
    this.inspectorPort = await freePort();
    const vars = { API_TOKEN, ...this.vars };
    const args = [
      join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js"), "dev",
      "--ip", "127.0.0.1", "--port", String(this.port), "--inspector-port", String(this.inspectorPort),
      "--persist-to", this.persistTo, "--show-interactive-dev-session=false", "--log-level", "warn",
      ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
    ];
    this.output = "";
    const tmp = join(ROOT, ".wrangler", "tmp");
    const before = new Set(existsSync(tmp) ? readdirSync(tmp) : []);
    const proc = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    proc.stdout?.on("data", (d: Buffer) => (this.output += d.toString()));
    proc.stderr?.on("data", (d: Buffer) => (this.output += d.toString()));
    this.proc = proc;
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`wrangler dev exited: ${this.output.slice(-2000)}`);
      try {
        if ((await fetch(`${this.url}/healthz`)).ok) {
          this.bundle = newestBundle(tmp, before);
          return;
        }
      } catch {
        /* not up yet */
      }
      await sleep(200);
    }
    throw new Error(`wrangler dev did not start: ${this.output.slice(-2000)}`);
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc && proc.exitCode === null && proc.pid !== undefined) {
      const exited = new Promise((r) => proc.once("exit", r));
      process.kill(-proc.pid, "SIGKILL");
      await exited;
    }
    this.proc = null;
    rmSync(this.persistTo, { recursive: true, force: true });
  }

  logs(): string {
    return this.output;
  }
}

/** wrangler dev bundles into .wrangler/tmp/dev-XXXX/index.js and removes it on exit. */
function newestBundle(tmp: string, before: Set<string>): string | null {
  const fresh = readdirSync(tmp)
    .filter((d) => d.startsWith("dev-") && !before.has(d) && existsSync(join(tmp, d, "index.js")))
    .map((d) => join(tmp, d, "index.js"))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return fresh[0] ? readFileSync(fresh[0], "utf8") : null;
}

export async function api<T = any>(base: string, method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
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
