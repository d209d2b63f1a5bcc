// report.html on this machine (`--out DIR`): contract/report-html.ts builds it from the
// dashboard's browser files, which the CLI reads at runtime from the package it runs
// from (worker/dashboard/*, and uPlot from node_modules), the same files the Worker
// bundles. They are read, not imported: the CLI's bundle (esbuild) would turn an import
// of them into code rather than text, and the CLI may not import the worker/ layer.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { REPORT_MODULES, buildReport } from "../contract/report-html.ts";
import type { ReportAssets } from "../contract/report-html.ts";
import { CliError, oneLine } from "./errors.ts";
import type { Results } from "./types.ts";
import { PROJECT_ROOT } from "./wrangler.ts";

function read(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new CliError(`cannot build report.html: ${path} is missing (${oneLine(e instanceof Error ? e.message : String(e), 120)})`);
  }
}

let assets: ReportAssets | null = null;

export function reportAssets(): ReportAssets {
  if (assets) return assets;
  const dashboard = join(PROJECT_ROOT, "worker", "dashboard");
  // Resolved like an import from here, so a hoisted node_modules is found too.
  const resolve = createRequire(import.meta.url).resolve;
  let uplotDir: string;
  try {
    uplotDir = join(resolve("uplot/package.json"), "..", "dist");
  } catch {
    throw new CliError(`cannot build report.html: the uplot package is not installed in ${PROJECT_ROOT} (run \`npm ci\` there)`);
  }
  assets = {
    uplotJs: read(join(uplotDir, "uPlot.iife.min.js")),
    uplotCss: read(join(uplotDir, "uPlot.min.css")),
    dashboardCss: read(join(dashboard, "dashboard.ui.css")),
    modules: Object.fromEntries(REPORT_MODULES.map((name) => [name, read(join(dashboard, name))])),
  };
  return assets;
}

/** report.html for these results, as GET /v1/runs/:id/report serves it. */
export async function reportHtml(results: Results): Promise<string> {
  return (await buildReport(results, reportAssets())).html;
}
