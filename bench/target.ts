// The benchmark target: a small Node HTTP server, run as its own process so the tools
// under test never share its event loop. It records what it served, so measurements can
// be checked against the server's side of the story.
//
//   GET  /fixed                       200 "ok\n" at once
//   GET  /delay/:ms                   200 "ok\n" after ms milliseconds
//   POST /v1/chat/completions         OpenAI-style stream: the first token after
//                                     x-bench-ttft-ms, then one every x-bench-itl-ms;
//                                     max_tokens tokens; usage when asked
//   GET  /stats                       what was served since the last reset (JSON)
//   POST /reset                       forget it
//
// Served timing, per streamed request: TTFT = first content chunk written − request
// arrival; ITL = (last content chunk − first) / (tokens − 1), on this process's
// monotonic clock. Arrival times of every request are kept (epoch ms, sub-ms precision,
// comparable across processes on this machine) for the drain figure.
//
// Usage: node bench/target.ts [port]   (prints "LISTENING <port>" when ready)
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";

interface Served {
  ttftMs: number;
  itlMs: number | null;
  tokens: number;
}

const epoch = () => performance.timeOrigin + performance.now();

let count = 0;
let firstArrival: number | null = null;
let lastArrival: number | null = null;
let streamed: Served[] = [];
const byRoute: Record<string, number> = {};

function reset(): void {
  count = 0;
  firstArrival = null;
  lastArrival = null;
  streamed = [];
  for (const k of Object.keys(byRoute)) delete byRoute[k];
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => (body += d));
    req.on("end", () => resolve(body));
    req.on("error", reject);
  });
}

const sleepUntil = (t: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, t - performance.now())));

async function stream(req: IncomingMessage, res: ServerResponse, arrived: number): Promise<void> {
  const ttft = Number(req.headers["x-bench-ttft-ms"] ?? 20);
  const itl = Number(req.headers["x-bench-itl-ms"] ?? 5);
  const body = JSON.parse(await readBody(req)) as { max_tokens?: number; stream_options?: { include_usage?: boolean } };
  const tokens = Math.max(1, Math.min(4096, body.max_tokens ?? 16));
  const usage = body.stream_options?.include_usage === true;
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const head = { id: "chatcmpl-bench", object: "chat.completion.chunk", created: Math.floor(Date.now() / 1000), model: "bench" };
  let first = 0;
  let last = 0;
  for (let i = 0; i < tokens; i++) {
    // Deadlines from the arrival, so a late timer never shifts the tokens after it.
    await sleepUntil(arrived + ttft + i * itl);
    const delta = i === 0 ? { role: "assistant", content: "tok " } : { content: "tok " };
    res.write(`data: ${JSON.stringify({ ...head, choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`);
    last = performance.now();
    if (i === 0) first = last;
  }
  res.write(`data: ${JSON.stringify({ ...head, choices: [{ index: 0, delta: {}, finish_reason: "length" }] })}\n\n`);
  if (usage) {
    const u = { prompt_tokens: 1, completion_tokens: tokens, total_tokens: tokens + 1 };
    res.write(`data: ${JSON.stringify({ ...head, choices: [], usage: u })}\n\n`);
  }
  res.end("data: [DONE]\n\n");
  streamed.push({ ttftMs: first - arrived, itlMs: tokens > 1 ? (last - first) / (tokens - 1) : null, tokens });
}

const server = createServer((req, res) => {
  const arrived = performance.now();
  const url = req.url ?? "/";
  const route = url.startsWith("/delay/") ? "/delay" : url.split("?")[0]!;
  if (route === "/fixed" || route === "/delay" || route === "/v1/chat/completions") {
    count++;
    const t = epoch();
    firstArrival ??= t;
    lastArrival = t;
    byRoute[route] = (byRoute[route] ?? 0) + 1;
  }
  if (req.method === "GET" && route === "/fixed") {
    res.writeHead(200, { "content-type": "text/plain", "content-length": "3" });
    res.end("ok\n");
    return;
  }
  if (req.method === "GET" && route === "/delay") {
    const ms = Number(url.slice("/delay/".length));
    setTimeout(() => {
      res.writeHead(200, { "content-type": "text/plain", "content-length": "3" });
      res.end("ok\n");
    }, ms);
    return;
  }
  if (req.method === "POST" && route === "/v1/chat/completions") {
    stream(req, res, arrived).catch(() => res.destroy());
    return;
  }
  if (req.method === "GET" && route === "/stats") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ count, firstArrival, lastArrival, byRoute, streamed }));
    return;
  }
  if (req.method === "POST" && route === "/reset") {
    reset();
    res.writeHead(204);
    res.end();
    return;
  }
  res.writeHead(404);
  res.end();
});

server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  const addr = server.address();
  process.stdout.write(`LISTENING ${typeof addr === "object" && addr ? addr.port : 0}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
