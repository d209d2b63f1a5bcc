// Reading tokens from requests: the bearer header, the API token check, and a run's
// own tokens (hashed here, checked by the run). Hashing and comparison: contract/tokens.ts.

import { StatusError } from "../contract/errors";
import { hashesEqual, sha256Hex } from "../contract/tokens";
import type { Auth } from "../contract/tokens";

// RFC 7235: the auth scheme is case-insensitive ("bearer", "BEARER") and is followed by
// one or more spaces.
const BEARER = /^Bearer +([\x21-\x7e]{1,512})$/i;

export function bearer(request: Request): string {
  const header = request.headers.get("authorization");
  const match = header ? BEARER.exec(header.trim()) : null;
  if (!match?.[1]) throw new StatusError(401, "unauthorized", "Send a token as 'Authorization: Bearer <token>'.");
  return match[1];
}

/**
 * The API token's hash, kept for the isolate's life (the token is the environment's own
 * secret; the value, not a promise, so no request awaits another request's work). Every
 * agent call is authenticated, and hashing the API token again for each was a third of
 * the hashing an HTTP agent's report cost.
 */
let apiHash: { token: string; hash: string } | null = null;

async function apiTokenHash(apiToken: string): Promise<string> {
  if (apiHash?.token !== apiToken) apiHash = { token: apiToken, hash: await sha256Hex(apiToken) };
  return apiHash.hash;
}

async function isApiTokenHash(hash: string, apiToken: string | undefined): Promise<boolean> {
  if (!apiToken) return false;
  return hashesEqual(hash, await apiTokenHash(apiToken));
}

/** Routes that need the API token (create, stop, list, admin). */
export async function requireApiToken(request: Request, apiToken: string | undefined): Promise<void> {
  const hash = await sha256Hex(bearer(request));
  if (!(await isApiTokenHash(hash, apiToken))) throw new StatusError(401, "invalid_token", "The token is not valid for this call.");
}

/**
 * Routes of one run: the API token, or a token the run itself checks. The run answers a
 * token that is not its own with 404, so a token never reveals whether another run exists.
 * The token is hashed once, for both checks.
 */
export async function runAuth(request: Request, apiToken: string | undefined): Promise<Auth> {
  const hash = await sha256Hex(bearer(request));
  if (await isApiTokenHash(hash, apiToken)) return { role: "api" };
  return { role: "token", hash };
}
