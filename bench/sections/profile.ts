// CPU profiles of workerd (`npm run bench -- --profile`): where the Worker's isolate,
// which hosts the RunCoordinator and the LoadAgents too, spends its time in
//   agents       edge agents generating load on the fixed target (the load-generation figure)
//   coordinator  16 external agents settling batches of 256 over HTTP (the settle rate)
// Each profile is saved as bench/profiles/<name>.cpuprofile (open it in Chrome DevTools;
// "index.js" lines refer to bench/profiles/bundle.js, the bundle wrangler served), and
// summarised by function and by source module in results.json.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Inspector, summarize } from "../lib/cdp.ts";
import type { DevServer } from "../lib/edgeperf.ts";
import { API_TOKEN, api, createRun, waitComplete } from "../lib/edgeperf.ts";
import type { Target } from "../lib/util.ts";
import { ROOT, log, round, sleep } from "../lib/util.ts";

const DIR = join(ROOT, "bench", "profiles");

async function profiled(server: DevServer, name: string, seconds: number, during: () => Promise<void>) {
  const ins = new Inspector();
  await ins.connect(server.inspectorPort);
  try {
    await ins.start(200);
    await Promise.all([during(), sleep(seconds * 1000)]);
    const prof = await ins.stop();
    mkdirSync(DIR, { recursive: true });
    writeFileSync(join(DIR, `${name}.cpuprofile`), JSON.stringify(prof));
    if (server.bundle) writeFileSync(join(DIR, "bundle.js"), server.bundle);
    const s = summarize(prof, server.bundle, 20);
    log(
      `profile ${name}: ${round(100 - s.idlePct, 1)}% busy; top: ${s.functions
        .slice(0, 6)
        .map((f) => `${f.name} ${f.selfPct}%`)
        .join("; ")}`,
    );
    return s;
  } finally {
    ins.close();
  }
}

/** 16 agents speaking wire protocol v1 over HTTP, leasing and reporting 256 at a time, for `seconds`. */
async function httpAgents(server: DevServer, seconds: number): Promise<{ settled: number; perSecond: number }> {
  const run = await createRun(server, {
    target: { url: "builtin:mock" },
    load: { concurrency: 16 * 256 },
    stop: { requests: 10_000_000 },
    agents: { edge: 0 },
    graceSeconds: 5,
  });
  const path = `/v1/runs/${run.id}`;
  const agents: string[] = [];
  for (let i = 0; i < 16; i++)
    agents.push((await api(server.url, "POST", `${path}/agents`, run.agentToken, { name: `http-${i}` })).body.agentId);
  let settled = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  await Promise.all(
    agents.map(async (agentId, a) => {
      for (let n = 0; performance.now() < deadline; n++) {
        const l = await api(server.url, "POST", `${path}/leases`, run.agentToken, { agentId, requestId: `q${a}-${n}`, want: 256 });
        const results = (l.body.credits as Array<{ seq: number }>).map((c) => ({
          seq: c.seq,
          ok: true,
          latencyMs: 900 + (c.seq % 97),
          ttftMs: 100 + (c.seq % 13),
          inputTokens: 550,
          outputTokens: 128,
        }));
        const r = await api(server.url, "POST", `${path}/reports`, run.agentToken, {
          agentId,
          reportId: `r${a}-${n}`,
          inflight: 0,
          results,
        });
        settled += r.body.accepted as number;
      }
    }),
  );
  const perSecond = settled / ((performance.now() - start) / 1000);
  await api(server.url, "POST", `${path}/stop`, API_TOKEN, { mode: "force" });
  return { settled, perSecond: round(perSecond, 1)! };
}

export async function profiles(server: DevServer, target: Target): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  // Edge agents on the fixed target, profiled in the middle of an 8-second run, as many
  // as the run sizes for it (one per six in flight, as the loadgen figure runs them).
  const run = await createRun(server, {
    target: { url: `${target.url}/fixed`, api: "http", method: "GET" },
    load: { concurrency: 32 },
    stop: { durationSeconds: 8 },
    graceSeconds: 30,
  });
  await sleep(2000);
  const agents = await profiled(server, "agents", 4, async () => {});
  const res = await waitComplete(server, run);
  out.agents = { rps: round(res.metrics.request_throughput.avg, 1), ...agents };
  // The coordinator under external agents over HTTP (Worker routing, JSON and zod included).
  const http = { perSecond: 0 };
  const coord = await profiled(server, "coordinator", 5, async () => {
    http.perSecond = (await httpAgents(server, 5)).perSecond;
  });
  out.coordinator = { httpSettledPerSecond: http.perSecond, ...coord };
  return out;
}
