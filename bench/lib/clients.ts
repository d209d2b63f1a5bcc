// Plain reference clients, run inside the bench process: what a load generator with no
// coordination or measurement delivers against the same server.
import http from "node:http";

/**
 * A closed loop of `c` workers over keep-alive node:http sockets (maxSockets = c), each
 * sending GET `url` again as soon as its response is read, for `seconds`. Returns the
 * responses read per second.
 */
export async function nodeHttpLoop(url: string, c: number, seconds: number): Promise<number> {
  const u = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: c });
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = http.request({ hostname: u.hostname, port: u.port, path: u.pathname + u.search, agent }, (res) => {
        res.resume();
        res.on("end", resolve);
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end();
    });
  let n = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  try {
    await Promise.all(
      Array.from({ length: c }, async () => {
        while (performance.now() < end) {
          await one();
          n++;
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return n / ((performance.now() - t0) / 1000);
}
