// The engine's own cost (bundled by bench/engine-cost.ts, run in its own process): the
// Node agent's AgentEngine and HTTP/1.1 client against the bench target, with the
// coordinator replaced by an in-process stand-in that grants what the engine asks for
// (within its share plus depth) and serializes each report as the HTTP transport would.
// Prints {requests, usPerRequest}: CPU (user + system) a request of engine and client.
import { AgentEngine } from "../../agent/engine";
import type { CoordinatorTransport } from "../../agent/transport";
import { readConfig } from "../../contract/config";
import type { LeaseAnswer, LeaseBody, ReportAnswer, ReportBody } from "../../contract/protocol";
import { parseRunSpec } from "../../contract/spec";
import { nodeHttpTransport } from "../../cli/node-http";

const [url = "", c = "32", seconds = "4"] = process.argv.slice(2);
const concurrency = Number(c);
const spec = parseRunSpec(
  { target: { url, api: "http", method: "GET" }, load: { concurrency }, stop: { durationSeconds: 3600 } },
  readConfig({ ALLOWED_TARGETS: "127.0.0.1:*" }),
);

let nextSeq = 0;
let outstanding = 0;
let settled = 0;
let reportBytes = 0;
const lease = (b: LeaseBody): LeaseAnswer => {
  const room = concurrency + Math.max(b.depth ?? concurrency, concurrency) - outstanding;
  const n = Math.max(0, Math.min(b.want, room));
  outstanding += n;
  const credits = Array.from({ length: n }, () => ({ seq: nextSeq++ }));
  return {
    leaseId: b.requestId,
    credits,
    concurrency,
    expiresInMs: 60_000,
    stop: false,
    finishLeased: false,
    serverTime: Date.now(),
    runStartedAt: t0,
  };
};
const report = (b: ReportBody): ReportAnswer => {
  reportBytes += JSON.stringify(b).length; // what the HTTP transport does with it
  const n = b.results.length + b.returned.length;
  outstanding -= n;
  settled += b.results.length;
  return { accepted: b.results.length, duplicates: 0, stop: false, finishLeased: false, concurrency, serverTime: Date.now() };
};
const t0 = Date.now();
const transport: CoordinatorTransport = {
  join: async () => ({
    agentId: "a-1",
    leaseTtlMs: 60_000,
    reportIntervalMs: 1000,
    serverTime: Date.now(),
    spec,
    concurrency,
    stop: false,
  }),
  lease: async (b) => lease(b),
  report: async (b) => report(b),
  reportThenLease: async (r, l) => ({ report: report(r), lease: lease(l) }),
};

const http = nodeHttpTransport({ maxSockets: concurrency });
const engine = new AgentEngine({ transport, fetchTarget: http.fetch, resolveUrl: () => url, name: "engine-cost" });
await engine.join();
// Warm up for a second, then measure.
await engine.runSlice({ untilWallMs: Date.now() + 1000 });
const settledBefore = settled;
const cpu0 = process.cpuUsage();
const w0 = performance.now();
await engine.runSlice({ untilWallMs: Date.now() + Number(seconds) * 1000 });
const cpu = process.cpuUsage(cpu0);
const wall = (performance.now() - w0) / 1000;
const requests = settled - settledBefore;
http.close();
console.log(
  JSON.stringify({
    requests,
    rps: Math.round(requests / wall),
    usPerRequest: Math.round((10 * (cpu.user + cpu.system)) / requests) / 10,
    reportBytesPerRequest: Math.round(reportBytes / settled),
  }),
);
process.exit(0);
