// `edgeperf compare BASE.json NEW.json [--fail-on EXPR]…`: two results.json files (as
// `--out DIR` writes them) side by side, for a CI job that asks "did this change make
// it slower?". A row per catalog metric and statistic present in either file, with the
// change, and whether it is better or worse (the catalog's lowerIsBetter). `--fail-on`
// names the changes that fail the job (exit 1):
//
//   <tag>[.<stat>]<op><sign><number>[%]     op: > or <; sign: + or -
//   time_to_first_token.p99>+10%   fails when p99 TTFT grew by more than 10 %
//   request_throughput<-5%         fails when throughput fell by more than 5 %
//   request_latency.p50>+20        fails when p50 latency grew by more than 20 ms
//
// No server is involved. --summary appends the table and verdict as Markdown, --junit
// writes each --fail-on as a test case.

import { readFileSync } from "node:fs";
import { METRICS, METRIC_TAGS, SCALAR_TAGS, metricDef } from "../contract/metric-catalog.ts";
import { THRESHOLD_STATS } from "../contract/thresholds.ts";
import { parseFlags, str, suggest } from "./args.ts";
import { appendFile, junitXml, md, mdCode, mdTable, writeFile } from "./ci.ts";
import { note, print, printJson } from "./common.ts";
import { UsageError, oneLine } from "./errors.ts";
import { visible } from "./escape.ts";
import { formatNumber, renderTable } from "./table.ts";
import type { Results } from "./types.ts";

const FLAGS = {
  "fail-on": { type: "string", multiple: true },
  summary: { type: "string" },
  junit: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const DISTRIBUTION_STATS = ["avg", "p50", "p90", "p99"] as const;

export interface Row {
  tag: string;
  stat: string;
  unit: string;
  base: number | null;
  next: number | null;
  delta: number | null;
  /** Percent of the base; ±Infinity from a base of 0. */
  percent: number | null;
  /** From the catalog's lowerIsBetter; null when neither is better or nothing changed. */
  direction: "better" | "worse" | null;
}

export interface FailOn {
  expr: string;
  tag: string;
  stat: string;
  op: ">" | "<";
  limit: number;
  percent: boolean;
}

export interface FailOnResult extends FailOn {
  /** The change it checked (percent or absolute), or null when a file lacks the value. */
  change: number | null;
  failed: boolean;
  detail: string;
}

const FAIL_ON = /^\s*([A-Za-z0-9_]+)(?:\.([A-Za-z0-9_]+))?\s*([<>])\s*([+-])\s*(\d+(?:\.\d*)?|\.\d+)\s*(%?)\s*$/;
const GRAMMAR = '<tag>[.<stat>]<op><sign><number>[%], e.g. "time_to_first_token.p99>+10%"';

const includes = (list: readonly string[], s: string) => list.includes(s);

/** One --fail-on expression; a mistake is a usage error naming it. */
export function parseFailOn(expr: string): FailOn {
  const m = FAIL_ON.exec(expr);
  const quoted = `"${oneLine(expr, 80)}"`;
  if (!m) throw new UsageError(`--fail-on ${quoted} is not ${GRAMMAR} (op > or <, sign + or -)`);
  const [, tag = "", stat = "avg", op, sign, number, pct] = m;
  if (!includes(METRIC_TAGS, tag)) {
    const meant = suggest(tag, METRIC_TAGS);
    throw new UsageError(`--fail-on ${quoted}: unknown metric "${oneLine(tag, 60)}"${meant ? `; did you mean ${meant}?` : ""}`);
  }
  if (!includes(THRESHOLD_STATS, stat)) {
    throw new UsageError(`--fail-on ${quoted}: unknown statistic "${oneLine(stat, 20)}"; expected one of ${THRESHOLD_STATS.join(", ")}`);
  }
  if (stat !== "avg" && includes(SCALAR_TAGS, tag)) {
    throw new UsageError(`--fail-on ${quoted}: ${tag} is a single value; compare ${tag}.avg (or just ${tag})`);
  }
  return { expr: expr.trim(), tag, stat, op: op as ">" | "<", limit: Number(`${sign}${number}`), percent: pct === "%" };
}

function readResults(path: string, which: string): Results {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new UsageError(`cannot read ${which} ${path}: ${code === "ENOENT" ? "no such file" : oneLine(String(e), 120)}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${which} ${path} is not valid JSON: ${oneLine(e instanceof Error ? e.message : String(e), 120)}`);
  }
  const metrics = (doc as { metrics?: unknown } | null)?.metrics;
  if (typeof metrics !== "object" || metrics === null) {
    throw new UsageError(`${which} ${path} is not a results.json (it has no "metrics"): write one with \`edgeperf run --out DIR\``);
  }
  return doc as Results;
}

function stat(r: Results, tag: string, key: string): number | null {
  const v = r.metrics[tag]?.[key];
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function present(r: Results, tag: string): boolean {
  const m = r.metrics[tag];
  if (!m) return false;
  return metricDef(tag)?.kind === "distribution" ? (m.count ?? 0) > 0 : stat(r, tag, "avg") !== null;
}

function change(base: number | null, next: number | null): { delta: number | null; percent: number | null } {
  if (base === null || next === null) return { delta: null, percent: null };
  const delta = next - base;
  const percent = base !== 0 ? (100 * delta) / Math.abs(base) : delta === 0 ? 0 : delta > 0 ? Infinity : -Infinity;
  return { delta, percent };
}

/** A row per catalog metric and statistic present in either file. */
export function compareRows(base: Results, next: Results): Row[] {
  const rows: Row[] = [];
  for (const def of METRICS) {
    if (!present(base, def.tag) && !present(next, def.tag)) continue;
    const unit = next.metrics[def.tag]?.unit ?? base.metrics[def.tag]?.unit ?? def.unit;
    for (const s of def.kind === "distribution" ? DISTRIBUTION_STATS : (["avg"] as const)) {
      const b = stat(base, def.tag, s);
      const n = stat(next, def.tag, s);
      const { delta, percent } = change(b, n);
      const direction =
        delta === null || delta === 0 || def.lowerIsBetter === null ? null : delta < 0 === def.lowerIsBetter ? "better" : "worse";
      rows.push({ tag: def.tag, stat: s, unit, base: b, next: n, delta, percent, direction });
    }
  }
  return rows;
}

const signed = (v: number, digits = 2) => (v === Infinity ? "+∞" : v === -Infinity ? "−∞" : `${v > 0 ? "+" : ""}${v.toFixed(digits)}`);
const pctText = (p: number | null) => (p === null ? "N/A" : `${signed(p, 1)}%`);

export function checkFailOn(f: FailOn, base: Results, next: Results): FailOnResult {
  const b = stat(base, f.tag, f.stat);
  const n = stat(next, f.tag, f.stat);
  const { delta, percent } = change(b, n);
  const value = f.percent ? percent : delta;
  if (value === null) {
    const missing = [b === null ? "BASE" : "", n === null ? "NEW" : ""].filter(Boolean).join(" and ");
    return { ...f, change: null, failed: true, detail: `cannot be checked: ${f.tag}.${f.stat} has no value in ${missing}` };
  }
  const failed = f.op === ">" ? value > f.limit : value < f.limit;
  const unit = next.metrics[f.tag]?.unit ?? "";
  const shown = f.percent ? `${signed(value, 1)}%` : `${signed(value)} ${unit}`;
  return { ...f, change: value, failed, detail: `${shown}: ${formatNumber(b)} → ${formatNumber(n)} ${unit}`.trim() };
}

function tableText(rows: Row[]): string {
  const body = rows.map((r) => [
    `${metricDef(r.tag)?.header ?? r.tag} (${visible(r.unit)})`,
    r.stat,
    formatNumber(r.base),
    formatNumber(r.next),
    r.delta === null ? "N/A" : signed(r.delta),
    pctText(r.percent),
    r.direction ?? "",
  ]);
  return renderTable("edgeperf | compare", ["Metric", "Stat", "Base", "New", "Δ", "Δ %", ""], body);
}

function markdown(baseId: string, nextId: string, rows: Row[], checks: FailOnResult[]): string {
  const failed = checks.filter((c) => c.failed);
  const lines = [
    `### edgeperf compare: ${mdCode(baseId.slice(0, 12))} → ${mdCode(nextId.slice(0, 12))}: ${failed.length === 0 ? "✅ pass" : "❌ fail"}`,
    "",
    mdTable(
      ["Metric", "Stat", "Base", "New", "Δ", "Δ %", ""],
      rows.map((r) => [
        `${md(metricDef(r.tag)?.header ?? r.tag)} (${md(r.unit)})`,
        r.stat,
        formatNumber(r.base),
        formatNumber(r.next),
        r.delta === null ? "N/A" : signed(r.delta),
        pctText(r.percent),
        r.direction === "worse" ? "🔺 worse" : r.direction === "better" ? "better" : "",
      ]),
    ),
  ];
  if (checks.length > 0) {
    lines.push("", "**Fail on**", "");
    for (const c of checks) lines.push(`- ${c.failed ? "❌ FAIL" : "✅ PASS"} ${mdCode(c.expr)} (${md(c.detail)})`);
  }
  lines.push("", `**Verdict:** ${failed.length === 0 ? "pass" : `fail: ${failed.map((c) => md(c.expr)).join("; ")}`}`, "", "");
  return lines.join("\n");
}

export async function compare(argv: string[], help: (cmd: string) => number): Promise<number> {
  const { values, positionals } = parseFlags(argv, FLAGS, { min: 2, max: 2, names: "BASE.json and NEW.json (two results.json files)" });
  if (values.help) return help("compare");
  // Every expression is checked before any file is read: a typo fails fast.
  const failOn = ((values["fail-on"] as string[] | undefined) ?? []).map(parseFailOn);
  const [basePath = "", nextPath = ""] = positionals;
  const base = readResults(basePath, "BASE");
  const next = readResults(nextPath, "NEW");
  const rows = compareRows(base, next);
  const checks = failOn.map((f) => checkFailOn(f, base, next));
  const failed = checks.filter((c) => c.failed);

  const junit = str(values, "junit");
  if (junit !== undefined) {
    const cases = checks.map((c) => ({ name: c.expr, failure: c.failed ? `${c.expr}: ${c.detail}` : null }));
    writeFile(
      "--junit",
      junit,
      junitXml("edgeperf compare", cases, [`BASE ${basePath} (run ${base.id}), NEW ${nextPath} (run ${next.id})`]),
    );
  }
  const summary = str(values, "summary");
  if (summary !== undefined) appendFile("--summary", summary, markdown(String(base.id), String(next.id), rows, checks));

  if (values.json) printJson({ base: base.id, new: next.id, rows, failOn: checks, exitCode: failed.length > 0 ? 1 : 0 });
  else {
    const lines = [
      `BASE ${visible(basePath)} (run ${visible(base.id)}) → NEW ${visible(nextPath)} (run ${visible(next.id)})`,
      tableText(rows),
    ];
    if (checks.length > 0) {
      lines.push("Fail on:");
      for (const c of checks) lines.push(`  ${c.failed ? "FAIL" : "PASS"}  ${visible(c.expr)}  (${visible(c.detail)})`);
    }
    print(lines.join("\n"));
  }
  if (failed.length === 0) return 0;
  note(`edgeperf: exit 1: ${failed.map((c) => `${visible(c.expr)} (${visible(c.detail)})`).join("; ")}`);
  return 1;
}
