// GET /assets/:file — the dashboard's static files, bundled into the Worker as Text
// modules (the [[rules]] block in wrangler.toml), so a deploy is one self-contained
// upload: no CDN, no static-assets binding, nothing fetched from elsewhere at runtime.
//
// Served with `no-cache` and a content ETag: a browser revalidates each load (a 304 is
// a few bytes) and never runs a page of one deploy against scripts of another.

import type { IRequest } from "itty-router";
import uplotCss from "uplot/dist/uPlot.min.css";
import uplotJs from "uplot/dist/uPlot.iife.min.js";
import { StatusError } from "../../contract/errors";
import { metricsModule } from "../../contract/report-html";
import type { REPORT_MODULES, ReportAssets } from "../../contract/report-html";
import chartsJs from "./charts.ui.js";
import dashboardCss from "./dashboard.ui.css";
import dashboardJs from "./dashboard.ui.js";
import downloadsJs from "./downloads.ui.js";
import experimentChartsJs from "./experiment-charts.ui.js";
import experimentCss from "./experiment.ui.css";
import experimentRenderJs from "./experiment-render.ui.js";
import experimentJs from "./experiment.ui.js";
import httpJs from "./http.ui.js";
import renderJs from "./render.ui.js";
import reportJs from "./report.ui.js";
import resultsJs from "./results.ui.js";

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

const ASSETS: Record<string, { body: string; type: string }> = {
  "uplot.min.js": { body: uplotJs, type: JS },
  "uplot.min.css": { body: uplotCss, type: CSS },
  "dashboard.ui.js": { body: dashboardJs, type: JS },
  "render.ui.js": { body: renderJs, type: JS },
  "results.ui.js": { body: resultsJs, type: JS },
  "downloads.ui.js": { body: downloadsJs, type: JS },
  "charts.ui.js": { body: chartsJs, type: JS },
  "dashboard.ui.css": { body: dashboardCss, type: CSS },
  // The experiment page (experiment-page.ts).
  "experiment.ui.js": { body: experimentJs, type: JS },
  "http.ui.js": { body: httpJs, type: JS },
  "experiment-charts.ui.js": { body: experimentChartsJs, type: JS },
  "experiment-render.ui.js": { body: experimentRenderJs, type: JS },
  "experiment.ui.css": { body: experimentCss, type: CSS },
  // The metric catalog as a browser module, so the dashboard names no metric itself.
  "metrics.ui.js": { body: metricsModule(), type: JS },
};

/** What report.html is built from (contract/report-html.ts): the same files the live page loads. */
export const REPORT_ASSETS: ReportAssets = {
  uplotJs,
  uplotCss,
  dashboardCss,
  modules: { "charts.ui.js": chartsJs, "render.ui.js": renderJs, "results.ui.js": resultsJs, "report.ui.js": reportJs } satisfies Record<
    (typeof REPORT_MODULES)[number],
    string
  >,
};

// Not stored anywhere: a pure function of constant content, computed once per isolate.
const etags = new Map<string, Promise<string>>();

async function etagOf(body: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body));
  const hex = [...new Uint8Array(digest).slice(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `"${hex}"`;
}

export async function serveAsset(request: IRequest): Promise<Response> {
  const name = request.params.file ?? "";
  const asset = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
  if (!asset) throw new StatusError(404, "not_found", `No asset '${name}'.`);
  let etag = etags.get(name);
  if (!etag) etags.set(name, (etag = etagOf(asset.body)));
  const headers = {
    etag: await etag,
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    "cross-origin-resource-policy": "same-origin",
  };
  const match = request.headers.get("if-none-match");
  if (match !== null && match.split(",").some((t) => t.trim() === headers.etag)) return new Response(null, { status: 304, headers });
  return new Response(asset.body, { headers: { ...headers, "content-type": asset.type } });
}
