// The Node agent's HTTP/1.1 client (cli/node-http.ts) on the wire: a raw TCP server written
// here sends exactly the bytes each case needs (split anywhere, framed every way RFC 9112
// allows) and records what arrived on which connection, so what the client did is seen
// from outside it. TLS against a local https server with a test-only certificate
// (test/node/fixtures, made for this test, trusted through the transport's `ca` option).
import { readFileSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import { createServer } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CoordinatorUnavailable, httpTransport } from "../../agent/transport.ts";
import { nodeHttpTransport } from "../../cli/node-http.ts";
import { closeLocal, listenLocal } from "./local-server.ts";

/** One request as the server received it: its connection's number and its head. */
interface Arrival {
  conn: number;
  head: string;
  body: string;
}

/** What the server does with a request: the raw pieces to write (with a pause between), and whether to close after. */
type Script = (a: Arrival) => { pieces: Array<string | Buffer>; close?: boolean; gapMs?: number } | "hang" | "close";

/** The plain answer most cases get: 200, two bytes, the socket kept. */
const OK = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
const answerOk: Script = () => ({ pieces: [OK] });

let server: Server;
let base = "";
let conns = 0;
const sockets = new Set<Socket>();
const arrivals: Arrival[] = [];
let script: Script = answerOk;

/** Splits the request stream into requests (heads plus Content-Length bodies) and answers each by the script. */
function serve(socket: Socket): void {
  const conn = ++conns;
  sockets.add(socket);
  socket.on("close", () => sockets.delete(socket));
  socket.on("error", () => {});
  let buf = Buffer.alloc(0);
  let chain = Promise.resolve();
  socket.on("data", (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = buf.subarray(0, end).toString("latin1");
      const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length < end + 4 + len) return;
      const body = buf.subarray(end + 4, end + 4 + len).toString("utf8");
      buf = buf.subarray(end + 4 + len);
      const a = { conn, head, body };
      arrivals.push(a);
      const what = script(a);
      chain = chain.then(async () => {
        if (what === "hang") return;
        if (what === "close") {
          socket.destroy();
          return;
        }
        for (const p of what.pieces) {
          socket.write(p);
          await new Promise((r) => setTimeout(r, what.gapMs ?? 0));
        }
        if (what.close) socket.end();
      });
    }
  });
}

beforeAll(async () => {
  server = createServer(serve);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
});

afterEach(() => {
  arrivals.length = 0;
  script = answerOk;
});

const text = async (p: Promise<{ text(): Promise<string> }>) => (await p).text();
const connsOf = () => new Set(arrivals.map((a) => a.conn)).size;

describe("the Node agent's HTTP/1.1 client on the wire", () => {
  it("writes one request head: method, path and query, Host, the caller's headers (not the ones it manages), the body's length", async () => {
    const t = nodeHttpTransport();
    await text(
      t.fetch(`${base}/a/b?x=1&y=2`, {
        method: "POST",
        headers: { "x-a": "1", host: "evil.example", "content-length": "999" },
        body: "héllo",
      }),
    );
    const a = arrivals[0]!;
    const lines = a.head.split("\r\n");
    expect(lines[0]).toBe("POST /a/b?x=1&y=2 HTTP/1.1");
    expect(lines).toContain(`Host: ${base.slice("http://".length)}`);
    expect(lines).toContain("x-a: 1");
    expect(lines).toContain(`Content-Length: ${Buffer.byteLength("héllo")}`);
    expect(a.head).not.toMatch(/evil|999/);
    expect(a.body).toBe("héllo");
    t.close();
  });

  it("refuses a header value with a line break, naming the header, and sends nothing", async () => {
    const t = nodeHttpTransport();
    await expect(t.fetch(`${base}/`, { method: "GET", headers: { "x-bad": "a\r\nInjected: 1" } })).rejects.toThrow(/x-bad/);
    expect(arrivals).toHaveLength(0);
    t.close();
  });

  it("decodes a chunked body delivered a byte at a time (extensions, trailers), then reuses the socket", async () => {
    const wire =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=v\r\nhello\r\n1\r\n \r\nB\r\nworld, done\r\n0\r\nX-Trailer: t\r\n\r\n";
    script = () => ({ pieces: [...wire].map((c) => Buffer.from(c, "latin1")) });
    const t = nodeHttpTransport();
    expect(await text(t.fetch(`${base}/c1`, { method: "GET" }))).toBe("hello world, done");
    script = () => ({ pieces: ["HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"] });
    expect(await text(t.fetch(`${base}/c2`, { method: "GET" }))).toBe("abc");
    expect(connsOf()).toBe(1);
    t.close();
  });

  it("hands a streamed chunk to the reader as it arrives, before the rest of the body", async () => {
    let release = () => {};
    const rest = new Promise<void>((r) => (release = r));
    const t = nodeHttpTransport();
    // The first chunk now; the rest only after the reader has seen the first.
    script = () => ({ pieces: ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nfirst \r\n"] });
    const res = await t.fetch(`${base}/s`, { method: "GET" });
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(Buffer.from(first.value!).toString()).toBe("first ");
    const sock = [...sockets][0]!;
    void rest.then(() => sock.write("4\r\nlast\r\n0\r\n\r\n"));
    release();
    let tail = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) tail += Buffer.from(r.value).toString();
    expect(tail).toBe("last");
    t.close();
  });

  it("reads a body without a length to the connection's close, and does not reuse that socket", async () => {
    script = () => ({ pieces: ["HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, ", "part two"], gapMs: 10, close: true });
    const t = nodeHttpTransport();
    expect(await text(t.fetch(`${base}/u`, { method: "GET" }))).toBe("part one, part two");
    script = answerOk;
    expect(await text(t.fetch(`${base}/u2`, { method: "GET" }))).toBe("ok");
    expect(connsOf()).toBe(2);
    t.close();
  });

  it("reads no body for HEAD, 204 and 304 (whatever their Content-Length) and keeps the socket", async () => {
    const t = nodeHttpTransport();
    script = () => ({ pieces: ["HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"] });
    const head = await t.fetch(`${base}/h`, { method: "HEAD" });
    expect(head.headers.get("content-length")).toBe("1000");
    expect(await head.text()).toBe("");
    for (const status of ["204 No Content", "304 Not Modified"]) {
      script = () => ({ pieces: [`HTTP/1.1 ${status}\r\nContent-Length: 5\r\n\r\n`] });
      const res = await t.fetch(`${base}/n`, { method: "GET" });
      expect(res.status).toBe(Number(status.slice(0, 3)));
      expect(await res.text()).toBe("");
    }
    script = answerOk;
    expect(await text(t.fetch(`${base}/after`, { method: "GET" }))).toBe("ok");
    expect(connsOf()).toBe(1);
    t.close();
  });

  it("skips interim 1xx answers and reads the final one", async () => {
    script = () => ({
      pieces: ["HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n", "HTTP/1.1 201 Created\r\nContent-Length: 3\r\nX-Final: yes\r\n\r\nnew"],
      gapMs: 5,
    });
    const t = nodeHttpTransport();
    const res = await t.fetch(`${base}/e`, { method: "GET" });
    expect(res.status).toBe(201);
    expect(res.headers.get("x-final")).toBe("yes");
    expect(res.headers.get("link")).toBeNull();
    expect(await res.text()).toBe("new");
    t.close();
  });

  it("opens a new connection after `Connection: close`, after HTTP/1.0 without keep-alive, and within a second of a Keep-Alive timeout", async () => {
    const t = nodeHttpTransport();
    const answers = [
      "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na",
      "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb",
      "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 1\r\n\r\nc",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nd",
    ];
    script = () => ({ pieces: [answers[arrivals.length - 1]!] });
    let got = "";
    for (let i = 0; i < answers.length; i++) got += await text(t.fetch(`${base}/k${i}`, { method: "GET" }));
    expect(got).toBe("abcd");
    expect(connsOf()).toBe(4);
    t.close();
  });

  it("sends a GET again on a new socket when its reused socket was closed before any answer, and a POST never", async () => {
    const t = nodeHttpTransport();
    expect(await text(t.fetch(`${base}/warm`, { method: "GET" }))).toBe("ok");
    // The kept socket's next request is dropped unanswered, as a server closing an idle socket would.
    script = (a) => (a.conn === arrivals[0]!.conn ? "close" : { pieces: ["HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nagain"] });
    expect(await text(t.fetch(`${base}/get`, { method: "GET" }))).toBe("again");
    expect(arrivals.filter((a) => a.head.startsWith("GET /get")).map((a) => a.conn)).toHaveLength(2);

    arrivals.length = 0;
    script = answerOk;
    expect(await text(t.fetch(`${base}/warm2`, { method: "GET" }))).toBe("ok");
    script = () => "close";
    await expect(t.fetch(`${base}/post`, { method: "POST", body: "{}" })).rejects.toBeInstanceOf(TypeError);
    expect(arrivals.filter((a) => a.head.startsWith("POST /post"))).toHaveLength(1);
    t.close();
  });

  it("sends a GET at most twice, the second time on a new socket, however many kept sockets are stale", async () => {
    const t = nodeHttpTransport({ maxSockets: 3 });
    // Three kept sockets, then a server that drops any connection a GET /x arrives on.
    script = () => ({ pieces: [OK], gapMs: 20 });
    await Promise.all([1, 2, 3].map((i) => text(t.fetch(`${base}/warm${i}`, { method: "GET" }))));
    const warmConns = new Set(arrivals.map((a) => a.conn));
    expect(warmConns.size).toBe(3);
    script = (a) => (a.head.startsWith("GET /x ") ? "close" : { pieces: [OK] });
    await expect(t.fetch(`${base}/x`, { method: "GET" })).rejects.toBeInstanceOf(TypeError);
    const sent = arrivals.filter((a) => a.head.startsWith("GET /x "));
    expect(sent).toHaveLength(2);
    expect(warmConns.has(sent[0]!.conn)).toBe(true);
    expect(warmConns.has(sent[1]!.conn)).toBe(false);
    t.close();
  });

  it("drops what a body had queued once it is aborted: the next read rejects", async () => {
    const t = nodeHttpTransport();
    script = () => ({ pieces: ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n", "3\r\ntwo\r\n"], gapMs: 5 });
    const ac = new AbortController();
    const res = await t.fetch(`${base}/q`, { method: "GET", signal: ac.signal });
    await new Promise((r) => setTimeout(r, 40)); // both chunks queued, none read
    ac.abort();
    await expect(res.body!.getReader().read()).rejects.toMatchObject({ name: "AbortError" });
    t.close();
  });

  it("lets queued requests go as soon as setMaxSockets raises the cap", async () => {
    const t = nodeHttpTransport({ maxSockets: 1 });
    script = (a) => (a.head.startsWith("GET /hold ") ? "hang" : { pieces: [OK] });
    void t.fetch(`${base}/hold`, { method: "GET" }).catch(() => {});
    const queued = t.fetch(`${base}/next`, { method: "GET" });
    await new Promise((r) => setTimeout(r, 20));
    expect(arrivals.map((a) => a.head.split(" ")[1])).toEqual(["/hold"]);
    t.setMaxSockets(2);
    expect(await text(queued)).toBe("ok");
    t.close();
  });

  it("drops an idle socket the server closed, without failing the next request", async () => {
    const t = nodeHttpTransport();
    expect(await text(t.fetch(`${base}/i1`, { method: "GET" }))).toBe("ok");
    for (const s of sockets) s.destroy();
    await new Promise((r) => setTimeout(r, 20));
    expect(await text(t.fetch(`${base}/i2`, { method: "POST", body: "x" }))).toBe("ok");
    expect(connsOf()).toBe(2);
    t.close();
  });

  it("fails a malformed answer as a failed fetch, and does not reuse its socket", async () => {
    const t = nodeHttpTransport();
    for (const bad of [
      "HTP/1.1 200 OK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ]) {
      script = () => ({ pieces: [bad] });
      const p = t.fetch(`${base}/bad`, { method: "GET" }).then((r) => r.text());
      await expect(p).rejects.toMatchObject({ name: "TypeError", cause: { message: expect.stringMatching(/malformed HTTP response/) } });
    }
    script = answerOk;
    expect(await text(t.fetch(`${base}/good`, { method: "GET" }))).toBe("ok");
    expect(connsOf()).toBe(4);
    t.close();
  });

  it("does not reuse a socket that sent more than its response", async () => {
    const t = nodeHttpTransport();
    script = () => ({ pieces: ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"] });
    expect(await text(t.fetch(`${base}/x1`, { method: "GET" }))).toBe("ok");
    script = answerOk;
    expect(await text(t.fetch(`${base}/x2`, { method: "GET" }))).toBe("ok");
    expect(connsOf()).toBe(2);
    t.close();
  });

  it("reads a 3 MiB Content-Length body intact, chunk by chunk", async () => {
    const big = Buffer.alloc(3 << 20);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    script = () => ({ pieces: [`HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\n\r\n`, big] });
    const t = nodeHttpTransport();
    const res = await t.fetch(`${base}/big`, { method: "GET" });
    const reader = res.body!.getReader();
    const parts: Uint8Array[] = [];
    for (let r = await reader.read(); !r.done; r = await reader.read()) parts.push(r.value);
    expect(parts.length).toBeGreaterThan(1);
    expect(Buffer.concat(parts).equals(big)).toBe(true);
    t.close();
  });

  it("an abort while waiting for a socket fails that request alone and takes it out of the queue", async () => {
    const t = nodeHttpTransport({ maxSockets: 1 });
    // The first request holds the only socket (the server never answers it); two more wait for it.
    script = (a) => (a.head.startsWith("GET /hold ") ? "hang" : { pieces: [OK] });
    const abort = new AbortController();
    const first = t.fetch(`${base}/hold`, { method: "GET" });
    const aborted = t.fetch(`${base}/aborted`, { method: "GET", signal: abort.signal });
    const after = t.fetch(`${base}/after`, { method: "GET" });
    await new Promise((r) => setTimeout(r, 20));
    abort.abort();
    await expect(aborted).rejects.toMatchObject({ name: "AbortError" });
    // Freeing the socket (the server closes the hung one) lets the next waiter go, not the aborted one.
    void first.catch(() => {});
    for (const s of sockets) s.destroy();
    expect(await text(after)).toBe("ok");
    expect(arrivals.map((a) => a.head.split(" ")[1])).toEqual(["/hold", "/after"]);
    t.close();
  });

  it("close() fails requests in flight and requests waiting for a socket", async () => {
    script = () => "hang";
    const t = nodeHttpTransport({ maxSockets: 1 });
    const inFlight = t.fetch(`${base}/hang1`, { method: "GET" });
    const waiting = t.fetch(`${base}/hang2`, { method: "GET" });
    await new Promise((r) => setTimeout(r, 20));
    t.close();
    await expect(inFlight).rejects.toBeInstanceOf(TypeError);
    await expect(waiting).rejects.toBeInstanceOf(TypeError);
    expect(arrivals).toHaveLength(1);
  });
});

describe("https", () => {
  const dir = join(import.meta.dirname, "fixtures");
  const cert = readFileSync(join(dir, "test-tls-cert.pem"), "utf8");
  let tlsServer: ReturnType<typeof createHttpsServer>;
  let tlsBase = "";
  let tlsConns = 0;

  beforeAll(async () => {
    tlsServer = createHttpsServer({ key: readFileSync(join(dir, "test-tls-key.pem")), cert }, (req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(`${req.method} ${req.url} over ${(req.socket as { encrypted?: boolean }).encrypted ? "tls" : "plain"}`);
    });
    tlsServer.on("secureConnection", () => tlsConns++);
    tlsBase = `https://localhost:${await listenLocal(tlsServer)}`;
  });
  afterAll(() => closeLocal(tlsServer));

  it("speaks HTTP/1.1 over TLS to a server its `ca` trusts, on one kept socket", async () => {
    const t = nodeHttpTransport({ ca: cert });
    for (let i = 0; i < 3; i++) expect(await text(t.fetch(`${tlsBase}/t${i}?q=1`, { method: "GET" }))).toBe(`GET /t${i}?q=1 over tls`);
    expect(tlsConns).toBe(1);
    t.close();
  });

  it("refuses a certificate it does not trust", async () => {
    const t = nodeHttpTransport();
    await expect(t.fetch(`${tlsBase}/`, { method: "GET" })).rejects.toMatchObject({
      name: "TypeError",
      cause: { code: "DEPTH_ZERO_SELF_SIGNED_CERT" },
    });
    t.close();
  });
});

describe("the coordinator transport over this client", () => {
  it("fails a call the coordinator never answers after timeoutMs, as unreachable (retried by withRetries), and drops its socket", async () => {
    script = () => "hang";
    const t = nodeHttpTransport();
    const coordinator = httpTransport({ server: base, runId: "r-1", token: "t", fetch: t.fetch, timeoutMs: 100 });
    const started = performance.now();
    await expect(coordinator.report({ agentId: "a", reportId: "r", inflight: 0, results: [], returned: [] })).rejects.toBeInstanceOf(
      CoordinatorUnavailable,
    );
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
    expect(arrivals.map((a) => a.head.split("\r\n")[0])).toEqual(["POST /v1/runs/r-1/reports HTTP/1.1"]);
    await new Promise((r) => setTimeout(r, 20));
    expect(sockets.size).toBe(0);
    t.close();
  });
});
