// The Node agent's target transport (cli/node-http.ts) against a plain node:http server
// written here: bodies are read as they arrive, aborts end requests, keep-alive sockets
// are reused, and failures come out as the error classes agent/target.ts reports.
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Job } from "../../agent/prompt.ts";
import { Deadlines } from "../../agent/deadlines.ts";
import { sendRequest } from "../../agent/target.ts";
import type { TargetFetch } from "../../agent/target.ts";
import { nodeHttpTransport } from "../../cli/node-http.ts";
import type { TargetSpec } from "../../contract/spec.ts";
import { closeLocal, listenLocal } from "./local-server.ts";

/** A promise with its resolve outside: the server holds a response until the test says. */
function gate(): { open: () => void; opened: Promise<void> } {
  let open = () => {};
  const opened = new Promise<void>((r) => {
    open = r;
  });
  return { open, opened };
}

const chunk = (content: string) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;

let server: Server;
let base = "";
/** Connections the server accepted, and what each route received. */
let connections = 0;
const openSockets = new Set<Socket>();
const held = new Map<string, ReturnType<typeof gate>>();
const received: Array<{ method: string; url: string; headers: IncomingMessage["headers"]; body: string }> = [];

function route(req: IncomingMessage, res: ServerResponse, body: string): void {
  received.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
  const url = new URL(req.url ?? "/", "http://x");
  const g = held.get(url.searchParams.get("gate") ?? "");
  switch (url.pathname) {
    case "/ok":
      res.writeHead(200, { "content-type": "text/plain", "content-length": "3" });
      res.end("ok\n");
      return;
    case "/echo":
      res.writeHead(200, { "content-type": "application/json", "x-seen": "a", "set-cookie": ["b=1", "c=2"] });
      res.end(JSON.stringify({ body }));
      return;
    case "/stream":
      // The first event, then nothing until the test opens the gate: a client that waits
      // for the whole body would never see the first event.
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(chunk("one"));
      void g?.opened.then(() => res.end(`${chunk("two")}data: [DONE]\n\n`));
      return;
    case "/hang-headers":
      return; // never answers
    case "/cut":
      // Headers and one event, then the connection dies mid-body.
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(chunk("one"), () => setImmediate(() => res.socket?.destroy()));
      return;
    case "/status":
      res.writeHead(Number(url.searchParams.get("code")), { "content-type": "text/plain" });
      res.end("x".repeat(10_000));
      return;
    case "/redirect":
      res.writeHead(302, { location: "/ok" });
      res.end();
      return;
    default:
      res.writeHead(404);
      res.end();
  }
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => (body += d));
    req.on("end", () => route(req, res, body));
  });
  server.on("connection", (s) => {
    connections++;
    openSockets.add(s);
    s.on("close", () => openSockets.delete(s));
  });
  server.keepAliveTimeout = 60_000;
  base = `http://127.0.0.1:${await listenLocal(server)}`;
});

afterAll(() => closeLocal(server));

const streamTarget = (over: Partial<TargetSpec> = {}): TargetSpec => ({
  url: `${base}/stream`,
  api: "openai-chat",
  model: "m",
  stream: true,
  headers: {},
  timeoutSeconds: 600,
  ...over,
});
const job: Job = { inputTokens: 5, outputTokens: 2, prompt: "the of and to in" };
const send = (fetch: TargetFetch, target: TargetSpec, url: string, deadlines = new Deadlines()) =>
  sendRequest({ target, url, fetch, now: () => performance.now(), deadlines }, job);

describe("the Node agent's HTTP/1.1 transport", () => {
  it("hands over a streamed body as it arrives: the first event is read while the server still holds the rest", async () => {
    const t = nodeHttpTransport();
    const g = gate();
    held.set("s1", g);
    const res = await t.fetch(`${base}/stream?gate=s1`, { method: "GET" });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe("text/event-stream");
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain('"content":"one"');
    g.open();
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    expect(rest).toContain('"content":"two"');
    expect(rest).toContain("[DONE]");
    t.close();
  });

  it("measures a stream through agent/target.ts: TTFT at the first event, latency at the last, both tokens counted", async () => {
    const t = nodeHttpTransport();
    const g = gate();
    held.set("s2", g);
    const pending = send(t.fetch, streamTarget(), `${base}/stream?gate=s2`);
    // Hold the second event back for a measurable time after the first arrived.
    await new Promise((r) => setTimeout(r, 30));
    g.open();
    const out = await pending;
    expect(out.ok).toBe(true);
    expect(out.ttftMs).toBeLessThan(out.latencyMs - 20);
    expect(out.outputTokens).toBe(2);
    // The request went out as the agent built it: POST, JSON body, its headers.
    const seen = received.at(-1)!;
    expect(seen.method).toBe("POST");
    expect(seen.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(seen.body)).toMatchObject({ model: "m", stream: true });
    t.close();
  });

  it("sends string bodies with their length and reads headers, repeated ones joined", async () => {
    const t = nodeHttpTransport();
    const res = await t.fetch(`${base}/echo`, { method: "POST", body: "héllo", headers: { "x-a": "1" } });
    expect(JSON.parse(await res.text())).toEqual({ body: "héllo" });
    expect(res.headers.get("x-seen")).toBe("a");
    expect(res.headers.get("set-cookie")).toBe("b=1, c=2");
    expect(res.headers.get("x-absent")).toBeNull();
    expect(received.at(-1)!.headers["content-length"]).toBe(String(Buffer.byteLength("héllo")));
    expect(received.at(-1)!.headers["x-a"]).toBe("1");
    t.close();
  });

  it("reuses keep-alive sockets: 40 requests, 4 at a time with maxSockets 4, open at most 4 connections", async () => {
    const t = nodeHttpTransport({ maxSockets: 4 });
    const before = connections;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 10; i++) expect((await t.fetch(`${base}/ok`, { method: "GET" }).then((r) => r.text())) === "ok\n").toBe(true);
      }),
    );
    expect(connections - before).toBeGreaterThan(0);
    expect(connections - before).toBeLessThanOrEqual(4);
    t.close();
  });

  it("queues past maxSockets instead of opening more connections", async () => {
    const t = nodeHttpTransport({ maxSockets: 2 });
    const before = connections;
    await Promise.all(Array.from({ length: 8 }, () => t.fetch(`${base}/ok`, { method: "GET" }).then((r) => r.text())));
    expect(connections - before).toBeLessThanOrEqual(2);
    t.close();
  });

  it("rejects with an AbortError when the signal aborts before the headers, and frees the socket", async () => {
    const t = nodeHttpTransport();
    const ac = new AbortController();
    const p = t.fetch(`${base}/hang-headers`, { method: "GET", signal: ac.signal });
    await new Promise((r) => setTimeout(r, 20));
    const sockets = openSockets.size;
    ac.abort();
    await expect(p).rejects.toMatchObject({ name: "AbortError" });
    await new Promise((r) => setTimeout(r, 20));
    expect(openSockets.size).toBe(sockets - 1);
    t.close();
  });

  it("rejects a read with an AbortError when the signal aborts mid-body", async () => {
    const t = nodeHttpTransport();
    held.set("s3", gate()); // never opened
    const ac = new AbortController();
    const res = await t.fetch(`${base}/stream?gate=s3`, { method: "GET", signal: ac.signal });
    const reader = res.body!.getReader();
    expect((await reader.read()).done).toBe(false);
    const next = reader.read();
    ac.abort();
    await expect(next).rejects.toMatchObject({ name: "AbortError" });
    t.close();
  });

  it("rejects at once for a signal already aborted", async () => {
    const t = nodeHttpTransport();
    await expect(t.fetch(`${base}/ok`, { method: "GET", signal: AbortSignal.abort() })).rejects.toMatchObject({ name: "AbortError" });
    t.close();
  });

  it("does not follow redirects", async () => {
    const t = nodeHttpTransport();
    const res = await t.fetch(`${base}/redirect`, { method: "GET", redirect: "manual" });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("/ok");
    t.close();
  });

  describe("failures, as agent/target.ts classifies them", () => {
    it("a refused connection is `connection`", async () => {
      const t = nodeHttpTransport();
      const dead = createServer();
      await new Promise<void>((r) => dead.listen(0, "127.0.0.1", r));
      const port = (dead.address() as AddressInfo).port;
      await new Promise((r) => dead.close(r));
      await expect(t.fetch(`http://127.0.0.1:${port}/`, { method: "GET" })).rejects.toBeInstanceOf(TypeError);
      const out = await send(t.fetch, streamTarget(), `http://127.0.0.1:${port}/v1/chat/completions`);
      expect(out).toMatchObject({ ok: false, error: { code: "connection", type: "connection" } });
      t.close();
    });

    it("a stream cut off mid-body is `connection`", async () => {
      const t = nodeHttpTransport();
      const out = await send(t.fetch, streamTarget(), `${base}/cut`);
      expect(out).toMatchObject({ ok: false, error: { code: "connection" } });
      t.close();
    });

    it("no answer within timeoutSeconds is `timeout`", async () => {
      const t = nodeHttpTransport();
      const out = await send(t.fetch, streamTarget({ timeoutSeconds: 0.1 }), `${base}/hang-headers`);
      expect(out).toMatchObject({ ok: false, error: { code: "timeout", type: "timeout" } });
      expect(out.latencyMs).toBeGreaterThanOrEqual(90);
      t.close();
    });

    it("the agent's own cancel is `cancelled`, mid-stream too", async () => {
      const t = nodeHttpTransport();
      held.set("s4", gate()); // never opened
      const deadlines = new Deadlines();
      const pending = send(t.fetch, streamTarget(), `${base}/stream?gate=s4`, deadlines);
      await new Promise((r) => setTimeout(r, 30));
      deadlines.cancelAll();
      expect(await pending).toMatchObject({ ok: false, error: { code: "cancelled", type: "cancelled" } });
      t.close();
    });

    it("a non-2xx answer is `http_<status>`, and the connection it cut short is not reused", async () => {
      const t = nodeHttpTransport({ maxSockets: 1 });
      const out = await send(t.fetch, streamTarget(), `${base}/status?code=503`);
      expect(out).toMatchObject({ ok: false, error: { code: "http_503", type: "http" } });
      // The next request still gets through (on a fresh socket if the old one was destroyed).
      expect(await (await t.fetch(`${base}/ok`, { method: "GET" })).text()).toBe("ok\n");
      t.close();
    });
  });
});
