// Tokens as the contract defines them. The API token is a secret from the environment;
// each run gets a read token and an agent token, returned once at creation and stored
// only as SHA-256 hashes. Every comparison hashes both sides first (equal lengths), then
// uses timingSafeEqual, so neither the token's length nor its prefix leaks through timing.
// Web Crypto only: the Worker, the Durable Objects and tests share this module.

export type Auth = { role: "api" } | { role: "token"; hash: string };

const encoder = new TextEncoder();

/** Two hex digits for each byte value: a table lookup instead of a string built per byte. */
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

export async function sha256Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
  let hex = "";
  for (const b of digest) hex += HEX[b];
  return hex;
}

export function hashesEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  return x.byteLength === y.byteLength && crypto.subtle.timingSafeEqual(x, y);
}

export function newToken(prefix: "epr" | "epa" | "whsec"): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const b64 = btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
  return `${prefix}_${b64}`;
}
