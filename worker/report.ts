// GET /v1/runs/:id/report — report.html for a run (contract/report-html.ts): the
// dashboard's charts and tables with the results inline, one file that opens from disk
// and reaches no network. Read token, as a bearer header; served while the run runs
// (live results, marked so) and during its grace window, like the results themselves.
// `edgeperf run --out DIR` writes the same file from the same builder.

import type { IRequest } from "itty-router";
import { readConfig } from "../contract/config";
import { unwrap } from "../contract/errors";
import { buildReport } from "../contract/report-html";
import type { Results } from "../contract/results";
import { runAuth } from "./auth";
import { REPORT_ASSETS } from "./dashboard/assets";
import { coordinator } from "./runs";

export async function getReport(request: IRequest, env: Env): Promise<Response> {
  const auth = await runAuth(request, readConfig(env).apiToken);
  const results = unwrap(await coordinator(env, request.params.id).results(auth, 0)) as Results;
  const { html, csp } = await buildReport(results, REPORT_ASSETS);
  return new Response(html, {
    headers: {
      "content-type": "text/html; charset=utf-8",
      // A file to keep: saved under a name, not shown on this origin.
      "content-disposition": `attachment; filename="edgeperf-${results.id.slice(0, 12)}-report.html"`,
      "cache-control": "no-store",
      // The policy the file carries in its <meta>, plus what only a header can say.
      "content-security-policy": `${csp}; frame-ancestors 'none'`,
      "referrer-policy": "no-referrer",
      "x-content-type-options": "nosniff",
    },
  });
}
