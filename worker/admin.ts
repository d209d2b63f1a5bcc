// Operator routes (API token): the active runs, and the service drain that lets an
// operator redeploy without cutting runs short.

import type { IRequest } from "itty-router";
import { z } from "zod";
import { requireApiToken } from "./auth";
import { parseBody, readJson } from "../contract/body";
import { readConfig } from "../contract/config";
import { StatusError } from "../contract/errors";
import type { RunKey } from "../durable/Fleet";

export const fleet = (env: Env) => env.FLEET.get(env.FLEET.idFromName("fleet"));

const json = (body: unknown, status = 200) => Response.json(body, { status, headers: { "cache-control": "no-store" } });

export const MAX_DRAIN_TIMEOUT_SECONDS = 3_600;
const DEFAULT_PAGE = 100;
const MAX_PAGE = 1_000;

const timeoutError = `must be a number of seconds from 0 to ${MAX_DRAIN_TIMEOUT_SECONDS}`;
/** POST /v1/admin/drain's optional body; no body at all is `{}`. */
const DrainBody = z.strictObject(
  {
    timeoutSeconds: z
      .number({ error: timeoutError })
      .min(0, { error: timeoutError })
      .max(MAX_DRAIN_TIMEOUT_SECONDS, { error: timeoutError })
      .optional(),
  },
  { error: 'must be a JSON object such as {"timeoutSeconds": 600}' },
);

/** ?limit=: an integer from 1 to 1000, 100 when absent (GET /v1/runs, GET /v1/datasets). */
export function limitParam(url: URL): number {
  const raw = url.searchParams.get("limit");
  if (raw === null) return DEFAULT_PAGE;
  const n = /^\d{1,7}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(n >= 1 && n <= MAX_PAGE)) throw new StatusError(400, "invalid_query", `limit must be an integer from 1 to ${MAX_PAGE}.`);
  return n;
}

// The cursor is the last run of the previous page, so a page never repeats or skips a run
// that stays active, whatever was added or ended meanwhile. Opaque to clients: only its
// round trip is promised.
function encodeCursor(key: RunKey): string {
  return btoa(`${key.createdAt}:${key.id}`).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function cursorParam(url: URL): RunKey | null {
  const raw = url.searchParams.get("cursor");
  if (raw === null) return null;
  const bad = () => new StatusError(400, "invalid_query", "cursor is not one this server issued: pass nextCursor from the previous page.");
  let text: string;
  try {
    if (!/^[A-Za-z0-9_-]{1,300}$/.test(raw)) throw bad();
    text = atob(raw.replace(/-/g, "+").replace(/_/g, "/"));
  } catch {
    throw bad();
  }
  const m = /^(\d{1,16}):([\x21-\x7e]{1,128})$/.exec(text);
  if (!m?.[1] || !m[2]) throw bad();
  return { createdAt: Number(m[1]), id: m[2] };
}

export async function listRuns(request: IRequest, env: Env): Promise<Response> {
  await requireApiToken(request, readConfig(env).apiToken);
  const url = new URL(request.url);
  const limit = limitParam(url);
  const after = cursorParam(url);
  const { next, ...page } = await fleet(env).list(limit, after);
  return json({ ...page, nextCursor: next === null ? null : encodeCursor(next) });
}

export async function drainStatus(request: IRequest, env: Env): Promise<Response> {
  await requireApiToken(request, readConfig(env).apiToken);
  return json(await fleet(env).status());
}

export async function drainStart(request: IRequest, env: Env): Promise<Response> {
  const cfg = readConfig(env);
  await requireApiToken(request, cfg.apiToken);
  // Checked before the Fleet is told anything: a refused body begins no drain.
  const raw = await readJson(request, cfg.maxBodyBytes, { optional: true });
  const body = parseBody(DrainBody, raw === undefined ? {} : raw);
  return json(await fleet(env).drain(body.timeoutSeconds ?? null), 202);
}

export async function drainResume(request: IRequest, env: Env): Promise<Response> {
  await requireApiToken(request, readConfig(env).apiToken);
  return json(await fleet(env).resume());
}
