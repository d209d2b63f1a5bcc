// `edgeperf agent RUN_ID`: joins a run as an external agent from this machine. The same
// AgentEngine that runs inside the LoadAgent Durable Objects does the work here, over
// HTTP (wire protocol v1) with retries; requests go from this machine to the target.

import { hostname } from "node:os";
import type { RunSpec } from "../contract/spec.ts";
import { cachedLoader, httpLoader } from "../agent/datasets.ts";
import { AgentEngine } from "../agent/engine.ts";
import type { AgentEvent } from "../agent/engine.ts";
import { CoordinatorError, CoordinatorUnavailable, httpTransport, withRetries } from "../agent/transport.ts";
import { COMMON_FLAGS, parseFlags, str } from "./args.ts";
import { clientOf, note, print, printJson, tokenOf } from "./common.ts";
import { CliError, oneLine } from "./errors.ts";
import { visible } from "./escape.ts";
import { StatusLine } from "./follow.ts";
import { mockPath } from "../agent/target.ts";
import { nodeHttpTransport } from "./node-http.ts";

const MOCK_URL = "builtin:mock";
/** How often the progress line may be redrawn for sends alone (ms). */
const REDRAW_MS = 100;

/** builtin:mock is served by the Worker itself; an external agent calls it over HTTP. */
export function resolveTarget(server: string, spec: RunSpec): string {
  if (spec.target.url !== MOCK_URL) return spec.target.url;
  return `${server}${mockPath(spec.target.api)}`;
}

function coordinatorFailure(e: unknown, server: string): CliError {
  if (e instanceof CoordinatorError) return new CliError(oneLine(`HTTP ${e.status} ${e.code}: ${e.message}`), { status: e.status });
  if (e instanceof CoordinatorUnavailable) {
    return new CliError(e.status === null ? `cannot reach ${server}: ${oneLine(e.message)}` : oneLine(`HTTP ${e.status}: ${e.message}`), {
      transient: true,
    });
  }
  return new CliError(oneLine(e instanceof Error ? e.message : String(e)));
}

export async function agent(argv: string[], help: (cmd: string) => number): Promise<number> {
  const flags = { ...COMMON_FLAGS, name: { type: "string" }, region: { type: "string" } } as const;
  const { values, positionals } = parseFlags(argv, flags, { min: 1, max: 1, names: "RUN_ID" });
  if (values.help) return help("agent");
  const runId = positionals[0] ?? "";
  const client = clientOf(values);
  const server = client.server;
  const token = tokenOf(values, "the run's agent token (or the API token)");
  const name = str(values, "name") ?? `cli-${hostname()}`.slice(0, 128);
  const region = str(values, "region") ?? "local";

  const line = values.json ? null : new StatusLine();
  const tally = { sent: 0, reported: 0, returned: 0 };
  let share = 0;
  let drawnAt = Number.NEGATIVE_INFINITY;
  // One progress line: redrawn on a terminal; piped, StatusLine prints it every few
  // seconds when it changed (a report every second would be a line every second). Sends
  // come thousands a second: for them the line is redrawn at most every REDRAW_MS, since
  // each redraw on a terminal is a write (one per request cost the agent a third of its
  // rate: docs/BENCHMARKS.md).
  const show = (e: AgentEvent) => {
    if (e.type === "send") {
      tally.sent++;
      const now = performance.now();
      if (now - drawnAt < REDRAW_MS) return;
      drawnAt = now;
    } else if (e.type === "lease") share = e.share;
    else if (e.type === "report") {
      tally.reported += e.results;
      tally.returned += e.returned;
    } else if (e.type === "stop") line?.log(`run says stop: ${e.mode}`);
    else if (e.type === "offline") line?.log(`coordinator unreachable, retrying: ${oneLine(e.message)}`);
    line?.update(`agent ${visible(name)}: sent ${tally.sent}, reported ${tally.reported}, share ${share} in flight at most`);
  };

  // The target and the coordinator each get their own keep-alive sockets, HTTP/1.1 written
  // and read on them directly (cli/node-http.ts): Node's fetch costs several times the CPU
  // per request and node:http about twice, and this one process is the whole load
  // generator (docs/BENCHMARKS.md, "The Node agent").
  const targetHttp = nodeHttpTransport();
  const coordinatorHttp = nodeHttpTransport();
  const engine = new AgentEngine({
    transport: withRetries(httpTransport({ server, runId, token, fetch: coordinatorHttp.fetch })),
    fetchTarget: targetHttp.fetch,
    resolveUrl: (spec) => resolveTarget(server, spec),
    name,
    region,
    onEvent: show,
    // A run's dataset comes from the Worker (GET /v1/datasets/:id/items?run=), read once.
    datasets: cachedLoader(httpLoader({ server, token, runId })),
  });
  // The transport retries an unreachable server for seconds and then says only that;
  // one plain request first names the cause ("connection refused") at once.
  await client.raw("GET", "/healthz", { timeoutMs: 10_000 });
  try {
    await engine.join();
    // One socket per request the run may have in flight (the share never exceeds the
    // pool); in rate mode without maxConcurrency the coordinator's in-flight cap bounds it.
    const load = engine.state.spec.load;
    const pool = "rate" in load ? load.maxConcurrency : load.concurrency;
    if (pool !== undefined) targetHttp.setMaxSockets(pool);
    note(
      `Joined run ${visible(runId)} as agent ${visible(engine.state.agentId)} (${visible(name)}, region ${visible(region)}); sending to ${visible(resolveTarget(server, engine.state.spec))}`,
    );
    // Without limits a slice only ends when the run says the agent is done.
    while ((await engine.runSlice({})) !== "done") {
      /* continue */
    }
  } catch (e) {
    line?.clear();
    throw coordinatorFailure(e, server);
  } finally {
    targetHttp.close();
    coordinatorHttp.close();
  }
  const summary = { runId, agentId: engine.state.agentId, sent: tally.sent, reported: tally.reported, returned: tally.returned };
  line?.finish(`agent ${visible(name)}: done`);
  if (values.json) printJson(summary);
  else
    print(`Agent done: sent ${summary.sent} requests, reported ${summary.reported} results, returned ${summary.returned} unused credits.`);
  return 0;
}
