// Request bodies: JSON only, size-limited while streaming (a missing or false
// Content-Length cannot get past the limit), parsed against one schema.

import type { z } from "zod";
import { StatusError } from "./errors";
import { forbiddenKeyError, zodToStatus } from "./spec-errors";

const JSON_TYPE = /^application\/json\s*(;|$)/i;

/**
 * The body parsed as JSON. With `optional`, a missing or empty body reads as {} (whatever
 * its Content-Type: clients send "" as text/plain); a body with any bytes in it must
 * still be JSON sent as application/json. A `__proto__` key anywhere is refused (see
 * forbiddenKeyError).
 */
export async function readJson(request: Request, maxBytes: number, opts: { optional?: boolean } = {}): Promise<unknown> {
  const isJson = JSON_TYPE.test(request.headers.get("content-type") ?? "");
  const { bytes, streamed } = await readBounded(
    request,
    maxBytes,
    () => tooLarge(maxBytes),
    () => {
      // A body of the wrong type is refused at its first byte, not read to the end.
      if (!isJson) throw new StatusError(415, "unsupported_media_type", "Send the body as 'Content-Type: application/json'.");
    },
  );
  if (bytes.byteLength === 0) {
    if (opts.optional) return {};
    throw new StatusError(400, "invalid_json", streamed ? "The request body is empty." : "The request needs a JSON body.");
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

/**
 * A request body's bytes, refused with `tooBig()` past `maxBytes` while streaming (a
 * missing or false Content-Length cannot get past; the error is built only then, not per
 * request). `onChunk` sees each chunk as it arrives and may throw to refuse the body
 * there; the rest is cancelled. `streamed`: the request had a body stream (a runtime may
 * hand a body-less POST over as an empty one).
 */
export async function readBounded(
  request: Request,
  maxBytes: number,
  tooBig: () => StatusError,
  onChunk?: () => void,
): Promise<{ bytes: Uint8Array; streamed: boolean }> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) throw tooBig();
  const reader = request.body?.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (reader) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    try {
      if (size > maxBytes) throw tooBig();
      if (value.byteLength > 0) onChunk?.();
    } catch (e) {
      await reader.cancel().catch(() => {});
      throw e;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  return { bytes, streamed: reader !== undefined };
}

function tooLarge(maxBytes: number): StatusError {
  return new StatusError(413, "body_too_large", `The body is larger than ${maxBytes} bytes.`);
}

export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const r = schema.safeParse(body);
  if (!r.success) throw zodToStatus(r.error);
  return r.data;
}
