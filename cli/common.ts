// What every command shares: the server and token (flags, then environment), and the
// run's results delivered to the user: table or JSON on stdout, files with --out
// (results.json, AIPerf's two exports, report.html), --junit and --summary for CI
// (ci.ts), and the exit verdict.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ApiClient } from "./api.ts";
import { str } from "./args.ts";
import type { Values } from "./args.ts";
import { appendFile, resultsJUnit, resultsMarkdown, writeFile } from "./ci.ts";
import { CliError, UsageError, oneLine } from "./errors.ts";
import { terminalJson, visibleLines } from "./escape.ts";
import { reportHtml } from "./report.ts";
import { renderResults, verdict } from "./table.ts";
import type { Results } from "./types.ts";

export const DEFAULT_SERVER = "http://127.0.0.1:8787";

export function clientOf(values: Values): ApiClient {
  return new ApiClient(str(values, "server") ?? process.env.EDGEPERF_SERVER ?? DEFAULT_SERVER);
}

/** `kind` names the token the command needs, for the message when there is none. */
export function tokenOf(values: Values, kind: string): string {
  const token = str(values, "token") ?? process.env.EDGEPERF_TOKEN;
  if (!token) throw new UsageError(`this command needs ${kind}: pass --token or set EDGEPERF_TOKEN`);
  return token;
}

// Callers pass server text through visible() (escape.ts); visibleLines() here is the
// last guard for a field that was missed.
export function print(text: string): void {
  const safe = visibleLines(text);
  process.stdout.write(safe.endsWith("\n") ? safe : `${safe}\n`);
}

export function printJson(value: unknown): void {
  print(terminalJson(JSON.stringify(value, null, 2)));
}

export function note(text: string): void {
  process.stderr.write(`${visibleLines(text)}\n`);
}

function write(dir: string, name: string, body: string): string {
  const path = join(dir, name);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(path, body);
  } catch (e) {
    throw new CliError(`cannot write ${path}: ${oneLine(e instanceof Error ? e.message : String(e), 160)}`);
  }
  return path;
}

/** Writes results.json, report.html and AIPerf's two exports into dir; returns the paths written. */
export async function writeOut(dir: string, client: ApiClient, results: Results, token: string): Promise<string[]> {
  // The two that need no server first: they are written even if the run is already wiped.
  const written = [
    write(dir, "results.json", `${JSON.stringify(results, null, 2)}\n`),
    write(dir, "report.html", await reportHtml(results)),
  ];
  let exports: [string, string, string, string, string];
  try {
    exports = await Promise.all([
      client.export(results.id, token, "aiperf"),
      client.export(results.id, token, "csv"),
      client.export(results.id, token, "regions-csv"),
      client.export(results.id, token, "timeslices-csv"),
      client.export(results.id, token, "timeslices"),
    ]);
  } catch (e) {
    if (e instanceof CliError && e.status === 404 && results.final) {
      throw new CliError(
        `wrote ${written.join(" and ")}, but the AIPerf exports are gone: the run was wiped when its grace window ended (graceSeconds ${results.spec?.graceSeconds ?? "?"})`,
      );
    }
    throw e;
  }
  written.push(
    write(dir, "profile_export_aiperf.json", exports[0]),
    write(dir, "profile_export_aiperf.csv", exports[1]),
    write(dir, "profile_export_aiperf_regions.csv", exports[2]),
    write(dir, "profile_export_aiperf_timeslices.csv", exports[3]),
    write(dir, "profile_export_aiperf_timeslices.json", exports[4]),
  );
  return written;
}

export interface DeliverOptions {
  client: ApiClient;
  results: Results;
  token: string;
  values: Values;
  dashboardUrl?: string | undefined;
  /** A line printed after the dashboard URL (the demo's note that its server stops). */
  dashboardNote?: string | undefined;
}

/** Prints the results and returns the exit code: 1 when a threshold failed or the run was cancelled or partial. */
export async function deliver({ client, results, token, values, dashboardUrl, dashboardNote }: DeliverOptions): Promise<number> {
  const out = str(values, "out");
  // Files first: the run serves its exports only until its grace window ends. A failure
  // to write them is reported after the results are shown.
  let written: string[] = [];
  let failure: unknown = null;
  if (out !== undefined) {
    try {
      written = await writeOut(out, client, results, token);
    } catch (e) {
      failure = e;
    }
  }
  // For CI: need no server, so a failed --out does not keep them from being written.
  const junit = str(values, "junit");
  const summary = str(values, "summary");
  try {
    if (junit !== undefined) writeFile("--junit", junit, resultsJUnit(results));
    if (summary !== undefined) appendFile("--summary", summary, resultsMarkdown(results));
  } catch (e) {
    failure ??= e;
  }
  if (values.json === true) printJson(results);
  else {
    print(renderResults(results, dashboardUrl));
    if (dashboardNote) print(dashboardNote);
    if (written.length > 0) print(`Wrote ${written.join(", ")}`);
    else if (dashboardUrl && out === undefined) print("(--out DIR keeps a report.html of this dashboard that works after the wipe.)");
  }
  if (failure !== null) throw failure;
  const v = verdict(results);
  if (v.exitCode !== 0) note(`edgeperf: exit 1: ${v.reasons.join("; ")}`);
  return v.exitCode;
}
