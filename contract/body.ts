// Request bodies: JSON only, size-limited while streaming (a missing or false
// Content-Length cannot get past the limit), parsed against one schema.

import type { z } from "zod";
import { StatusError } from "./errors";
import { zodToStatus } from "./spec";

export async function readJson(request: Request, maxBytes: number, opts: { optional?: boolean } = {}): Promise<unknown> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge(maxBytes);
  if (!request.body) {
    if (opts.optional) return undefined;
    throw new StatusError(400, "invalid_json", "The request needs a JSON body.");
  }
  const type = request.headers.get("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new StatusError(415, "unsupported_media_type", "Send the body as 'Content-Type: application/json'.");
  }
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
  }
  if (size === 0) {
    if (opts.optional) return undefined;
    throw new StatusError(400, "invalid_json", "The request body is empty.");
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    throw new StatusError(400, "invalid_json", "The body is not valid UTF-8 JSON.");
  }
}

function tooLarge(maxBytes: number): StatusError {
  return new StatusError(413, "body_too_large", `The body is larger than ${maxBytes} bytes.`);
}

export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const r = schema.safeParse(body);
  if (!r.success) throw zodToStatus(r.error);
  return r.data;
}
