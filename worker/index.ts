// The route table (README, "The API"). Handlers live in sibling modules; every error, thrown
// anywhere, is formatted here once into {"error":{"code","message"}}.

import { Router } from "itty-router";
import type { IRequest } from "itty-router";
import { errorResponse, toErrorResponse } from "../contract/errors";
import { streamEvents } from "./events";
import { serveAsset } from "./dashboard/assets";
import { serveDashboard } from "./dashboard/page";
import { serveExperimentPage } from "./dashboard/experiment-page";
import { handleMockRoute } from "../mock/mock";
import { drainResume, drainStart, drainStatus, listRuns } from "./admin";
import { getMetrics } from "./prometheus";
import { getReport } from "./report";
import { createRun, getResults, getStatus, joinRun, leaseCredits, reportAndLease, reportResults, stopRun } from "./runs";
import { createExperiment, getExperiment, getExperimentResults, stopExperiment } from "./experiments";
import { streamExperimentEvents } from "./experiment-events";
import { deleteDatasetRoute, getDataset, getDatasetItems, listDatasetsRoute, uploadDataset } from "./datasets";

export { Experiment } from "../durable/Experiment";
export { Fleet } from "../durable/Fleet";
export { LoadAgent } from "../durable/LoadAgent";
export { RunCoordinator } from "../durable/RunCoordinator";

const router = Router<IRequest, [Env, ExecutionContext]>({
  catch: (e, request) => toErrorResponse(e, `worker ${request.method} ${new URL(request.url).pathname}`),
});

router
  // Liveness for load balancers and the CLI; needs no token and touches no state.
  .get("/healthz", () => new Response("ok", { headers: { "content-type": "text/plain" } }))
  // Create and start a run: API token; answers the run's read and agent tokens once.
  .post("/v1/runs", createRun)
  // Active runs, for operators: API token.
  .get("/v1/runs", listRuns)
  // Status snapshot for pollers: read token.
  .get("/v1/runs/:id", getStatus)
  // Results document, long-pollable with ?wait=S: read token.
  .get("/v1/runs/:id/results", getResults)
  // Live Server-Sent Events until the final results: read token.
  .get("/v1/runs/:id/events", streamEvents)
  // The run for Prometheus, in the OpenMetrics text format: read token.
  .get("/v1/runs/:id/metrics", getMetrics)
  // report.html, the dashboard as one self-contained file: read token.
  .get("/v1/runs/:id/report", getReport)
  // Begin shutdown, graceful or force: API token.
  .post("/v1/runs/:id/stop", stopRun)
  // Agent wire protocol v1: agent token.
  .post("/v1/runs/:id/agents", joinRun)
  .post("/v1/runs/:id/leases", leaseCredits)
  .post("/v1/runs/:id/reports", reportResults)
  .post("/v1/runs/:id/report-lease", reportAndLease)
  // Experiments: a sweep of levels, or capacity under an SLO, each level a run of its own: API token.
  .post("/v1/experiments", createExperiment)
  // The experiment's summary, long-pollable with ?wait=S for any change: read token.
  .get("/v1/experiments/:id", getExperiment)
  // Every level's results, long-pollable with ?wait=S for completion: read token.
  .get("/v1/experiments/:id/results", getExperimentResults)
  // Live Server-Sent Events until the final summary: read token.
  .get("/v1/experiments/:id/events", streamExperimentEvents)
  // No new level; the current level's run stops gracefully (or {"mode":"force"}): API token.
  .post("/v1/experiments/:id/stop", stopExperiment)
  // Datasets: JSONL in AIPerf's layouts, stored in R2 under their content hash; API token.
  .post("/v1/datasets", uploadDataset)
  .get("/v1/datasets", listDatasetsRoute)
  .get("/v1/datasets/:id", getDataset)
  // The normalized items, for agents: API token, or ?run=RUN_ID with that run's agent token.
  .get("/v1/datasets/:id/items", getDatasetItems)
  .delete("/v1/datasets/:id", deleteDatasetRoute)
  // Service drain before a redeploy: refuse new runs, let active ones finish.
  .post("/v1/admin/drain", drainStart)
  .get("/v1/admin/drain", drainStatus)
  .delete("/v1/admin/drain", drainResume)
  // The live dashboard page; the read token stays in the URL fragment, never sent here.
  .get("/runs/:id", serveDashboard)
  // The experiment page: its levels side by side, linking each level's run dashboard; token in the fragment.
  .get("/experiments/:id", serveExperimentPage)
  // The dashboard's scripts and styles (and uPlot), bundled into the Worker.
  .get("/assets/:file", serveAsset)
  // The built-in OpenAI-compatible mock target (no token: it serves benchmarks, holds nothing).
  .all("/mock/*", (request, env) => handleMockRoute(request, env))
  .all("*", (request) => errorResponse(404, "not_found", `No route for ${request.method} ${new URL(request.url).pathname}.`));

export default {
  fetch: (request, env, ctx) => router.fetch(request, env, ctx),
} satisfies ExportedHandler<Env>;
