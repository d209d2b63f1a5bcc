// An experiment's files (README, "Experiments"): with --out DIR, each level's run in
// DIR/level-<level>/ (what `run --out` writes for a run: results.json, report.html and
// AIPerf's exports), written as each level ends, while its run is still in its grace
// window; then experiment.json (the experiment's final results) and experiment.csv (a
// row per level). --summary appends the sweep table as Markdown, --junit writes a test
// case per level, both agreeing with the exit code (experiment-report.ts).

import { join } from "node:path";
import type { ExperimentResults, LevelView } from "../contract/experiment.ts";
import type { ApiClient } from "./api.ts";
import { junitXml, md, mdCode, mdTable, writeFile } from "./ci.ts";
import type { JUnitCase } from "./ci.ts";
import { writeOut } from "./common.ts";
import { CliError, oneLine } from "./errors.ts";
import { visible } from "./escape.ts";
import { FIGURES, experimentVerdict, levelFigure, levelName, levelOk, levelReasons, searchLine } from "./experiment-report.ts";
import { formatNumber } from "./table.ts";
import type { Results } from "./types.ts";

/**
 * The folder of each level under DIR, by index: `level-<level>`, and `level-<level>-2`…
 * for a level that ran again (a sweep may list a value twice; a search retries a level
 * whose results were lost).
 */
export function levelDirs(levels: readonly { level: number }[]): string[] {
  const seen = new Map<number, number>();
  return levels.map(({ level }) => {
    const n = (seen.get(level) ?? 0) + 1;
    seen.set(level, n);
    return n === 1 ? `level-${level}` : `level-${level}-${n}`;
  });
}

/** Writes a level's run into DIR/level-<level>/; returns the folder. The run must still be served. */
export async function writeLevel(out: string, dir: string, client: ApiClient, runId: string, token: string): Promise<string> {
  const path = join(out, dir);
  let results: Results;
  try {
    results = await client.results(runId, token);
  } catch (e) {
    if (e instanceof CliError && e.status === 404) {
      throw new CliError(`cannot write ${path}: the level's run ${runId} was wiped before its results could be read`);
    }
    throw e;
  }
  await writeOut(path, client, results, token);
  return path;
}

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return "";
  const s = visible(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const CSV_COLUMNS = [
  "level",
  "runId",
  "status",
  "outcome",
  "ok",
  "completed",
  "failed",
  "abandoned",
  ...FIGURES.map((f) => f.csv),
] as const;

/** One row per level, in the order they ran: `ok` is the search's SLO verdict, or a sweep level's pass (levelOk); empty without results. */
export function experimentCsv(r: ExperimentResults): string {
  const rows = r.levels.map((l: LevelView) => [
    l.level,
    l.runId,
    l.status,
    l.outcome,
    levelOk(r, l),
    l.counts?.completed,
    l.counts?.failed,
    l.counts?.abandoned,
    ...FIGURES.map((f) => levelFigure(l, f.tag, f.stat)),
  ]);
  return `${[CSV_COLUMNS, ...rows].map((row) => row.map(csvCell).join(",")).join("\n")}\n`;
}

/** experiment.json and experiment.csv into DIR; returns the paths. */
export function writeExperimentFiles(out: string, r: ExperimentResults): string[] {
  const json = join(out, "experiment.json");
  const csv = join(out, "experiment.csv");
  writeFile("--out", json, `${JSON.stringify(r, null, 2)}\n`);
  writeFile("--out", csv, experimentCsv(r));
  return [json, csv];
}

export function experimentMarkdown(r: ExperimentResults): string {
  const v = experimentVerdict(r);
  const state = `${r.status}${r.outcome ? ` (${r.outcome})` : ""}`;
  const kind = r.kind === "search" ? "capacity search" : "sweep";
  const lines = [
    `### edgeperf ${kind} over ${md(r.over)} ${mdCode(r.id.slice(0, 12))}: ${md(state)}: ${v.exitCode === 0 ? "✅ pass" : "❌ fail"}`,
    "",
  ];
  const figures = FIGURES.filter((f) => f.tag !== "goodput" || r.levels.some((l) => levelFigure(l, f.tag, f.stat) !== null));
  const rows = r.levels.map((l) => {
    const ok = levelOk(r, l);
    return [
      md(l.level),
      md(l.status),
      ...figures.map((f) => formatNumber(levelFigure(l, f.tag, f.stat))),
      ok === null ? "–" : ok ? "✅" : "❌",
    ];
  });
  lines.push(
    mdTable([r.over === "concurrency" ? "Concurrency" : "Rate (req/s)", "Status", ...figures.map((f) => f.header), "OK"], rows),
    "",
  );
  const search = searchLine(r);
  if (search) lines.push(md(search), "");
  lines.push(`**Verdict:** ${v.exitCode === 0 ? "pass" : `fail: ${v.reasons.map(md).join("; ")}`}`, "", "");
  return lines.join("\n");
}

/**
 * A test case per level (a sweep's fails for what fails `run`'s verdict; a search's
 * levels are its data and never fail), and one for the experiment itself.
 */
export function experimentJUnit(r: ExperimentResults): string {
  const cases: JUnitCase[] = r.levels.map((l) => {
    const why = levelReasons(r, l);
    return { name: levelName(r.over, l.level), failure: why.length > 0 ? why.join("; ") : null };
  });
  const own = experimentVerdict(r).reasons.filter((x) => x.startsWith("the experiment"));
  cases.push({ name: `experiment ${r.outcome ?? "(not complete)"}`, failure: own.length > 0 ? own.join("; ") : null });
  const search = searchLine(r);
  return junitXml(`edgeperf ${r.kind} ${r.id.slice(0, 12)}`, cases, search ? [oneLine(search, 400)] : []);
}
