// The Node agent's way to the target (and to its coordinator): HTTP/1.1 written and read
// straight on keep-alive sockets (node:net, node:tls for https), shaped as the agent's
// TargetFetch (agent/target.ts) and the coordinator transport's CoordinatorFetch
// (agent/transport.ts). One Node process is the whole load generator for `edgeperf agent`:
// `fetch` (undici) costs several times node:http's CPU per request, and node:http twice
// this client's (docs/BENCHMARKS.md, "The Node agent"), which is what a load generator
// such as autocannon or wrk does too: one write and one read per exchange.
//
// What agent/target.ts relies on, kept by this file and the two beside it:
// - the body is read as it arrives: each `read()` hands over what the socket delivered
//   (a chunked body decoded), so a stream's first token is timed when it lands;
// - init.signal aborts the request, before or after the headers (read() then rejects);
// - a failure rejects (a TypeError, as fetch's "fetch failed"; an abort a DOMException
//   named AbortError); the caller turns both into its fixed error classes;
// - redirects are never followed;
// - a body cancelled or left half read destroys its socket, so a keep-alive socket is
//   only reused after a response was read to its end.
//
// How a response is framed (RFC 9112) is node-http-exchange.ts; the request's head and
// the response's body are node-http-message.ts. A socket is kept for the next request
// only when the response allowed it, and not past a `Keep-Alive: timeout=` the server
// announced. A request is sent once: only an idempotent one (GET, HEAD) that found its
// reused socket already closed, before any byte of an answer, goes again, once, on a new
// socket (another kept one may be as stale).

import net from "node:net";
import tls from "node:tls";
import { Exchange, Phase } from "./node-http-exchange.ts";
import type { ExchangeOwner } from "./node-http-exchange.ts";
import type { Response } from "./node-http-message.ts";
import { abortError, failed, requestHead } from "./node-http-message.ts";
import type { TargetResponse } from "../agent/target.ts";

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

interface Origin {
  readonly host: string;
  readonly port: number;
  readonly secure: boolean;
  readonly hostHeader: string;
  readonly idle: Conn[];
  /** Every socket open to it, busy or idle. */
  readonly conns: Set<Conn>;
  /** Fetches waiting for a socket (at the cap), in order. */
  readonly waiting: Pending[];
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
      const stale = !x.answered && x.retryable && !(error instanceof DOMException);
      if (stale) x.owner.retry();
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
      origin.waiting.shift()!.start();
    }
  }

  /** An idle socket (the most recently used first) or a new one; null when at the cap. */
  socketFor(origin: Origin, fresh = false): Conn | null {
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
      const signal = init.signal ?? null;
      if (signal?.aborted) return reject(abortError());
      if (this.closed) return reject(failed(new Error("the transport is closed")));
      const method = (init.method ?? "GET").toUpperCase();
      let p: Pending;
      try {
        const t = this.target(url);
        const { head, body } = requestHead(method, t.path, t.origin.hostHeader, init);
        p = new Pending(this, t.origin, method, head, body, signal, resolve, reject);
      } catch (e) {
        return reject(e instanceof TypeError ? e : failed(e));
      }
      signal?.addEventListener("abort", p, { once: true });
      p.start();
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
      for (const waiter of origin.waiting.splice(0)) waiter.start();
      for (const c of [...origin.conns]) c.destroy(failed(new Error("the transport was closed")));
    }
  }
}

/**
 * One fetch, from its start to its answer: which socket carries it (a stale kept one may
 * hand it to a new one, once), and its abort. It is the abort listener (`handleEvent`)
 * and the owner its exchanges answer to, so no closure is made per request: the closures
 * this replaced (the abort listener, the start, the give-up, the retry, the release, and
 * the body's and headers' own) cost the agent about a sixth of its CPU a request
 * (docs/BENCHMARKS.md, "Round of 2026-11-30, eighth").
 */
class Pending implements ExchangeOwner {
  private settled = false;
  private retried = false;
  private conn: Conn | null = null;
  private x: Exchange | null = null;

  private readonly transport: Transport;
  private readonly origin: Origin;
  private readonly method: string;
  private readonly head: string;
  private readonly body: string | Uint8Array | null;
  private readonly signal: AbortSignal | null;
  private readonly resolve: (r: Response) => void;
  private readonly reject: (e: unknown) => void;

  constructor(
    transport: Transport,
    origin: Origin,
    method: string,
    head: string,
    body: string | Uint8Array | null,
    signal: AbortSignal | null,
    resolve: (r: Response) => void,
    reject: (e: unknown) => void,
  ) {
    this.transport = transport;
    this.origin = origin;
    this.method = method;
    this.head = head;
    this.body = body;
    this.signal = signal;
    this.resolve = resolve;
    this.reject = reject;
  }

  /** Sends the request on a socket, or waits in the origin's queue for one. */
  start(): void {
    if (this.settled) return;
    if (this.transport.closed) return this.giveUp(failed(new Error("the transport was closed")));
    let c: Conn | null;
    try {
      c = this.transport.socketFor(this.origin, this.retried);
    } catch (e) {
      return this.giveUp(failed(e)); // a socket that cannot even be set up (e.g. a malformed `ca`)
    }
    if (c === null) {
      this.origin.waiting.push(this);
      return;
    }
    this.conn = c;
    const x = new Exchange(this.method, this, c);
    // Once, on a new socket: a second stale socket fails the request.
    x.retryable = c.uses > 0 && !this.retried && (this.method === "GET" || this.method === "HEAD");
    this.x = x;
    c.send(x, this.head, this.body);
  }

  retry(): void {
    this.retried = true;
    this.start();
  }

  answered(r: Response): void {
    this.settled = true;
    this.resolve(r);
  }

  /** Fails the fetch before it has an answer (an abort is reported as one). */
  giveUp(e: unknown): void {
    this.settled = true;
    this.signal?.removeEventListener("abort", this);
    this.reject(this.signal?.aborted ? abortError() : e);
  }

  /** The abort listener lives until the body is done: an abort mid-body ends it too. */
  release(): void {
    this.signal?.removeEventListener("abort", this);
  }

  /** The signal aborted: before an answer the fetch fails; after, the body does, and the socket goes. */
  handleEvent(): void {
    if (!this.settled) {
      this.settled = true;
      const i = this.origin.waiting.indexOf(this);
      if (i >= 0) this.origin.waiting.splice(i, 1);
      this.reject(abortError());
    }
    const x = this.x;
    x?.body?.fail(abortError());
    if (this.conn !== null && this.conn.current === x) this.conn.destroy(abortError());
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
