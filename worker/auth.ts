// Tokens. The API token is a secret from the environment; each run gets a read token and
// an agent token, returned once at creation and stored only as SHA-256 hashes. Every
// comparison hashes both sides first (equal lengths), then uses timingSafeEqual, so
// neither the token's length nor its prefix leaks through timing.

import { StatusError } from "./errors";

export type Auth = { role: "api" } | { role: "token"; hash: string };

const encoder = new TextEncoder();

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export function hashesEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  return x.byteLength === y.byteLength && crypto.subtle.timingSafeEqual(x, y);
}

export function newToken(prefix: "epr" | "epa" | "whsec"): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const b64 = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return `${prefix}_${b64}`;
}

export function bearer(request: Request): string {
  const header = request.headers.get("authorization");
  const match = header ? /^Bearer ([\x21-\x7e]{1,512})$/.exec(header.trim()) : null;
  if (!match?.[1]) throw new StatusError(401, "unauthorized", "Send a token as 'Authorization: Bearer <token>'.");
  return match[1];
}

async function isApiToken(token: string, apiToken: string | undefined): Promise<boolean> {
  if (!apiToken) return false;
  const [a, b] = await Promise.all([sha256Hex(token), sha256Hex(apiToken)]);
  return hashesEqual(a, b);
}

/** Routes that need the API token (create, stop, list, admin). */
export async function requireApiToken(request: Request, apiToken: string | undefined): Promise<void> {
  const token = bearer(request);
  if (!(await isApiToken(token, apiToken))) throw new StatusError(401, "invalid_token", "The token is not valid for this call.");
}

/**
 * Routes of one run: the API token, or a token the run itself checks. The run answers a
 * token that is not its own with 404, so a token never reveals whether another run exists.
 */
export async function runAuth(request: Request, apiToken: string | undefined): Promise<Auth> {
  const token = bearer(request);
  if (await isApiToken(token, apiToken)) return { role: "api" };
  return { role: "token", hash: await sha256Hex(token) };
}
