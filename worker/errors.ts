// One error shape for the whole API: {"error":{"code","message"}}. Code anywhere throws
// StatusError; the boundary in worker/index.ts formats it once. Anything else thrown is
// an internal fault: it is logged with context and answered as a bare 500, so no stack
// trace or secret ever reaches a client.

export class StatusError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
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

// Durable Object RPC rethrows errors as plain Errors: the class is lost, the message
// survives. A StatusError crossing RPC is encoded in its message and decoded here.
const WIRE_PREFIX = "edgeperf-status:";

export function toWire(e: StatusError): Error {
  return new Error(WIRE_PREFIX + JSON.stringify({ status: e.status, code: e.code, message: e.message }));
}

export function fromWire(e: unknown): StatusError | undefined {
  if (e instanceof StatusError) return e;
  if (!(e instanceof Error) || !e.message.startsWith(WIRE_PREFIX)) return undefined;
  try {
    const { status, code, message } = JSON.parse(e.message.slice(WIRE_PREFIX.length)) as {
      status: number;
      code: string;
      message: string;
    };
    return new StatusError(status, code, message);
  } catch {
    return undefined;
  }
}

export function toErrorResponse(e: unknown, context: string): Response {
  const known = fromWire(e);
  if (known) return errorResponse(known.status, known.code, known.message, known.headers);
  console.error(`${context}: internal error`, e instanceof Error ? e.message : String(e));
  return errorResponse(500, "internal_error", "Internal error.");
}
