// Talking to edgeperf in a real `wrangler dev` over its public HTTP API, as a user would,
// and running its Node agent (`edgeperf agent`) against it.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DevServer, api } from "../../cli/dev-server.ts";
import { Target, bundle, run } from "./util.ts";

export { DevServer, api };

export const API_TOKEN = "bench-api-token";

export interface Created {
  id: string;
  readToken: string;
  agentToken: string;
}

/**
 * Where the bench's `wrangler dev` keeps its state: in memory (tmpfs) where the machine has
 * one, unless EDGEPERF_BENCH_STATE names a folder. Local workerd commits each Durable
 * Object transaction to a SQLite file, blocking the one thread every object of a local
 * run shares; on this machine's virtual disk that cost edge agents about a fifth of their
 * req/s (docs/BENCHMARKS.md), a cost of the development machine's disk, not of
 * edgeperf or of Cloudflare's storage. results.json records which was used (meta.stateDir).
 */
export const BENCH_STATE_DIR = process.env.EDGEPERF_BENCH_STATE ?? (existsSync("/dev/shm") ? "/dev/shm" : tmpdir());

/** A local `wrangler dev` whose agents may call the bench target on 127.0.0.1. */
export function benchServer(): DevServer {
  return new DevServer({
    apiToken: API_TOKEN,
    vars: { ALLOWED_TARGETS: "127.0.0.1:*", MAX_CONCURRENCY: "4096" },
    captureBundle: true,
    stateParent: BENCH_STATE_DIR,
  });
}

/**
 * The bench target and a benchServer, started for `fn` and stopped whatever happens: the
 * frame of every single-purpose script that measures runs against the target.
 */
export async function withTargetAndServer<T>(fn: (target: Target, server: DevServer) => Promise<T>): Promise<T> {
  const target = new Target();
  await target.start();
  const server = benchServer();
  try {
    await server.start();
    return await fn(target, server);
  } finally {
    await server.dispose();
    await target.stop();
  }
}

export async function createRun(server: DevServer, spec: Record<string, unknown>): Promise<Created> {
  const res = await api(server.url, "POST", "/v1/runs", API_TOKEN, spec);
  if (res.status !== 201) throw new Error(`create run: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as Created;
}

/** Long-polls the results until the run is complete. */
export async function waitComplete(server: DevServer, run: Created, limitMs = 600_000): Promise<any> {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    const res = await api(server.url, "GET", `/v1/runs/${run.id}/results?wait=30`, run.readToken);
    if (res.status !== 200) throw new Error(`results: ${res.status} ${JSON.stringify(res.body)}`);
    if (res.body.phase === "complete") return res.body;
  }
  throw new Error(`run ${run.id} did not complete in ${limitMs} ms`);
}

let bundled: Promise<string> | null = null;

/**
 * The `edgeperf` CLI bundled from the current sources, as `npm run build:cli` bundles it,
 * into a temporary folder with a launcher (bin/edgeperf.mjs's job): the benchmarks
 * measure this checkout's agent, whatever dist/ holds. The folder goes when the process exits.
 */
export function cliLauncher(): Promise<string> {
  bundled ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), "edgeperf-bench-cli-"));
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    await bundle("cli/main.ts", join(dir, "edgeperf.mjs"));
    const launcher = join(dir, "launch.mjs");
    writeFileSync(
      launcher,
      'const { main } = await import("./edgeperf.mjs");\nconst code = await main(process.argv.slice(2));\nprocess.exit(code);\n',
    );
    return launcher;
  })();
  return bundled;
}

/** `edgeperf agent` (the Node agent, one process) joined to a run until the run tells it it is done. */
export async function nodeAgent(server: DevServer, created: Created, timeoutMs: number, nodeArgs: string[] = []): Promise<void> {
  const launcher = await cliLauncher();
  const r = await run(
    process.execPath,
    [...nodeArgs, launcher, "agent", created.id, "--server", server.url, "--token", created.agentToken, "--name", "bench", "--json"],
    { timeoutMs },
  );
  if (r.code !== 0) throw new Error(`edgeperf agent exited ${r.code}: ${r.stderr.slice(-500)}`);
}
