// `edgeperf demo` (what `npm start` runs): starts the Worker locally with a token made
// for this start only, benchmarks the built-in mock with two edge agents, prints the
// results, and stops the server. Spec flags (as for `run`) adjust the benchmark.

import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiClient } from "./api.ts";
import { SPEC_FLAGS, buildSpec, parseFlags } from "./args.ts";
import { note } from "./common.ts";
import { runSpec } from "./run.ts";
import { Wrangler, freePort } from "./wrangler.ts";

export const DEMO_SPEC = {
  target: { url: "builtin:mock", stream: true, mock: { ttftMs: 40, itlMs: 8 } },
  // 32 output tokens: 40 + 31 × 8 ≈ 290 ms a request, so 200 requests at 8 take ~7 s.
  workload: { outputTokens: { mean: 32 } },
  load: { concurrency: 8 },
  stop: { requests: 200 },
  agents: { edge: 2 },
  graceSeconds: 30,
};

function describe(spec: Record<string, unknown>): string {
  const s = spec as {
    target?: { url?: string; stream?: boolean; mock?: { ttftMs?: number; itlMs?: number } };
    load?: { concurrency?: number; rate?: number };
    stop?: { requests?: number; durationSeconds?: number };
    agents?: { edge?: number };
  };
  const parts = [
    `${s.target?.url}${s.target?.stream ? " (streaming" : " (not streaming"}${s.target?.mock ? `, mock TTFT ${s.target.mock.ttftMs} ms, ITL ${s.target.mock.itlMs} ms)` : ")"}`,
    s.load?.rate !== undefined ? `${s.load.rate} req/s` : `concurrency ${s.load?.concurrency}`,
    [
      s.stop?.requests !== undefined ? `${s.stop.requests} requests` : "",
      s.stop?.durationSeconds !== undefined ? `${s.stop.durationSeconds} s` : "",
    ]
      .filter(Boolean)
      .join(" or "),
    `${s.agents?.edge ?? "default"} edge agents`,
  ];
  return parts.join(", ");
}

export async function demo(argv: string[], help: (cmd: string) => number): Promise<number> {
  const flags = { ...SPEC_FLAGS, json: { type: "boolean" }, help: { type: "boolean", short: "h" } } as const;
  const { values } = parseFlags(argv, flags, { min: 0, max: 0, names: "" });
  if (values.help) return help("demo");
  const spec = buildSpec(values, DEMO_SPEC);

  const token = randomBytes(24).toString("base64url");
  const persistTo = mkdtempSync(join(tmpdir(), "edgeperf-demo-"));
  const started = Date.now();
  const port = await freePort();
  const wrangler = new Wrangler({ port, inspectorPort: await freePort(), persistTo, vars: { API_TOKEN: token }, stdio: "pipe" });
  // The server lives in its own process group (so the terminal's Ctrl-C reaches only the
  // CLI, which stops the run first); it must never outlive the demo.
  const cleanup = () => {
    wrangler.kill();
    rmSync(persistTo, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals) => {
    cleanup();
    process.exit(sig === "SIGTERM" ? 143 : 129);
  };
  // Ctrl-C while the server starts: nothing to stop yet but the server itself.
  const onStartupInterrupt = () => {
    cleanup();
    process.exit(130);
  };
  const ignore = () => {};
  process.on("exit", cleanup);
  process.once("SIGTERM", onSignal);
  process.once("SIGHUP", onSignal);
  process.on("SIGINT", onStartupInterrupt);
  try {
    note(`Starting edgeperf locally: wrangler dev on ${wrangler.url} …`);
    await wrangler.ready();
    process.off("SIGINT", onStartupInterrupt); // from here on, Ctrl-C stops the run (see run.ts)
    note(`Server ready in ${((Date.now() - started) / 1000).toFixed(1)} s. Benchmarking ${describe(spec)}.`);
    return await runSpec({
      client: new ApiClient(wrangler.url),
      apiToken: token,
      spec,
      values,
      dashboardNote:
        "(The demo's server stops when the demo exits, so this URL works only while it runs. For a server that stays up, use `npm run dev`.)",
    });
  } finally {
    process.off("SIGINT", onStartupInterrupt);
    process.on("SIGINT", ignore); // the server is being stopped anyway
    await wrangler.stop();
    process.off("SIGINT", ignore);
    process.off("exit", cleanup);
    process.off("SIGTERM", onSignal);
    process.off("SIGHUP", onSignal);
    rmSync(persistTo, { recursive: true, force: true });
    note(`Local server stopped (demo took ${((Date.now() - started) / 1000).toFixed(1)} s).`);
  }
}
