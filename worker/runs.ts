// Handlers for /v1/runs: create, status, results, stop, and the agent wire protocol.
// Each validates its input at the door, then makes one RPC call to the run's
// RunCoordinator, which owns every decision about the run.

import type { IRequest } from "itty-router";
import { startRun } from "../durable/start-run";
import { toAiperfCsv, toAiperfJson } from "../contract/exports";
import { toRegionsCsv, toTimeslicesCsv, toTimeslicesJson } from "../contract/exports-breakdowns";
import type { Results, Snapshot } from "../durable/views";
import { newToken, sha256Hex } from "../contract/tokens";
import { requireApiToken, runAuth } from "./auth";
import { parseBody, readJson } from "../contract/body";
import { readConfig } from "../contract/config";
import { StatusError, unwrap } from "../contract/errors";
import { JoinBody, LeaseBody, ReportBody, ReportLeaseBody, StopBody } from "../contract/protocol";
import type { ReportLeaseAnswer } from "../contract/protocol";
import { limitRunCreation } from "./ratelimit";
import { parseRunSpec } from "../contract/spec";

const MAX_WAIT_SECONDS = 60;
/** ?format= of GET /results: the results document, AIPerf's exports, and the breakdowns by region and time slice. */
const FORMATS = ["json", "aiperf", "csv", "regions-csv", "timeslices-csv", "timeslices"];

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  Response.json(body, { status, headers: { "cache-control": "no-store", ...headers } });

const runNotFound = () => new StatusError(404, "run_not_found", "No such run (it may have been wiped after its grace window).");

/** The run's coordinator; a malformed id is an unknown run, and never reaches a Durable Object. */
export function coordinator(env: Env, id: string | undefined) {
  if (!id || !/^[0-9a-f]{64}$/.test(id)) throw runNotFound();
  try {
    return env.RUN_COORDINATOR.get(env.RUN_COORDINATOR.idFromString(id));
  } catch {
    throw runNotFound();
  }
}

function runUrls(origin: string, id: string, readToken: string) {
  const self = `${origin}/v1/runs/${id}`;
  return { self, results: `${self}/results`, events: `${self}/events`, dashboard: `${origin}/runs/${id}#token=${readToken}` };
}

export async function createRun(request: IRequest, env: Env): Promise<Response> {
  const cfg = readConfig(env);
  if (!cfg.apiToken) throw new StatusError(503, "api_token_unset", "Run creation is disabled: the API_TOKEN secret is not set.");
  await requireApiToken(request, cfg.apiToken);
  await limitRunCreation(request, env);
  const spec = parseRunSpec(await readJson(request, cfg.maxBodyBytes), cfg);
  const id = env.RUN_COORDINATOR.newUniqueId();
  const runId = id.toString();
  const readToken = newToken("epr");
  const agentToken = newToken("epa");
  const notifySecret = spec.notify ? newToken("whsec") : undefined;
  // Registered with the Fleet first, so a service drain can never miss a run being created.
  const snapshot = unwrap(
    await startRun(env, {
      runId,
      spec,
      cfg,
      readTokenHash: await sha256Hex(readToken),
      agentTokenHash: await sha256Hex(agentToken),
      origin: new URL(request.url).origin,
      ...(notifySecret ? { notifySecret } : {}),
    }),
  );
  const urls = runUrls(new URL(request.url).origin, runId, readToken);
  return json({ ...snapshot, readToken, agentToken, ...(notifySecret ? { notifySecret } : {}), urls }, 201, { location: urls.self });
}

/** ?wait=S: 0 to 60 seconds, fractions allowed (runs and experiments). */
export function waitParam(url: URL): number {
  const raw = url.searchParams.get("wait");
  const wait = raw === null ? 0 : Number(raw);
  if (raw === "" || !Number.isFinite(wait) || wait < 0 || wait > MAX_WAIT_SECONDS) {
    throw new StatusError(400, "invalid_query", `wait must be a number of seconds from 0 to ${MAX_WAIT_SECONDS}.`);
  }
  return Math.round(wait * 1000);
}

/** A strong validator of the snapshot's content; serverTime alone changing is no change. */
async function etagOf(snapshot: Snapshot): Promise<string> {
  const { serverTime: _ignored, ...content } = snapshot;
  return `"${(await sha256Hex(JSON.stringify(content))).slice(0, 32)}"`;
}

export async function getStatus(request: IRequest, env: Env): Promise<Response> {
  const auth = await runAuth(request, readConfig(env).apiToken);
  const wait = waitParam(new URL(request.url));
  const snapshot = unwrap(await coordinator(env, request.params.id).status(auth, wait));
  const etag = await etagOf(snapshot);
  const match = request.headers.get("if-none-match");
  if (match !== null && match.split(",").some((t) => t.trim() === etag || t.trim() === "*")) {
    return new Response(null, { status: 304, headers: { etag, "cache-control": "no-cache" } });
  }
  return json(snapshot, 200, { etag, "cache-control": "no-cache" });
}

export async function getResults(request: IRequest, env: Env): Promise<Response> {
  const auth = await runAuth(request, readConfig(env).apiToken);
  const url = new URL(request.url);
  const format = url.searchParams.get("format") ?? "json";
  if (!FORMATS.includes(format)) {
    throw new StatusError(400, "unsupported_format", `Format '${format}' is not available; use ${FORMATS.join(", ")}.`);
  }
  const results = unwrap(await coordinator(env, request.params.id).results(auth, waitParam(url))) as Results;
  const csv = (body: string) => new Response(body, { headers: { "content-type": "text/csv; charset=utf-8", "cache-control": "no-store" } });
  if (format === "aiperf") return json(toAiperfJson(results));
  if (format === "csv") return csv(toAiperfCsv(results));
  if (format === "regions-csv") return csv(toRegionsCsv(results));
  if (format === "timeslices-csv") return csv(toTimeslicesCsv(results));
  if (format === "timeslices") return json(toTimeslicesJson(results));
  return json(results);
}

export async function stopRun(request: IRequest, env: Env): Promise<Response> {
  const cfg = readConfig(env);
  await requireApiToken(request, cfg.apiToken);
  const body = parseBody(StopBody, await readJson(request, cfg.maxBodyBytes, { optional: true }));
  return json(unwrap(await coordinator(env, request.params.id).stop({ role: "api" }, body.mode)), 202);
}

export async function joinRun(request: IRequest, env: Env): Promise<Response> {
  const cfg = readConfig(env);
  const auth = await runAuth(request, cfg.apiToken);
  const body = parseBody(JoinBody, await readJson(request, cfg.maxBodyBytes, { optional: true }));
  return json(unwrap(await coordinator(env, request.params.id).join(auth, body)));
}

export async function leaseCredits(request: IRequest, env: Env): Promise<Response> {
  const cfg = readConfig(env);
  const auth = await runAuth(request, cfg.apiToken);
  const body = parseBody(LeaseBody, await readJson(request, cfg.maxBodyBytes));
  return json(unwrap(await coordinator(env, request.params.id).lease(auth, body)));
}

export async function reportResults(request: IRequest, env: Env): Promise<Response> {
  const cfg = readConfig(env);
  const auth = await runAuth(request, cfg.apiToken);
  const body = parseBody(ReportBody, await readJson(request, cfg.maxBodyBytes));
  return json(unwrap(await coordinator(env, request.params.id).report(auth, body)));
}

/**
 * A report and then a lease in one round trip (extension; README, "Agents and the wire
 * protocol"): what edge agents do over RPC, for external agents over HTTP, so a report-and-
 * lease cycle costs one round trip. The report's refusal is the call's error; the lease's
 * refusal comes back beside the report's answer.
 */
export async function reportAndLease(request: IRequest, env: Env): Promise<Response> {
  const cfg = readConfig(env);
  const auth = await runAuth(request, cfg.apiToken);
  const body = parseBody(ReportLeaseBody, await readJson(request, cfg.maxBodyBytes));
  const both = await coordinator(env, request.params.id).reportThenLease(auth, body.report, body.lease);
  const report = unwrap(both.report);
  const l = both.lease;
  const lease =
    l === null
      ? { error: { status: 503, code: "lease_not_tried", message: "The lease was not tried." } }
      : l.ok
        ? l.value
        : { error: { status: l.status, code: l.code, message: l.message } };
  const answer: ReportLeaseAnswer = { report, lease };
  return json(answer);
}
