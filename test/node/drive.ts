// A run driven by hand: created over the API with no edge agents, and worked by an
// external agent made of plain fetch calls (the wire protocol, README "Agents"), so a
// suite controls exactly what the run's results hold and how fast it moves, without
// depending on the agent engine or the mock.

import { expect } from "vitest";
import { DEV_API_TOKEN, api } from "./dev-server.ts";

export interface Run {
  id: string;
  readToken: string;
  agentToken: string;
}

export async function createRun(server: string, spec: Record<string, unknown>): Promise<Run> {
  const res = await api(server, "POST", "/v1/runs", DEV_API_TOKEN, { agents: { edge: 0 }, ...spec });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as Run;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface DriveOptions {
  /** Credits held at once. */
  concurrency: number;
  /** Pause after each report of `perReport` results. */
  pauseMs: number;
  /** Results per report [2]. */
  perReport?: number;
  /** Stop after this many reports (a run left running); default: until the run is done. */
  reports?: number;
  /**
   * What the agent says it has in flight, of the credits it holds [all of them]: fewer
   * is an agent holding credits ahead of sending them, as a real one does (lease depth).
   */
  inflight?: (held: number) => number;
}

/**
 * An external agent that holds up to `concurrency` credits and settles `perReport` at a
 * time, pausing between reports. Results vary (latency, TTFT, output tokens, one failure
 * in 23) and end at the real time since the run started, so the time series is real.
 */
export async function drive(
  server: string,
  run: Run,
  { concurrency, pauseMs, perReport = 2, reports, inflight = (held) => held }: DriveOptions,
): Promise<void> {
  const path = `/v1/runs/${run.id}`;
  const joined = await api(server, "POST", `${path}/agents`, run.agentToken, { name: "e2e-agent", region: "weur" });
  expect(joined.status, JSON.stringify(joined.body)).toBe(200);
  const agentId = joined.body.agentId as string;
  const startedAt = Date.parse((await api(server, "GET", path, run.readToken)).body.startedAt ?? new Date().toISOString());
  const held: number[] = [];
  let n = 0;
  for (let sent = 0; reports === undefined || sent < reports; sent++) {
    if (held.length < concurrency) {
      const l = await api(server, "POST", `${path}/leases`, run.agentToken, {
        agentId,
        requestId: `l${n++}`,
        want: concurrency - held.length,
        inflight: inflight(held.length),
      });
      if (l.status === 200) held.push(...(l.body.credits as Array<{ seq: number }>).map((c) => c.seq));
    }
    if (held.length === 0) return;
    const settle = held.splice(0, perReport);
    const results = settle.map((seq) => {
      const ttftMs = 15 + ((seq * 13) % 40);
      const outputTokens = 16 + (seq % 17);
      const latencyMs = ttftMs + outputTokens * (3 + (seq % 5)) + ((seq * 37) % 60);
      const endMs = Date.now() - startedAt;
      if (seq % 23 === 7) return { seq, ok: false, latencyMs, endMs, error: { code: "http_500", type: "server_error" } };
      return { seq, ok: true, latencyMs, ttftMs, inputTokens: 120, outputTokens, endMs };
    });
    const r = await api(server, "POST", `${path}/reports`, run.agentToken, {
      agentId,
      reportId: `r${n++}`,
      inflight: inflight(held.length),
      results,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    await sleep(pauseMs);
  }
}
