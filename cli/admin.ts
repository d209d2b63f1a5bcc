// `status`, `stop` and `drain`: one call each (drain --wait polls).

import { COMMON_FLAGS, parseFlags } from "./args.ts";
import { clientOf, print, printJson, tokenOf } from "./common.ts";
import { UsageError } from "./errors.ts";
import { StatusLine } from "./follow.ts";
import { formatNumber } from "./table.ts";
import type { DrainView, Snapshot } from "./types.ts";

type Help = (cmd: string) => number;

function describeRun(s: Snapshot): string {
  const c = s.counts;
  const inflight = s.agents.reduce((a, g) => a + g.inflight, 0);
  const lines = [
    `Run ${s.id}: ${s.status} (phase ${s.phase}${s.outcome ? `, outcome ${s.outcome}` : ""}${s.partial ? ", partial" : ""})`,
    `Requests: ${c.completed} completed, ${c.failed} failed, ${c.abandoned} abandoned; granted ${c.granted}, returned ${c.returned}, outstanding ${c.outstanding}; in flight ${inflight}`,
    `Agents: ${s.agents.length === 0 ? "none yet" : s.agents.map((a) => `${a.name ?? a.agentId}${a.region ? `@${a.region}` : ""}${a.alive ? "" : " (gone)"} ${a.inflight}/${a.concurrency}`).join(", ")}`,
  ];
  if (s.live) {
    lines.push(`Live: ${formatNumber(s.live.requestThroughput)} req/s, error rate ${formatNumber(s.live.errorRate)} %`);
  }
  const times = [
    ["started", s.startedAt],
    ["completed", s.completedAt],
    ["wiped at", s.wipeAt],
  ].filter(([, t]) => t);
  if (times.length > 0) lines.push(times.map(([k, t]) => `${k} ${t}`).join(", "));
  return lines.join("\n");
}

export async function status(argv: string[], help: Help): Promise<number> {
  const { values, positionals } = parseFlags(argv, COMMON_FLAGS, { min: 1, max: 1, names: "RUN_ID" });
  if (values.help) return help("status");
  const client = clientOf(values);
  const s = await client.status(positionals[0] ?? "", tokenOf(values, "the run's read token (or the API token)"));
  if (values.json) printJson(s);
  else print(describeRun(s));
  return 0;
}

export async function stop(argv: string[], help: Help): Promise<number> {
  const { values, positionals } = parseFlags(argv, { ...COMMON_FLAGS, force: { type: "boolean" } }, { min: 1, max: 1, names: "RUN_ID" });
  if (values.help) return help("stop");
  const client = clientOf(values);
  const mode = values.force ? "force" : "graceful";
  const s = await client.stop(positionals[0] ?? "", tokenOf(values, "the API token"), mode);
  if (values.json) printJson(s);
  else if (s.phase === "complete") print(`Run ${s.id} is already complete (status ${s.status}).`);
  else print(`${mode === "force" ? "Force-stopped" : "Stopping gracefully"}: run ${s.id} is ${s.phase} (status ${s.status}).`);
  return 0;
}

function describeDrain(d: DrainView): string {
  const runs = `${d.activeRuns} active run${d.activeRuns === 1 ? "" : "s"}`;
  if (d.phase === "accepting") return `Service is accepting new runs (${runs}).`;
  if (d.phase === "draining") return `Service is draining: new runs are refused; waiting for ${runs}.`;
  return "Service is drained: no active runs, new runs are refused.";
}

export async function drain(argv: string[], help: Help): Promise<number> {
  const flags = { ...COMMON_FLAGS, wait: { type: "boolean" }, resume: { type: "boolean" }, status: { type: "boolean" } } as const;
  const { values } = parseFlags(argv, flags, { min: 0, max: 0, names: "" });
  if (values.help) return help("drain");
  const modes = [values.wait, values.resume, values.status].filter(Boolean).length;
  if (modes > 1) throw new UsageError("drain takes one of --wait, --resume or --status");
  const client = clientOf(values);
  const token = tokenOf(values, "the API token");
  let view = await client.drain(values.status ? "GET" : values.resume ? "DELETE" : "POST", token);
  if (values.wait && view.phase !== "drained") {
    const line = values.json ? null : new StatusLine();
    while (view.phase !== "drained") {
      line?.update(describeDrain(view));
      await new Promise((r) => setTimeout(r, 1_000));
      view = await client.drain("GET", token);
      // Someone resumed the service meanwhile: there is nothing left to wait for.
      if (view.phase === "accepting") break;
    }
    line?.clear();
  }
  if (values.json) printJson(view);
  else print(describeDrain(view));
  return values.wait && view.phase !== "drained" ? 1 : 0;
}
