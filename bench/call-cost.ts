// What one coordinator call costs the local workerd, in CPU, over HTTP as the Node agent
// makes it (docs/BENCHMARKS.md, "Where the CPU goes"):
//   npx node bench/call-cost.ts [mode=report-lease] [batch=128] [seconds=5]
// One client calls back to back for `seconds` on a fresh `wrangler dev`, and the CPU each
// workerd process used is read from /proc before and after: `workerd` is the process
// running edgeperf's Worker and Durable Objects, `proxy` the one wrangler dev puts in
// front of it (not in production). Modes:
//   report-lease  POST /report-lease settling `batch` results and leasing `batch` more
//   report        POST /reports with no results (a call's fixed cost through the coordinator)
//   status        GET /v1/runs/:id (a read through the coordinator)
//   healthz       GET /healthz (the Worker alone, no Durable Object)
import { nodeHttpTransport } from "../cli/node-http.ts";
import { api, benchServer, createRun } from "./lib/edgeperf.ts";
import { cpuSpent, round, wholeArg, workerdCpu } from "./lib/util.ts";

const MODES = ["report-lease", "report", "status", "healthz"] as const;
const [mode = "report-lease", batchArg = "128", secondsArg = "5"] = process.argv.slice(2);
if (!(MODES as readonly string[]).includes(mode)) throw new Error(`mode must be one of ${MODES.join(", ")}, not ${mode}`);
const batch = wholeArg("batch", batchArg, 1);
const seconds = wholeArg("seconds", secondsArg, 1);

const server = benchServer();
await server.start();
const http = nodeHttpTransport();
try {
  const run = await createRun(server, {
    target: { url: "builtin:mock" },
    load: { concurrency: 4096 },
    stop: { requests: 10_000_000 },
    agents: { edge: 0 },
    graceSeconds: 5,
  });
  const base = `${server.url}/v1/runs/${run.id}`;
  const agentId = (await api(server.url, "POST", `/v1/runs/${run.id}/agents`, run.agentToken, { name: "call-cost" })).body
    .agentId as string;
  const post = async (path: string, body: unknown) => {
    const res = await http.fetch(base + path, {
      method: "POST",
      headers: { authorization: `Bearer ${run.agentToken}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = (await res.json()) as Record<string, any>;
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(answer)}`);
    return answer;
  };
  const get = async (url: string, token?: string) => {
    const res = await http.fetch(url, { method: "GET", headers: token ? { authorization: `Bearer ${token}` } : {} });
    await res.text();
    if (res.status !== 200) throw new Error(`${url}: ${res.status}`);
  };

  let seqs: number[] =
    mode === "report-lease"
      ? (await post("/leases", { agentId, requestId: "q0", want: batch })).credits.map((c: { seq: number }) => c.seq)
      : [];
  let calls = 0;
  let settled = 0;
  const before = workerdCpu();
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  while (performance.now() < until) {
    calls++;
    if (mode === "report-lease") {
      const results = seqs.map((seq, i) => ({ seq, ok: true, latencyMs: 0.8 + (i % 7) * 0.01, endMs: 1000 + calls }));
      const a = await post("/report-lease", {
        report: { agentId, reportId: `r${calls}`, inflight: 0, results, returned: [] },
        lease: { agentId, requestId: `q${calls}`, want: batch, inflight: 0 },
      });
      settled += a.report.accepted as number;
      seqs = a.lease.credits.map((c: { seq: number }) => c.seq);
    } else if (mode === "report") await post("/reports", { agentId, reportId: `e${calls}`, inflight: 0, results: [], returned: [] });
    else if (mode === "status") await get(base, run.readToken);
    else await get(`${server.url}/healthz`);
  }
  const elapsed = (performance.now() - t0) / 1000;
  const perCallUs: Record<string, number | null> = {};
  for (const [k, v] of Object.entries(cpuSpent(before, workerdCpu()))) perCallUs[k] = round((v * 1e6) / calls, 0);
  console.log(
    JSON.stringify({
      mode,
      ...(mode === "report-lease" ? { batch, resultsPerSecond: round(settled / elapsed, 0) } : {}),
      callsPerSecond: round(calls / elapsed, 0),
      callMs: round((1000 * elapsed) / calls, 2),
      cpuUsPerCall: perCallUs,
    }),
  );
} finally {
  http.close();
  await server.dispose();
}
