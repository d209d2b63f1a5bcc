// GET /runs/:id — the live dashboard page. The page is static: it holds no run data and
// no secret. The browser reads the run's id from the path and the read token from the
// URL fragment (#token=…), which browsers never send to a server, and sends the token
// itself as an Authorization header (see dashboard.ui.js).
//
// No inline script or style: everything comes from /assets/ (worker/dashboard/assets.ts),
// so the Content-Security-Policy can be 'self' only. uPlot styles its elements through
// the CSSOM (element.style), which style-src does not restrict; the dashboard's own
// modules set no style at all (bars are <progress> and <meter> elements). The body is
// contract/report-html.ts's, which report.html shares.

import type { IRequest } from "itty-router";
import { StatusError } from "../../contract/errors";
import { dashboardMarkup } from "../../contract/report-html";

/** A dashboard page's HTML: its title, its own stylesheets and module on top of the shared ones, its markup. */
export function pageHtml(p: { title: string; styles?: string[]; script: string; bodyAttrs?: string; body: string }): string {
  const styles = ["uplot.min.css", "dashboard.ui.css", ...(p.styles ?? [])];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${p.title}</title>
<link rel="icon" href="data:,">
${styles.map((css) => `<link rel="stylesheet" href="/assets/${css}">`).join("\n")}
<script defer src="/assets/uplot.min.js"></script>
<script type="module" src="/assets/${p.script}"></script>
</head>
<body${p.bodyAttrs ? ` ${p.bodyAttrs}` : ""}>
${p.body}
</body>
</html>
`;
}

const PAGE = pageHtml({ title: "edgeperf · run", script: "dashboard.ui.js", body: dashboardMarkup("live") });

/** The dashboard pages' headers (the run dashboard and the experiment page): 'self' only, no referrer, no framing. */
export const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-cache",
  "content-security-policy": [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    // data: for the empty favicon (without one, the browser asks for /favicon.ico).
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; "),
  // The fragment holds the read token: never hand this URL to anyone else.
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
};

export function serveDashboard(request: IRequest): Response {
  // A malformed id cannot be a run; the page itself never looks the run up (it cannot:
  // the token is in the fragment), the browser does.
  if (!/^[0-9a-f]{64}$/.test(request.params.id ?? "")) throw new StatusError(404, "run_not_found", "No such run.");
  return new Response(PAGE, { headers: PAGE_HEADERS });
}
