// Handlers for /v1/experiments: create, summary, results, stop (the event stream is in
// experiment-events.ts). Each validates its input at the door, then makes one RPC call
// to the experiment's Experiment object, which owns every decision about it, the
// creation of each level's run included.

import type { IRequest } from "itty-router";
import { parseBody, readJson } from "../contract/body";
import { readConfig } from "../contract/config";
import { StatusError, unwrap } from "../contract/errors";
import { parseExperiment } from "../contract/experiment";
import type { ExperimentResults, ExperimentSummary } from "../contract/experiment";
import { StopBody } from "../contract/protocol";
import { newToken, sha256Hex } from "../contract/tokens";
import type { ExperimentInit } from "../durable/Experiment";
import { requireApiToken, runAuth } from "./auth";
import { limitRunCreation } from "./ratelimit";
import { waitParam } from "./runs";

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  Response.json(body, { status, headers: { "cache-control": "no-store", ...headers } });

const experimentNotFound = () =>
  new StatusError(404, "experiment_not_found", "No such experiment (it may have been wiped after its grace window).");

/** The experiment's object; a malformed id is an unknown experiment, and never reaches a Durable Object. */
export function experiment(env: Env, id: string | undefined) {
  if (!id || !/^[0-9a-f]{64}$/.test(id)) throw experimentNotFound();
  try {
    return env.EXPERIMENT.get(env.EXPERIMENT.idFromString(id));
  } catch {
    throw experimentNotFound();
  }
}

export function experimentUrls(origin: string, id: string, readToken?: string) {
  const self = `${origin}/v1/experiments/${id}`;
  return {
    self,
    results: `${self}/results`,
    events: `${self}/events`,
    stop: `${self}/stop`,
    ...(readToken !== undefined ? { dashboard: `${origin}/experiments/${id}#token=${readToken}` } : {}),
  };
}

/**
 * POST /v1/experiments (API token). Counts as one run creation for the rate limit: the
 * levels' runs are created one at a time by the experiment, each after the last completed.
 * Answers the experiment's read token (it reads the experiment and every level's run) and
 * agent token (every level's run accepts it), once.
 */
export async function createExperiment(request: IRequest, env: Env): Promise<Response> {
  const cfg = readConfig(env);
  if (!cfg.apiToken) throw new StatusError(503, "api_token_unset", "Experiment creation is disabled: the API_TOKEN secret is not set.");
  await requireApiToken(request, cfg.apiToken);
  await limitRunCreation(request, env);
  const plan = parseExperiment(await readJson(request, cfg.maxBodyBytes), cfg);
  const id = env.EXPERIMENT.newUniqueId();
  const readToken = newToken("epr");
  const agentToken = newToken("epa");
  const origin = new URL(request.url).origin;
  const init: ExperimentInit = {
    id: id.toString(),
    plan,
    readTokenHash: await sha256Hex(readToken),
    agentTokenHash: await sha256Hex(agentToken),
    origin,
  };
  const summary = unwrap(await env.EXPERIMENT.get(id).create(init)) as ExperimentSummary;
  const urls = experimentUrls(origin, init.id, readToken);
  return json({ ...summary, readToken, agentToken, urls }, 201, { location: urls.self });
}

/** GET /v1/experiments/:id (read token): the summary; ?wait=S long-polls for any change. */
export async function getExperiment(request: IRequest, env: Env): Promise<Response> {
  const auth = await runAuth(request, readConfig(env).apiToken);
  const wait = waitParam(new URL(request.url));
  return json(unwrap(await experiment(env, request.params.id).status(auth, wait)));
}

/** GET /v1/experiments/:id/results (read token): every level's results; ?wait=S long-polls for completion. */
export async function getExperimentResults(request: IRequest, env: Env): Promise<Response> {
  const auth = await runAuth(request, readConfig(env).apiToken);
  const wait = waitParam(new URL(request.url));
  return json(unwrap(await experiment(env, request.params.id).results(auth, wait)) as ExperimentResults);
}

/** POST /v1/experiments/:id/stop (API token): no new level; the current level's run stops gracefully (or `{"mode":"force"}`). */
export async function stopExperiment(request: IRequest, env: Env): Promise<Response> {
  const cfg = readConfig(env);
  await requireApiToken(request, cfg.apiToken);
  const body = parseBody(StopBody, await readJson(request, cfg.maxBodyBytes, { optional: true }));
  return json(unwrap(await experiment(env, request.params.id).stop({ role: "api" }, body.mode)), 202);
}
