// `run` (create a run and follow it to its results), `watch` and `results`.

import type { ApiClient } from "./api.ts";
import { COMMON_FLAGS, DATASET_FLAGS, SPEC_FLAGS, buildSpec, merge, parseFlags, readSpecFile, str } from "./args.ts";
import type { Values } from "./args.ts";
import { clientOf, deliver, note, tokenOf } from "./common.ts";
import { runDataset } from "./dataset.ts";
import { CliError, UsageError } from "./errors.ts";
import { visible } from "./escape.ts";
import { EXPERIMENT_FLAGS, experimentOf } from "./experiment-args.ts";
import { runExperiment } from "./experiment.ts";
import { StatusLine, follow } from "./follow.ts";
import { withFlagNames } from "./field-flags.ts";
import { handleInterrupts } from "./interrupt.ts";

/** Where results go besides the terminal: files (--out DIR) and CI reports (ci.ts). */
export const OUTPUT_FLAGS = { out: { type: "string" }, junit: { type: "string" }, summary: { type: "string" } } as const;
const RESULT_FLAGS = { ...COMMON_FLAGS, ...OUTPUT_FLAGS } as const;

export interface RunOptions {
  client: ApiClient;
  apiToken: string;
  spec: Record<string, unknown>;
  values: Values;
  dashboardNote?: string;
  /** The --spec file the spec was built on, so a server error can say it set a field. */
  specFile?: { name: string; spec: Record<string, unknown> };
}

/** Creates the run, follows it live (Ctrl-C stops it), prints its results; returns the exit code. */
export async function runSpec({ client, apiToken, spec, values, dashboardNote, specFile }: RunOptions): Promise<number> {
  let created;
  try {
    created = await client.createRun(apiToken, spec);
  } catch (e) {
    // "HTTP 400 invalid_spec: target.model is required…": the field, said as the flag.
    const m = e instanceof CliError && (e.status === 400 || e.status === 422) ? /^(HTTP \d+ [\w]+: )(.*)$/s.exec(e.message) : null;
    if (!m) throw e;
    throw new CliError(`${m[1]}${withFlagNames(m[2] ?? "", values, specFile?.spec ?? {}, specFile?.name)}`, {
      status: (e as CliError).status,
    });
  }
  const line = new StatusLine();
  note(`Run ${visible(created.id)} created. Dashboard: ${visible(created.urls?.dashboard)}`);
  const agents = spec.agents as { edge?: number } | undefined;
  if (agents?.edge === 0) {
    note(
      `No edge agents: the run waits for external agents. Join from any machine with\n  edgeperf agent ${visible(created.id)} --server ${visible(client.server)} --token ${visible(created.agentToken)}`,
    );
  }
  const uninstall = handleInterrupts({
    line,
    stop: async (mode) => {
      await client.stop(created.id, apiToken, mode);
    },
  });
  let results;
  try {
    results = await follow({ client, id: created.id, token: created.readToken, line });
  } finally {
    uninstall();
  }
  return deliver({ client, results, token: created.readToken, values, dashboardUrl: created.urls.dashboard, dashboardNote });
}

export async function run(argv: string[], help: (cmd: string) => number): Promise<number> {
  const flags = { ...COMMON_FLAGS, ...SPEC_FLAGS, ...DATASET_FLAGS, ...OUTPUT_FLAGS, ...EXPERIMENT_FLAGS };
  const { values } = parseFlags(argv, flags, { min: 0, max: 0, names: "" });
  if (values.help) return help("run");
  const specFile = str(values, "spec");
  const file = specFile !== undefined ? readSpecFile(specFile) : {};
  // A list (--concurrency 1,2,4) or --search-slo makes an experiment; its base is this spec.
  const experiment = experimentOf(values, file);
  const spec = experiment ? (experiment.body.base as Record<string, unknown>) : buildSpec(values, file);
  // Said here rather than by the server's 400, which would name target.url, not the flag.
  const target = spec.target as { url?: unknown } | undefined;
  if (target?.url === undefined)
    throw new UsageError("run needs --url (an endpoint URL, or builtin:mock), or a --spec file that sets target.url");
  const client = clientOf(values);
  const apiToken = tokenOf(values, "the API token");
  // --input-file: uploaded (or found on the server) first; the run (or every level of an
  // experiment, which shares this spec object as its base) then names it.
  const datasetId = await runDataset(values, client, apiToken);
  if (datasetId !== null) {
    const workload = (spec.workload ?? {}) as Record<string, unknown>;
    const set = (workload.dataset ?? {}) as Record<string, unknown>;
    spec.workload = merge(workload, { dataset: { sampling: set.sampling ?? "sequential", id: datasetId } });
  }
  const fileRef = specFile !== undefined ? { specFile: { name: specFile, spec: file } } : {};
  if (experiment) return runExperiment({ client, apiToken, request: experiment, values, ...fileRef });
  return runSpec({ client, apiToken, spec, values, ...fileRef });
}

export async function watch(argv: string[], help: (cmd: string) => number): Promise<number> {
  const { values, positionals } = parseFlags(argv, RESULT_FLAGS, { min: 1, max: 1, names: "RUN_ID" });
  if (values.help) return help("watch");
  const id = positionals[0] ?? "";
  const client = clientOf(values);
  const token = tokenOf(values, "the run's read token (or the API token)");
  const results = await follow({ client, id, token, line: new StatusLine() });
  return deliver({ client, results, token, values, dashboardUrl: client.dashboardUrl(id, token) });
}

export async function results(argv: string[], help: (cmd: string) => number): Promise<number> {
  const { values, positionals } = parseFlags(argv, RESULT_FLAGS, { min: 1, max: 1, names: "RUN_ID" });
  if (values.help) return help("results");
  const id = positionals[0] ?? "";
  const client = clientOf(values);
  const token = tokenOf(values, "the run's read token (or the API token)");
  const res = await client.results(id, token);
  return deliver({ client, results: res, token, values, dashboardUrl: client.dashboardUrl(id, token) });
}
