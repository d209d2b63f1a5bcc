// One error shape for the whole API: {"error":{"code","message"}}. Code anywhere throws
// StatusError; the boundary in worker/index.ts formats it once. Anything else thrown is
// an internal fault: it is logged with context and answered as a bare 500, so no stack
// trace or secret ever reaches a client.

export class StatusError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
    this.name = "StatusError";
  }
}

export interface ErrorBody {
  error: { code: string; message: string };
}

export function errorResponse(status: number, code: string, message: string, headers: Record<string, string> = {}): Response {
  const body: ErrorBody = { error: { code, message } };
  return Response.json(body, { status, headers: { "cache-control": "no-store", ...headers } });
}

// A refusal crosses Durable Object RPC as a value, not a throw: thrown errors lose their
// class over RPC and are logged by the runtime as uncaught exceptions, which a 409 is not.
export type RpcResult<T> = { ok: true; value: T } | { ok: false; status: number; code: string; message: string };

export async function asResult<T>(fn: () => Promise<T>): Promise<RpcResult<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    if (e instanceof StatusError) return { ok: false, status: e.status, code: e.code, message: e.message };
    throw e;
  }
}

export function unwrap<T>(r: RpcResult<T>): T {
  if (r.ok) return r.value;
  throw new StatusError(r.status, r.code, r.message);
}

export function toErrorResponse(e: unknown, context: string): Response {
  if (e instanceof StatusError) return errorResponse(e.status, e.code, e.message, e.headers);
  console.error(`${context}: internal error`, e instanceof Error ? e.message : String(e));
  return errorResponse(500, "internal_error", "Internal error.");
}
