// `status`, `stop` and `drain`: one call each (drain --wait polls).

import { COMMON_FLAGS, num, parseFlags } from "./args.ts";
import { clientOf, print, printJson, tokenOf } from "./common.ts";
import { CliError, UsageError } from "./errors.ts";
import { visible as v } from "./escape.ts";
import { StatusLine } from "./follow.ts";
import { formatDuration } from "./progress.ts";
import { formatNumber } from "./table.ts";
import type { DrainView, Snapshot } from "./types.ts";

type Help = (cmd: string) => number;

export function describeRun(s: Snapshot): string {
  const c = s.counts;
  const inflight = s.agents.reduce((a, g) => a + g.inflight, 0);
  const agent = (a: Snapshot["agents"][number]) =>
    `${v(a.name ?? a.agentId)}${a.region ? `@${v(a.region)}` : ""}${a.alive ? "" : " (gone)"} ${v(a.inflight)}/${v(a.concurrency)}`;
  const lines = [
    `Run ${v(s.id)}: ${v(s.status)} (phase ${v(s.phase)}${s.outcome ? `, outcome ${v(s.outcome)}` : ""}${s.stopReason ? `, stopped by ${v(s.stopReason)}` : ""}${s.partial ? ", partial" : ""})`,
    `Requests: ${v(c.completed)} completed, ${v(c.failed)} failed, ${v(c.abandoned)} abandoned; granted ${v(c.granted)}, returned ${v(c.returned)}, outstanding ${v(c.outstanding)}; in flight ${v(inflight)}`,
    `Agents: ${s.agents.length === 0 ? "none yet" : s.agents.map(agent).join(", ")}`,
  ];
  if (s.live) {
    lines.push(`Live: ${formatNumber(s.live.requestThroughput)} req/s, error rate ${formatNumber(s.live.errorRate)} %`);
  }
  const times = [
    ["started", s.startedAt],
    ["completed", s.completedAt],
    ["wiped at", s.wipeAt],
  ].filter(([, t]) => t);
  if (times.length > 0) lines.push(times.map(([k, t]) => `${k} ${v(t)}`).join(", "));
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
  const token = tokenOf(values, "the API token");
  let s: Snapshot;
  try {
    s = await client.stop(positionals[0] ?? "", token, mode);
  } catch (e) {
    if (e instanceof CliError && e.status === 401)
      throw new CliError(`HTTP 401 invalid_token: ${stopNeedsApiToken(token)}`, { status: 401 });
    throw e;
  }
  if (values.json) printJson(s);
  else if (s.phase === "complete") print(`Run ${v(s.id)} is already complete (status ${v(s.status)}).`);
  else print(`${mode === "force" ? "Force-stopped" : "Stopping gracefully"}: run ${v(s.id)} is ${v(s.phase)} (status ${v(s.status)}).`);
  return 0;
}

// The server's 401 cannot say which token was meant; the CLI can tell a run's own
// tokens by their prefix (contract/tokens.ts).
function stopNeedsApiToken(token: string): string {
  const which = token.startsWith("epr_")
    ? "this is the run's read token, which can only read the run"
    : token.startsWith("epa_")
      ? "this is the run's agent token, which can only join the run"
      : "the server did not accept this one";
  return `stop needs the service's API token (--token or EDGEPERF_TOKEN); ${which}`;
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;

/** Seconds to the deadline on this machine's clock (negative once it passed). */
const secondsTo = (deadline: string) => (Date.parse(deadline) - Date.now()) / 1000;

/** A few ids, shortened: the progress line is one line. */
function someIds(d: DrainView, n = 3): string {
  const ids = d.activeRunIds ?? [];
  if (ids.length === 0) return "";
  const shown = ids.slice(0, n).map((id) => `${v(String(id).slice(0, 12))}…`);
  return ` (${shown.join(", ")}${d.activeRuns > shown.length ? ", …" : ""})`;
}

/** The one progress line of `drain --wait`. */
function drainProgress(d: DrainView): string {
  const runs = `${plural(d.activeRuns, "active run")}${someIds(d)}`;
  if (!d.deadline) return `draining: waiting for ${runs}`;
  const left = secondsTo(d.deadline);
  return left > 0
    ? `draining: waiting for ${runs}; force-stopped at ${v(d.deadline)} (in ${formatDuration(left)})`
    : `draining: deadline passed, force-stopping ${runs}`;
}

export function describeDrain(d: DrainView): string {
  const runs = plural(d.activeRuns, "active run");
  const lines: string[] = [];
  if (d.phase === "accepting") lines.push(`Service is accepting new runs (${runs}).`);
  else if (d.phase === "draining") {
    let deadline = "";
    if (d.deadline) {
      const left = secondsTo(d.deadline);
      deadline =
        left > 0
          ? `; those still active at ${v(d.deadline)} (in ${formatDuration(left)}) are force-stopped`
          : `; the deadline passed at ${v(d.deadline)}: they are being force-stopped`;
    }
    lines.push(`Service is draining: new runs are refused; waiting for ${runs}${deadline}.`);
  } else lines.push("Service is drained: no active runs, new runs are refused.");
  const ids = d.activeRunIds ?? [];
  if (d.phase !== "drained" && ids.length > 0) {
    lines.push(`Active runs${d.activeRuns > ids.length ? ` (the oldest ${ids.length} of ${d.activeRuns})` : ""}:`);
    for (const id of ids) lines.push(`  ${v(id)}`);
  }
  return lines.join("\n");
}

export async function drain(argv: string[], help: Help): Promise<number> {
  const flags = {
    ...COMMON_FLAGS,
    wait: { type: "boolean" },
    resume: { type: "boolean" },
    status: { type: "boolean" },
    timeout: { type: "string" },
  } as const;
  const { values } = parseFlags(argv, flags, { min: 0, max: 0, names: "" });
  if (values.help) return help("drain");
  const modes = [values.wait, values.resume, values.status].filter(Boolean).length;
  if (modes > 1) throw new UsageError("drain takes one of --wait, --resume or --status");
  const timeout = num(values, "timeout");
  if (timeout !== undefined && (values.resume || values.status)) {
    throw new UsageError("--timeout goes with drain or drain --wait (it sets the drain's deadline), not with --resume or --status");
  }
  const client = clientOf(values);
  const token = tokenOf(values, "the API token");
  let view = values.status
    ? await client.drain("GET", token)
    : values.resume
      ? await client.drain("DELETE", token)
      : await client.drain("POST", token, timeout === undefined ? undefined : { timeoutSeconds: timeout });
  if (values.wait && view.phase !== "drained") {
    const line = values.json ? null : new StatusLine();
    let lastCount = -1;
    while (view.phase !== "drained") {
      // Without a terminal, a line whenever the count of active runs changes.
      line?.update(drainProgress(view), view.activeRuns !== lastCount);
      lastCount = view.activeRuns;
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
