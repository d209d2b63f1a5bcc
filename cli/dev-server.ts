// A local `wrangler dev` (workerd) on free loopback ports with its own storage folder,
// started by the CLI's launcher (wrangler.ts): what the end-to-end tests and the
// benchmarks run against. It can be killed as a crash would kill it and started again
// on the same storage, and it can keep the bundle wrangler served (for CPU profiles).

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT, Wrangler, freePort } from "./wrangler.ts";

export interface DevServerOptions {
  /** The API token the server accepts. */
  apiToken: string;
  /** wrangler vars, on top of the API token. */
  vars?: Record<string, string>;
  /** More wrangler arguments (e.g. another --config). */
  extraArgs?: string[];
  /** Keep the bundle wrangler built and serves, for mapping profile lines to sources. */
  captureBundle?: boolean;
  /** How long wrangler may take to answer. */
  readyTimeoutMs?: number;
  /** Where the local state (Durable Objects' SQLite, R2) lives: a new folder in this one (default: the OS's temporary folder). */
  stateParent?: string;
}

export class DevServer {
  private wrangler: Wrangler | null = null;
  readonly persistTo: string;
  /**
   * wrangler's own temporary folder: a server killed as a crash would (kill) cannot remove
   * the miniflare folder it made there, so dispose removes the whole of it.
   */
  readonly tmp: string;
  readonly apiToken: string;
  port = 0;
  inspectorPort = 0;
  /** The bundle wrangler served, when asked for (captureBundle), read at start. */
  bundle: string | null = null;

  // A plain field, not a parameter property: the benchmarks run this file with Node's
  // type stripping, which does not support those.
  private readonly options: DevServerOptions;

  constructor(options: DevServerOptions) {
    this.options = options;
    this.apiToken = options.apiToken;
    this.persistTo = mkdtempSync(join(options.stateParent ?? tmpdir(), "edgeperf-dev-"));
    this.tmp = mkdtempSync(join(tmpdir(), "edgeperf-wrangler-tmp-"));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const tmp = join(PROJECT_ROOT, ".wrangler", "tmp");
    const before = new Set(this.options.captureBundle && existsSync(tmp) ? readdirSync(tmp) : []);
    // A free port can be taken by another process between the probe and wrangler's bind
    // (two local servers starting at once): then wrangler exits at once, and new ports
    // are tried, a few times.
    for (let attempt = 1; ; attempt++) {
      this.port = await freePort();
      this.inspectorPort = await freePort();
      this.wrangler = new Wrangler({
        port: this.port,
        inspectorPort: this.inspectorPort,
        vars: { API_TOKEN: this.apiToken, ...this.options.vars },
        persistTo: this.persistTo,
        stdio: "pipe",
        extraArgs: this.options.extraArgs ?? [],
        tmpDir: this.tmp,
      });
      try {
        await this.wrangler.ready(this.options.readyTimeoutMs ?? 90_000);
        break;
      } catch (e) {
        if (attempt >= 3 || !(e instanceof Error) || !/address already in use/i.test(e.message)) throw e;
        await this.kill();
      }
    }
    if (this.options.captureBundle) this.bundle = existsSync(tmp) ? newestBundle(tmp, before) : null;
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

  /**
   * Stops the server (SIGTERM, so wrangler removes its own temporary folders; SIGKILL if
   * it lingers) and deletes its storage and its temporary folder, with what an earlier
   * kill left there.
   */
  async dispose(): Promise<void> {
    const w = this.wrangler;
    this.wrangler = null;
    await w?.stop();
    rmSync(this.persistTo, { recursive: true, force: true });
    rmSync(this.tmp, { recursive: true, force: true });
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

/** One JSON call with a bearer token; the body is parsed when it is JSON, else kept as text. */
export async function api<T = any>(
  base: string,
  method: string,
  path: string,
  token: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
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
