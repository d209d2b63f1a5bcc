// How the Node agent's HTTP/1.1 client (node-http.ts) frames one response on its socket,
// as RFC 9112 does: the head (interim 1xx skipped), then no body for HEAD, 1xx, 204 and
// 304; chunked transfer coding (extensions and trailers skipped); Content-Length;
// otherwise the body runs to the connection's close. Whether the socket may carry the
// next request is read from the head too: HTTP/1.1 without `Connection: close`, or
// HTTP/1.0 with `keep-alive`, and not past a `Keep-Alive: timeout=` the server announced.

import { Body, Response, failed, protocolError } from "./node-http-message.ts";
import type { Carrier } from "./node-http-message.ts";

/** The most a response's status line and headers may take. */
const MAX_HEAD = 64 * 1024;
/** The most a chunk-size line (with its extensions) or a trailer line may take. */
const MAX_LINE = 8 * 1024;

const CRLF = Buffer.from("\r\n");
const HEAD_END = Buffer.from("\r\n\r\n");

/** Where a response is in its framing. */
export const Phase = { Head: 0, Length: 1, ChunkSize: 2, ChunkData: 3, ChunkEnd: 4, Trailers: 5, UntilClose: 6, Done: 7 } as const;
export type Phase = (typeof Phase)[keyof typeof Phase];

/** The fetch an exchange answers (node-http.ts): methods, not callbacks, so nothing is made per request. */
export interface ExchangeOwner {
  /** The response's head arrived: the fetch resolves with it. */
  answered(r: Response): void;
  /** No response: the fetch fails with `e`. */
  giveUp(e: unknown): void;
  /** The exchange is over, whichever way (the abort listener goes). */
  release(): void;
  /** Sends the request again on a new socket. */
  retry(): void;
}

/** One request and its response on one socket. */
export class Exchange {
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
  /** Whether a socket found closed before any answer may send the request again (an idempotent request on a reused socket). */
  retryable = false;

  readonly method: string;
  readonly owner: ExchangeOwner;
  private readonly conn: Carrier;

  constructor(method: string, owner: ExchangeOwner, conn: Carrier) {
    this.method = method;
    this.owner = owner;
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
    this.body = new Body(this.conn);
    this.response = new Response(status, fields, this.body);
    this.owner.answered(this.response);
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
    this.owner.release();
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
    if (this.response === null) this.owner.giveUp(e);
    else this.body!.fail(e);
    this.owner.release();
  }
}
