// A real `wrangler dev` (workerd) on free loopback ports, started by the CLI's launcher,
// plus the inspector: bench/profile.ts takes CPU profiles of the Worker's isolate
// (where the Durable Objects run too) over the Chrome DevTools protocol.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Wrangler, freePort } from "../../cli/wrangler.ts";
import { ROOT } from "./util.ts";

export const API_TOKEN = "bench-api-token";

/** A `wrangler dev` for benchmarks: the CLI's launcher, plus the inspector port and the bundle it serves (for profiles). */
export class WranglerDev {
  private wrangler: Wrangler | null = null;
  private readonly persistTo = mkdtempSync(join(tmpdir(), "edgeperf-bench-"));
  private readonly vars: Record<string, string>;
  private readonly extraArgs: string[];
  port = 0;
  inspectorPort = 0;
  /** The bundle wrangler built and serves (for mapping profile lines to sources), read at start. */
  bundle: string | null = null;

  constructor(vars: Record<string, string> = {}, extraArgs: string[] = []) {
    this.vars = vars;
    this.extraArgs = extraArgs;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.port = await freePort();
    this.inspectorPort = await freePort();
    const tmp = join(ROOT, ".wrangler", "tmp");
    const before = new Set(existsSync(tmp) ? readdirSync(tmp) : []);
    const vars = { API_TOKEN, ...this.vars };
    this.wrangler = new Wrangler({ port: this.port, inspectorPort: this.inspectorPort, vars, persistTo: this.persistTo, stdio: "pipe", extraArgs: this.extraArgs });
    await this.wrangler.ready(90_000);
    this.bundle = existsSync(tmp) ? newestBundle(tmp, before) : null;
  }

  async stop(): Promise<void> {
    await this.wrangler?.stop(0);
    this.wrangler = null;
    rmSync(this.persistTo, { recursive: true, force: true });
  }

  logs(): string {
    return this.wrangler?.logs() ?? "";
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

// The same JSON call the end-to-end tests use against their wrangler dev.
export { api } from "../../test/node/dev-server.ts";
