// The Node agent's way to the target (and to its coordinator): HTTP/1.1 written and read
// straight on keep-alive sockets (node:net, node:tls for https), shaped as the agent's
// TargetFetch (agent/target.ts) and the coordinator transport's CoordinatorFetch
// (agent/transport.ts). One Node process is the whole load generator for `edgeperf agent`:
// `fetch` (undici) costs several times node:http's CPU per request, and node:http twice
// this client's (docs/BENCHMARKS.md, "The Node agent"), which is what a load generator
// such as autocannon or wrk does too: one write and one read per exchange.
//
// What agent/target.ts relies on, kept here:
// - the body is read as it arrives: each `read()` hands over what the socket delivered
//   (a chunked body decoded), so a stream's first token is timed when it lands;
// - init.signal aborts the request, before or after the headers (read() then rejects);
// - a failure rejects (a TypeError, as fetch's "fetch failed"; an abort a DOMException
//   named AbortError); the caller turns both into its fixed error classes;
// - redirects are never followed;
// - a body cancelled or left half read destroys its socket, so a keep-alive socket is
//   only reused after a response was read to its end.
//
// HTTP/1.1 as RFC 9112 frames a response: no body for HEAD, 1xx, 204 and 304; chunked
// transfer coding (extensions and trailers skipped); Content-Length; otherwise the body
// runs to the connection's close. Interim 1xx answers are skipped. A socket is kept for
// the next request only when the response allowed it (HTTP/1.1 without `Connection:
// close`, or HTTP/1.0 with `keep-alive`), and not past a `Keep-Alive: timeout=` the server
// announced. A request is sent once: only an idempotent one (GET, HEAD) that found its
// reused socket already closed, before any byte of an answer, goes again, once, on a new
// socket (another kept one may be as stale).

import net from "node:net";
import tls from "node:tls";
import type { TargetBodyReader, TargetResponse } from "../agent/target.ts";

export interface NodeHttpOptions {
  /** Most sockets per target origin: the agent's concurrency (more would never be used). */
  maxSockets?: number;
  /** Extra certificate authorities for https (PEM), e.g. a test server's own. */
  ca?: string;
}

export interface NodeHttpTransport {
  /** agent/target.ts's TargetFetch; its answers also have json(), for agent/transport.ts. */
  fetch: (url: string, init: RequestInit) => Promise<TargetResponse & { json(): Promise<unknown> }>;
  /** Changes the socket cap (e.g. once the run's concurrency is known). */
  setMaxSockets(n: number): void;
  /** Closes every socket, idle or not. */
  close(): void;
}

/** Past this many bytes read but not yet taken by read(), the socket is paused (back-pressure). */
const HIGH_WATER = 1 << 20;
/** The most a response's status line and headers may take. */
const MAX_HEAD = 64 * 1024;
/** The most a chunk-size line (with its extensions) or a trailer line may take. */
const MAX_LINE = 8 * 1024;

const CRLF = Buffer.from("\r\n");
const HEAD_END = Buffer.from("\r\n\r\n");
const abortError = () => new DOMException("This operation was aborted", "AbortError");
const failed = (cause: unknown) => new TypeError("fetch failed", { cause });
const protocolError = (message: string) => failed(new Error(`malformed HTTP response: ${message}`));

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

type ReadResult = Awaited<ReturnType<TargetBodyReader["read"]>>;

/** A response body: chunks queue as the socket delivers them and each read() takes one (or waits). */
class Body implements TargetBodyReader {
  private readonly queue: Uint8Array[] = [];
  private queued = 0;
  ended = false;
  error: unknown = null;
  private waiter: { resolve: (r: ReadResult) => void; reject: (e: unknown) => void } | null = null;
  /** Called when a read makes room again, and when the reader gives the body up. */
  private readonly onDrained: () => void;
  private readonly onCancel: () => void;

  constructor(onDrained: () => void, onCancel: () => void) {
    this.onDrained = onDrained;
    this.onCancel = onCancel;
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
      if (before > HIGH_WATER && this.queued <= HIGH_WATER) this.onDrained();
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
      this.onCancel();
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

class Response implements TargetResponse {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  private readonly reader: Body;
  private used = false;

  constructor(status: number, fields: Map<string, string>, reader: Body) {
    this.status = status;
    this.headers = { get: (name) => fields.get(name.toLowerCase()) ?? null };
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

/** Where a response is in its framing. */
const Phase = { Head: 0, Length: 1, ChunkSize: 2, ChunkData: 3, ChunkEnd: 4, Trailers: 5, UntilClose: 6, Done: 7 } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

interface Origin {
  readonly host: string;
  readonly port: number;
  readonly secure: boolean;
  readonly hostHeader: string;
  readonly idle: Conn[];
  /** Every socket open to it, busy or idle. */
  readonly conns: Set<Conn>;
  readonly waiting: Array<() => void>;
}

/** One request and its response on one socket. */
class Exchange {
  phase: Phase = Phase.Head;
  /** Bytes of the head (or of a chunk-size or trailer line) seen so far, unparsed. */
  private pending: Buffer | null = null;
  private remaining = 0;
  /** The socket may carry another request once this response is done. */
  keepAlive = false;
  /** A response byte arrived: a retry would no longer be safe. */
  answered = false;
  response: Response | null = null;
  body: Body | null = null;
  keepAliveMs = Number.POSITIVE_INFINITY;
  /** Sends the request again on a new socket (only for an idempotent request on a reused socket). */
  retry: (() => void) | null = null;
  /** Called once the exchange is over, whichever way (the abort listener goes). */
  release: () => void = () => {};

  readonly method: string;
  readonly resolve: (r: Response) => void;
  readonly reject: (e: unknown) => void;
  private readonly conn: Conn;

  constructor(method: string, resolve: (r: Response) => void, reject: (e: unknown) => void, conn: Conn) {
    this.method = method;
    this.resolve = resolve;
    this.reject = reject;
    this.conn = conn;
  }

  /** Feeds bytes from the socket; returns what is left past this response's end (null when all was used). */
  feed(data: Buffer): Buffer | null {
    this.answered = true;
    let buf: Buffer | null = data;
    while (buf !== null && buf.length > 0 && this.phase !== Phase.Done) buf = this.step(buf);
    return this.phase === Phase.Done && buf !== null && buf.length > 0 ? buf : null;
  }

  /** A line ending in CRLF (for heads, one ending in an empty line), gathered across reads. */
  private gather(buf: Buffer, end: Buffer, max: number): { line: Buffer; rest: Buffer } | null {
    const all = this.pending === null ? buf : Buffer.concat([this.pending, buf]);
    const from = this.pending === null ? 0 : Math.max(0, this.pending.length - end.length + 1);
    const i = all.indexOf(end, from);
    if (i < 0) {
      if (all.length > max) throw protocolError("a header or chunk line is too long");
      this.pending = all;
      return null;
    }
    this.pending = null;
    return { line: all.subarray(0, i), rest: all.subarray(i + end.length) };
  }

  private step(buf: Buffer): Buffer | null {
    switch (this.phase) {
      case Phase.Head: {
        const got = this.gather(buf, HEAD_END, MAX_HEAD);
        if (got === null) return null;
        this.head(got.line.toString("latin1"));
        return got.rest;
      }
      case Phase.Length: {
        const rest = this.take(buf);
        if (this.remaining === 0) this.finish();
        return rest;
      }
      case Phase.UntilClose:
        this.deliver(buf);
        return null;
      case Phase.ChunkSize: {
        const got = this.gather(buf, CRLF, MAX_LINE);
        if (got === null) return null;
        const text = got.line.toString("latin1");
        const semi = text.indexOf(";");
        const hex = (semi < 0 ? text : text.slice(0, semi)).trim();
        if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) throw protocolError("bad chunk size");
        this.remaining = Number.parseInt(hex, 16);
        this.phase = this.remaining === 0 ? Phase.Trailers : Phase.ChunkData;
        return got.rest;
      }
      case Phase.ChunkData: {
        const rest = this.take(buf);
        if (this.remaining === 0) {
          this.phase = Phase.ChunkEnd;
          this.remaining = 2;
        }
        return rest;
      }
      case Phase.ChunkEnd: {
        // The CRLF after a chunk's data, possibly split across reads.
        const n = Math.min(this.remaining, buf.length);
        for (let i = 0; i < n; i++) if (buf[i] !== CRLF[2 - this.remaining + i]) throw protocolError("chunk not followed by CRLF");
        this.remaining -= n;
        if (this.remaining === 0) this.phase = Phase.ChunkSize;
        return buf.subarray(n);
      }
      case Phase.Trailers: {
        const got = this.gather(buf, CRLF, MAX_LINE);
        if (got === null) return null;
        if (got.line.length === 0) this.finish(); // the empty line ending the trailers
        return got.rest;
      }
      default:
        return buf;
    }
  }

  private head(text: string): void {
    const lines = text.split("\r\n");
    const m = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0] ?? "");
    if (!m) throw protocolError("bad status line");
    const status = Number(m[2]);
    const fields = new Map<string, string>();
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(":");
      if (colon <= 0) throw protocolError("bad header line");
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      const had = fields.get(name);
      fields.set(name, had === undefined ? value : `${had}, ${value}`);
    }
    if (status >= 100 && status < 200) {
      if (status === 101) throw protocolError("a protocol switch was not asked for");
      return; // interim (100 Continue, 103 Early Hints): the real head follows
    }
    const connection = (fields.get("connection") ?? "").toLowerCase();
    this.keepAlive = m[1] === "1" ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
    const hint = /\btimeout=(\d+)/i.exec(fields.get("keep-alive") ?? "");
    // A second's margin: the server may close at its timeout while a request is on its way.
    if (hint) this.keepAliveMs = Math.max(0, Number(hint[1]) * 1000 - 1000);

    // The framing first: a malformed one fails the fetch before any response exists.
    const te = fields.get("transfer-encoding");
    const cl = fields.get("content-length");
    if (this.method === "HEAD" || status === 204 || status === 304) this.phase = Phase.Done;
    else if (te !== undefined) {
      if (!/(?:^|,)\s*chunked\s*$/i.test(te)) {
        this.phase = Phase.UntilClose; // another final coding: only the close ends it
        this.keepAlive = false;
      } else this.phase = Phase.ChunkSize;
      // Both framings: the coding wins, and the connection is not trusted further (RFC 9112 §6.3).
      if (cl !== undefined) this.keepAlive = false;
    } else if (cl !== undefined) {
      const values = new Set(cl.split(",").map((v) => v.trim()));
      const only = values.size === 1 ? [...values][0]! : "";
      if (!/^\d{1,15}$/.test(only)) throw protocolError("bad Content-Length");
      this.remaining = Number(only);
      this.phase = this.remaining === 0 ? Phase.Done : Phase.Length;
    } else {
      this.phase = Phase.UntilClose;
      this.keepAlive = false;
    }
    const conn = this.conn;
    this.body = new Body(
      () => conn.socket.resume(),
      () => conn.destroy(null),
    );
    this.response = new Response(status, fields, this.body);
    this.resolve(this.response);
    if (this.phase === Phase.Done) this.finish();
  }

  /** Hands the reader up to `remaining` bytes of body from `buf`; returns what follows them. */
  private take(buf: Buffer): Buffer {
    const n = Math.min(this.remaining, buf.length);
    this.remaining -= n;
    if (n > 0) this.deliver(n === buf.length ? buf : buf.subarray(0, n));
    return buf.subarray(n);
  }

  private deliver(chunk: Buffer): void {
    if (!this.body!.push(chunk)) this.conn.socket.pause();
  }

  private finish(): void {
    this.phase = Phase.Done;
    this.body!.end();
    this.release();
  }

  /** The socket closed: the end of a body that runs to the close, a failure otherwise. */
  closed(error: unknown): void {
    if (this.phase === Phase.Done) return;
    if (this.phase === Phase.UntilClose && error === null) {
      this.finish();
      return;
    }
    const e = error ?? failed(new Error(this.response === null ? "the connection closed before an answer" : "the response ended early"));
    this.phase = Phase.Done;
    if (this.response === null) this.reject(e);
    else this.body!.fail(e);
    this.release();
  }
}

class Conn {
  current: Exchange | null = null;
  /** Requests this socket carried: past the first, a close before any answer may be a stale keep-alive. */
  uses = 0;
  idleUntil = Number.POSITIVE_INFINITY;
  private gone = false;

  readonly socket: net.Socket;
  private readonly origin: Origin;
  private readonly transport: Transport;

  constructor(socket: net.Socket, origin: Origin, transport: Transport) {
    this.socket = socket;
    this.origin = origin;
    this.transport = transport;
    socket.setNoDelay(true);
    socket.on("data", (d: Buffer) => this.data(d));
    socket.on("error", (e) => this.destroy(failed(e)));
    socket.on("close", () => this.destroy(null));
    origin.conns.add(this);
  }

  private data(d: Buffer): void {
    const x = this.current;
    if (x === null) {
      this.destroy(null); // bytes nobody asked for: the socket cannot be trusted with another request
      return;
    }
    let rest: Buffer | null;
    try {
      rest = x.feed(d);
    } catch (e) {
      this.destroy(e);
      return;
    }
    if (x.phase !== Phase.Done) return;
    // Read to its end (its bytes may still be queued for the reader). More bytes than the
    // response, or a response that closes the connection: the socket is not reused.
    this.current = null;
    if (rest !== null || !x.keepAlive || this.gone || this.transport.closed) this.destroy(null);
    else this.idle(x);
  }

  private idle(x: Exchange): void {
    this.idleUntil = Number.isFinite(x.keepAliveMs) ? performance.now() + x.keepAliveMs : Number.POSITIVE_INFINITY;
    this.socket.resume();
    this.socket.unref(); // an idle socket keeps no process alive
    this.origin.idle.push(this);
    this.transport.next(this.origin);
  }

  destroy(error: unknown): void {
    if (this.gone) return;
    this.gone = true;
    const i = this.origin.idle.indexOf(this);
    if (i >= 0) this.origin.idle.splice(i, 1);
    this.origin.conns.delete(this);
    this.socket.destroy();
    const x = this.current;
    this.current = null;
    if (x !== null) {
      // A reused socket the server had closed (or reset) before this request reached it.
      const stale = !x.answered && x.retry !== null && !(error instanceof DOMException);
      if (stale) x.retry!();
      else x.closed(error);
    }
    this.transport.next(this.origin);
  }

  send(x: Exchange, head: string, body: string | Uint8Array | null): void {
    this.current = x;
    this.uses++;
    this.socket.ref();
    if (body === null) this.socket.write(head, "latin1");
    else {
      this.socket.cork();
      this.socket.write(head, "latin1");
      this.socket.write(body);
      this.socket.uncork();
    }
  }
}

class Transport {
  closed = false;
  maxSockets: number;
  private readonly origins = new Map<string, Origin>();
  private readonly parsed = new Map<string, { origin: Origin; path: string }>();

  private readonly opts: NodeHttpOptions;

  constructor(opts: NodeHttpOptions) {
    this.opts = opts;
    this.maxSockets = opts.maxSockets ?? Number.POSITIVE_INFINITY;
  }

  private target(url: string): { origin: Origin; path: string } {
    let t = this.parsed.get(url);
    if (t !== undefined) return t;
    const u = new URL(url);
    if (u.protocol !== "http:" && u.protocol !== "https:") throw failed(new Error(`unsupported protocol ${u.protocol}`));
    const secure = u.protocol === "https:";
    const port = u.port === "" ? (secure ? 443 : 80) : Number(u.port);
    const key = `${u.protocol}//${u.host}`;
    let origin = this.origins.get(key);
    if (origin === undefined) {
      origin = {
        host: u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname,
        port,
        secure,
        hostHeader: u.host,
        idle: [],
        conns: new Set(),
        waiting: [],
      };
      this.origins.set(key, origin);
    }
    t = { origin, path: u.pathname + u.search };
    if (this.parsed.size > 64) this.parsed.clear();
    this.parsed.set(url, t);
    return t;
  }

  /** A socket for the next waiting request, if one is idle or may be opened. */
  next(origin: Origin): void {
    while (origin.waiting.length > 0 && !this.closed) {
      if (origin.idle.length === 0 && origin.conns.size >= this.maxSockets) return;
      origin.waiting.shift()!();
    }
  }

  /** An idle socket (the most recently used first) or a new one; null when at the cap. */
  private socketFor(origin: Origin, fresh = false): Conn | null {
    const now = performance.now();
    // A retry wants a new socket: another kept one may be just as stale.
    if (fresh && origin.conns.size < this.maxSockets) return this.connect(origin);
    for (let c = origin.idle.pop(); c !== undefined; c = origin.idle.pop()) {
      if (now < c.idleUntil && !c.socket.destroyed) return c;
      c.destroy(null);
    }
    if (origin.conns.size >= this.maxSockets) return null;
    return this.connect(origin);
  }

  private connect(origin: Origin): Conn {
    const socket = origin.secure
      ? tls.connect({
          host: origin.host,
          port: origin.port,
          servername: net.isIP(origin.host) ? undefined : origin.host,
          ALPNProtocols: ["http/1.1"],
          ca: this.opts.ca,
        })
      : net.connect({ host: origin.host, port: origin.port });
    return new Conn(socket, origin, this);
  }

  fetch(url: string, init: RequestInit): Promise<Response> {
    return new Promise<Response>((resolve, reject) => {
      const signal = init.signal;
      if (signal?.aborted) return reject(abortError());
      if (this.closed) return reject(failed(new Error("the transport is closed")));
      let head: string;
      let body: string | Uint8Array | null;
      let origin: Origin;
      const method = (init.method ?? "GET").toUpperCase();
      try {
        const t = this.target(url);
        origin = t.origin;
        body = bodyBytes(init.body);
        head = `${method} ${t.path} HTTP/1.1\r\nHost: ${origin.hostHeader}\r\n${cachedHeaderLines(init.headers)}`;
        if (body !== null) head += `Content-Length: ${typeof body === "string" ? Buffer.byteLength(body) : body.byteLength}\r\n`;
        else if (method !== "GET" && method !== "HEAD") head += "Content-Length: 0\r\n";
        head += "\r\n";
      } catch (e) {
        return reject(e instanceof TypeError ? e : failed(e));
      }

      let conn: Conn | null = null;
      let settled = false;
      let x: Exchange | null = null;
      const onAbort = () => {
        if (!settled) {
          settled = true;
          const i = origin.waiting.indexOf(start);
          if (i >= 0) origin.waiting.splice(i, 1);
          reject(abortError());
        }
        x?.body?.fail(abortError());
        if (conn !== null && conn.current === x) conn.destroy(abortError());
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      /** Fails the fetch before it has an answer (an abort is reported as one). */
      const giveUp = (e: unknown) => {
        settled = true;
        signal?.removeEventListener("abort", onAbort);
        reject(signal?.aborted ? abortError() : e);
      };
      let retried = false;
      const start = () => {
        if (settled) return;
        if (this.closed) return giveUp(failed(new Error("the transport was closed")));
        let c: Conn | null;
        try {
          c = this.socketFor(origin, retried);
        } catch (e) {
          return giveUp(failed(e)); // a socket that cannot even be set up (e.g. a malformed `ca`)
        }
        if (c === null) {
          origin.waiting.push(start);
          return;
        }
        conn = c;
        x = new Exchange(
          method,
          (r) => {
            settled = true;
            resolve(r);
          },
          giveUp,
          c,
        );
        // Once, on a new socket: a second stale socket fails the request.
        x.retry =
          c.uses > 0 && !retried && (method === "GET" || method === "HEAD")
            ? () => {
                retried = true;
                start();
              }
            : null;
        // The abort listener lives until the body is done: an abort mid-body ends it too.
        if (signal) x.release = () => signal.removeEventListener("abort", onAbort);
        c.send(x, head, body);
      };
      start();
    });
  }

  setMaxSockets(n: number): void {
    this.maxSockets = Math.max(1, n);
    // A higher cap may let queued requests open sockets now.
    for (const origin of this.origins.values()) this.next(origin);
  }

  close(): void {
    this.closed = true;
    for (const origin of this.origins.values()) {
      for (const waiter of origin.waiting.splice(0)) waiter();
      for (const c of [...origin.conns]) c.destroy(failed(new Error("the transport was closed")));
    }
  }
}

export function nodeHttpTransport(opts: NodeHttpOptions = {}): NodeHttpTransport {
  const t = new Transport(opts);
  return {
    fetch: (url, init) => t.fetch(url, init),
    setMaxSockets(n: number): void {
      t.setMaxSockets(n);
    },
    close: () => t.close(),
  };
}
