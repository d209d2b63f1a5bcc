// What an HTTP client alone costs per request against the bench target (docs/BENCHMARKS.md,
// "Where the CPU goes"): closed loops of `c` workers on keep-alive sockets, each in its
// own process, for `seconds`, alternating:
//   npx node bench/client-cost.ts [seconds=4] [concurrency=32] [rounds=2]
//   edgeperf  the Node agent's HTTP/1.1 client (cli/node-http.ts), alone, no engine
//   node:http a keep-alive http.Agent
//   raw       a socket per worker writing one fixed request and counting answers (the floor)
// Prints, per loop, requests a second and microseconds of CPU (user + system) a request.
import { fork } from "node:child_process";
import http from "node:http";
import net from "node:net";
import { nodeHttpTransport } from "../cli/node-http.ts";
import { Target, round } from "./lib/util.ts";

type Kind = "edgeperf" | "node:http" | "raw";
const KINDS: Kind[] = ["edgeperf", "node:http", "raw"];

async function loop(kind: Kind, url: string, c: number, seconds: number): Promise<number> {
  const u = new URL(url);
  const end = performance.now() + seconds * 1000;
  let n = 0;
  if (kind === "raw") {
    // Answers of the bench's /fixed route: a head with Content-Length, then the body.
    const request = Buffer.from(`GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`, "latin1");
    await Promise.all(
      Array.from(
        { length: c },
        () =>
          new Promise<void>((resolve, reject) => {
            const s = net.connect({ host: u.hostname, port: Number(u.port) }, () => s.write(request));
            s.setNoDelay(true);
            s.setEncoding("latin1");
            s.on("error", reject);
            let buf = "";
            s.on("data", (d: string) => {
              buf += d;
              for (;;) {
                const head = buf.indexOf("\r\n\r\n");
                if (head < 0) return;
                const len = Number(/content-length: *(\d+)/i.exec(buf.slice(0, head))?.[1] ?? 0);
                if (buf.length < head + 4 + len) return;
                buf = buf.slice(head + 4 + len);
                n++;
                if (performance.now() < end) s.write(request);
                else {
                  s.destroy();
                  resolve();
                  return;
                }
              }
            });
          }),
      ),
    );
    return n;
  }
  if (kind === "node:http") {
    const agent = new http.Agent({ keepAlive: true, maxSockets: c });
    const one = () =>
      new Promise<void>((resolve, reject) => {
        const req = http.request({ hostname: u.hostname, port: u.port, path: u.pathname, agent }, (res) => {
          res.resume();
          res.on("end", resolve);
        });
        req.on("error", reject);
        req.end();
      });
    await Promise.all(
      Array.from({ length: c }, async () => {
        while (performance.now() < end) {
          await one();
          n++;
        }
      }),
    );
    agent.destroy();
    return n;
  }
  const t = nodeHttpTransport({ maxSockets: c });
  const headers = new Headers();
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (performance.now() < end) {
        const res = await t.fetch(url, { method: "GET", headers });
        await res.text();
        n++;
      }
    }),
  );
  t.close();
  return n;
}

if (process.env.CLIENT_COST_CHILD) {
  // One loop in this process: answers {rps, usPerRequest} to the parent.
  const [kind, url, c, seconds] = JSON.parse(process.env.CLIENT_COST_CHILD) as [Kind, string, number, number];
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const n = await loop(kind, url, c, seconds);
  const cpu = process.cpuUsage(cpu0);
  process.send!({ rps: n / ((performance.now() - t0) / 1000), usPerRequest: (cpu.user + cpu.system) / n });
} else {
  const [seconds = "4", c = "32", rounds = "2"] = process.argv.slice(2);
  for (const [name, v] of [
    ["seconds", seconds],
    ["concurrency", c],
    ["rounds", rounds],
  ] as const)
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`${name} must be a whole number of at least 1, not ${v}`);
  const target = new Target();
  await target.start();
  try {
    const url = `${target.url}/fixed`;
    for (let r = 0; r < Number(rounds); r++)
      for (const kind of KINDS) {
        const child = fork(import.meta.filename, [], {
          env: { ...process.env, CLIENT_COST_CHILD: JSON.stringify([kind, url, Number(c), Number(seconds)]) },
        });
        const out = await new Promise<{ rps: number; usPerRequest: number }>((resolve, reject) => {
          child.once("message", (m) => resolve(m as { rps: number; usPerRequest: number }));
          child.once("exit", (code) => reject(new Error(`${kind} loop exited ${code}`)));
        });
        child.kill();
        console.log(JSON.stringify({ client: kind, rps: round(out.rps, 0), usPerRequest: round(out.usPerRequest, 1) }));
      }
  } finally {
    await target.stop();
  }
}
