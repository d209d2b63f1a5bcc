// The messages of the Node agent's HTTP/1.1 client (node-http.ts): a request's head and
// body as written, a response and its body as read, and the errors the client fails with
// (those fetch fails with: a TypeError "fetch failed", a DOMException named AbortError).

import type { TargetBodyReader, TargetResponse } from "../agent/target.ts";

/** Past this many bytes read but not yet taken by read(), the socket is paused (back-pressure). */
const HIGH_WATER = 1 << 20;

export const abortError = () => new DOMException("This operation was aborted", "AbortError");
export const failed = (cause: unknown) => new TypeError("fetch failed", { cause });
export const protocolError = (message: string) => failed(new Error(`malformed HTTP response: ${message}`));

/** Header fields the client writes itself; a caller's are dropped (fetch forbids setting them). */
const MANAGED = new Set(["host", "content-length", "transfer-encoding", "connection", "keep-alive"]);
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BAD_VALUE = /[\r\n\0]/;

/** The request's header lines, each ending in CRLF; invalid names or values are refused as fetch refuses them. */
function headerLines(h: RequestInit["headers"]): string {
  let out = "";
  const add = (name: string, value: string) => {
    if (!FIELD_NAME.test(name) || BAD_VALUE.test(value)) throw new TypeError(`node-http: invalid header ${JSON.stringify(name)}`);
    if (!MANAGED.has(name.toLowerCase())) out += `${name}: ${value}\r\n`;
  };
  if (h === undefined) return out;
  if (h instanceof Headers || Array.isArray(h)) for (const [k, v] of h) add(k, v);
  else for (const [k, v] of Object.entries(h as Record<string, string>)) add(k, v);
  return out;
}

/** The agent sends the same headers object on every request (agent/target.ts builds one per spec). */
const linesOf = new WeakMap<object, string>();
function cachedHeaderLines(h: RequestInit["headers"]): string {
  if (h === undefined || Array.isArray(h)) return headerLines(h);
  let lines = linesOf.get(h);
  if (lines === undefined) {
    lines = headerLines(h);
    // A Headers object is taken as settled once sent (agent/target.ts builds one per spec
    // and never changes it); a plain record (a coordinator call's) is read every time.
    if (h instanceof Headers) linesOf.set(h, lines);
  }
  return lines;
}

function bodyBytes(b: RequestInit["body"]): string | Uint8Array | null {
  if (b === undefined || b === null) return null;
  if (typeof b === "string" || b instanceof Uint8Array) return b;
  if (b instanceof ArrayBuffer) return new Uint8Array(b);
  throw new TypeError("node-http: only string and byte bodies are supported");
}

/** A request's head (request line, Host, the caller's fields, Content-Length, the empty line) and its body's bytes. */
export function requestHead(
  method: string,
  path: string,
  hostHeader: string,
  init: RequestInit,
): { head: string; body: string | Uint8Array | null } {
  const body = bodyBytes(init.body);
  let head = `${method} ${path} HTTP/1.1\r\nHost: ${hostHeader}\r\n${cachedHeaderLines(init.headers)}`;
  if (body !== null) head += `Content-Length: ${typeof body === "string" ? Buffer.byteLength(body) : body.byteLength}\r\n`;
  else if (method !== "GET" && method !== "HEAD") head += "Content-Length: 0\r\n";
  return { head: `${head}\r\n`, body };
}

type ReadResult = Awaited<ReturnType<TargetBodyReader["read"]>>;

/**
 * The socket a response comes in on (node-http.ts's Conn): paused for back-pressure and
 * resumed when a read makes room, destroyed when the body is given up.
 */
export interface Carrier {
  readonly socket: { pause(): unknown; resume(): unknown };
  destroy(error: unknown): void;
}

/** A response's header fields (names lower-cased, repeats joined with ", "), read by name. */
class Fields {
  private readonly map: Map<string, string>;

  constructor(map: Map<string, string>) {
    this.map = map;
  }

  get(name: string): string | null {
    return this.map.get(name.toLowerCase()) ?? null;
  }
}

/** A response body: chunks queue as the socket delivers them and each read() takes one (or waits). */
export class Body implements TargetBodyReader {
  private readonly queue: Uint8Array[] = [];
  private queued = 0;
  ended = false;
  error: unknown = null;
  private waiter: { resolve: (r: ReadResult) => void; reject: (e: unknown) => void } | null = null;
  /** The socket: resumed when a read makes room again, destroyed when the reader gives the body up. */
  private readonly carrier: Carrier;

  constructor(carrier: Carrier) {
    this.carrier = carrier;
  }

  /** Returns false when the queue is past HIGH_WATER (the socket should pause). */
  push(chunk: Uint8Array): boolean {
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      w.resolve({ done: false, value: chunk });
      return true;
    }
    this.queue.push(chunk);
    this.queued += chunk.byteLength;
    return this.queued <= HIGH_WATER;
  }

  end(): void {
    this.ended = true;
    this.settle();
  }

  /** Ends the body with an error: what was queued is dropped, as fetch drops an errored stream's. */
  fail(e: unknown): void {
    if (this.ended) return;
    this.error ??= e;
    this.queue.length = 0;
    this.queued = 0;
    this.settle();
  }

  private settle(): void {
    const w = this.waiter;
    if (!w) return;
    this.waiter = null;
    if (this.error !== null) w.reject(this.error);
    else w.resolve({ done: true });
  }

  read(): Promise<ReadResult> {
    const chunk = this.queue.shift();
    if (chunk !== undefined) {
      const before = this.queued;
      this.queued -= chunk.byteLength;
      if (before > HIGH_WATER && this.queued <= HIGH_WATER) this.carrier.socket.resume();
      return Promise.resolve({ done: false, value: chunk });
    }
    if (this.error !== null) return Promise.reject(this.error);
    if (this.ended) return Promise.resolve({ done: true });
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** Gives up the rest: the socket is destroyed, since a half-read one cannot be reused. */
  cancel(): Promise<void> {
    if (!this.ended) {
      this.error ??= abortError();
      this.carrier.destroy(null);
    }
    this.queue.length = 0;
    this.queued = 0;
    return Promise.resolve();
  }

  /** Everything, once the body ended (what is queued, then what is still to come). */
  async bytes(): Promise<Buffer> {
    const parts: Uint8Array[] = [];
    for (;;) {
      const r = await this.read();
      if (r.done)
        return parts.length === 1 ? Buffer.from(parts[0]!.buffer, parts[0]!.byteOffset, parts[0]!.byteLength) : Buffer.concat(parts);
      parts.push(r.value);
    }
  }
}

export class Response implements TargetResponse {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  private readonly reader: Body;
  private used = false;

  constructor(status: number, fields: Map<string, string>, reader: Body) {
    this.status = status;
    this.headers = new Fields(fields);
    this.reader = reader;
  }

  private take(): Body {
    if (this.used) throw new TypeError("node-http: the body was already read");
    this.used = true;
    return this.reader;
  }

  get body(): { getReader(): TargetBodyReader } {
    return { getReader: () => this.take() };
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const b = await this.take().bytes();
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }

  async text(): Promise<string> {
    return (await this.take().bytes()).toString("utf8");
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
}
