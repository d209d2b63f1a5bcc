// The Node agent's way to the target (and to its coordinator): node:http (and
// node:https) over keep-alive sockets, shaped as the agent's TargetFetch (agent/target.ts)
// and the coordinator transport's CoordinatorFetch (agent/transport.ts). `fetch` in Node (undici)
// costs several times more CPU per request than node:http, and one Node process is the
// whole load generator for `edgeperf agent` (docs/BENCHMARKS.md, "The Node agent").
//
// What agent/target.ts relies on, kept here:
// - the body is read as it arrives: each `read()` hands over what the socket delivered,
//   so a stream's first token is timed when it lands, not when the response ends;
// - init.signal aborts the request, before or after the headers (read() then rejects);
// - a failure rejects (a TypeError, as fetch's "fetch failed"; an abort a DOMException
//   named AbortError); the caller turns both into its fixed error classes;
// - redirects are never followed (node:http does not follow them);
// - a body cancelled or left half read destroys its socket, so a keep-alive socket is
//   only reused after a response was read to its end.

import http from "node:http";
import type { IncomingMessage } from "node:http";
import https from "node:https";
import type { TargetBodyReader, TargetResponse } from "../agent/target.ts";

export interface NodeHttpOptions {
  /** Most sockets per target origin: the agent's concurrency (more would never be used). */
  maxSockets?: number;
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

const abortError = () => new DOMException("This operation was aborted", "AbortError");
const failed = (cause: unknown) => new TypeError("fetch failed", { cause });

/** node:http wants a plain header object; a Headers (agent/target.ts builds one) or a record both come in. */
function headerObject(h: RequestInit["headers"]): Record<string, string> {
  const out: Record<string, string> = {};
  if (h === undefined) return out;
  if (h instanceof Headers || Array.isArray(h)) for (const [k, v] of h) out[k] = v;
  else Object.assign(out, h);
  return out;
}

function bodyBytes(b: RequestInit["body"]): string | Uint8Array | null {
  if (b === undefined || b === null) return null;
  if (typeof b === "string" || b instanceof Uint8Array) return b;
  if (b instanceof ArrayBuffer) return new Uint8Array(b);
  throw new TypeError("node-http: only string and byte bodies are supported");
}

/**
 * A reader over an IncomingMessage: chunks queue as the socket delivers them and each
 * read() takes one (or waits for the next). The queue is paused past HIGH_WATER.
 */
class BodyReader implements TargetBodyReader {
  private readonly res: IncomingMessage;
  private readonly queue: Uint8Array[] = [];
  private queued = 0;
  private ended = false;
  private error: unknown = null;
  private waiter: { resolve: (r: Awaited<ReturnType<TargetBodyReader["read"]>>) => void; reject: (e: unknown) => void } | null = null;

  constructor(res: IncomingMessage, signal: AbortSignal | null | undefined) {
    this.res = res;
    res.on("data", (chunk: Buffer) => {
      const w = this.waiter;
      if (w) {
        this.waiter = null;
        w.resolve({ done: false, value: chunk });
        return;
      }
      this.queue.push(chunk);
      this.queued += chunk.byteLength;
      if (this.queued > HIGH_WATER) res.pause();
    });
    res.on("end", () => {
      this.ended = true;
      this.settle();
    });
    // A response cut short (the server closed, or we destroyed it on abort) closes
    // without "end"; an abort is reported as one, anything else as a failed fetch.
    res.on("close", () => {
      if (this.ended) return;
      this.error ??= signal?.aborted ? abortError() : failed(new Error("the response ended early"));
      this.settle();
    });
    res.on("error", (e) => {
      this.error ??= signal?.aborted ? abortError() : failed(e);
      this.settle();
    });
  }

  private settle(): void {
    const w = this.waiter;
    if (!w) return;
    this.waiter = null;
    if (this.error !== null) w.reject(this.error);
    else w.resolve({ done: true });
  }

  read(): Promise<Awaited<ReturnType<TargetBodyReader["read"]>>> {
    const chunk = this.queue.shift();
    if (chunk !== undefined) {
      this.queued -= chunk.byteLength;
      if (this.queued <= HIGH_WATER && this.res.isPaused()) this.res.resume();
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
      this.res.destroy();
    }
    this.queue.length = 0;
    this.queued = 0;
    return Promise.resolve();
  }

  async text(): Promise<string> {
    const parts: Uint8Array[] = [];
    for (;;) {
      const r = await this.read();
      if (r.done) return Buffer.concat(parts).toString("utf8");
      parts.push(r.value);
    }
  }
}

class NodeResponse implements TargetResponse {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  private readonly reader: BodyReader;
  private used = false;

  constructor(res: IncomingMessage, reader: BodyReader) {
    this.status = res.statusCode ?? 0;
    const raw = res.headers;
    this.headers = {
      get(name: string): string | null {
        const v = raw[name.toLowerCase()];
        return v === undefined ? null : Array.isArray(v) ? v.join(", ") : v;
      },
    };
    this.reader = reader;
  }

  get body(): { getReader(): TargetBodyReader } {
    return {
      getReader: () => {
        if (this.used) throw new TypeError("node-http: the body was already read");
        this.used = true;
        return this.reader;
      },
    };
  }

  text(): Promise<string> {
    try {
      this.body.getReader();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.reader.text();
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
}

export function nodeHttpTransport(opts: NodeHttpOptions = {}): NodeHttpTransport {
  const agentOptions = { keepAlive: true, maxSockets: opts.maxSockets ?? Number.POSITIVE_INFINITY, scheduling: "lifo" as const };
  const agents = { "http:": new http.Agent(agentOptions), "https:": new https.Agent(agentOptions) };
  // The agent sends to one URL; parsing it once per request would be most of the cost.
  const parsed = new Map<string, URL>();

  const fetch: NodeHttpTransport["fetch"] = (url, init) =>
    new Promise<NodeResponse>((resolve, reject) => {
      const signal = init.signal;
      if (signal?.aborted) return reject(abortError());
      let u = parsed.get(url);
      if (u === undefined) {
        u = new URL(url);
        if (u.protocol !== "http:" && u.protocol !== "https:") return reject(failed(new Error("unsupported protocol")));
        if (parsed.size > 64) parsed.clear();
        parsed.set(url, u);
      }
      const body = bodyBytes(init.body);
      const headers = headerObject(init.headers);
      if (body !== null) headers["content-length"] = String(Buffer.byteLength(body));
      const mod = u.protocol === "https:" ? https : http;
      const req = mod.request({
        protocol: u.protocol,
        hostname: u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method: init.method ?? "GET",
        headers,
        agent: agents[u.protocol as "http:" | "https:"],
      });
      let answered = false;
      const onAbort = () => req.destroy(abortError());
      signal?.addEventListener("abort", onAbort, { once: true });
      req.on("error", (e) => {
        signal?.removeEventListener("abort", onAbort);
        if (!answered) reject(signal?.aborted ? abortError() : failed(e));
      });
      req.on("response", (res) => {
        answered = true;
        const reader = new BodyReader(res, signal);
        // The listener lives until the body is done: an abort mid-body destroys the response.
        res.on("close", () => signal?.removeEventListener("abort", onAbort));
        resolve(new NodeResponse(res, reader));
      });
      req.end(body ?? undefined);
    });

  return {
    fetch,
    setMaxSockets(n: number): void {
      for (const a of Object.values(agents)) a.maxSockets = Math.max(1, n);
    },
    close(): void {
      for (const a of Object.values(agents)) a.destroy();
    },
  };
}
