// Operator routes (API token): the active runs, and the service drain that lets an
// operator redeploy without cutting runs short.

import type { IRequest } from "itty-router";
import { requireApiToken } from "./auth";
import { readConfig } from "../contract/config";

export const fleet = (env: Env) => env.FLEET.get(env.FLEET.idFromName("fleet"));

const json = (body: unknown, status = 200) => Response.json(body, { status, headers: { "cache-control": "no-store" } });

export async function listRuns(request: IRequest, env: Env): Promise<Response> {
  await requireApiToken(request, readConfig(env).apiToken);
  return json(await fleet(env).list());
}

export async function drainStatus(request: IRequest, env: Env): Promise<Response> {
  await requireApiToken(request, readConfig(env).apiToken);
  return json(await fleet(env).status());
}

export async function drainStart(request: IRequest, env: Env): Promise<Response> {
  await requireApiToken(request, readConfig(env).apiToken);
  return json(await fleet(env).drain(true), 202);
}

export async function drainResume(request: IRequest, env: Env): Promise<Response> {
  await requireApiToken(request, readConfig(env).apiToken);
  return json(await fleet(env).drain(false));
}
