// What a CI job reads: a JUnit XML file (--junit: one test case per threshold, so a
// failed threshold is a failed case in the CI's test view) and a Markdown summary
// (--summary: appended, as GitHub's $GITHUB_STEP_SUMMARY expects, with the metric table,
// the thresholds, the warnings and the verdict). Server strings pass through visible()
// first (no control character reaches a file), then the format's own escaping.

import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { METRICS } from "../contract/metric-catalog.ts";
import { CliError, oneLine } from "./errors.ts";
import { visible } from "./escape.ts";
import { deliveredLine, formatNumber, verdict, warningsOf } from "./table.ts";
import type { Results } from "./types.ts";

// ── Files ────────────────────────────────────────────────────────────────────

function fileFailure(flag: string, path: string, e: unknown): CliError {
  return new CliError(`cannot write ${flag} ${path}: ${oneLine(e instanceof Error ? e.message : String(e), 160)}`);
}

/** Writes (replaces) a file, creating its folder; `flag` names the option in the error. */
export function writeFile(flag: string, path: string, body: string): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, body);
  } catch (e) {
    throw fileFailure(flag, path, e);
  }
}

/** Appends to a file, as $GITHUB_STEP_SUMMARY is meant to be written: each step adds its part. */
export function appendFile(flag: string, path: string, body: string): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
    appendFileSync(path, body);
  } catch (e) {
    throw fileFailure(flag, path, e);
  }
}

// ── JUnit ────────────────────────────────────────────────────────────────────

/** XML text or attribute: controls made visible, then the five XML escapes. */
export function xml(value: unknown): string {
  return visible(value).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c] ?? c);
}

export interface JUnitCase {
  name: string;
  /** Null: passed. */
  failure: string | null;
}

export function junitXml(suite: string, cases: JUnitCase[], systemOut: string[]): string {
  const failures = cases.filter((c) => c.failure !== null).length;
  const body = cases.map((c) =>
    c.failure === null
      ? `    <testcase classname="${xml(suite)}" name="${xml(c.name)}"/>`
      : `    <testcase classname="${xml(suite)}" name="${xml(c.name)}">\n      <failure message="${xml(c.failure)}">${xml(c.failure)}</failure>\n    </testcase>`,
  );
  const out = systemOut.length > 0 ? [`    <system-out>${systemOut.map(xml).join("\n")}</system-out>`] : [];
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="edgeperf" tests="${cases.length}" failures="${failures}">`,
    `  <testsuite name="${xml(suite)}" tests="${cases.length}" failures="${failures}" errors="0">`,
    ...body,
    ...out,
    "  </testsuite>",
    "</testsuites>",
    "",
  ].join("\n");
}

/**
 * A run's thresholds as test cases, plus one case for the run itself, which fails when
 * the verdict fails for another reason (cancelled, partial, no request succeeded), so
 * the CI's view agrees with the exit code. Warnings go to system-out.
 */
export function resultsJUnit(results: Results): string {
  const cases: JUnitCase[] = results.thresholds.map((t) => ({
    name: t.expr,
    failure: t.ok ? null : `${t.expr} failed: value ${formatNumber(t.value)}`,
  }));
  const thresholdFailures = results.thresholds.filter((t) => !t.ok).length;
  const other = verdict(results).reasons.slice(thresholdFailures > 0 ? 1 : 0);
  cases.push({
    name: `run ${results.final ? "completed" : "(live, not final)"}`,
    failure: other.length > 0 ? other.join("; ") : null,
  });
  const out = warningsOf(results).map((w) => `Warning: ${w.message} (${w.code})`);
  if (results.delivered) out.push(deliveredLine(results.delivered));
  return junitXml(`edgeperf run ${results.id.slice(0, 12)}`, cases, out);
}

// ── Markdown ─────────────────────────────────────────────────────────────────

/**
 * A cell or inline text: controls made visible, and what Markdown or HTML would act on
 * escaped (`>` only quotes at the start of a line, which a value never is here).
 */
export function md(value: unknown): string {
  return visible(value).replace(/[\\`*_[\]|<#!~]/g, (c) => `\\${c}`);
}

/** Inline code: backticks cannot be escaped inside it, so a value holding one is shown as text. */
export function mdCode(value: unknown): string {
  const s = visible(value);
  return s.includes("`") ? md(s) : `\`${s}\``;
}

export function mdTable(header: string[], rows: string[][]): string {
  const align = header.map((_, i) => (i === 0 ? "---" : "---:"));
  return [header, align, ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}

const MD_STATS = ["avg", "p50", "p90", "p99", "max"] as const;

export function resultsMarkdown(results: Results): string {
  const v = verdict(results);
  const state = results.final ? `${results.status}${results.outcome ? ` (${results.outcome})` : ""}` : `${results.phase} (live, not final)`;
  const lines = [`### edgeperf run ${mdCode(results.id.slice(0, 12))}: ${md(state)}: ${v.exitCode === 0 ? "✅ pass" : "❌ fail"}`, ""];
  const rows: string[][] = [];
  for (const { tag, header, kind, precision } of METRICS) {
    const m = results.metrics[tag];
    if (!m) continue;
    if (kind === "distribution" ? !m.count : typeof m.avg !== "number") continue;
    const cells =
      kind === "distribution" ? MD_STATS.map((s) => formatNumber(m[s])) : [formatNumber(m.avg, precision === 0), "", "", "", ""];
    rows.push([`${md(header)} (${md(m.unit)})`, ...cells]);
  }
  if (rows.length > 0) lines.push(mdTable(["Metric", ...MD_STATS], rows), "");
  const c = results.counts;
  lines.push(`Requests: ${md(c.completed)} completed, ${md(c.failed)} failed, ${md(c.abandoned)} abandoned.`);
  if (results.delivered) lines.push("", md(deliveredLine(results.delivered)));
  if (results.thresholds.length > 0) {
    lines.push("", "**Thresholds**", "");
    for (const t of results.thresholds) lines.push(`- ${t.ok ? "✅ PASS" : "❌ FAIL"} ${mdCode(t.expr)} (value ${formatNumber(t.value)})`);
  }
  const warnings = warningsOf(results);
  if (warnings.length > 0) {
    lines.push("", "**Warnings**", "");
    for (const w of warnings) lines.push(`- ⚠️ ${md(w.message)} (${mdCode(w.code)})`);
  }
  lines.push("", `**Verdict:** ${v.exitCode === 0 ? "pass" : `fail: ${v.reasons.map(md).join("; ")}`}`, "", "");
  return lines.join("\n");
}
