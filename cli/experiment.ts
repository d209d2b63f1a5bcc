// `run` with a list (--concurrency 1,2,4,8, --request-rate 5,10,20) or --search-slo:
// creates an experiment (POST /v1/experiments) instead of a run, follows it level by
// level (Ctrl-C stops it as it stops a run: the current level's run drains, no new level
// starts), writes each level's files as it ends (--out), then prints the sweep table and
// the search's answer, and returns the exit code (experiment-report.ts, experimentVerdict).

import type { ExperimentSummary } from "../contract/experiment.ts";
import type { ApiClient } from "./api.ts";
import { str } from "./args.ts";
import type { Values } from "./args.ts";
import { appendFile, writeFile } from "./ci.ts";
import { note, print, printJson } from "./common.ts";
import { CliError, oneLine } from "./errors.ts";
import { visible } from "./escape.ts";
import { experimentFlagNames } from "./experiment-args.ts";
import type { ExperimentRequest } from "./experiment-args.ts";
import { experimentJUnit, experimentMarkdown, levelDirs, writeExperimentFiles, writeLevel } from "./experiment-files.ts";
import { experimentPath, followExperiment } from "./experiment-follow.ts";
import { experimentVerdict, levelName, renderExperiment } from "./experiment-report.ts";
import { StatusLine } from "./follow.ts";
import { handleInterrupts } from "./interrupt.ts";

export interface CreatedExperiment extends ExperimentSummary {
  readToken: string;
  agentToken: string;
  urls: { self: string; results: string; events: string; stop: string };
}

export interface ExperimentOptions {
  client: ApiClient;
  apiToken: string;
  request: ExperimentRequest;
  values: Values;
  /** The --spec file the base was built on, so a server error can say it set a field. */
  specFile?: { name: string; spec: Record<string, unknown> };
}

/** The experiment page; only a read token (epr_…) goes into it, never the API token. */
export function experimentPageUrl(server: string, id: string, readToken: string): string {
  return `${server}/experiments/${encodeURIComponent(id)}#token=${encodeURIComponent(readToken)}`;
}

async function create(opts: ExperimentOptions): Promise<CreatedExperiment> {
  const { client, apiToken, request, values, specFile } = opts;
  try {
    return await client.json<CreatedExperiment>("POST", "/v1/experiments", { token: apiToken, body: request.body });
  } catch (e) {
    // "HTTP 422 out_of_range: levels.concurrency[2] must be…": the field, said as the flag.
    const m = e instanceof CliError && (e.status === 400 || e.status === 422) ? /^(HTTP \d+ [\w]+: )(.*)$/s.exec(e.message) : null;
    if (!m) throw e;
    const named = experimentFlagNames(m[2] ?? "", request, values, specFile?.spec ?? {}, specFile?.name);
    throw new CliError(`${m[1]}${named}`, { status: (e as CliError).status });
  }
}

export async function runExperiment(opts: ExperimentOptions): Promise<number> {
  const { client, apiToken, request, values } = opts;
  const created = await create(opts);
  const id = created.id;
  const token = created.readToken;
  const pageUrl = experimentPageUrl(client.server, id, token);
  const levels = request.kind === "sweep" ? ` of ${created.levels.length} levels` : "";
  note(`Experiment ${visible(id)} created: a ${request.kind} over ${visible(request.over)}${levels}. Dashboard: ${visible(pageUrl)}`);
  const edge = (request.body.base as { agents?: { edge?: unknown } }).agents?.edge;

  const out = str(values, "out");
  const written: string[] = [];
  let failure: unknown = null;
  const line = new StatusLine();
  const uninstall = handleInterrupts({
    line,
    stop: async (mode) => {
      await client.json("POST", `${experimentPath(id)}/stop`, { token: apiToken, body: { mode } });
    },
  });
  let results;
  try {
    results = await followExperiment({
      client,
      id,
      token,
      line,
      onLevelStart: (_s, l) => {
        if (edge !== 0 || l.runId === null) return;
        line.log(
          `No edge agents: ${levelName(request.over, l.level)} waits for external agents. Join it with\n  edgeperf agent ${visible(l.runId)} --server ${visible(client.server)} --token ${visible(created.agentToken)}`,
        );
      },
      // Written as each level ends: its run serves its exports only for its grace window.
      onLevelEnd: async (s, l, i) => {
        if (out === undefined || l.runId === null || (l.status !== "complete" && l.status !== "cancelled")) return;
        try {
          written.push(await writeLevel(out, levelDirs(s.levels)[i] ?? `level-${l.level}`, client, l.runId, token));
        } catch (e) {
          failure ??= e;
          line.log(`edgeperf: ${oneLine(e instanceof Error ? e.message : String(e))}`);
        }
      },
    });
  } finally {
    uninstall();
  }

  try {
    if (out !== undefined) written.push(...writeExperimentFiles(out, results));
    const junit = str(values, "junit");
    const summary = str(values, "summary");
    if (junit !== undefined) writeFile("--junit", junit, experimentJUnit(results));
    if (summary !== undefined) appendFile("--summary", summary, experimentMarkdown(results));
  } catch (e) {
    failure ??= e;
  }
  if (values.json === true) printJson(results);
  else {
    print(renderExperiment(results, pageUrl));
    if (written.length > 0) print(`Wrote ${written.join(", ")}`);
  }
  if (failure !== null) throw failure;
  const v = experimentVerdict(results);
  if (v.exitCode !== 0) note(`edgeperf: exit 1: ${v.reasons.join("; ")}`);
  return v.exitCode;
}
