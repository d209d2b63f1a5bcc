// Request bodies: JSON only, size-limited while streaming (a missing or false
// Content-Length cannot get past the limit), parsed against one schema.

import type { z } from "zod";
import { StatusError } from "./errors";
import { forbiddenKeyError, zodToStatus } from "./spec";

const JSON_TYPE = /^application\/json\s*(;|$)/i;

/**
 * The body parsed as JSON. With `optional`, a missing or empty body reads as {} (whatever
 * its Content-Type: clients send "" as text/plain); a body with any bytes in it must
 * still be JSON sent as application/json. A `__proto__` key anywhere is refused (see
 * forbiddenKeyError).
 */
export async function readJson(request: Request, maxBytes: number, opts: { optional?: boolean } = {}): Promise<unknown> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge(maxBytes);
  const isJson = JSON_TYPE.test(request.headers.get("content-type") ?? "");
  // A runtime may hand a body-less POST over as an empty stream rather than null, so
  // emptiness is known only once the first bytes (or the end) have been read.
  const reader = request.body?.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (reader) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
    // A body of the wrong type is refused at its first byte, not read to the end.
    if (size > 0 && !isJson) {
      await reader.cancel().catch(() => {});
      throw new StatusError(415, "unsupported_media_type", "Send the body as 'Content-Type: application/json'.");
    }
  }
  if (size === 0) {
    if (opts.optional) return {};
    throw new StatusError(400, "invalid_json", reader ? "The request body is empty." : "The request needs a JSON body.");
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    throw new StatusError(400, "invalid_json", "The body is not valid UTF-8 JSON.");
  }
  const refused = forbiddenKeyError(value);
  if (refused) throw refused;
  return value;
}

function tooLarge(maxBytes: number): StatusError {
  return new StatusError(413, "body_too_large", `The body is larger than ${maxBytes} bytes.`);
}

export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const r = schema.safeParse(body);
  if (!r.success) throw zodToStatus(r.error);
  return r.data;
}
