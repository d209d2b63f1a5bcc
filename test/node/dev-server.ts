// Starts a real `wrangler dev` (workerd) on a free loopback port with its own storage
// directory, so a test can kill it and start it again on the same storage.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Wrangler, freePort } from "../../cli/wrangler.ts";

export const DEV_API_TOKEN = "e2e-api-token";

/** One `wrangler dev` (the CLI's launcher) with its own storage, restartable on the same storage. */
export class DevServer {
  private wrangler: Wrangler | null = null;
  readonly persistTo = mkdtempSync(join(tmpdir(), "edgeperf-e2e-"));
  port = 0;
  private readonly vars: Record<string, string>;
  private readonly extraArgs: string[];

  constructor(vars: Record<string, string> = {}, extraArgs: string[] = []) {
    this.vars = vars;
    this.extraArgs = extraArgs;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.port = await freePort();
    // End-to-end suites create many runs a minute; the creation limit has its own tests.
    const vars = { API_TOKEN: DEV_API_TOKEN, MAX_RUNS_PER_MINUTE: "0", ...this.vars };
    this.wrangler = new Wrangler({ port: this.port, inspectorPort: await freePort(), vars, persistTo: this.persistTo, stdio: "pipe", extraArgs: this.extraArgs });
    await this.wrangler.ready(60_000);
  }

  /** Kills the whole process group at once, as a crash would; the storage stays. */
  async kill(): Promise<void> {
    const proc = this.wrangler?.proc;
    this.wrangler = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    if (proc.pid !== undefined) process.kill(-proc.pid, "SIGKILL");
    await exited;
  }

  logs(): string {
    return this.wrangler?.logs() ?? "";
  }

  /** Kills the server and deletes its storage. */
  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.persistTo, { recursive: true, force: true });
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
