// What an HTTP client alone costs per request against the bench target (docs/BENCHMARKS.md,
// "Where the CPU goes"): closed loops of `c` workers on keep-alive sockets, each in its
// own process, for `seconds`, alternating:
//   npx node bench/client-cost.ts [seconds=4] [concurrency=32] [rounds=2]
//   edgeperf  the Node agent's HTTP/1.1 client (cli/node-http.ts), alone, no engine
//   node:http a keep-alive http.Agent
//   raw       a socket per worker writing one fixed request and counting answers (the floor)
// Prints, per loop, requests a second and microseconds of CPU (user + system) a request.
import { fork } from "node:child_process";
import net from "node:net";
import { nodeHttpTransport } from "../cli/node-http.ts";
import { nodeHttpLoop } from "./lib/clients.ts";
import { Target, round, wholeArg } from "./lib/util.ts";

type Kind = "edgeperf" | "node:http" | "raw";
const KINDS: Kind[] = ["edgeperf", "node:http", "raw"];

/** Runs one kind of loop; returns the responses it read. */
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
  // bench/lib/clients.ts's loop answers responses a second; its loop ends within one
  // request (well under a millisecond here) of `seconds`.
  if (kind === "node:http") return (await nodeHttpLoop(url, c, seconds)) * seconds;
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
  const [secondsArg = "4", cArg = "32", roundsArg = "2"] = process.argv.slice(2);
  const seconds = wholeArg("seconds", secondsArg, 1);
  const c = wholeArg("concurrency", cArg, 1);
  const rounds = wholeArg("rounds", roundsArg, 1);
  const target = new Target();
  await target.start();
  try {
    const url = `${target.url}/fixed`;
    for (let r = 0; r < rounds; r++)
      for (const kind of KINDS) {
        const child = fork(import.meta.filename, [], {
          env: { ...process.env, CLIENT_COST_CHILD: JSON.stringify([kind, url, c, seconds]) },
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
