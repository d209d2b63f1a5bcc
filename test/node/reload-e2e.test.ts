// A code update in the middle of a run, as a deploy would do it: `wrangler dev` restarts
// workerd when its configuration changes, which resets every Durable Object (the
// coordinator and the edge agents, mid-slice) on the same storage. The run must still
// complete with an exact ledger, and no request may be sent twice: credits an agent held
// when it was reset are settled once, as agent_restarted failures, never sent again.
//
// The restart is triggered by changing a var in a copy of wrangler.toml kept outside the
// checkout (its `main` made absolute), which wrangler dev watches, so the test never
// touches the checkout's files. (An --env-file is not watched; a source edit would be.)
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MIN_CALL_GAP_MS } from "../../agent/policy.ts";
import { PROJECT_ROOT } from "../../cli/wrangler.ts";
import { DEV_API_TOKEN, api, e2eServer, tempDir } from "./dev-server.ts";
import { OpenAIServer } from "./openai-server.ts";

const dir = tempDir("edgeperf-reload-");
const configPath = join(dir, "wrangler.toml");
const original = readFileSync(join(PROJECT_ROOT, "wrangler.toml"), "utf8");
if (!original.includes('main = "worker/index.ts"') || !original.includes("\n[vars]\n"))
  throw new Error("wrangler.toml changed shape: update reload-e2e");
const config = (probe: number) =>
  original
    .replace('main = "worker/index.ts"', `main = ${JSON.stringify(join(PROJECT_ROOT, "worker/index.ts"))}`)
    .replace("\n[vars]\n", `\n[vars]\nRELOAD_PROBE = "${probe}"\n`);
writeFileSync(configPath, config(0));
const dev = e2eServer({ ALLOWED_TARGETS: "127.0.0.1:*" }, ["--config", configPath]);
const srv = new OpenAIServer({ ttftMs: 50, itlMs: 10 });
beforeAll(async () => {
  await srv.start();
  await dev.start();
});
afterAll(async () => {
  await srv.stop();
  await dev.dispose();
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe("a restart of workerd in the middle of a run (a code update)", () => {
  it("completes the run with an exact ledger; what the agents held is settled once as agent_restarted, and nothing is sent twice", async () => {
    const created = await api(dev.url, "POST", "/v1/runs", DEV_API_TOKEN, {
      target: { url: srv.url, model: "m", stream: true },
      workload: { outputTokens: { mean: 32 } },
      load: { concurrency: 8 },
      stop: { requests: 200 },
      agents: { edge: 2 },
      graceSeconds: 60,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const run = created.body as { id: string; readToken: string };
    // Each request takes ~360 ms, so 200 at concurrency 8 take ~9 s: restart once ~40 have arrived.
    while (srv.requests.length < 40) await sleep(20);
    const before = srv.requests.length;
    writeFileSync(configPath, config(1));

    let res: { status: number; body: any } | null = null;
    const end = Date.now() + 90_000;
    while (Date.now() < end) {
      try {
        res = await api(dev.url, "GET", `/v1/runs/${run.id}/results?wait=10`, run.readToken);
        if (res.status === 200 && res.body.phase === "complete") break;
      } catch {
        await sleep(200); // the server is restarting
      }
    }
    expect(res?.body.phase, JSON.stringify(res?.body).slice(0, 500)).toBe("complete");
    await sleep(300); // anything sent late would arrive by now
    const c = res!.body.counts;
    const arrived = srv.requests.length;
    console.log(
      `FIGURE: restart after ${before} arrivals: counts ${JSON.stringify(c)}, errors ${JSON.stringify(res!.body.errors)}, ${arrived} requests at the server`,
    );
    expect(c.granted).toBe(c.returned + c.completed + c.failed + c.abandoned + c.outstanding);
    expect(c.outstanding).toBe(0);
    expect(c.completed + c.failed + c.abandoned).toBe(200);
    // The restart happened while both agents held credits: those are failed, once.
    const restarted = (res!.body.errors as Array<{ code: string; count: number }>).find((e) => e.code === "agent_restarted")?.count ?? 0;
    expect(restarted).toBeGreaterThan(0);
    expect(c.failed).toBe(restarted);
    // Each of the two agents holds at most its share of 4 plus its lease depth (agent/policy.ts):
    // one share, two call gaps' worth of sends at 4 per 360 ms or more (32 tokens each: 6),
    // or three coordinator round trips' worth, here allowed up to 360 ms each on a loaded
    // machine (12).
    const depth = Math.max(4, Math.ceil((2 * MIN_CALL_GAP_MS * 4) / 360), Math.ceil((3 * 4 * 360) / 360));
    expect(restarted + c.abandoned).toBeLessThanOrEqual(2 * (4 + depth));
    // Nothing twice: every arrival is a counted request (completed, or held at the restart),
    // and every completed request arrived.
    expect(arrived).toBeGreaterThanOrEqual(c.completed);
    expect(arrived).toBeLessThanOrEqual(c.completed + c.failed + c.abandoned);
    expect(srv.maxInflight).toBeLessThanOrEqual(8 + 8); // before and after the restart, briefly overlapping
  });
});
